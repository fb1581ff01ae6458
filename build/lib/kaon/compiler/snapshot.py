"""The rows the compiler reads: everything a host agent needs, nothing else.

A handful of SELECTs in the caller's transaction, turned into frozen
dataclasses so the projection never sees the database.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from kaon.db.agent_tables import agents, port_binding_levels
from kaon.db.core_tables import ip_allocations, networks, ports
from kaon.db.ml2_tables import network_segments

LINUXBRIDGE = "linuxbridge"
LB_AGENT = "Linux bridge agent"


@dataclass(frozen=True)
class BoundPort:
    id: str
    network_id: str
    host: str
    mac: str
    admin_state_up: bool
    device_owner: str
    segment_id: str | None
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class SegmentRow:
    id: str
    network_id: str
    network_type: str
    physical_network: str | None
    segmentation_id: int | None


@dataclass(frozen=True)
class Snapshot:
    ports: tuple[BoundPort, ...]
    segments: dict[str, SegmentRow]
    network_mtu: dict[str, int]
    vteps: dict[str, str]  # host -> tunneling_ip of its Linux bridge agent
    known_hosts: frozenset[str] = field(default_factory=frozenset)


def read_snapshot(conn: Connection, known_hosts: frozenset[str] = frozenset()) -> Snapshot:
    """Ports bound by the linuxbridge driver, with their addresses, segments, MTUs and peers' VTEPs."""
    rows = conn.execute(
        select(ports.c.id, ports.c.network_id, ports.c.binding_host_id, ports.c.mac_address,
               ports.c.admin_state_up, ports.c.device_owner, port_binding_levels.c.segment_id)
        .join(port_binding_levels, port_binding_levels.c.port_id == ports.c.id)
        .where(port_binding_levels.c.driver == LINUXBRIDGE, port_binding_levels.c.level == 0)
    ).all()
    ips: dict[str, list[str]] = defaultdict(list)
    if rows:
        alloc = select(ip_allocations.c.port_id, ip_allocations.c.ip_address).join(
            port_binding_levels, port_binding_levels.c.port_id == ip_allocations.c.port_id
        ).where(port_binding_levels.c.driver == LINUXBRIDGE)
        for port_id, address in conn.execute(alloc):
            ips[port_id].append(address)
    bound = tuple(
        BoundPort(r.id, r.network_id, r.binding_host_id, r.mac_address, bool(r.admin_state_up),
                  r.device_owner, r.segment_id, tuple(sorted(ips.get(r.id, ()))))
        for r in rows
    )
    net_ids = {p.network_id for p in bound}
    segments: dict[str, SegmentRow] = {}
    mtus: dict[str, int] = {}
    if net_ids:
        for s in conn.execute(select(network_segments).where(network_segments.c.network_id.in_(net_ids))):
            segments[s.id] = SegmentRow(s.id, s.network_id, s.network_type, s.physical_network,
                                        None if s.segmentation_id is None else int(s.segmentation_id))
        mtus = dict(conn.execute(select(networks.c.id, networks.c.mtu).where(networks.c.id.in_(net_ids))).all())
    vteps: dict[str, str] = {}
    for host, conf in conn.execute(select(agents.c.host, agents.c.configurations)
                                   .where(agents.c.agent_type == LB_AGENT)):
        ip = (conf or {}).get("tunneling_ip")
        if ip:
            vteps[host] = ip
    return Snapshot(bound, segments, mtus, vteps, known_hosts)
