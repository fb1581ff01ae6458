"""The bus over RabbitMQ (kombu), for a server and agents on several machines.

Layout (docs/design/agents.md, "Bus"):

* requests: durable direct exchange ``kaon``, routing key ``server``, into
  the durable queue ``kaon.server`` that every server process consumes
  (competing consumers, prefetch = worker threads) and agents declare too,
  so that a request made before any server ran waits for one; each carries
  ``reply_to`` (the caller's exclusive auto-delete queue), a
  ``correlation_id`` and an expiration equal to the call's timeout, so a
  request nobody served in time is dropped instead of served late;
* replies: the default exchange, routing key = ``reply_to``;
* hints: durable topic exchange ``kaon.hints``, routing key ``host.<host>``,
  bound by one exclusive auto-delete queue per listening agent.

Threads and connections (kombu connections are not thread-safe):

* server: one consumer thread with its own connection, which is also the
  only thread that acks; handlers run on a small pool; replies and hints go
  through one publisher connection shared under a lock; hints are queued
  and sent by a thread of their own, so ``notify`` never waits for the
  broker (a compiler thread hinting a hundred hosts, or a broker that is down);
* agent: each listener thread has its own connection; calls take a
  connection from a small pool of idle ones (one per concurrent call), each
  with its own reply queue.

Publishing uses publisher confirms: a connection that died while idle (a
broker restart) fails on the first publish instead of swallowing it, and
the publish is retried once on a new connection (kaon/bus/rabbit_io.py).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue
from typing import Any

import orjson
from kombu.entity import Exchange, Queue
from kombu.message import Message
from kombu.messaging import Consumer

from kaon.bus.base import (
    DEFAULT_TIMEOUT,
    BusError,
    BusTimeout,
    BusUnavailable,
    Handler,
    MessageCallback,
    ReconnectCallback,
    error_text,
)
from kaon.bus.rabbit_io import (
    CONNECT_TIMEOUT,
    Publisher,
    amqp_urls,
    connect_any,
    discard,
    drain,
    interrupt,
    raw_socket,
)
from kaon.bus.retry import ListenerThread, call_safely

__all__ = ["RabbitAgentBus", "RabbitServerBus", "amqp_urls"]

log = logging.getLogger(__name__)

EXCHANGE = "kaon"
SERVER_KEY = "server"
SERVER_QUEUE = "kaon.server"
HINTS_EXCHANGE = "kaon.hints"

HEARTBEAT = 10  # seconds; consumers notice a silently dead broker in ~2 heartbeats
IDLE_TICK = 1.0  # drain timeout while idle: heartbeats and stop checks
BUSY_TICK = 0.02  # drain timeout while requests are in flight: acks are sent from this loop
DEFAULT_WORKERS = 4
MAX_PENDING_HINTS = 10000  # while the broker is unreachable; the oldest go first

_request_exchange = Exchange(EXCHANGE, "direct", durable=True)
_hints_exchange = Exchange(HINTS_EXCHANGE, "topic", durable=True)
_server_queue = Queue(SERVER_QUEUE, _request_exchange, routing_key=SERVER_KEY, durable=True)


# ---------------------------------------------------------------- server
class RabbitServerBus:
    """ServerBus: consumes ``kaon.server``, publishes replies and hints."""

    def __init__(self, transport_url: str, workers: int = DEFAULT_WORKERS) -> None:
        self._urls = amqp_urls(transport_url)
        self._workers = workers
        self._publisher = Publisher(self._urls, setup=lambda channel: _hints_exchange(channel).declare())
        self._handler: Handler | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._consumer: ListenerThread | None = None
        # Messages whose reply is out, for the consumer thread to ack (only
        # the thread that owns a connection may use it).
        self._done: SimpleQueue[Message] = SimpleQueue()
        self._in_flight = 0
        self._sock: socket.socket | None = None
        self._hints: collections.deque[tuple[str, bytes]] = collections.deque(maxlen=MAX_PENDING_HINTS)
        self._hints_ready = threading.Event()
        self._hint_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False

    def start(self, handler: Handler) -> None:
        if self._handler is not None:
            raise BusError("the server bus is already started")
        self._handler = handler
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="kaon-bus-server")
        self._consumer = ListenerThread("kaon-bus-server", self._session, None)
        self._consumer.start()

    def notify(self, host: str, message: dict[str, Any]) -> None:
        data = orjson.dumps(message)  # a message that is not JSON is a bug: raise here
        with self._lock:
            if self._closed:
                log.debug("bus: closed, hint for %s dropped", host)
                return
            if len(self._hints) == self._hints.maxlen:
                log.warning("bus: %d hints pending, dropping the oldest", len(self._hints))
            self._hints.append((host, data))
            if self._hint_thread is None:
                self._hint_thread = threading.Thread(target=self._send_hints, name="kaon-bus-hints", daemon=True)
                self._hint_thread.start()
        self._hints_ready.set()

    def _send_hints(self) -> None:
        failures = 0
        while True:
            self._hints_ready.wait()
            self._hints_ready.clear()
            while self._hints:
                host, data = self._hints.popleft()
                try:
                    self._publisher.publish(data, exchange=HINTS_EXCHANGE, routing_key=f"host.{host}")
                    failures = 0
                except BusError as e:
                    # Hints are hints: the agent converges at its next fetch
                    # (its listener's reconnect fetches too).  One warning per outage.
                    failures += 1
                    log.log(logging.WARNING if failures == 1 else logging.DEBUG,
                            "bus: hint for %s dropped: %s", host, e)
            if self._closed:
                return

    def close(self) -> None:
        with self._lock:
            self._closed = True
            hint_thread = self._hint_thread
        if self._consumer is not None:
            self._consumer.stop()
            interrupt(self._sock)
            self._consumer.join()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        if hint_thread is not None:
            self._hints_ready.set()  # sends what is queued, then ends
            hint_thread.join(5.0)
        self._publisher.close()

    def _session(self, connected: Callable[[], None]) -> None:
        assert self._consumer is not None
        conn = connect_any(self._urls, heartbeat=HEARTBEAT)
        try:
            channel = conn.channel()
            consumer = Consumer(
                channel, [_server_queue], callbacks=[self._on_request], accept=["json"],
                prefetch_count=self._workers, on_decode_error=self._on_bad_request,
            )
            consumer.consume()
            self._sock = raw_socket(conn)
            self._in_flight = 0
            connected()
            while not self._consumer.stopping:
                drain(conn, BUSY_TICK if self._in_flight else IDLE_TICK)
                self._ack_done(channel)
        finally:
            self._sock = None
            discard(conn)

    def _on_request(self, body: Any, message: Message) -> None:
        assert self._executor is not None
        self._in_flight += 1
        try:
            self._executor.submit(self._serve, body, message)
        except RuntimeError:  # the pool is shut down: closing
            self._in_flight -= 1

    def _on_bad_request(self, message: Message, exc: Exception) -> None:
        log.warning("bus: dropping a request that is not JSON: %s", exc)
        message.ack()

    def _ack_done(self, channel: Any) -> None:
        while True:
            try:
                message = self._done.get_nowait()
            except Empty:
                return
            self._in_flight = max(self._in_flight - 1, 0)
            # A message from before a reconnect was requeued by the broker
            # when its channel died; its delivery tag means nothing now.
            if message.channel is channel:
                message.ack()

    def _serve(self, body: Any, message: Message) -> None:
        try:
            reply_to = message.properties.get("reply_to")
            data = self._reply(body)
            if reply_to:
                self._publisher.publish(data, exchange="", routing_key=reply_to,
                                        correlation_id=message.properties.get("correlation_id"))
        except BusUnavailable as e:
            log.warning("bus: a reply was lost (its caller will time out): %s", e)
        finally:
            self._done.put(message)

    def _reply(self, body: Any) -> bytes:
        """The encoded reply: the handler's payload, or its exception as an error."""
        assert self._handler is not None
        try:
            if not isinstance(body, dict) or not isinstance(body.get("method"), str):
                raise ValueError("malformed request: want {'method': str, 'payload': dict}")
            payload = self._handler(body["method"], body.get("payload") or {})
            if not isinstance(payload, dict):
                raise TypeError(f"handler for {body['method']!r} returned {type(payload).__name__}, not a dict")
            return orjson.dumps({"ok": True, "payload": payload})
        except Exception as e:
            return orjson.dumps({"ok": False, "error": error_text(e)})


# ---------------------------------------------------------------- agent
class _Caller:
    """One connection with its own reply queue, for one call at a time."""

    def __init__(self, urls: list[str]) -> None:
        self._reply_queue = f"kaon.reply.{uuid.uuid4().hex}"
        self._expected: str | None = None
        self._reply: dict[str, Any] | None = None
        self._link = Publisher(urls, setup=self._setup)

    def _setup(self, channel: Any) -> None:
        # The agent declares the server queue too: on a fresh broker, a call
        # made before any server declared it would be dropped as unroutable.
        _server_queue(channel).declare()
        queue = Queue(self._reply_queue, exclusive=True, auto_delete=True, durable=False)
        Consumer(channel, [queue], callbacks=[self._on_reply], no_ack=True, accept=["json"]).consume()

    def _on_reply(self, body: Any, message: Message) -> None:
        # Replies to earlier calls that timed out arrive here too: ignore them.
        if message.properties.get("correlation_id") == self._expected and isinstance(body, dict):
            self._reply = body

    def call(self, method: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        try:
            request = orjson.dumps({"method": method, "payload": payload})
        except TypeError as e:
            raise BusError(f"{method} payload is not JSON: {e}") from e
        self._expected, self._reply = uuid.uuid4().hex, None
        # The expiration drops a request no server took in time (all down):
        # served late, it would only be answered to nobody.
        self._link.publish(
            request, exchange=EXCHANGE, routing_key=SERVER_KEY, reply_to=self._reply_queue,
            correlation_id=self._expected, expiration=timeout, confirm_timeout=min(timeout, CONNECT_TIMEOUT),
        )
        while self._reply is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BusTimeout(f"no reply to {method} within {timeout:g}s")
            with contextlib.suppress(TimeoutError):
                self._link.wait(remaining)
        if self._reply.get("ok"):
            return self._reply.get("payload") or {}
        raise BusError(str(self._reply.get("error", "unknown error")))

    def close(self) -> None:
        self._link.close()


class RabbitAgentBus:
    """AgentBus over RabbitMQ."""

    def __init__(self, transport_url: str) -> None:
        self._urls = amqp_urls(transport_url)
        self._lock = threading.Lock()
        self._idle: list[_Caller] = []
        self._listeners: list[ListenerThread] = []
        self._socks: set[socket.socket] = set()
        self._closed = False

    def call(self, method: str, payload: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        with self._lock:
            if self._closed:
                raise BusUnavailable("the agent bus is closed")
            caller = self._idle.pop() if self._idle else _Caller(self._urls)
        try:
            return caller.call(method, payload, timeout)
        finally:
            with self._lock:
                if self._closed:
                    caller.close()
                else:
                    self._idle.append(caller)

    def listen(
        self,
        host: str,
        on_message: MessageCallback,
        on_reconnect: ReconnectCallback | None = None,
    ) -> None:
        def on_hint(body: Any, message: Message) -> None:
            call_safely(f"on_message for {host}", on_message, body)

        def session(connected: Callable[[], None]) -> None:
            conn = connect_any(self._urls, heartbeat=HEARTBEAT)
            sock = raw_socket(conn)
            try:
                with self._lock:
                    if self._closed:  # close() interrupts only the sockets it sees
                        return
                    if sock is not None:
                        self._socks.add(sock)
                channel = conn.channel()
                queue = Queue(
                    f"kaon.hints.{host}.{uuid.uuid4().hex[:12]}", _hints_exchange,
                    routing_key=f"host.{host}", exclusive=True, auto_delete=True, durable=False,
                )
                Consumer(
                    channel, [queue], callbacks=[on_hint], no_ack=True, accept=["json"],
                    on_decode_error=lambda m, e: log.warning("bus: hint that is not JSON: %s", e),
                ).consume()
                connected()
                while not listener.stopping:
                    drain(conn, IDLE_TICK)
            finally:
                if sock is not None:
                    with self._lock:
                        self._socks.discard(sock)
                discard(conn)

        listener = ListenerThread(f"kaon-bus-listen-{host}", session, on_reconnect)
        with self._lock:
            if self._closed:
                raise BusUnavailable("the agent bus is closed")
            self._listeners.append(listener)
        listener.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            listeners, self._listeners = self._listeners, []
            idle, self._idle = self._idle, []
            socks = list(self._socks)
        for listener in listeners:
            listener.stop()
        for sock in socks:
            interrupt(sock)
        for listener in listeners:
            listener.join()
        for caller in idle:
            caller.close()
