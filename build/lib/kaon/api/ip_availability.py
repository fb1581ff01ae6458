"""``/v2.0/network-ip-availabilities`` (admin): pool sizes against allocations."""

from __future__ import annotations

import json
from typing import Any

import netaddr
from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon import errors
from kaon.api.controller import context_of
from kaon.db.core_tables import ip_allocations, networks, subnets
from kaon.db.engine import read_txn

FILTERS = {"network_id", "network_name", "ip_version", "project_id", "tenant_id"}


def _pool_size(pools: list[dict[str, str]]) -> int:
    return sum(netaddr.IPRange(p["start"], p["end"]).size for p in pools)


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
            stmt = select(networks.c.id, networks.c.name, networks.c.project_id)
            if "network_id" in filters:
                stmt = stmt.where(networks.c.id.in_(filters["network_id"]))
            if "network_name" in filters:
                stmt = stmt.where(networks.c.name.in_(filters["network_name"]))
            projects = filters.get("project_id", []) + filters.get("tenant_id", [])
            if projects:
                stmt = stmt.where(networks.c.project_id.in_(projects))
            nets = conn.execute(stmt.order_by(networks.c.id)).all()
            used = dict(conn.execute(select(ip_allocations.c.subnet_id, func.count())
                                     .group_by(ip_allocations.c.subnet_id)).all())
            subs: dict[str, list[Any]] = {}
            for s in conn.execute(select(subnets)):
                if "ip_version" in filters and str(s.ip_version) not in filters["ip_version"]:
                    continue
                subs.setdefault(s.network_id, []).append(s)
        out = []
        for net in nets:
            if "ip_version" in filters and net.id not in subs:
                continue
            per = [{"subnet_id": s.id, "subnet_name": s.name, "cidr": s.cidr, "ip_version": s.ip_version,
                    "total_ips": _pool_size(s.allocation_pools), "used_ips": used.get(s.id, 0)}
                   for s in subs.get(net.id, [])]
            out.append({"network_id": net.id, "network_name": net.name, "tenant_id": net.project_id,
                        "project_id": net.project_id, "subnet_ip_availability": per,
                        "total_ips": sum(p["total_ips"] for p in per), "used_ips": sum(p["used_ips"] for p in per)})
        return out

    async def list_all(self, request: Request) -> Response:
        ctx = context_of(request)
        filters: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            if key in FILTERS:
                filters.setdefault(key, []).append(value)
            elif key != "fields":
                from kaon.model.attrs import HTTPBadRequest

                raise HTTPBadRequest(msg=f"{key} is invalid attribute for filtering")
        if not ctx.is_admin:
            # Neutron filters a list by get_network_ip_availability (admin
            # only) item by item: a non-admin gets an empty list, not a 403.
            return _big_json({"network_ip_availabilities": []})
        items = await run_in_threadpool(self._collect, filters)
        return _big_json({"network_ip_availabilities": items})

    async def show(self, request: Request) -> Response:
        ctx = context_of(request)
        net_id = request.path_params["id"]
        if not ctx.is_admin:
            raise errors.NetworkNotFound(net_id=net_id)
        items = await run_in_threadpool(self._collect, {"network_id": [net_id]})
        if not items:
            raise errors.NetworkNotFound(net_id=net_id)
        return _big_json({"network_ip_availability": items[0]})
