"""The router actions: ``PUT /v2.0/routers/{id}/add_router_interface``,
``remove_router_interface`` (router) and ``add_extraroutes``,
``remove_extraroutes`` (extraroute-atomic). The plain routers and
floatingips collections go through the generic controller.

Interface actions take and return unwrapped bodies (``{"subnet_id": ...}``
-> the interface info); the extraroute actions take ``{"router":
{"routes": [...]}}`` and return the whole router.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon.api import extensions, offload
from kaon.api.context import Context
from kaon.api.controller import context_of, read_body, shape
from kaon.api.responses import json_response
from kaon.core.l3.router_interfaces import RouterInterfaces
from kaon.core.l3.routers import Routers
from kaon.db.engine import write_txn
from kaon.model import attrs
from kaon.model.router import ROUTER

extensions.add("router", "Neutron L3 Router",
               "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external "
               "networks via a NAT gateway.")
extensions.add("ext-gw-mode", "Neutron L3 Configurable external gateway mode",
               "Extension of the router abstraction for specifying whether SNAT should occur on the external "
               "gateway")
extensions.add("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router")
extensions.add("extraroute-atomic", "Atomically add/remove extra routes",
               "Edit extra routes of a router on server side by atomically adding/removing extra routes")
# The ha attribute (admin only; always false, true refused): kaon.model.router.
extensions.add("l3-ha", "HA Router extension", "Adds HA capability to routers.")
extensions.add("fip-port-details", "Floating IP Port Details Extension",
               "Add port_details attribute to Floating IP resource")


class RouterActionRoutes:
    def __init__(self, engine: Engine, routers: Routers, interfaces: RouterInterfaces,
                 on_change: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.routers = routers
        self.interfaces = interfaces
        self.on_change = on_change

    def routes(self) -> list[Route]:
        base = "/v2.0/routers/{id}"
        return [Route(f"{base}/{name}", handler, methods=["PUT"]) for name, handler in (
            ("add_router_interface", self.add_interface), ("remove_router_interface", self.remove_interface),
            ("add_extraroutes", self.add_routes), ("remove_extraroutes", self.remove_routes))]

    async def _run(self, request: Request, work: Callable[[Context, Any, str, Any], Any]) -> Response:
        ctx, router_id = context_of(request), request.path_params["id"]
        body = await read_body(request)

        def run() -> Any:
            with write_txn(self.engine) as conn:
                result = work(ctx, conn, router_id, body)
            if self.on_change is not None:
                self.on_change()
            return result

        return json_response(await offload.short(self.engine, run))

    async def add_interface(self, request: Request) -> Response:
        return await self._run(request, self.interfaces.add)

    async def remove_interface(self, request: Request) -> Response:
        return await self._run(request, self.interfaces.remove)

    async def add_routes(self, request: Request) -> Response:
        return await self._run(request, lambda ctx, conn, rid, body: self._routes(ctx, conn, rid, body, True))

    async def remove_routes(self, request: Request) -> Response:
        return await self._run(request, lambda ctx, conn, rid, body: self._routes(ctx, conn, rid, body, False))

    def _routes(self, ctx: Context, conn: Any, router_id: str, body: Any, add: bool) -> dict[str, Any]:
        self.routers.change_routes(ctx, conn, router_id, body, add)
        item = self.routers.get(Context.admin(ctx.project_id), conn, router_id)
        return {"router": shape(item, attrs.hidden_for(ROUTER, ctx.is_admin), [])}
