"""Network IP availability: pool sizes of each subnet against its
allocations (``network-ip-availability`` extension)."""

from __future__ import annotations

from typing import Any

import netaddr
from sqlalchemy import Connection, func, select

from kaon.db.core_tables import ip_allocations, networks, subnets


def _pool_size(pools: list[dict[str, str]]) -> int:
    return sum(netaddr.IPRange(p["start"], p["end"]).size for p in pools)


def collect(conn: Connection, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Per network, each subnet's pool size and allocation count, filtered by
    ``network_id``, ``network_name``, ``project_id``/``tenant_id``, ``ip_version``."""
    stmt = select(networks.c.id, networks.c.name, networks.c.project_id)
    if "network_id" in filters:
        stmt = stmt.where(networks.c.id.in_(filters["network_id"]))
    if "network_name" in filters:
        stmt = stmt.where(networks.c.name.in_(filters["network_name"]))
    projects = filters.get("project_id", []) + filters.get("tenant_id", [])
    if projects:
        stmt = stmt.where(networks.c.project_id.in_(projects))
    nets = conn.execute(stmt.order_by(networks.c.id)).all()
    used: dict[str, int] = dict(conn.execute(select(ip_allocations.c.subnet_id, func.count())
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
