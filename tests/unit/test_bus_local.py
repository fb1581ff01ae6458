"""The local bus (kaon/bus/local.py, unix.py): in-process and over a Unix socket.

Every behavioural test runs twice, once per transport ("inproc": an
InProcessAgentBus of a LocalHub; "socket": a SocketAgentBus on the hub's Unix
socket), through the ``bus`` fixture below.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.bus import BusError, BusTimeout, BusUnavailable, agent_bus, server_bus
from kaon.bus.local import InProcessAgentBus, LocalHub, current_hub
from kaon.bus.unix import SocketAgentBus


def wait_until(pred: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def echo(method: str, payload: dict[str, Any]) -> dict[str, Any]:
    if method == "boom":
        raise ValueError("no such port")
    if method == "sleep":
        time.sleep(payload["seconds"])
    return {"method": method, "payload": payload}


class Recorder:
    """on_message / on_reconnect callbacks that remember what they saw."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.reconnects = 0

    def on_message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def on_reconnect(self) -> None:
        self.reconnects += 1


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # pytest's tmp_path can exceed the 107 bytes a Unix socket path may have.
    d = Path(tempfile.mkdtemp(prefix="kbus-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


class BusPair:
    """A hub and the clients of one transport; restart_hub() replaces the hub."""

    def __init__(self, kind: str, sock: Path) -> None:
        self.kind = kind
        self.sock = sock
        self.hub = LocalHub(str(sock) if kind == "socket" else None)
        self.clients: list[Any] = []

    def start(self, handler=echo) -> BusPair:
        self.hub.start(handler)
        return self

    def client(self) -> InProcessAgentBus | SocketAgentBus:
        c: InProcessAgentBus | SocketAgentBus
        if self.kind == "socket":
            c = SocketAgentBus(str(self.sock))
        else:
            c = InProcessAgentBus(lambda: self.hub)  # follows restart_hub()
        self.clients.append(c)
        return c

    def restart_hub(self, handler=echo, pause: float = 0.0) -> None:
        self.hub.close()
        time.sleep(pause)
        self.hub = LocalHub(str(self.sock) if self.kind == "socket" else None)
        self.hub.start(handler)

    def close(self) -> None:
        for c in self.clients:
            c.close()
        self.hub.close()


@pytest.fixture(params=["inproc", "socket"])
def bus(request: pytest.FixtureRequest, short_dir: Path) -> Iterator[BusPair]:
    pair = BusPair(request.param, short_dir / "bus.sock")
    yield pair
    pair.close()


# ---------------------------------------------------------------- calls
def test_call_round_trip(bus: BusPair) -> None:
    client = bus.start().client()
    payload = {"host": "h1", "known_generation": 3, "nested": {"a": [1, 2]}}
    assert client.call("get_intent", payload) == {"method": "get_intent", "payload": payload}


def test_handler_exception_is_a_bus_error(bus: BusPair) -> None:
    client = bus.start().client()
    with pytest.raises(BusError, match="ValueError: no such port") as exc:
        client.call("boom", {})
    assert type(exc.value) is BusError  # not a timeout, not unavailable


def test_call_timeout(bus: BusPair) -> None:
    client = bus.start().client()
    t0 = time.monotonic()
    with pytest.raises(BusTimeout):
        client.call("sleep", {"seconds": 1.0}, timeout=0.2)
    assert time.monotonic() - t0 < 0.9


def test_slow_call_does_not_block_others(bus: BusPair) -> None:
    client = bus.start().client()
    slow = threading.Thread(target=client.call, args=("sleep", {"seconds": 1.0}))
    slow.start()
    time.sleep(0.05)
    t0 = time.monotonic()
    assert client.call("ping", {}, timeout=2)["method"] == "ping"
    assert time.monotonic() - t0 < 0.5
    slow.join()


def test_call_without_a_hub_is_unavailable(bus: BusPair) -> None:
    client = bus.client()  # the hub is not started: no socket, no handler
    t0 = time.monotonic()
    with pytest.raises(BusUnavailable):
        client.call("ping", {}, timeout=5)
    assert time.monotonic() - t0 < 1


def test_reply_is_a_copy(bus: BusPair) -> None:
    held = {"ports": ["p1"]}
    client = bus.start(lambda m, p: held).client()
    reply = client.call("x", {})
    reply["ports"].append("p2")
    assert held == {"ports": ["p1"]}


def test_non_json_payload_is_a_bus_error(bus: BusPair) -> None:
    client = bus.start().client()
    with pytest.raises(BusError, match="not JSON"):
        client.call("x", {"when": object()})


def test_non_dict_reply_is_an_error(bus: BusPair) -> None:
    client = bus.start(lambda m, p: ["not", "a", "dict"]).client()
    with pytest.raises(BusError, match="not a dict"):
        client.call("x", {})


# ---------------------------------------------------------------- listen
def test_notify_reaches_the_listening_host_only(bus: BusPair) -> None:
    bus.start()
    h1, h2 = Recorder(), Recorder()
    bus.client().listen("h1", h1.on_message, h1.on_reconnect)
    bus.client().listen("h2", h2.on_message, h2.on_reconnect)
    wait_until(lambda: h1.reconnects == 1 and h2.reconnects == 1)
    bus.hub.notify("h1", {"type": "hint", "host": "h1", "generation": 7})
    bus.hub.notify("h3", {"type": "hint", "host": "h3", "generation": 1})
    wait_until(lambda: h1.messages)
    time.sleep(0.1)  # give a misrouted message the time to arrive
    assert h1.messages == [{"type": "hint", "host": "h1", "generation": 7}]
    assert h2.messages == []


def test_on_reconnect_fires_on_first_connect_and_after_hub_restart(bus: BusPair) -> None:
    bus.start()
    rec = Recorder()
    bus.client().listen("h1", rec.on_message, rec.on_reconnect)
    wait_until(lambda: rec.reconnects == 1)
    bus.restart_hub(pause=0.3)  # the listener retries while no hub is there
    wait_until(lambda: rec.reconnects == 2)
    bus.hub.notify("h1", {"generation": 2})
    wait_until(lambda: rec.messages == [{"generation": 2}])
    assert rec.reconnects == 2


def test_call_after_hub_restart(bus: BusPair) -> None:
    client = bus.start().client()
    assert client.call("a", {})["method"] == "a"
    bus.hub.close()
    with pytest.raises(BusUnavailable):
        client.call("b", {}, timeout=1)
    bus.restart_hub()
    assert client.call("c", {})["method"] == "c"


def test_callback_exception_does_not_stop_the_listener(bus: BusPair) -> None:
    bus.start()
    seen: list[dict] = []

    def on_message(m: dict) -> None:
        seen.append(m)
        raise RuntimeError("agent bug")

    connected = threading.Event()
    bus.client().listen("h1", on_message, connected.set)
    assert connected.wait(5)
    bus.hub.notify("h1", {"n": 1})
    bus.hub.notify("h1", {"n": 2})
    wait_until(lambda: len(seen) == 2)


def test_close_stops_the_listener_promptly(bus: BusPair) -> None:
    bus.start()
    rec = Recorder()
    client = bus.client()
    client.listen("h1", rec.on_message, rec.on_reconnect)
    wait_until(lambda: rec.reconnects == 1)
    t0 = time.monotonic()
    client.close()
    assert time.monotonic() - t0 < 1
    bus.hub.notify("h1", {"late": True})
    time.sleep(0.1)
    assert rec.messages == []
    with pytest.raises(BusUnavailable):
        client.call("x", {})


# ---------------------------------------------------------------- hub details
def test_second_hub_on_a_live_socket_is_refused(short_dir: Path) -> None:
    path = str(short_dir / "bus.sock")
    first = LocalHub(path)
    first.start(echo)
    try:
        with pytest.raises(BusError, match="another running kaon server"):
            LocalHub(path).start(echo)
        assert SocketAgentBus(path).call("still", {})["method"] == "still"
    finally:
        first.close()
    assert not Path(path).exists()


def test_stale_socket_file_is_replaced(short_dir: Path) -> None:
    import socket

    path = str(short_dir / "bus.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)  # a socket file nobody listens on, as a killed server leaves it
    dead.close()
    hub = LocalHub(path)
    hub.start(echo)
    try:
        assert SocketAgentBus(path).call("x", {})["method"] == "x"
    finally:
        hub.close()


def test_start_twice_is_an_error() -> None:
    hub = LocalHub()
    hub.start(echo)
    try:
        with pytest.raises(BusError, match="already started"):
            hub.start(echo)
    finally:
        hub.close()


# ---------------------------------------------------------------- factories
def test_factories_share_the_process_hub(short_dir: Path) -> None:
    state = str(short_dir)
    server = server_bus("", state)
    try:
        assert server_bus("", state) is server
        server.start(echo)
        client = agent_bus("", state)
        assert isinstance(client, InProcessAgentBus)
        assert client.call("x", {"a": 1})["payload"] == {"a": 1}
        remote = agent_bus(f"unix://{short_dir}/bus.sock", "/nonexistent")
        assert isinstance(remote, SocketAgentBus)
        assert remote.call("y", {})["method"] == "y"
        client.close()
    finally:
        server.close()
    assert current_hub(state) is None
    # No hub in this process now: the agent side falls back to the socket.
    assert isinstance(agent_bus("", state), SocketAgentBus)
    assert server_bus("", state) is not server
    server_bus("", state).close()


def test_factory_rejects_unknown_transports(short_dir: Path) -> None:
    with pytest.raises(ValueError, match="unsupported transport_url"):
        agent_bus("kafka://broker:9092", str(short_dir))
    with pytest.raises(ValueError, match="absolute"):
        agent_bus("unix://relative/bus.sock", str(short_dir))


def test_rabbit_transport_url_parsing() -> None:
    from kaon.bus.rabbit import amqp_urls

    assert amqp_urls("rabbit://u:p@h1:5672/") == ["amqp://u:p@h1:5672//"]
    assert amqp_urls("rabbit://u:p@h1:5672,v:q@h2:5673/kaon") == [
        "amqp://u:p@h1:5672/kaon",
        "amqp://v:q@h2:5673/kaon",
    ]
    assert amqp_urls("rabbit://u:p@h1") == ["amqp://u:p@h1:5672//"]
    with pytest.raises(ValueError):
        amqp_urls("rabbit:///vhost")
