"""What the topology page shows, read through the service layer.

Every read goes through the same services the v2.0 API uses, with the
caller's context, and admin-only attributes are removed the way the API
removes them (the policy table's ``get_<resource>:<attr>`` rules): a
member sees exactly the networks, subnets, routers and ports the API would
list for them, and no binding details. Agents and host generations are admin-only, as in the API.

The view is a plain dict; ``revision`` is a digest of the rest, so the
event stream sends it only when something visible changed. Values that move
without a change anyone cares about (agent heartbeats) are left out of it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from kaon.core.access import policy
from kaon.core.agents import generations
from kaon.core.list_query import ListQuery
from kaon.db.engine import read_txn
from kaon.model.network import NETWORK
from kaon.model.port import PORT
from kaon.model.router import ROUTER
from kaon.model.subnet import SUBNET
from kaon.web.findings import doctor_findings

COMPUTE_PREFIX = "compute:"
BINDING_FAILED = "binding_failed"
AGENT_KEYS = ("id", "agent_type", "binary", "host", "alive", "admin_state_up", "availability_zone")


def _visible(resource: Any, items: list[dict[str, Any]], ctx: Any) -> list[dict[str, Any]]:
    """``items`` without the attributes the API hides from ``ctx`` (the same rule the controller applies)."""
    hidden = policy.current().hidden(ctx, resource)
    return [{k: v for k, v in item.items() if k not in hidden} for item in items]


def _vms(ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instances, from their ports (device_owner ``compute:*``, device_id the server)."""
    vms: dict[str, dict[str, Any]] = {}
    for port in ports:
        if not port["device_owner"].startswith(COMPUTE_PREFIX) or not port["device_id"]:
            continue
        vm = vms.setdefault(port["device_id"], {"id": port["device_id"], "ports": [], "hosts": [],
                                                 "status": "ACTIVE", "binding_failed": False})
        vm["ports"].append(port["id"])
        host = port.get("binding:host_id")
        if host and host not in vm["hosts"]:
            vm["hosts"].append(host)
        if port["status"] != "ACTIVE":
            vm["status"] = port["status"]
        if port.get("binding:vif_type") == BINDING_FAILED:
            vm["binding_failed"] = True
    return sorted(vms.values(), key=lambda vm: vm["id"])


def _hosts(agents: list[dict[str, Any]], states: list[generations.HostState],
           ports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    hosts: dict[str, dict[str, Any]] = {}

    def host(name: str) -> dict[str, Any]:
        return hosts.setdefault(name, {"name": name, "agents": [], "generation": None,
                                       "applied_generation": None, "converged": None, "ports": 0})

    for agent in agents:
        host(agent["host"])["agents"].append({k: agent[k] for k in AGENT_KEYS})
    for state in states:
        entry = host(state.host)
        entry.update(generation=state.generation, applied_generation=state.applied_generation,
                     converged=state.converged)
    for port in ports:
        name = port.get("binding:host_id")
        if name:
            host(name)["ports"] += 1
    return sorted(hosts.values(), key=lambda h: h["name"])


def read_topology(services: Any, ctx: Any) -> dict[str, Any]:
    """The page's whole view for ``ctx`` (one read transaction)."""
    admin = ctx.is_admin
    with read_txn(services.engine) as conn:
        networks, _ = services.networks.list(ctx, conn, ListQuery())
        subnets, _ = services.subnets.list(ctx, conn, ListQuery())
        routers, _ = services.routers.list(ctx, conn, ListQuery())
        ports, _ = services.ports.list(ctx, conn, ListQuery())
        agents, _ = services.agents.list(ctx, conn, ListQuery())  # [] unless admin
        states = generations.states(conn) if admin else []
    ports = _visible(PORT, ports, ctx)
    view: dict[str, Any] = {
        "networks": _visible(NETWORK, networks, ctx),
        "subnets": _visible(SUBNET, subnets, ctx),
        "routers": _visible(ROUTER, routers, ctx),
        "ports": ports,
        "vms": _vms(ports),
        "hosts": _hosts(agents, states, ports),
        "findings": doctor_findings(services, ctx),
    }
    view["revision"] = hashlib.blake2b(orjson.dumps(view, option=orjson.OPT_SORT_KEYS),
                                       digest_size=12).hexdigest()
    view["is_admin"] = admin
    view["project_id"] = ctx.project_id
    return view
