"""The server's HTTP connections: a request-head timeout and a cap on open
connections per client address, on top of uvicorn's httptools protocol.

uvicorn closes an idle keep-alive connection (``timeout_keep_alive``, set
from Neutron's ``client_socket_timeout``) but nothing closes a connection
whose request head never completes: a client that opens sockets and sends
half a head (or nothing) holds them for ever. Here a timer runs from the
moment a connection opens, and from the first byte of each later head
(between requests the keep-alive timeout applies); it is cancelled when the
head is complete, and when it fires the connection is closed. A connection
that arrives while its address already holds ``max_connections_per_client``
is closed at once.

The counts live in the protocol factory, one per server (uvicorn makes one
protocol object per connection and calls the factory for each).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

LOG = logging.getLogger("kaon.api")


def guarded_protocol(head_timeout: float, per_client: int) -> type[HttpToolsProtocol]:
    """An httptools protocol class with these limits (0 turns a limit off)."""
    open_by_host: Counter[str] = Counter()
    refused_hosts: set[str] = set()

    class GuardedHttpProtocol(HttpToolsProtocol):
        _head_timer: asyncio.TimerHandle | None = None
        _host: str | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            host = self.client[0] if self.client else None
            if per_client and host is not None:
                if open_by_host[host] >= per_client:
                    if host not in refused_hosts:  # log once per address until it falls below
                        LOG.warning("%s holds %d connections (max_connections_per_client): refusing more",
                                    host, per_client)
                        refused_hosts.add(host)
                    transport.close()
                    return
                open_by_host[host] += 1
                self._host = host
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            if self._host is not None:
                open_by_host[self._host] -= 1
                if open_by_host[self._host] <= 0:
                    del open_by_host[self._host]
                    refused_hosts.discard(self._host)
                self._host = None
            super().connection_lost(exc)

        def on_headers_complete(self) -> None:
            self._cancel_head_timer()
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            # Between requests the keep-alive timer covers silence; the
            # first byte of the next head starts this one.
            if self.cycle is None or self.cycle.response_complete:
                self._arm_head_timer()
            super().data_received(data)

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


def uvicorn_options(limits: Any) -> dict[str, Any]:
    """uvicorn.run keywords for :class:`kaon.api.limits.HttpLimits`."""
    idle = limits.client_socket_timeout or 10**9  # 0: Neutron's "wait for ever"
    return {"http": guarded_protocol(limits.request_head_timeout, limits.max_connections_per_client),
            "timeout_keep_alive": idle}

