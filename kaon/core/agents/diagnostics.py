"""Read-only queries for ``kaon doctor`` (kaon.doctor): facts, not verdicts.

Each function answers one question about the stored state in the caller's
read transaction and returns plain frozen rows; deciding what is wrong and
how to say it is the doctor's business. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from kaon.core.agents.scheduling import DHCP_AGENT, RESERVED_DHCP_PORT
from kaon.core.l2.subnets import ROUTER_INTERFACE_OWNERS
from kaon.db.agent_tables import agents, network_dhcp_agent_bindings
from kaon.db.core_tables import ip_allocations, networks, ports, subnets
from kaon.db.l3_tables import routers

DHCP_OWNER = "network:dhcp"
VM_OWNER_PREFIX = "compute:"


@dataclass(frozen=True)
class AgentFact:
    id: str
    agent_type: str
    host: str
    alive: bool
    admin_state_up: bool
    created_at: dt.datetime
    heartbeat: dt.datetime
    configurations: Mapping[str, Any] = field(default_factory=dict)
    health: Mapping[str, Any] = field(default_factory=dict)  # kaon's facts of its last report (kaon.core.agents.agents)


@dataclass(frozen=True)
class PortFact:
    id: str
    name: str
    network_id: str
    host: str
    status: str
    device_owner: str
    device_id: str
    failure: str
    ips: tuple[tuple[str, str], ...]  # (subnet_id, ip_address)


@dataclass(frozen=True)
class SubnetFact:
    id: str
    network_id: str
    cidr: str
    ip_version: int
    enable_dhcp: bool
    allocation_pools: tuple[tuple[str, str], ...]


def agent_facts(conn: Connection, now: dt.datetime, down_time: int) -> list[AgentFact]:
    """Every agent, alive as :class:`kaon.core.agents.agents.Agents` decides it (last report within ``down_time``)."""
    cutoff = now - dt.timedelta(seconds=down_time)
    rows = conn.execute(select(agents.c.id, agents.c.agent_type, agents.c.host, agents.c.admin_state_up,
                               agents.c.created_at, agents.c.heartbeat_timestamp, agents.c.configurations,
                               agents.c.health)
                        .order_by(agents.c.host, agents.c.agent_type))
    return [AgentFact(r.id, r.agent_type, r.host, r.heartbeat_timestamp >= cutoff, r.admin_state_up,
                      r.created_at, r.heartbeat_timestamp, r.configurations or {}, r.health or {}) for r in rows]


def _ips(conn: Connection, port_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for start in range(0, len(port_ids), 500):
        chunk = port_ids[start : start + 500]
        for r in conn.execute(select(ip_allocations.c.port_id, ip_allocations.c.subnet_id,
                                     ip_allocations.c.ip_address).where(ip_allocations.c.port_id.in_(chunk))):
            out[r.port_id].append((r.subnet_id, r.ip_address))
    return out


def _port_facts(conn: Connection, *where: Any) -> list[PortFact]:
    rows = conn.execute(select(ports.c.id, ports.c.name, ports.c.network_id, ports.c.binding_host_id,
                               ports.c.status, ports.c.device_owner, ports.c.device_id, ports.c.binding_failure)
                        .where(*where).order_by(ports.c.binding_host_id, ports.c.id)).all()
    ips = _ips(conn, [r.id for r in rows]) if rows else {}
    return [PortFact(r.id, r.name, r.network_id, r.binding_host_id, r.status, r.device_owner, r.device_id,
                     r.binding_failure, tuple(sorted(ips.get(r.id, ())))) for r in rows]


def failed_bindings(conn: Connection) -> list[PortFact]:
    """Ports whose last binding attempt failed (``binding:vif_type = binding_failed``)."""
    return _port_facts(conn, ports.c.binding_vif_type == "binding_failed")


def bound_ports(conn: Connection, hosts: list[str]) -> list[PortFact]:
    """Ports whose ``binding:host_id`` is one of ``hosts``."""
    return _port_facts(conn, ports.c.binding_host_id.in_(hosts)) if hosts else []


def dhcp_ports(conn: Connection) -> list[PortFact]:
    """``network:dhcp`` ports held by an agent (not the reserved ones waiting for the next agent)."""
    return _port_facts(conn, ports.c.device_owner == DHCP_OWNER, ports.c.device_id != RESERVED_DHCP_PORT)


def dhcp_subnets(conn: Connection) -> dict[str, SubnetFact]:
    rows = conn.execute(select(subnets.c.id, subnets.c.network_id, subnets.c.cidr, subnets.c.ip_version,
                               subnets.c.enable_dhcp, subnets.c.allocation_pools)
                        .where(subnets.c.enable_dhcp.is_(True)))
    return {r.id: SubnetFact(r.id, r.network_id, r.cidr, r.ip_version, bool(r.enable_dhcp),
                             tuple((p["start"], p["end"]) for p in r.allocation_pools or ())) for r in rows}


def dhcp_serving(conn: Connection) -> set[tuple[str, str]]:
    """(network_id, host) for every network scheduled to a DHCP agent."""
    rows = conn.execute(select(network_dhcp_agent_bindings.c.network_id, agents.c.host)
                        .join(agents, agents.c.id == network_dhcp_agent_bindings.c.dhcp_agent_id)
                        .where(agents.c.agent_type == DHCP_AGENT))
    return {(r.network_id, r.host) for r in rows}


def port_holding(conn: Connection, subnet_id: str, ip: str) -> str | None:
    """The id of the port that holds ``ip`` on ``subnet_id``, if any."""
    return conn.execute(select(ip_allocations.c.port_id).where(ip_allocations.c.subnet_id == subnet_id,
                                                               ip_allocations.c.ip_address == ip)).scalar()


@dataclass(frozen=True)
class UnroutedNetwork:
    id: str
    name: str
    vms: int
    subnets: tuple[str, ...]  # the IPv4 subnets' CIDRs


def unrouted_vm_networks(conn: Connection) -> list[UnroutedNetwork]:
    """Networks with VM ports and IPv4 subnets, none of which has a router interface."""
    v4: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for r in conn.execute(select(subnets.c.id, subnets.c.network_id, subnets.c.cidr).where(subnets.c.ip_version == 4)):
        v4[r.network_id].append((r.id, r.cidr))
    if not v4:
        return []
    routed = set(conn.execute(select(ip_allocations.c.subnet_id).join(ports, ports.c.id == ip_allocations.c.port_id)
                              .where(ports.c.device_owner.in_(ROUTER_INTERFACE_OWNERS))).scalars())
    vms: dict[str, int] = dict(conn.execute(select(ports.c.network_id, func.count()).where(ports.c.device_owner.startswith(
        VM_OWNER_PREFIX)).group_by(ports.c.network_id)).all())
    names = dict(conn.execute(select(networks.c.id, networks.c.name).where(networks.c.id.in_(list(vms)))).all())
    out = []
    for net_id, count in sorted(vms.items()):
        subs = v4.get(net_id, [])
        if subs and not any(sid in routed for sid, _ in subs):
            out.append(UnroutedNetwork(net_id, names.get(net_id, ""), int(count), tuple(c for _, c in subs)))
    return out


@dataclass(frozen=True)
class Gateway:
    router_id: str
    router_name: str
    port_id: str
    network_id: str
    addresses: tuple[str, ...]


def router_gateways(conn: Connection) -> list[Gateway]:
    """Every router with an external gateway port, with that port's addresses."""
    rows = conn.execute(select(routers.c.id, routers.c.name, routers.c.gw_port_id, ports.c.network_id)
                        .join(ports, ports.c.id == routers.c.gw_port_id).order_by(routers.c.id)).all()
    ips = _ips(conn, [r.gw_port_id for r in rows]) if rows else {}
    return [Gateway(r.id, r.name, r.gw_port_id, r.network_id, tuple(ip for _, ip in ips.get(r.gw_port_id, ())))
            for r in rows]
