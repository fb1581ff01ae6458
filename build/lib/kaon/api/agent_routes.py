"""Routes for agents, their scheduling and availability zones.

``/v2.0/agents`` (list, show, update, delete; no create) goes through the
generic controller. The scheduler sub-resources are admin-only (403 for
anybody else, as Neutron's policy ``get_dhcp-networks`` ... says):

* ``/v2.0/agents/{id}/dhcp-networks`` GET, POST ``{"network_id"}`` (201, body
  ``null`` as in Neutron), ``.../{network_id}`` DELETE;
  ``/v2.0/networks/{id}/dhcp-agents`` GET;
* ``/v2.0/agents/{id}/l3-routers`` GET, POST ``{"router_id"}``,
  ``.../{router_id}`` DELETE; ``/v2.0/routers/{id}/l3-agents`` GET.

``/v2.0/availability_zones`` lists the zones agents name (anyone may read).

"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon import errors
from kaon.api import extensions, listing
from kaon.api.context import Context
from kaon.api.controller import Collection, context_of, read_body, shape
from kaon.api.responses import json_response
from kaon.core.agents import availability_zones
from kaon.db.engine import read_txn, write_txn
from kaon.model.agent import AGENT, AVAILABILITY_ZONE
from kaon.model.attrs import HTTPBadRequest

extensions.add("agent", "agent", "The agent management extension.")
extensions.add("binding", "Port Binding", "Expose port bindings of a virtual port to external application")
extensions.add("dhcp_agent_scheduler", "DHCP Agent Scheduler", "Schedule networks among dhcp agents")
extensions.add("availability_zone", "Availability Zone", "The availability zone extension.")
extensions.add("network_availability_zone", "Network Availability Zone", "Availability zone support for network.")
extensions.add("l3_agent_scheduler", "L3 Agent Scheduler", "Schedule routers among l3 agents")
extensions.add("router_availability_zone", "Router Availability Zone", "Availability zone support for router.")


def _admin(ctx: Context, action: str) -> None:
    if not ctx.is_admin:
        raise errors.PolicyNotAuthorized(action=action)


def _required(body: Any, key: str) -> str:
    value = body.get(key) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise HTTPBadRequest(msg=f"Failed to parse request. Required attribute '{key}' not specified")
    return value


def _by(key: str) -> Callable[[dict[str, str]], str]:
    return lambda item: str(item.get(key))


class AgentRoutes:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.engine = services.engine
        self.agents = services.agents
        self.scheduler = services.scheduler
        self.collection = Collection(AGENT, services.agents, services.engine, services.cfg.default.filter_validation)

    def routes(self) -> list[Route]:
        return [
            Route("/v2.0/agents", self.collection.collection, methods=["GET"]),
            Route("/v2.0/agents/{id}", self.collection.item, methods=["GET", "PUT", "DELETE"]),
            Route("/v2.0/agents/{id}/dhcp-networks", self.dhcp_networks, methods=["GET", "POST"]),
            Route("/v2.0/agents/{id}/dhcp-networks/{network_id}", self.remove_dhcp_network, methods=["DELETE"]),
            Route("/v2.0/networks/{id}/dhcp-agents", self.dhcp_agents, methods=["GET"]),
            Route("/v2.0/agents/{id}/l3-routers", self.l3_routers, methods=["GET", "POST"]),
            Route("/v2.0/agents/{id}/l3-routers/{router_id}", self.remove_l3_router, methods=["DELETE"]),
            Route("/v2.0/routers/{id}/l3-agents", self.l3_agents, methods=["GET"]),
            Route("/v2.0/availability_zones", self.zones, methods=["GET"]),
        ]

    # -- helpers -------------------------------------------------------
    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        def run() -> Any:
            with read_txn(self.engine) as conn:
                return fn(conn, *args)
        return await run_in_threadpool(run)

    async def _write(self, fn: Callable[..., Any], *args: Any) -> Any:
        def run() -> Any:
            with write_txn(self.engine) as conn:
                return fn(conn, *args)
        return await run_in_threadpool(run)

    # -- DHCP ----------------------------------------------------------
    async def dhcp_networks(self, request: Request) -> Response:
        ctx = context_of(request)
        agent_id = request.path_params["id"]
        if request.method == "POST":
            _admin(ctx, "create_dhcp-network")
            network_id = _required(await read_body(request), "network_id")
            await self._write(self.scheduler.add_network, agent_id, network_id)
            return json_response(None, status=201)
        _admin(ctx, "get_dhcp-networks")
        fields = request.query_params.getlist("fields")

        def run(conn: Any) -> list[dict[str, Any]]:
            ids = self.scheduler.networks_of_agent(conn, agent_id)
            if not ids:
                return []
            items, _ = self.services.networks.list(ctx, conn, listing.ListQuery(filters={"id": ids}))
            return [shape(i, frozenset(), fields) for i in items]
        return json_response({"networks": await self._read(run)})

    async def remove_dhcp_network(self, request: Request) -> Response:
        _admin(context_of(request), "delete_dhcp-network")
        await self._write(self.scheduler.remove_network, request.path_params["id"],
                          request.path_params["network_id"])
        return Response(status_code=204)

    async def dhcp_agents(self, request: Request) -> Response:
        _admin(context_of(request), "get_dhcp-agents")
        fields = request.query_params.getlist("fields")

        def run(conn: Any) -> list[dict[str, Any]]:
            ids = self.scheduler.dhcp_agents_of_network(conn, request.path_params["id"])
            return [shape(a, frozenset(), fields) for a in self.agents.by_ids(conn, ids)] if ids else []
        return json_response({"agents": await self._read(run)})

    # -- L3 ------------------------------------------------------------
    async def l3_routers(self, request: Request) -> Response:
        ctx = context_of(request)
        agent_id = request.path_params["id"]
        if request.method == "POST":
            _admin(ctx, "create_l3-router")
            router_id = _required(await read_body(request), "router_id")
            await self._write(self.scheduler.add_router, agent_id, router_id)
            return json_response(None, status=201)
        _admin(ctx, "get_l3-routers")
        fields = request.query_params.getlist("fields")

        def run(conn: Any) -> list[dict[str, Any]]:
            ids = self.scheduler.routers_of_agent(conn, agent_id)
            return [shape(r, frozenset(), fields) for r in self._routers(ctx, conn, ids)]
        return json_response({"routers": await self._read(run)})

    def _routers(self, ctx: Context, conn: Any, ids: list[str]) -> list[dict[str, Any]]:
        if not ids:
            return []
        items, _ = self.services.routers.list(ctx, conn, listing.ListQuery(filters={"id": ids}))
        return list(items)

    async def remove_l3_router(self, request: Request) -> Response:
        _admin(context_of(request), "delete_l3-router")
        await self._write(self.scheduler.remove_router, request.path_params["id"], request.path_params["router_id"])
        return Response(status_code=204)

    async def l3_agents(self, request: Request) -> Response:
        _admin(context_of(request), "get_l3-agents")
        fields = request.query_params.getlist("fields")

        def run(conn: Any) -> list[dict[str, Any]]:
            ids = self.scheduler.l3_agents_of_router(conn, request.path_params["id"])
            return [shape(a, frozenset(), fields) for a in self.agents.by_ids(conn, ids)] if ids else []
        return json_response({"agents": await self._read(run)})

    # -- availability zones --------------------------------------------
    async def zones(self, request: Request) -> Response:
        q = listing.parse(AVAILABILITY_ZONE, list(request.query_params.multi_items()),
                          validate=self.services.cfg.default.filter_validation)
        items = await self._read(availability_zones.zones)
        items = [z for z in items if all(z.get(k) in vals for k, vals in q.filters.items())]
        for key, ascending in reversed(q.sorts):  # stable sorts, last key first
            items.sort(key=_by(key), reverse=not ascending)
        return json_response({"availability_zones": [shape(z, frozenset(), q.fields) for z in items]})
