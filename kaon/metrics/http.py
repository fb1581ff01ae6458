"""The server's metrics middleware: the outermost ASGI layer.

Per request it records, under the route *template* (``/v2.0/ports/{id}``,
never the id itself, so the number of series stays bounded) and status:
the time until the response ended, and the database time the request's
statements took (kaon.metrics.dbtime). ``GET /metrics`` is answered here,
before authentication, as Prometheus exporters are: it shows counts and
timings, no resource. Paths no route matched are counted under ``other``.

Cost on the request path: one ``perf_counter`` pair, a wrapped ``send``, a
context variable, and two histogram observations on cached label children
(about 3 µs in all, measured in docs/metrics.md).
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kaon.metrics import dbtime
from kaon.metrics.dbtime import ACCOUNT
from kaon.metrics.registry import REGISTRY, REQUEST_DB_SECONDS, REQUEST_SECONDS
from kaon.metrics.state import StateCollector

METRICS_PATH = "/metrics"
UNMATCHED = "other"


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``other`` when no route matched.

    Starlette 1.x names the matched route in the scope (``scope["route"]``;
    under a mount, the innermost one, with the mount's prefix in
    ``root_path``). A mount whose own routes did not match counts as
    unmatched. Without ``scope["route"]`` (older Starlette), each path
    parameter's value is replaced by ``{name}``."""
    route = scope.get("route")
    if route is not None:
        template = getattr(route, "path", None)
        if isinstance(route, Mount) or not isinstance(template, str):
            return UNMATCHED
        return str(scope.get("root_path", "")) + template
    params = scope.get("path_params")
    if params is None:
        return UNMATCHED
    path: str = scope["path"]
    if not params:
        return path
    parts = path.split("/")
    names = {str(v): k for k, v in params.items()}
    return "/".join(f"{{{names[p]}}}" if p in names else p for p in parts)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, state_registry: CollectorRegistry | None = None) -> None:
        self.app = app
        self.state_registry = state_registry
        self._children: dict[tuple[str, str, str], Any] = {}
        self._db_children: dict[tuple[str, str], Any] = {}

    def __getattr__(self, name: str) -> Any:  # app.state and friends of the wrapped app
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == METRICS_PATH and scope["method"] == "GET":
            await self._expose(send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        account = [0.0]
        token = ACCOUNT.set(account)
        try:
            await self.app(scope, receive, send_status)
        finally:
            ACCOUNT.reset(token)
            self._observe(scope, status[0], time.perf_counter() - started, account[0])

    def _observe(self, scope: Scope, status: int, seconds: float, db_seconds: float) -> None:
        method: str = scope["method"]
        route = route_template(scope)
        key = (method, route, str(status))
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = REQUEST_SECONDS.labels(*key)
        child.observe(seconds)
        db_key = (method, route)
        db_child = self._db_children.get(db_key)
        if db_child is None:
            db_child = self._db_children[db_key] = REQUEST_DB_SECONDS.labels(*db_key)
        db_child.observe(db_seconds)

    def _render(self) -> bytes:
        body = generate_latest(REGISTRY)
        if self.state_registry is not None:
            body += generate_latest(self.state_registry)
        return body

    async def _expose(self, send: Send) -> None:
        # The state collector reads the database: off the event loop.
        body = await run_in_threadpool(self._render)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def with_metrics(app: ASGIApp, engine: Engine) -> MetricsMiddleware:
    """``app`` measured, its statements on ``engine`` timed, and ``GET /metrics``
    answered with the process's metrics and the state read from ``engine``."""
    dbtime.instrument(engine)
    state = CollectorRegistry(auto_describe=True)
    state.register(StateCollector(engine))
    return MetricsMiddleware(app, state)
