"""``/v2.0/network-ip-availabilities`` (admin): pool sizes against allocations."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon import errors
from kaon.api.controller import context_of
from kaon.core.access import policy
from kaon.core.l2 import ip_availability
from kaon.db.engine import read_txn
from kaon.errors import HTTPBadRequest

FILTERS = {"network_id", "network_name", "ip_version", "project_id", "tenant_id"}


def _big_json(body: Any) -> Response:
    """IPv6 pools overflow orjson's 64-bit integers (a /48 holds 2**80
    addresses): the standard library writes any size, as Neutron does."""
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


class IpAvailabilityRoutes:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def routes(self) -> list[Route]:
        return [Route("/v2.0/network-ip-availabilities", self.list_all),
                Route("/v2.0/network-ip-availabilities/{id}", self.show)]

    def _collect(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        with read_txn(self.engine) as conn:
            return ip_availability.collect(conn, filters)

    async def list_all(self, request: Request) -> Response:
        ctx = context_of(request)
        filters: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            if key in FILTERS:
                filters.setdefault(key, []).append(value)
            elif key != "fields":
                raise HTTPBadRequest(msg=f"{key} is invalid attribute for filtering")
        # Neutron filters a list by get_network_ip_availability (admin only
        # by default) item by item: a non-admin gets an empty list, not a 403.
        items = [i for i in await run_in_threadpool(self._collect, filters) if self._may_see(ctx, i)]
        return _big_json({"network_ip_availabilities": items})

    @staticmethod
    def _may_see(ctx: Any, item: dict[str, Any]) -> bool:
        target = {"project_id": item["project_id"], "tenant_id": item["project_id"]}
        return policy.current().allowed(ctx, "get_network_ip_availability", target)

    async def show(self, request: Request) -> Response:
        ctx = context_of(request)
        net_id = request.path_params["id"]
        items = await run_in_threadpool(self._collect, {"network_id": [net_id]})
        if not items or not self._may_see(ctx, items[0]):
            raise errors.NetworkNotFound(net_id=net_id)
        return _big_json({"network_ip_availability": items[0]})
