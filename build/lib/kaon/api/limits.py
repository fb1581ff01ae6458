"""Limits at the HTTP edge, applied before a route (or authentication) runs.

- Request bodies over ``[oslo_middleware] max_request_body_size`` (Neutron's
  and Keystone's option, default 114,688 bytes) get 413 before they are
  read: a Content-Length over the limit is refused at once, and a chunked
  body is counted as it arrives and refused when it passes the limit. The
  connection is closed after a 413 (the rest of the body is never read).
- A NUL character in the path or the query string gets 400: PostgreSQL
  cannot hold one in a text value, and no Neutron identifier contains one.
- An unhandled error is answered with a 500 in the right format *without*
  re-raising it to the server: uvicorn drops the keep-alive connection of a
  request whose application raised, so a client's next request would fail.

Errors are in Neutron's format, and in Keystone's under ``/identity``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from kaon import errors
from kaon.config import ConfigError, parse_int

LOG = logging.getLogger("kaon.api")

DEFAULT_MAX_BODY = 114688  # oslo.middleware's default

HTTPRequestEntityTooLarge = errors.define("HTTPRequestEntityTooLarge", errors.KaonError, "Request is too large.")
HTTPRequestEntityTooLarge.status = 413
HeadTooLarge = errors.define("HTTPRequestHeaderFieldsTooLarge", errors.KaonError,
                             "A request header line is too long (max_header_line), or the request head is.")
HeadTooLarge.status = 431
NulInRequest = errors.define("HTTPBadRequest", errors.BadRequest,
                             "The request contains a NUL character, which no attribute may hold.")

IDENTITY_PREFIX = "/identity"
_TITLES = {400: "Bad Request", 413: "Request Entity Too Large", 431: "Request Header Fields Too Large",
           500: "Internal Server Error"}


@dataclass(frozen=True)
class HttpLimits:
    """The server's HTTP limits; names follow Neutron where it has one."""

    max_request_body_size: int = DEFAULT_MAX_BODY  # [oslo_middleware]
    client_socket_timeout: int = 900  # [DEFAULT], Neutron's: idle keep-alive seconds, 0 = forever
    request_head_timeout: int = 10  # [DEFAULT], kaon's: seconds to send a request head
    max_connections_per_client: int = 128  # [DEFAULT], kaon's: open connections per address, 0 = no cap
    max_header_line: int = 16384  # [DEFAULT], Neutron's: longest request head line, 0 = no limit

    @classmethod
    def from_config(cls, cfg: Any) -> HttpLimits:
        def get(section: str, option: str, default: int) -> int:
            value = cfg.get_typed(section, option, parse_int, default)
            if value < 0:
                raise ConfigError(f"{value} is out of range (0 through inf)", section=section, option=option)
            return int(value)

        return cls(
            max_request_body_size=get("oslo_middleware", "max_request_body_size", DEFAULT_MAX_BODY),
            client_socket_timeout=get("DEFAULT", "client_socket_timeout", cls.client_socket_timeout),
            request_head_timeout=get("DEFAULT", "request_head_timeout", cls.request_head_timeout),
            max_connections_per_client=get("DEFAULT", "max_connections_per_client",
                                           cls.max_connections_per_client),
            max_header_line=get("DEFAULT", "max_header_line", cls.max_header_line),
        )


def error_body(path: str, exc: errors.KaonError) -> bytes:
    """``exc`` as Neutron renders it, or as Keystone does under /identity."""
    if path.startswith(IDENTITY_PREFIX):
        body: dict[str, Any] = {"error": {"code": exc.status, "title": _TITLES.get(exc.status, "Error"),
                                          "message": exc.msg}}
    else:
        body = {"NeutronError": {"type": exc.type, "message": exc.msg, "detail": ""}}
    return orjson.dumps(body)


async def send_error(send: Any, path: str, exc: errors.KaonError, close: bool = False) -> None:
    body = error_body(path, exc)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """The outermost ASGI layer: body size, NUL characters (see the module)."""

    def __init__(self, app: Any, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    def __getattr__(self, name: str) -> Any:  # app.state and friends of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if "\x00" in path or b"%00" in scope.get("query_string", b""):
            await send_error(send, path, NulInRequest())
            return
        length = _content_length(scope)
        if length is not None and (length < 0 or length > self.max_body):
            await send_error(send, path, HTTPRequestEntityTooLarge(), close=True)
            return
        tripped = False
        received = 0

        async def counted_receive() -> Any:
            nonlocal received, tripped
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    tripped = True  # the route's error handler answers 413
                    raise HTTPRequestEntityTooLarge()
            return message

        async def closing_send(message: Any) -> None:
            if tripped and message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, counted_receive, closing_send)


def _content_length(scope: Any) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class CrashBarrier:
    """Answers an unhandled error with ``render(exc)`` and keeps the
    connection: placed inside Starlette's ServerErrorMiddleware (which would
    re-raise to the server). If the response had already started, there is
    nothing sane to send: the error goes on and the server closes."""

    def __init__(self, app: Any, render: Callable[[], errors.KaonError]) -> None:
        self.app = app
        self.render = render

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            LOG.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await send_error(send, scope.get("root_path", "") + scope["path"], self.render())
