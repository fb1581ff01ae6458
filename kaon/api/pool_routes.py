"""HTTP side of subnet pools and address scopes: their extension aliases
and the subnetpool-prefix-ops actions ``PUT /v2.0/subnetpools/{id}/add_prefixes``
and ``.../remove_prefixes``, which take and return unwrapped bodies
(``{"prefixes": [...]}``). The plain collections go through the generic
controller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon.api import extensions, offload
from kaon.api.controller import context_of, read_body
from kaon.api.responses import json_response
from kaon.core.pools.subnetpools import SubnetPools
from kaon.db.engine import write_txn
from kaon.db.retry import retrying

for _alias, _name, _description in (
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    ("default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
    ("subnetpool-prefix-ops", "Subnet Pool Prefix Operations",
     "Provides support for adjusting the prefix list of subnet pools"),
    ("address-scope", "Address scope", "Address scopes extension."),
    ("rbac-address-scope", "Add address_scope type to RBAC", "Add address_scope type to RBAC"),
    ("rbac-subnetpool", "Add subnetpool type to RBAC", "Add subnetpool type to RBAC"),
):
    extensions.add(_alias, _name, _description)


class SubnetPoolActionRoutes:
    def __init__(self, engine: Engine, pools: SubnetPools, on_change: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.pools = pools
        self.on_change = on_change

    def routes(self) -> list[Route]:
        base = "/v2.0/subnetpools/{id}"
        return [Route(f"{base}/add_prefixes", self.add, methods=["PUT"]),
                Route(f"{base}/remove_prefixes", self.remove, methods=["PUT"])]

    async def add(self, request: Request) -> Response:
        return await self._run(request, True)

    async def remove(self, request: Request) -> Response:
        return await self._run(request, False)

    async def _run(self, request: Request, add: bool) -> Response:
        ctx, pool_id = context_of(request), request.path_params["id"]
        body = await read_body(request)

        def run(body: Any) -> Any:
            with write_txn(self.engine) as conn:
                result = self.pools.change_prefixes(ctx, conn, pool_id, body, add)
            if self.on_change is not None:
                self.on_change()
            return result

        return json_response(await offload.short(self.engine, retrying, self.engine, run, body))
