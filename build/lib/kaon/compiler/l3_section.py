"""The ``routers`` section of a host's intent: what its L3 agent builds.

For every router scheduled to the host's L3 agent (``router_l3_agent_bindings``)::

    {"<router id>": {
        "admin_state_up": bool,
        "interfaces": [{"port_id", "device": "qr-<port[:11]>", "tap": "tap<port[:11]>",
                        "mac", "cidrs": ["10.0.0.1/24"], "mtu"}],
        "gateway": {"port_id", "device": "qg-<port[:11]>", "tap", "mac", "cidrs",
                    "gateway_ip", "mtu"} | null,
        "enable_snat": bool,
        "floating_ips": [{"floating_ip", "fixed_ip"}],   # associated ones only
        "routes": [{"destination", "nexthop"}],
        "metadata": {"10.0.0.5": {"instance_id", "project_id"}}}}

``metadata`` is what the router's metadata proxy (kaon.agent.metadata_proxy)
needs to say who asks: per IPv4 address on the subnets behind the router's
interfaces, the port's device_id (the instance) and project. Only ports that
belong to something and are not the network's own (``network:*``) are in it.

A router that is administratively down is still built, interfaces plugged
(its ports go ACTIVE, as Neutron's do, and clients such as tempest wait for
that), but it does not forward: the agent turns ``ip_forward`` off in its
namespace.

The ports themselves (their taps, bridges, segments) are in the L2 part of
the same intent: kaon.core.l3.l3_binding binds them on this host. ``read`` is a
few SELECTs; ``project`` is pure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import netaddr
from sqlalchemy import Connection, select

from kaon.compiler.snapshot import Snapshot
from kaon.db.agent_tables import agents, router_l3_agent_bindings
from kaon.db.core_tables import ip_allocations, networks, ports, subnets
from kaon.db.l3_tables import floatingips, router_ports, router_routes, routers

L3_AGENT = "L3 agent"
GW_OWNER = "network:router_gateway"


@dataclass(frozen=True)
class PortAddress:
    ip: str
    cidr: str
    gateway_ip: str | None


@dataclass(frozen=True)
class RouterPort:
    id: str
    router_id: str
    gateway: bool
    mac: str
    mtu: int
    addresses: tuple[PortAddress, ...]


@dataclass(frozen=True)
class RouterRow:
    id: str
    host: str
    enable_snat: bool
    admin_state_up: bool = True


@dataclass(frozen=True)
class L3Data:
    l3_hosts: frozenset[str]
    routers: tuple[RouterRow, ...]
    ports: dict[str, tuple[RouterPort, ...]] = field(default_factory=dict)  # by router
    fips: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # router -> (fip, fixed)
    routes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # router -> (ip, instance id, project id) of the ports behind its interfaces
    sources: dict[str, tuple[tuple[str, str, str], ...]] = field(default_factory=dict)


def _scheduled(conn: Connection) -> list[RouterRow]:
    # A router with several agents (HA) would be on each; kaon schedules one.
    R = router_l3_agent_bindings
    rows = conn.execute(
        select(routers.c.id, routers.c.enable_snat, routers.c.admin_state_up, agents.c.host)
        .join(R, R.c.router_id == routers.c.id).join(agents, agents.c.id == R.c.l3_agent_id)
        .where(agents.c.agent_type == L3_AGENT)
        .order_by(routers.c.id, R.c.binding_index)).all()
    return [RouterRow(r.id, r.host, bool(r.enable_snat), bool(r.admin_state_up)) for r in rows]


def _ports(conn: Connection, router_ids: list[str]) -> dict[str, tuple[RouterPort, ...]]:
    rows = conn.execute(
        select(ports.c.id, ports.c.mac_address, router_ports.c.router_id, router_ports.c.port_type, networks.c.mtu)
        .join(router_ports, router_ports.c.port_id == ports.c.id).join(networks, networks.c.id == ports.c.network_id)
        .where(router_ports.c.router_id.in_(router_ids))).all()
    addrs: dict[str, list[PortAddress]] = defaultdict(list)
    for port_id, ip, cidr, gw in conn.execute(
            select(ip_allocations.c.port_id, ip_allocations.c.ip_address, subnets.c.cidr, subnets.c.gateway_ip)
            .join(subnets, subnets.c.id == ip_allocations.c.subnet_id)
            .where(ip_allocations.c.port_id.in_([r.id for r in rows]))):
        addrs[port_id].append(PortAddress(ip, cidr, gw))
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


class RoutersSection:
    name = "routers"

    def read(self, conn: Connection) -> L3Data:
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
        return L3Data(l3_hosts, tuple(rows), _ports(conn, ids),
                      {k: tuple(sorted(v)) for k, v in fips.items()}, {k: tuple(sorted(v)) for k, v in routes.items()},
                      _sources(conn, ids))

    def hosts(self, data: L3Data) -> set[str]:
        return set(data.l3_hosts)

    def project(self, data: L3Data, host: str, l2: Snapshot) -> dict[str, Any] | None:
        return project_routers(data, host)


def project_routers(data: L3Data, host: str) -> dict[str, Any]:
    """The routers of ``host`` (pure)."""
    out: dict[str, Any] = {}
    for router in data.routers:
        if router.host != host or router.id in out:
            continue
        rports = data.ports.get(router.id, ())
        gw = next((p for p in rports if p.gateway), None)
        out[router.id] = {
            "admin_state_up": router.admin_state_up,
            "interfaces": [_device(p, "qr-") for p in rports if not p.gateway],
            "gateway": _gateway(gw) if gw is not None else None,
            "enable_snat": router.enable_snat,
            # Without a gateway a floating IP has nowhere to live.
            "floating_ips": [{"floating_ip": f, "fixed_ip": x} for f, x in data.fips.get(router.id, ())]
            if gw is not None else [],
            "routes": [{"destination": d, "nexthop": n} for d, n in data.routes.get(router.id, ())],
            "metadata": {ip: {"instance_id": i, "project_id": p} for ip, i, p in data.sources.get(router.id, ())},
        }
    return out


def _device(port: RouterPort, prefix: str) -> dict[str, Any]:
    cidrs = [f"{a.ip}/{netaddr.IPNetwork(a.cidr).prefixlen}" for a in port.addresses]
    return {"port_id": port.id, "device": f"{prefix}{port.id[:11]}", "tap": f"tap{port.id[:11]}",
            "mac": port.mac, "cidrs": cidrs, "mtu": port.mtu}


def _gateway(port: RouterPort) -> dict[str, Any]:
    # The default route goes via the gateway of the first IPv4 subnet that has one.
    v4 = [a for a in port.addresses if netaddr.IPAddress(a.ip).version == 4 and a.gateway_ip]
    return {**_device(port, "qg-"), "gateway_ip": v4[0].gateway_ip if v4 else None}
