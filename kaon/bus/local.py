"""The local bus: an in-process hub, reachable over a Unix socket too.

``LocalHub`` is a ServerBus.  Agents in the same process use
``InProcessAgentBus``; agents in other processes on the machine (the lab)
use ``SocketAgentBus`` (kaon/bus/unix.py) on ``<state_path>/bus.sock``, which
the hub serves once started.

Every payload and message crosses the hub as JSON, in process too: the
caller gets a copy, never an object the server still holds, and a payload
that RabbitMQ could not carry fails here already.

Why a module-level registry: ``server_bus("")`` and ``agent_bus("")`` are
called by the server and the agents, which are set up independently (the
all-in-one process starts both from configuration alone), and "is there a
hub for this state_path in this process?" is exactly what decides between
the in-process and the socket client.  Tests that want no shared state build
a ``LocalHub`` and an ``InProcessAgentBus.of(hub)`` themselves.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import orjson

from kaon.bus.base import (
    DEFAULT_TIMEOUT,
    SOCKET_NAME,
    BusError,
    BusTimeout,
    BusUnavailable,
    Handler,
    MessageCallback,
    ReconnectCallback,
    error_text,
)
from kaon.bus.retry import ListenerThread, call_safely
from kaon.bus.unix import SocketAgentBus, UnixListener, socket_path_of

log = logging.getLogger(__name__)

Sink = Callable[[bytes | None], None]
"""Receives one JSON-encoded message; ``None`` when the hub closes."""

DEFAULT_WORKERS = 8


def _copy(obj: Any) -> Any:
    return orjson.loads(orjson.dumps(obj))


class LocalHub:
    """The in-process ServerBus; also what the Unix-socket listener serves."""

    def __init__(self, socket_path: str | None = None, workers: int = DEFAULT_WORKERS) -> None:
        self.socket_path = socket_path
        self._workers = workers
        self._lock = threading.Lock()
        self._handler: Handler | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._listener: UnixListener | None = None
        self._sinks: dict[int, tuple[str, Sink]] = {}
        self._tokens = itertools.count(1)
        self.closed = False

    # ------------------------------------------------------------ ServerBus
    def start(self, handler: Handler) -> None:
        with self._lock:
            if self.closed:
                raise BusError("the local hub is closed")
            if self._handler is not None:
                raise BusError("the local hub is already started")
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="kaon-bus-hub")
            self._handler = handler
        if self.socket_path:
            try:
                self._listener = UnixListener(self.socket_path, self)
            except BaseException:
                self.close()
                raise

    def notify(self, host: str, message: dict[str, Any]) -> None:
        data = orjson.dumps(message)  # a non-JSON message is a bug: raise
        with self._lock:
            sinks = [sink for h, sink in self._sinks.values() if h == host]
        for sink in sinks:
            sink(data)

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            sinks = [sink for _, sink in self._sinks.values()]
            self._sinks.clear()
            executor, self._executor = self._executor, None
        if self._listener is not None:
            self._listener.close()
        for sink in sinks:
            sink(None)
        if executor is not None:
            # Requests still queued are cancelled (their callers see
            # BusUnavailable); running handlers finish in the background.
            executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------- client access
    def submit(self, method: str, payload: dict[str, Any]) -> Future[dict[str, Any]]:
        """Run the handler on a worker thread; the future holds a copy of its reply."""
        try:
            request = _copy(payload)
        except TypeError as e:
            raise BusError(f"{method} payload is not JSON: {e}") from e
        with self._lock:
            executor, handler = self._executor, self._handler
            if self.closed or executor is None or handler is None:
                raise BusUnavailable("the local hub is not serving (server not started or stopped)")
            return executor.submit(self._run, handler, method, request)

    @staticmethod
    def _run(handler: Handler, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        reply = handler(method, payload)
        if not isinstance(reply, dict):
            raise TypeError(f"handler for {method!r} returned {type(reply).__name__}, not a dict")
        copied: dict[str, Any] = _copy(reply)
        return copied

    def subscribe(self, host: str, sink: Sink) -> int:
        """Deliver ``host``'s messages to ``sink`` (which must not block); returns a token."""
        with self._lock:
            if self.closed:
                raise BusUnavailable("the local hub is closed")
            token = next(self._tokens)
            self._sinks[token] = (host, sink)
            return token

    def unsubscribe(self, token: int) -> None:
        with self._lock:
            self._sinks.pop(token, None)


def wait_reply(future: Future[dict[str, Any]], timeout: float) -> dict[str, Any]:
    """A hub future's result as the AgentBus contract wants it."""
    try:
        return future.result(timeout)
    except FutureTimeout:
        raise BusTimeout(f"no reply within {timeout:g}s") from None
    except CancelledError:
        raise BusUnavailable("the local hub stopped before serving the request") from None
    except Exception as e:
        raise BusError(error_text(e)) from e


class InProcessAgentBus:
    """An AgentBus talking to a hub of this process.

    ``resolve`` names the hub to use right now (None: there is none), so a
    listener survives the hub being closed and replaced, as a socket client
    survives a server restart.
    """

    def __init__(self, resolve: Callable[[], LocalHub | None]) -> None:
        self._resolve = resolve
        self._lock = threading.Lock()
        self._listeners: list[ListenerThread] = []
        self._queues: set[queue.SimpleQueue[bytes | None]] = set()
        self._closed = False

    @classmethod
    def of(cls, hub: LocalHub) -> InProcessAgentBus:
        return cls(lambda: None if hub.closed else hub)

    def _hub(self) -> LocalHub:
        hub = self._resolve()
        if hub is None or hub.closed:
            raise BusUnavailable("no local hub in this process")
        return hub

    def call(self, method: str, payload: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        if self._closed:
            raise BusUnavailable("the agent bus is closed")
        return wait_reply(self._hub().submit(method, payload), timeout)

    def listen(
        self,
        host: str,
        on_message: MessageCallback,
        on_reconnect: ReconnectCallback | None = None,
    ) -> None:
        def session(connected: Callable[[], None]) -> None:
            hub = self._hub()
            inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
            token = hub.subscribe(host, inbox.put)
            with self._lock:
                # close() wakes the inboxes it sees under this lock; one added
                # after it ran would never be woken, so don't block on it.
                if self._closed:
                    hub.unsubscribe(token)
                    return
                self._queues.add(inbox)
            try:
                connected()
                while (item := inbox.get()) is not None:
                    call_safely(f"on_message for {host}", on_message, orjson.loads(item))
                if not listener.stopping:
                    raise BusUnavailable("the local hub closed")
            finally:
                hub.unsubscribe(token)
                with self._lock:
                    self._queues.discard(inbox)

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
            queues = list(self._queues)
        for listener in listeners:
            listener.stop()
        for inbox in queues:
            inbox.put(None)  # wakes the session blocked on its inbox
        for listener in listeners:
            listener.join()


# ----------------------------------------------------------------- factories
_registry_lock = threading.Lock()
_hubs: dict[str, LocalHub] = {}


def _key(state_path: str) -> str:
    return os.path.realpath(state_path or ".")


def current_hub(state_path: str) -> LocalHub | None:
    """The open hub this process runs for ``state_path``, if any."""
    with _registry_lock:
        hub = _hubs.get(_key(state_path))
    return None if hub is None or hub.closed else hub


def server_bus(transport_url: str, state_path: str) -> LocalHub:
    """The process-wide hub of ``state_path`` (a new one if none is open)."""
    if transport_url.strip():
        # unix:///path/bus.sock: a hub serving that socket, registered under
        # the directory it lives in, like <state_path>/bus.sock.
        path = socket_path_of(transport_url, state_path)
        key = _key(os.path.dirname(path))
    else:
        path = os.path.join(state_path, SOCKET_NAME)
        key = _key(state_path)
    with _registry_lock:
        hub = _hubs.get(key)
        if hub is None or hub.closed:
            hub = _hubs[key] = LocalHub(path)
        return hub


def agent_bus(transport_url: str, state_path: str) -> InProcessAgentBus | SocketAgentBus:
    """In-process client when this process runs the hub of ``state_path``, else a socket client.

    An agent created before its in-process server starts gets the socket
    client, which works as well, only a little slower.
    """
    if transport_url.strip():
        return SocketAgentBus(socket_path_of(transport_url, state_path))
    key = _key(state_path)
    if current_hub(state_path) is not None:
        return InProcessAgentBus(lambda: current_hub(key))
    return SocketAgentBus(os.path.join(state_path, SOCKET_NAME))
