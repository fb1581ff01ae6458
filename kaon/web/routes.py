"""The page's routes, behind authentication (kaon.web.gate puts the session
cookie into the token header first).

* ``GET /ui/``                 the page (static index.html; the data comes by script)
* ``GET /ui/api/topology``     the view as JSON (kaon.web.topology)
* ``GET /ui/api/events``       Server-Sent Events: a ``topology`` event with the
                               whole view whenever its revision changes
* ``POST /ui/session``         turn the ``X-Auth-Token`` the login script got from
                               the identity service into the session cookie
* ``POST /ui/api/trace``       the port's trace form: ``kaon trace`` (kaon.trace) for a JSON
                               body ``{from_port, to, protocol, port}``; admins only (``get_trace``)

How fast a change shows: the stream looks at this process's write counter
(kaon.web.changes) every ``TICK`` seconds and re-reads the view when it moved,
and re-reads anyway every ``POLL`` seconds for what happens elsewhere (other
API workers, agents reporting ports ACTIVE). A stream ends after
``STREAM_SECONDS``; the browser's EventSource reconnects by itself, and the
reconnection authenticates again, so a stream never outlives its token by long.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from kaon import errors
from kaon.api.controller import context_of
from kaon.api.responses import json_response
from kaon.core.access import policy
from kaon.web.changes import ChangeCounter
from kaon.web.gate import FROM_COOKIE, PREFIX, STATIC, session_cookie
from kaon.web.topology import read_topology

TICK = 0.05
POLL = 1.0
KEEPALIVE = 15.0
STREAM_SECONDS = 300.0

SessionNeedsHeader = errors.define(
    "SessionNeedsHeader", errors.BadRequest,
    "A session is made from an X-Auth-Token header (the token the identity service issued).")


class WebRoutes:
    def __init__(self, services: Any, changes: ChangeCounter) -> None:
        self.services = services
        self.changes = changes

    def routes(self) -> list[Route]:
        return [
            Route(PREFIX, self.to_page),
            Route(f"{PREFIX}/", self.page),
            Route(f"{PREFIX}/api/topology", self.topology),
            Route(f"{PREFIX}/api/events", self.events),
            Route(f"{PREFIX}/session", self.session, methods=["POST"]),
            Route(f"{PREFIX}/api/trace", self.trace, methods=["POST"]),
        ]

    async def to_page(self, request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    async def page(self, request: Request) -> Response:
        context_of(request)  # authenticated (the gate sent anybody else to the login page)
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})

    async def topology(self, request: Request) -> Response:
        view = await run_in_threadpool(read_topology, self.services, context_of(request))
        return json_response(view)

    async def events(self, request: Request) -> Response:
        ctx = context_of(request)
        return StreamingResponse(self._stream(ctx), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    async def _stream(self, ctx: Any) -> AsyncIterator[bytes]:
        ends = time.monotonic() + STREAM_SECONDS
        sent: str | None = None
        quiet_since = time.monotonic()
        while time.monotonic() < ends:
            seen = self.changes.value
            view = await run_in_threadpool(read_topology, self.services, ctx)
            if view["revision"] != sent:
                sent = view["revision"]
                quiet_since = time.monotonic()
                yield b"event: topology\ndata: " + orjson.dumps(view) + b"\n\n"
            elif time.monotonic() - quiet_since >= KEEPALIVE:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"
            next_read = time.monotonic() + POLL
            while time.monotonic() < next_read and self.changes.value == seen:
                await asyncio.sleep(TICK)

    async def session(self, request: Request) -> Response:
        context_of(request)  # the token was valid
        token = request.headers.get("x-auth-token")
        if request.scope.get(FROM_COOKIE) or not token:
            raise SessionNeedsHeader()
        response = json_response({"session": {"path": PREFIX + "/"}})
        session_cookie(response, token, secure=request.url.scheme == "https")
        return response

    async def trace(self, request: Request) -> Response:
        from kaon.trace.model import TraceError, query_from
        from kaon.trace.source import trace_in

        policy.current().enforce(context_of(request), "get_trace", {})
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise TraceError("the trace form's body is not JSON") from None
        if not isinstance(body, dict):
            raise TraceError("the trace form's body is not a JSON object")
        result = await run_in_threadpool(trace_in, self.services.engine, query_from(body))
        return json_response({"trace": {**result.as_dict(), "lines": result.lines()}})
