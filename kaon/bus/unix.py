"""The local hub over a Unix socket: for agents in other processes (the lab).

Frames are JSON objects, one per line (orjson never writes a raw newline).
A connection does one of two things:

* one or more calls: ``{"op": "call", "method", "payload"}`` answered by
  ``{"op": "reply", "ok": true, "payload"}`` or ``{"op": "reply", "ok":
  false, "error", "kind": "error"|"unavailable"}``, in order;
* one listen: ``{"op": "listen", "host"}``, answered by ``{"op":
  "listening"}`` once subscribed, then ``{"op": "message", "message"}``
  frames until either side closes.

The client opens one connection per call: calls from several agent threads
never queue behind each other, a dead hub shows up as a refused connect
(BusUnavailable) at once, and a Unix connect costs microseconds.  A listener
sees the hub go away as end-of-file and reconnects; nothing is lost that its
``on_reconnect`` fetch does not recover.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from typing import Any, Protocol

import orjson

from kaon.bus.base import (
    DEFAULT_TIMEOUT,
    SOCKET_NAME,
    BusError,
    BusTimeout,
    BusUnavailable,
    MessageCallback,
    ReconnectCallback,
    error_text,
)
from kaon.bus.retry import ListenerThread, call_safely

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
# A listening agent that stops reading for this long is dropped (it will
# reconnect and resync) rather than let its hints pile up in the hub.
SEND_TIMEOUT = 10.0
# How often an idle listen connection checks that its agent is still there.
PEER_CHECK = 5.0
_MAX_SUN_PATH = 107


class _Hub(Protocol):
    def submit(self, method: str, payload: dict[str, Any]) -> Future[dict[str, Any]]: ...

    def subscribe(self, host: str, sink: Callable[[bytes | None], None]) -> int: ...

    def unsubscribe(self, token: int) -> None: ...


def socket_path_of(transport_url: str, state_path: str) -> str:
    """``unix:///abs/path`` -> ``/abs/path``; ``unix://`` -> ``<state_path>/bus.sock``."""
    rest = transport_url.strip().partition("://")[2]
    if not rest:
        return os.path.join(state_path, SOCKET_NAME)
    if not rest.startswith("/"):
        raise ValueError(f"transport_url {transport_url!r}: the socket path must be absolute")
    return rest


def _frame(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


class UnixListener:
    """Serves a hub on a Unix socket; started by the hub, closed with it."""

    def __init__(self, path: str, hub: _Hub) -> None:
        if len(os.fsencode(path)) > _MAX_SUN_PATH:
            raise BusError(f"socket path too long for a Unix socket ({len(path)} bytes): {path}")
        self.path = path
        self._hub = hub
        self._lock = threading.Lock()
        self._peers: set[socket.socket] = set()
        self._closed = False
        self._sock = self._bind(path)
        self._inode = os.stat(path).st_ino
        self._thread = threading.Thread(target=self._accept_loop, name="kaon-bus-unix", daemon=True)
        self._thread.start()

    @staticmethod
    def _bind(path: str) -> socket.socket:
        if os.path.exists(path):
            # A socket file nobody answers on is left over from a hub that
            # died; one that answers belongs to a live server: don't steal it.
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.settimeout(1.0)
                probe.connect(path)
            except OSError:
                os.unlink(path)
            else:
                raise BusError(f"{path} is served by another running kaon server")
            finally:
                probe.close()
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)
            os.chmod(path, 0o600)  # agents run as root or as the server's user
            sock.listen(64)
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        with self._lock:
            self._closed = True
            peers = list(self._peers)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._thread.join(5.0)
        self._sock.close()
        for peer in peers:
            with contextlib.suppress(OSError):
                peer.shutdown(socket.SHUT_RDWR)
        # Only remove the file if it is still ours: a new hub may have taken the path.
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self._inode:
                os.unlink(self.path)

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                if self._closed:
                    return
                log.exception("bus: accept on %s failed", self.path)
                time.sleep(0.1)
                continue
            with self._lock:
                if self._closed:
                    conn.close()
                    return
                self._peers.add(conn)
            threading.Thread(target=self._serve_peer, args=(conn,), name="kaon-bus-peer", daemon=True).start()

    def _serve_peer(self, conn: socket.socket) -> None:
        try:
            reader = conn.makefile("rb")
            for line in reader:
                frame = orjson.loads(line)
                if frame.get("op") == "listen":
                    self._stream(conn, str(frame["host"]))
                    return
                conn.sendall(_frame(self._answer(frame)))
        except (OSError, ValueError, KeyError) as e:
            log.debug("bus: peer on %s dropped: %s", self.path, e)
        finally:
            with self._lock:
                self._peers.discard(conn)
            conn.close()

    def _answer(self, frame: dict[str, Any]) -> dict[str, Any]:
        if frame.get("op") != "call":
            return {"op": "reply", "ok": False, "kind": "error", "error": f"unknown op {frame.get('op')!r}"}
        try:
            future = self._hub.submit(str(frame["method"]), frame.get("payload") or {})
            return {"op": "reply", "ok": True, "payload": future.result()}
        except (BusUnavailable, CancelledError) as e:
            return {"op": "reply", "ok": False, "kind": "unavailable", "error": str(e) or "hub stopped"}
        except Exception as e:
            return {"op": "reply", "ok": False, "kind": "error", "error": error_text(e)}

    def _stream(self, conn: socket.socket, host: str) -> None:
        inbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        token = self._hub.subscribe(host, inbox.put)
        try:
            conn.settimeout(SEND_TIMEOUT)
            conn.sendall(_frame({"op": "listening"}))
            while True:
                try:
                    item = inbox.get(timeout=PEER_CHECK)
                except queue.Empty:
                    if _peer_gone(conn):
                        return
                    continue
                if item is None:  # the hub is closing
                    return
                conn.sendall(b'{"op":"message","message":' + item + b"}\n")
        finally:
            self._hub.unsubscribe(token)


def _peer_gone(conn: socket.socket) -> bool:
    """True when the other end closed (readable and at end-of-file)."""
    readable, _, _ = select.select([conn], [], [], 0)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class SocketAgentBus:
    """An AgentBus on a local hub's Unix socket."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._listeners: list[ListenerThread] = []
        self._socks: set[socket.socket] = set()
        self._closed = False

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(self.path)
        except OSError as e:
            sock.close()
            raise BusUnavailable(f"no kaon bus at {self.path}: {e.strerror or e}") from None
        return sock

    def call(self, method: str, payload: dict[str, Any], timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        if self._closed:
            raise BusUnavailable("the agent bus is closed")
        deadline = time.monotonic() + timeout
        try:
            request = _frame({"op": "call", "method": method, "payload": payload})
        except TypeError as e:
            raise BusError(f"{method} payload is not JSON: {e}") from e
        with self._connect(min(timeout, CONNECT_TIMEOUT)) as sock:
            try:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                sock.sendall(request)
                line = _read_line(sock, deadline)
            except TimeoutError:
                raise BusTimeout(f"no reply to {method} within {timeout:g}s") from None
            except OSError as e:
                raise BusUnavailable(f"kaon bus at {self.path}: {e}") from None
        if not line:
            raise BusUnavailable(f"the kaon bus at {self.path} closed the connection")
        reply = orjson.loads(line)
        if reply.get("ok"):
            answer: dict[str, Any] = reply["payload"]  # the hub checks that handlers return dicts
            return answer
        if reply.get("kind") == "unavailable":
            raise BusUnavailable(reply.get("error", ""))
        raise BusError(reply.get("error", "unknown error"))

    def listen(
        self,
        host: str,
        on_message: MessageCallback,
        on_reconnect: ReconnectCallback | None = None,
    ) -> None:
        def session(connected: Callable[[], None]) -> None:
            sock = self._connect(CONNECT_TIMEOUT)
            with self._lock:
                if self._closed:  # close() shuts down only the sockets it sees
                    sock.close()
                    return
                self._socks.add(sock)
            try:
                sock.sendall(_frame({"op": "listen", "host": host}))
                reader = sock.makefile("rb")
                ack = reader.readline()
                if not ack or orjson.loads(ack).get("op") != "listening":
                    raise BusUnavailable(f"the kaon bus at {self.path} refused to subscribe")
                sock.settimeout(None)
                connected()
                for line in reader:
                    frame = orjson.loads(line)
                    if frame.get("op") == "message":
                        call_safely(f"on_message for {host}", on_message, frame["message"])
                if not listener.stopping:
                    raise BusUnavailable(f"the kaon bus at {self.path} went away")
            finally:
                with self._lock:
                    self._socks.discard(sock)
                sock.close()

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
            socks = list(self._socks)
        for listener in listeners:
            listener.stop()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read
        for listener in listeners:
            listener.join()


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    """One frame, read within ``deadline`` as a whole (a timeout per recv would not be)."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        chunks.append(chunk)
        if b"\n" in chunk:
            return b"".join(chunks).split(b"\n", 1)[0]
