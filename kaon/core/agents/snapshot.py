"""Read the compiler's input: the rows every host agent needs, as kaon.compiler.snapshot types.

A handful of SELECTs per compile, whatever the number of ports, all in the
caller's transaction, so the snapshot is one consistent state. The
projections (kaon.compiler) never see the database; this module never
builds an intent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import netaddr
from sqlalchemy import Connection, Select, select

from kaon.compiler.snapshot import (
    BoundPort,
    DhcpData,
    DhcpServed,
    FirewallData,
    L3Data,
    PortAddress,
    PortRow,
    PortSecurity,
    RouterPort,
    RouterRow,
    Rule,
    SegmentRow,
    Snapshot,
    SubnetRow,
)
from kaon.core.agents.scheduling import DHCP_AGENT, L3_AGENT, dhcp_device_id
from kaon.db.agent_tables import (
    agents,
    network_dhcp_agent_bindings,
    port_binding_levels,
    router_l3_agent_bindings,
)
from kaon.db.core_tables import ip_allocations, networks, port_security_groups, ports, subnets
from kaon.db.l3_tables import floatingips, router_ports, router_routes, routers
from kaon.db.ml2_tables import network_segments
from kaon.db.sg_tables import security_group_rules, security_groups
from kaon.model.security_group import canonical_protocol, proto_number

# The mechanism drivers whose ports an agent of kaon's wires, and the agents whose VTEPs are peers:
# Linux bridge and Open vSwitch hosts share tunnelled networks (l2population, mixed clouds).
L2_DRIVERS = ("linuxbridge", "openvswitch")
L2_AGENTS = ("Linux bridge agent", "Open vSwitch agent")
GW_OWNER = "network:router_gateway"
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")
PSG = port_security_groups


def read_snapshot(conn: Connection, known_hosts: frozenset[str] = frozenset()) -> Snapshot:
    bound, segments, mtus, vteps = _l2(conn)
    return Snapshot(bound, segments, mtus, vteps, known_hosts, _dhcp(conn), _l3(conn), _firewall(conn))


def _bound() -> Select[Any]:
    return select(port_binding_levels.c.port_id).where(port_binding_levels.c.driver.in_(L2_DRIVERS),
                                                       port_binding_levels.c.level == 0)


# -- L2 ------------------------------------------------------------------
def _l2(conn: Connection) -> tuple[tuple[BoundPort, ...], dict[str, SegmentRow], dict[str, int], dict[str, str]]:
    """Ports bound by the linuxbridge or openvswitch driver, with their addresses, segments, MTUs and peers' VTEPs."""
    rows = conn.execute(
        select(ports.c.id, ports.c.network_id, ports.c.binding_host_id, ports.c.mac_address,
               ports.c.admin_state_up, ports.c.device_owner, port_binding_levels.c.segment_id)
        .join(port_binding_levels, port_binding_levels.c.port_id == ports.c.id)
        .where(port_binding_levels.c.driver.in_(L2_DRIVERS), port_binding_levels.c.level == 0)
    ).all()
    ips: dict[str, list[str]] = defaultdict(list)
    if rows:
        alloc = select(ip_allocations.c.port_id, ip_allocations.c.ip_address).join(
            port_binding_levels, port_binding_levels.c.port_id == ip_allocations.c.port_id
        ).where(port_binding_levels.c.driver.in_(L2_DRIVERS))
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
        mtus = _mtus(conn, net_ids)
    vteps: dict[str, str] = {}
    for host, conf in conn.execute(select(agents.c.host, agents.c.configurations)
                                   .where(agents.c.agent_type.in_(L2_AGENTS))):
        ip = (conf or {}).get("tunneling_ip")
        if ip:
            vteps[host] = ip
    return bound, segments, mtus, vteps


def _mtus(conn: Connection, net_ids: Iterable[str]) -> dict[str, int]:
    rows = conn.execute(select(networks.c.id, networks.c.mtu).where(networks.c.id.in_(list(net_ids))))
    return {n: int(m) for n, m in rows if m is not None}


# -- DHCP ----------------------------------------------------------------
def _dhcp(conn: Connection) -> DhcpData:
    B = network_dhcp_agent_bindings
    served = tuple(DhcpServed(n, h, dhcp_device_id(n, h)) for n, h in conn.execute(
        select(B.c.network_id, agents.c.host).join(agents, agents.c.id == B.c.dhcp_agent_id)
        .where(agents.c.agent_type == DHCP_AGENT).order_by(B.c.network_id, agents.c.host)).all())
    net_ids = sorted({s.network_id for s in served})
    if not net_ids:
        return DhcpData()
    by_net: dict[str, list[SubnetRow]] = defaultdict(list)
    for s in conn.execute(select(subnets).where(subnets.c.network_id.in_(net_ids))
                          .order_by(subnets.c.created_at, subnets.c.id)):
        by_net[s.network_id].append(SubnetRow(
            s.id, s.cidr, int(s.ip_version), s.gateway_ip, bool(s.enable_dhcp), tuple(s.dns_nameservers or ()),
            tuple((r["destination"], r["nexthop"]) for r in s.host_routes or ()),
            s.ipv6_address_mode, s.ipv6_ra_mode))
    ips: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for port_id, subnet_id, ip in conn.execute(
            select(ip_allocations.c.port_id, ip_allocations.c.subnet_id, ip_allocations.c.ip_address)
            .where(ip_allocations.c.network_id.in_(net_ids))):
        ips[port_id].append((subnet_id, ip))
    port_rows: dict[str, list[PortRow]] = defaultdict(list)
    routed: set[str] = set()
    for p in conn.execute(select(ports.c.id, ports.c.network_id, ports.c.mac_address, ports.c.device_owner,
                                 ports.c.device_id, ports.c.binding_host_id, ports.c.project_id,
                                 ports.c.extra_dhcp_opts)
                          .where(ports.c.network_id.in_(net_ids)).order_by(ports.c.id)):
        options = tuple((o["opt_name"], o["opt_value"], int(o.get("ip_version", 4))) for o in p.extra_dhcp_opts or ())
        row = PortRow(p.id, p.network_id, p.mac_address, p.device_owner, p.device_id, p.binding_host_id,
                      options, tuple(sorted(ips.get(p.id, ()))), p.project_id)
        port_rows[p.network_id].append(row)
        if p.device_owner in ROUTER_INTERFACE_OWNERS:
            routed.update(sid for sid, _ in row.ips)
    mtu = _mtus(conn, net_ids)
    return DhcpData(served, {k: tuple(v) for k, v in by_net.items()},
                    {k: tuple(v) for k, v in port_rows.items()}, mtu, frozenset(routed))


# -- L3 ------------------------------------------------------------------
def _l3(conn: Connection) -> L3Data:
    l3_hosts = frozenset(conn.execute(select(agents.c.host).where(agents.c.agent_type == L3_AGENT)).scalars())
    rows = _scheduled(conn)
    ids = sorted({r.id for r in rows})
    if not ids:
        return L3Data(l3_hosts, ())
    fips: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rid, fip, fixed in conn.execute(
            select(floatingips.c.router_id, floatingips.c.floating_ip_address, floatingips.c.fixed_ip_address)
            .where(floatingips.c.router_id.in_(ids), floatingips.c.fixed_ip_address.is_not(None))):
        fips[rid].append((fip, fixed))
    routes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for rid, dest, hop in conn.execute(select(router_routes).where(router_routes.c.router_id.in_(ids))):
        routes[rid].append((dest, hop))
    return L3Data(l3_hosts, tuple(rows), _router_ports(conn, ids),
                  {k: tuple(sorted(v)) for k, v in fips.items()}, {k: tuple(sorted(v)) for k, v in routes.items()},
                  _sources(conn, ids))


def _scheduled(conn: Connection) -> list[RouterRow]:
    # A router with several agents (HA) would be on each; kaon schedules one.
    R = router_l3_agent_bindings
    rows = conn.execute(
        select(routers.c.id, routers.c.enable_snat, routers.c.admin_state_up, agents.c.host)
        .join(R, R.c.router_id == routers.c.id).join(agents, agents.c.id == R.c.l3_agent_id)
        .where(agents.c.agent_type == L3_AGENT)
        .order_by(routers.c.id, R.c.binding_index)).all()
    return [RouterRow(r.id, r.host, bool(r.enable_snat), bool(r.admin_state_up)) for r in rows]


def _router_ports(conn: Connection, router_ids: list[str]) -> dict[str, tuple[RouterPort, ...]]:
    rows = conn.execute(
        select(ports.c.id, ports.c.mac_address, router_ports.c.router_id, router_ports.c.port_type, networks.c.mtu)
        .join(router_ports, router_ports.c.port_id == ports.c.id).join(networks, networks.c.id == ports.c.network_id)
        .where(router_ports.c.router_id.in_(router_ids))).all()
    addrs: dict[str, list[PortAddress]] = defaultdict(list)
    for port_id, ip, cidr, gw, ra_mode, dns in conn.execute(
            select(ip_allocations.c.port_id, ip_allocations.c.ip_address, subnets.c.cidr, subnets.c.gateway_ip,
                   subnets.c.ipv6_ra_mode, subnets.c.dns_nameservers)
            .join(subnets, subnets.c.id == ip_allocations.c.subnet_id)
            .where(ip_allocations.c.port_id.in_([r.id for r in rows]))):
        addrs[port_id].append(PortAddress(ip, cidr, gw, ra_mode, tuple(dns or ())))
    out: dict[str, list[RouterPort]] = defaultdict(list)
    for r in rows:
        out[r.router_id].append(RouterPort(r.id, r.router_id, r.port_type == GW_OWNER, r.mac_address,
                                           int(r.mtu or 1500), tuple(sorted(addrs[r.id], key=lambda a: a.ip))))
    return {k: tuple(sorted(v, key=lambda p: p.id)) for k, v in out.items()}


def _sources(conn: Connection, router_ids: list[str]) -> dict[str, tuple[tuple[str, str, str], ...]]:
    """Per router, who may ask its metadata proxy: the ports on its interfaces' subnets."""
    A = ip_allocations
    behind = conn.execute(
        select(router_ports.c.router_id, A.c.subnet_id).join(A, A.c.port_id == router_ports.c.port_id)
        .where(router_ports.c.router_id.in_(router_ids), router_ports.c.port_type != GW_OWNER)).all()
    routers_of: dict[str, set[str]] = defaultdict(set)
    for rid, sid in behind:
        routers_of[sid].add(rid)
    if not routers_of:
        return {}
    out: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    for sid, ip, device_id, project_id in conn.execute(
            select(A.c.subnet_id, A.c.ip_address, ports.c.device_id, ports.c.project_id)
            .join(ports, ports.c.id == A.c.port_id)
            .where(A.c.subnet_id.in_(sorted(routers_of)), ports.c.device_id != "",
                   ports.c.device_owner.not_like("network:%"))):
        if ":" not in ip:  # 169.254.169.254 is IPv4 only
            for rid in routers_of[sid]:
                out[rid].add((ip, device_id, project_id))
    return {rid: tuple(sorted(v)) for rid, v in out.items()}


# -- security groups -----------------------------------------------------
def _firewall(conn: Connection) -> FirewallData:
    bound, hosts = _secured_ports(conn)
    group_ids = sorted({g for p in bound.values() if p.enabled for g in p.groups})
    if not group_ids:
        return FirewallData(bound, hosts)
    stateful = dict(conn.execute(select(security_groups.c.id, security_groups.c.stateful)
                                 .where(security_groups.c.id.in_(group_ids))).all())
    rules = _rules(conn, group_ids)
    remote = {r.remote_group_id for rs in rules.values() for r in rs if r.remote_group_id}
    return FirewallData(bound, hosts, {k: bool(v) for k, v in stateful.items()}, rules,
                        _members(conn, remote) if remote else {})


def _memberships(conn: Connection, port_ids: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for port_id, group_id in conn.execute(select(PSG.c.port_id, PSG.c.security_group_id)
                                          .where(PSG.c.port_id.in_(port_ids))):
        out[port_id].append(group_id)
    return out


def _secured_ports(conn: Connection) -> tuple[dict[str, PortSecurity], frozenset[str]]:
    bound = _bound()
    rows = conn.execute(select(ports.c.id, ports.c.binding_host_id, ports.c.port_security_enabled,
                               ports.c.allowed_address_pairs).where(ports.c.id.in_(bound))).all()
    groups = _memberships(conn, bound)
    return ({r.id: PortSecurity(bool(r.port_security_enabled), _pairs(r.allowed_address_pairs),
                                tuple(sorted(groups.get(r.id, ())))) for r in rows},
            frozenset(r.binding_host_id for r in rows))


def _pairs(raw: Any) -> tuple[tuple[str, str | None], ...]:
    return tuple((p["ip_address"], p.get("mac_address")) for p in (raw or []) if p.get("ip_address"))


def _rules(conn: Connection, group_ids: list[str]) -> dict[str, tuple[Rule, ...]]:
    R = security_group_rules
    out: dict[str, list[Rule]] = defaultdict(list)
    # remote_address_group_id rules are left out: kaon has no address groups (the API refuses them).
    for r in conn.execute(select(R).where(R.c.security_group_id.in_(group_ids),
                                          R.c.remote_address_group_id.is_(None)).order_by(R.c.id)):
        prefix = None if r.remote_ip_prefix is None else str(netaddr.IPNetwork(r.remote_ip_prefix).cidr)
        out[r.security_group_id].append(Rule(
            r.direction, r.ethertype, proto_number(canonical_protocol(r.protocol, r.ethertype)),
            r.port_range_min, r.port_range_max, prefix, r.remote_group_id))
    return {k: tuple(v) for k, v in out.items()}


def _members(conn: Connection, group_ids: set[str]) -> dict[str, tuple[str, ...]]:
    """Every address of every port in these groups (any host, bound or not), merged."""
    in_groups = select(PSG.c.port_id).where(PSG.c.security_group_id.in_(group_ids))
    groups = _memberships(conn, in_groups)
    addresses: dict[str, list[str]] = defaultdict(list)
    for port_id, ip in conn.execute(select(ip_allocations.c.port_id, ip_allocations.c.ip_address)
                                    .where(ip_allocations.c.port_id.in_(in_groups))):
        addresses[port_id].append(ip)
    for port_id, raw in conn.execute(select(ports.c.id, ports.c.allowed_address_pairs)
                                     .where(ports.c.id.in_(in_groups))):
        addresses[port_id].extend(ip for ip, _ in _pairs(raw))
    per_group: dict[str, list[str]] = defaultdict(list)
    for port_id, gids in groups.items():
        for gid in gids:
            if gid in group_ids:
                per_group[gid].extend(addresses.get(port_id, ()))
    return {gid: tuple(merge(per_group.get(gid, ()))) for gid in group_ids}


def merge(addresses: Iterable[str]) -> list[str]:
    """The fewest CIDRs covering ``addresses``; single hosts written as bare addresses."""
    merged = netaddr.cidr_merge([netaddr.IPNetwork(a) for a in addresses])
    return [str(n.ip) if n.size == 1 else str(n) for n in merged]
