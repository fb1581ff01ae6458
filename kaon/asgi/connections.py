"""The server's HTTP connections: a request-head timeout and a cap on open
connections per client address, on top of uvicorn's httptools protocol.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``, set
from Neutron's ``client_socket_timeout``) but nothing closes a connection
whose request head never completes: a client that opens sockets and sends
half a head (or nothing) holds them for ever. Here a timer runs from the
moment a connection opens, and from the first byte of each later head
(between requests the keep-alive timeout applies); it is cancelled when the
head is complete, and when it fires the connection is closed. When a
connection arrives while its address already holds
``max_connections_per_client``, the oldest of that address's connections
that is not serving a request (idle between requests, or never used) is
closed to make room: a client that leaks keep-alive connections (each
openstacksdk session keeps its own pool, idle up to ``client_socket_timeout``)
is not locked out by its own leftovers, and a flood still holds at most the
cap. Only when every one of them is serving a request is the new one refused. A head line longer than Neutron's ``max_header_line``
(httptools would buffer it until it ends), or a head longer than
``HEAD_LINES`` such lines, is answered 431 and the connection closed.

The counts live in the protocol factory, one per server (uvicorn makes one
protocol object per connection and calls the factory for each).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kaon.asgi.limits import HeadTooLarge, error_body

LOG = logging.getLogger("kaon.api")

# A whole head may hold this many lines of the longest length allowed.
HEAD_LINES = 8


def guarded_protocol(head_timeout: float, per_client: int,
                     max_header_line: int = 16384) -> type[HttpToolsProtocol]:
    """An httptools protocol class with these limits (0 turns a limit off)."""
    # Per address, its open connections oldest first (dicts keep insertion order).
    open_by_host: dict[str, dict[int, Any]] = {}
    refused_hosts: set[str] = set()
    max_head = HEAD_LINES * max_header_line

    class GuardedHttpProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _host: str | None = None
        _head_bytes = 0  # of the head being received
        _line_bytes = 0  # of its current, unfinished line
        _tail = b""  # its last bytes, to see a blank line split across packets

        # The signature of uvicorn's own override, which narrows asyncio's BaseTransport.
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else None
            if per_client and host is not None:
                held = open_by_host.setdefault(host, {})
                if len(held) >= per_client and not self._make_room(held):
                    if host not in refused_hosts:  # log once per address until it falls below
                        LOG.warning("%s holds %d connections serving requests (max_connections_per_client): "
                                    "refusing more", host, per_client)
                        refused_hosts.add(host)
                    transport.close()
                    return
                held[id(self)] = self
                self._host = host
            self._arm_head_timer()

        def _serving(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        @staticmethod
        def _make_room(held: dict[int, Any]) -> bool:
            """Close the oldest connection of ``held`` not serving a request; False if none."""
            for key, other in held.items():
                if not other._serving():
                    del held[key]
                    other._host = None  # counted out now; its connection_lost comes later
                    other._cancel_head_timer()
                    other.transport.close()
                    return True
            return False

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            if self._host is not None:
                held = open_by_host.get(self._host, {})
                held.pop(id(self), None)
                if not held:
                    open_by_host.pop(self._host, None)
                    refused_hosts.discard(self._host)
                self._host = None
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            self._cancel_head_timer()
            self._head_bytes = self._line_bytes = 0
            self._tail = b""
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            # Between requests the keep-alive timer covers silence; the
            # first byte of the next head starts this one.
            if self.cycle is None or self.cycle.response_complete:
                self._arm_head_timer()
                if max_header_line and self._head_too_large(data):
                    self._refuse_head()
                    return
            super().data_received(data)

        def _head_too_large(self, data: bytes) -> bool:
            """Whether ``data`` takes the head past a line of ``max_header_line``
            or a head of ``max_head`` bytes (httptools buffers a line until it
            ends, however long). Only the head's part of ``data`` counts: a
            body in the same packet may hold lines of any length."""
            end = (self._tail + data).find(b"\r\n\r\n")  # the blank line may span two packets
            head = data if end < 0 else data[:max(0, end - len(self._tail))]
            self._head_bytes += len(head)
            lines = head.split(b"\n")
            longest = max([self._line_bytes + len(lines[0]), *(len(line) for line in lines[1:])])
            self._line_bytes = self._line_bytes + len(head) if len(lines) == 1 else len(lines[-1])
            self._tail = (self._tail + head)[-3:]
            if end >= 0:  # complete: the parser takes over
                self._head_bytes = self._line_bytes = 0
                self._tail = b""
            return longest > max_header_line or self._head_bytes > max_head

        def _refuse_head(self) -> None:
            LOG.info("%s: request head over max_header_line (%d) or %d bytes: refused",
                     self.client[0] if self.client else "?", max_header_line, max_head)
            self._cancel_head_timer()
            body = error_body("/", HeadTooLarge())
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
            self.transport.close()

        def _arm_head_timer(self) -> None:
            if head_timeout and self._head_timer is None:
                self._head_timer = self.loop.call_later(head_timeout, self._head_timed_out)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedHttpProtocol


# Seconds the requests in flight get to finish when the server stops. Without
# a bound, uvicorn waits for every response to end, and the topology page's
# event stream (kaon.web.routes) only ends when the page is closed.
SHUTDOWN_GRACE = 10


def uvicorn_options(limits: Any) -> dict[str, Any]:
    """uvicorn.run keywords for :class:`kaon.asgi.limits.HttpLimits`."""
    idle = limits.client_socket_timeout or 10**9  # 0: Neutron's "wait for ever"
    return {"http": guarded_protocol(limits.request_head_timeout, limits.max_connections_per_client,
                                     limits.max_header_line),
            "timeout_keep_alive": idle, "timeout_graceful_shutdown": SHUTDOWN_GRACE}

