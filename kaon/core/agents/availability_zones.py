"""Availability zones: named by agents, never created on their own.

A DHCP agent's ``availability_zone`` is a zone for networks, an L3 agent's a
zone for routers (``/v2.0/availability_zones``: name, resource, state). A
zone is ``available`` while one of its agents is administratively up, as in
Neutron (liveness does not enter into it). A network's
``availability_zones`` are the zones of the DHCP agents serving it; a
router's, those of the L3 agents hosting it. ``availability_zone_hints``
must name zones that exist (``AvailabilityZoneNotFound``, 404).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select

from kaon import errors
from kaon.core.agents.scheduling import DHCP_AGENT, L3_AGENT
from kaon.db.agent_tables import (
    agents,
    network_dhcp_agent_bindings,
    router_az_hints,
    router_l3_agent_bindings,
)

AvailabilityZoneNotFound = errors.define("AvailabilityZoneNotFound", errors.NotFound,
                                         "AvailabilityZone {availability_zone} could not be found.")

RESOURCE_OF = {DHCP_AGENT: "network", L3_AGENT: "router"}
AGENT_OF = {v: k for k, v in RESOURCE_OF.items()}
_CHUNK = 500


def _zones_statement(binding: Any, key: str, agent_col: str) -> Any:
    # Prebuilt (building a statement costs more than running it).
    return (select(binding.c[key], agents.c.availability_zone)
            .join(agents, agents.c.id == binding.c[agent_col])
            .where(binding.c[key].in_(bindparam("ids", expanding=True)), agents.c.availability_zone.is_not(None),
                   agents.c.availability_zone != ""))


_NETWORK_ZONES = _zones_statement(network_dhcp_agent_bindings, "network_id", "dhcp_agent_id")
_ROUTER_ZONES = _zones_statement(router_l3_agent_bindings, "router_id", "l3_agent_id")


def _zones_of(conn: Connection, stmt: Any, ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(dict.fromkeys(ids))
    found: dict[str, set[str]] = {i: set() for i in ids}
    for start in range(0, len(ids), _CHUNK):
        for rid, zone in conn.execute(stmt, {"ids": ids[start:start + _CHUNK]}):
            found[rid].add(zone)
    return {rid: sorted(zones) for rid, zones in found.items()}


def network_azs(conn: Connection, network_ids: Iterable[str]) -> dict[str, list[str]]:
    return _zones_of(conn, _NETWORK_ZONES, network_ids)


def router_azs(conn: Connection, router_ids: Iterable[str]) -> dict[str, list[str]]:
    return _zones_of(conn, _ROUTER_ZONES, router_ids)


def zones(conn: Connection) -> list[dict[str, str]]:
    state: dict[tuple[str, str], bool] = {}
    rows = conn.execute(select(agents.c.availability_zone, agents.c.agent_type, agents.c.admin_state_up)
                        .where(agents.c.agent_type.in_(RESOURCE_OF), agents.c.availability_zone.is_not(None),
                               agents.c.availability_zone != ""))
    for zone, agent_type, up in rows:
        key = (zone, RESOURCE_OF[agent_type])
        state[key] = state.get(key, False) or bool(up)
    return [{"name": name, "resource": resource, "state": "available" if up else "unavailable"}
            for (name, resource), up in sorted(state.items())]


def validate_hints(conn: Connection, resource: str, hints: Iterable[str] | None) -> None:
    wanted = list(dict.fromkeys(hints or ()))
    if not wanted:
        return
    known = set(conn.execute(select(agents.c.availability_zone).where(
        agents.c.agent_type == AGENT_OF[resource], agents.c.availability_zone.in_(wanted))).scalars())
    for zone in wanted:
        if zone not in known:
            raise AvailabilityZoneNotFound(availability_zone=zone)


def router_hints(conn: Connection, router_ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(dict.fromkeys(router_ids))
    found: dict[str, list[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        for rid, hints in conn.execute(select(router_az_hints.c.router_id, router_az_hints.c.hints)
                                       .where(router_az_hints.c.router_id.in_(ids[start:start + _CHUNK]))):
            found[rid] = list(hints or [])
    return found


def set_router_hints(conn: Connection, router_id: str, hints: Iterable[str] | None) -> None:
    """Validate and store a new router's hints (they cannot change afterwards, as in Neutron)."""
    wanted = list(hints or ())
    validate_hints(conn, "router", wanted)
    conn.execute(delete(router_az_hints).where(router_az_hints.c.router_id == router_id))
    if wanted:
        conn.execute(insert(router_az_hints).values(router_id=router_id, hints=wanted))
