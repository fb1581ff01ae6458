"""The RabbitMQ bus (kaon/bus/rabbit.py) against a real, private broker.

The ``rabbitmq`` session fixture (tests/fixtures/rabbitmq.py) runs Debian's
rabbitmq-server; two tests restart it, so this module takes a while (~30 s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kombu
import pytest

from kaon.bus import BusError, BusTimeout, BusUnavailable, agent_bus, server_bus
from kaon.bus.rabbit import SERVER_QUEUE, RabbitAgentBus, RabbitServerBus, amqp_urls
from tests.fixtures.rabbitmq import RabbitMQ

RESTART_WAIT = 60.0  # a broker restart on a busy 2-core machine


def wait_until(pred: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout:g}s")
        time.sleep(0.02)


class Recorder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.reconnects = 0

    def on_message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def on_reconnect(self) -> None:
        self.reconnects += 1


def echo(method: str, payload: dict[str, Any]) -> dict[str, Any]:
    if method == "boom":
        raise ValueError("no such host")
    return {"method": method, "payload": payload}


@pytest.fixture
def url(rabbitmq: RabbitMQ) -> str:
    # Requests left in the shared queue by an earlier test (they expire
    # anyway) must not be counted by this one: start from no queue at all.
    with kombu.Connection(amqp_urls(rabbitmq.url)[0], connect_timeout=5) as conn:
        kombu.Queue(SERVER_QUEUE, channel=conn.channel()).delete()
    return rabbitmq.url


def consumers(url: str) -> int:
    """How many consumers the shared request queue has (0 if it does not exist yet)."""
    with kombu.Connection(amqp_urls(url)[0], connect_timeout=5) as conn:
        try:
            _, _, count = conn.channel().queue_declare(SERVER_QUEUE, passive=True)
        except Exception:
            return 0
        return count


@pytest.fixture
def buses() -> Iterator[list[Any]]:
    """Closes every bus a test appends, agents first."""
    made: list[Any] = []
    yield made
    for bus in sorted(made, key=lambda b: isinstance(b, RabbitServerBus)):
        bus.close()


def test_factories_pick_rabbit(url: str, buses: list) -> None:
    server, agent = server_bus(url, "/unused"), agent_bus(url, "/unused")
    buses += [server, agent]
    assert isinstance(server, RabbitServerBus) and isinstance(agent, RabbitAgentBus)


def test_call_round_trip_and_errors(url: str, buses: list) -> None:
    server, agent = RabbitServerBus(url), RabbitAgentBus(url)
    buses += [server, agent]
    server.start(echo)
    payload = {"host": "h1", "known_generation": 0, "ports": ["a", "b"]}
    assert agent.call("get_intent", payload) == {"method": "get_intent", "payload": payload}
    with pytest.raises(BusError, match="ValueError: no such host") as exc:
        agent.call("boom", {})
    assert type(exc.value) is BusError
    with pytest.raises(BusError, match="not JSON"):
        agent.call("x", {"when": object()})
    # Calls from several threads at once: one connection (and reply queue) each.
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda i: agent.call("n", {"i": i}), range(12)))
    assert [r["payload"]["i"] for r in replies] == list(range(12))


def test_hints_are_routed_per_host(url: str, buses: list) -> None:
    server, agent = RabbitServerBus(url), RabbitAgentBus(url)
    buses += [server, agent]
    server.start(echo)
    h1, h2 = Recorder(), Recorder()
    agent.listen("h1", h1.on_message, h1.on_reconnect)
    agent.listen("h2", h2.on_message, h2.on_reconnect)
    wait_until(lambda: h1.reconnects == 1 and h2.reconnects == 1, what="first connect")
    server.notify("h1", {"type": "hint", "host": "h1", "generation": 3})
    server.notify("h9", {"type": "hint", "host": "h9", "generation": 1})
    wait_until(lambda: h1.messages, what="hint for h1")
    time.sleep(0.2)  # time for a misrouted hint to show up
    assert h1.messages == [{"type": "hint", "host": "h1", "generation": 3}]
    assert h2.messages == []


def test_server_processes_share_the_requests(url: str, buses: list) -> None:
    served: dict[str, int] = {"a": 0, "b": 0}
    lock = threading.Lock()

    def handler_of(name: str):
        def handle(method: str, payload: dict[str, Any]) -> dict[str, Any]:
            with lock:
                served[name] += 1
            time.sleep(0.05)  # long enough for the other server to take the next ones
            return {"by": name}

        return handle

    a, b, agent = RabbitServerBus(url, workers=2), RabbitServerBus(url, workers=2), RabbitAgentBus(url)
    buses += [a, b, agent]
    a.start(handler_of("a"))
    b.start(handler_of("b"))
    wait_until(lambda: consumers(url) == 2, what="both servers consuming")
    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(lambda i: agent.call("x", {"i": i}), range(24)))
    by = {r["by"] for r in replies}
    assert by == {"a", "b"}, served
    assert served["a"] + served["b"] == 24


def test_broker_restart(url: str, rabbitmq: RabbitMQ, buses: list) -> None:
    server, agent = RabbitServerBus(url), RabbitAgentBus(url)
    buses += [server, agent]
    server.start(echo)
    rec = Recorder()
    agent.listen("h1", rec.on_message, rec.on_reconnect)
    wait_until(lambda: rec.reconnects == 1, what="first connect")
    assert agent.call("before", {})["method"] == "before"

    rabbitmq.stop_broker()
    t0 = time.monotonic()
    with pytest.raises(BusUnavailable):
        agent.call("during", {}, timeout=5)
    assert time.monotonic() - t0 < 3, "call must fail fast while the broker is down"
    server.notify("h1", {"generation": "lost"})  # dropped, never raises

    rabbitmq.start_broker()
    wait_until(lambda: rec.reconnects == 2, RESTART_WAIT, "listener reconnect")
    assert agent.call("after", {}, timeout=15)["method"] == "after"
    server.notify("h1", {"generation": 2})
    wait_until(lambda: {"generation": 2} in rec.messages, what="hint after the restart")

    # A bounce the server and the agent only notice through their idle
    # connections: the next call and hint must still go through.
    rabbitmq.restart()
    wait_until(lambda: rec.reconnects == 3, RESTART_WAIT, "listener reconnect after restart()")
    assert agent.call("after-restart", {}, timeout=15)["method"] == "after-restart"
    server.notify("h1", {"generation": 3})
    wait_until(lambda: rec.messages[-1:] == [{"generation": 3}], what="hint after restart()")


def test_call_made_before_any_server_waits_for_one(url: str, buses: list) -> None:
    # The request queue does not exist yet (the fixture deleted it): the
    # agent declares it, so the request waits instead of being dropped.
    agent, server = RabbitAgentBus(url), RabbitServerBus(url)
    buses += [agent, server]
    starter = threading.Timer(0.5, server.start, args=(echo,))
    starter.start()
    try:
        assert agent.call("early", {}, timeout=10)["method"] == "early"
    finally:
        starter.join()


def test_server_restart(url: str, buses: list) -> None:
    server, agent = RabbitServerBus(url), RabbitAgentBus(url)
    buses += [agent]
    server.start(echo)
    rec = Recorder()
    agent.listen("h1", rec.on_message, rec.on_reconnect)
    wait_until(lambda: rec.reconnects == 1, what="first connect")
    assert agent.call("before", {})["method"] == "before"

    server.close()
    t0 = time.monotonic()
    with pytest.raises(BusTimeout):
        agent.call("during", {}, timeout=1.0)
    assert time.monotonic() - t0 < 2

    again = RabbitServerBus(url)
    buses.append(again)
    again.start(echo)
    assert agent.call("after", {}, timeout=10)["method"] == "after"
    again.notify("h1", {"generation": 9})
    wait_until(lambda: rec.messages == [{"generation": 9}], what="hint from the new server")
    assert rec.reconnects == 1  # the broker stayed up: the listener never lost it


def test_call_without_any_broker_is_unavailable(buses: list) -> None:
    from tests.fixtures.net import free_port

    agent = RabbitAgentBus(f"rabbit://guest:guest@127.0.0.1:{free_port()}/")
    buses.append(agent)
    t0 = time.monotonic()
    with pytest.raises(BusUnavailable):
        agent.call("x", {}, timeout=5)
    assert time.monotonic() - t0 < 1


def test_a_broker_whose_port_was_taken_starts_again_on_fresh_ports(monkeypatch):
    """CI once lost the distribution port to another process during Erlang's boot:
    the fixture starts over on new ports instead of failing the session."""
    import socket

    from tests.fixtures import rabbitmq as rmq
    from tests.fixtures.net import free_port

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    calls: list[int] = []

    def ports() -> int:
        calls.append(0)
        return taken if len(calls) == 2 else free_port()  # the first broker's dist port

    monkeypatch.setattr(rmq, "free_port", ports)
    try:
        broker = RabbitMQ.start()
    finally:
        squatter.close()
    try:
        assert len(calls) == 6  # two brokers, three ports each
        assert broker.dist_port != taken
        with kombu.Connection(broker.url.replace("rabbit://", "amqp://"), connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
    finally:
        broker.close()
