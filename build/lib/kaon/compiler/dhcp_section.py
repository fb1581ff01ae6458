"""The ``dhcp`` section of a host's intent: what its DHCP agent serves.

For every network scheduled to the host's DHCP agent
(``network_dhcp_agent_bindings``) whose DHCP port (kaon.core.agents.dhcp_ports)
is bound on the host::

    {"<network id>": {
        "port": {"port_id", "device": "ns-<port[:11]>", "tap": "tap<port[:11]>", "mac",
                 "cidrs": ["10.0.0.2/24"], "mtu"},
        "subnets": [{"id", "cidr", "ip_version", "gateway_ip", "dns_nameservers", "host_routes",
                     "enable_dhcp", "isolated"}],
        "hosts": [{"mac", "ip", "hostname": "host-10-0-0-5", "extra_dhcp_opts": [...]}],
        "mtu", "isolated_metadata": bool, "lease_duration": int, "dns_servers": [...],
        "metadata": {"10.0.0.5": {"instance_id", "project_id"}}}}   # only when isolated_metadata

Isolated metadata (Neutron's ``enable_isolated_metadata`` / ``force_metadata``,
server options here since the server compiles): a DHCP subnet is
*isolated* when no router interface holds an address on it; the agent then
puts 169.254.169.254/32 on the DHCP port and pushes a host route to it via
the DHCP port's address on that subnet (seed 002: a provider network
without a router, where metadata otherwise "never arrives").
``dns_servers`` is ``dnsmasq_dns_servers``: dnsmasq's upstream resolvers.
``metadata`` is what the metadata proxy in the namespace needs to say who
asks (kaon.agent.metadata_proxy): per IPv4 address on the network, the
port's device_id (the instance) and project.
``read`` is a few SELECTs; ``project`` is pure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from kaon.compiler.snapshot import Snapshot
from kaon.config import parse_bool, parse_int, parse_list
from kaon.core.agents.scheduling import DHCP_AGENT, dhcp_device_id
from kaon.db.agent_tables import agents, network_dhcp_agent_bindings
from kaon.db.core_tables import ip_allocations, networks, ports, subnets

DHCP_OWNER = "network:dhcp"
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")
METADATA_CIDR = "169.254.169.254/32"


@dataclass(frozen=True)
class DhcpOptions:
    lease_duration: int = 86400
    dns_servers: tuple[str, ...] = ()
    isolated_metadata: bool = False
    force_metadata: bool = False


def dhcp_options(cfg: Any) -> DhcpOptions:
    """Neutron's dhcp_agent.ini options, read from the server's configuration ([DEFAULT])."""
    return DhcpOptions(
        lease_duration=cfg.get_typed("DEFAULT", "dhcp_lease_duration", parse_int, 86400),
        dns_servers=tuple(cfg.get_typed("DEFAULT", "dnsmasq_dns_servers", parse_list, ())),
        isolated_metadata=cfg.get_typed("DEFAULT", "enable_isolated_metadata", parse_bool, False),
        force_metadata=cfg.get_typed("DEFAULT", "force_metadata", parse_bool, False),
    )


@dataclass(frozen=True)
class PortRow:
    id: str
    network_id: str
    mac: str
    device_owner: str
    device_id: str
    host: str
    extra_dhcp_opts: tuple[Any, ...]
    ips: tuple[tuple[str, str], ...]  # (subnet id, address)
    project_id: str = ""


@dataclass(frozen=True)
class DhcpData:
    served: tuple[tuple[str, str], ...]  # (network, host) pairs
    subnets: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # by network
    ports: dict[str, tuple[PortRow, ...]] = field(default_factory=dict)  # by network
    mtu: dict[str, int] = field(default_factory=dict)
    routed: frozenset[str] = frozenset()  # subnets with a router interface


class DhcpSection:
    name = "dhcp"

    def __init__(self, options: DhcpOptions) -> None:
        self.options = options

    def read(self, conn: Connection) -> DhcpData:
        B = network_dhcp_agent_bindings
        served = tuple((n, h) for n, h in conn.execute(
            select(B.c.network_id, agents.c.host).join(agents, agents.c.id == B.c.dhcp_agent_id)
            .where(agents.c.agent_type == DHCP_AGENT).order_by(B.c.network_id, agents.c.host)).all())
        net_ids = sorted({n for n, _ in served})
        if not net_ids:
            return DhcpData(())
        by_net: dict[str, list[Any]] = defaultdict(list)
        for s in conn.execute(select(subnets).where(subnets.c.network_id.in_(net_ids))
                              .order_by(subnets.c.created_at, subnets.c.id)):
            by_net[s.network_id].append(s)
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
            row = PortRow(p.id, p.network_id, p.mac_address, p.device_owner, p.device_id, p.binding_host_id,
                          tuple(p.extra_dhcp_opts or ()), tuple(sorted(ips.get(p.id, ()))), p.project_id)
            port_rows[p.network_id].append(row)
            if p.device_owner in ROUTER_INTERFACE_OWNERS:
                routed.update(sid for sid, _ in row.ips)
        mtu = dict(conn.execute(select(networks.c.id, networks.c.mtu).where(networks.c.id.in_(net_ids))).all())
        return DhcpData(served, {k: tuple(v) for k, v in by_net.items()},
                        {k: tuple(v) for k, v in port_rows.items()}, mtu, frozenset(routed))

    def hosts(self, data: DhcpData) -> set[str]:
        return {host for _, host in data.served}

    def project(self, data: DhcpData, host: str, l2: Snapshot) -> dict[str, Any] | None:
        out = {}
        for net_id, served_by in data.served:
            if served_by == host:
                part = self._network(data, net_id, host)
                if part is not None:
                    out[net_id] = part
        return out

    def _network(self, data: DhcpData, net_id: str, host: str) -> dict[str, Any] | None:
        device_id = dhcp_device_id(net_id, host)
        members = data.ports.get(net_id, ())
        own = next((p for p in members if p.device_id == device_id and p.host == host), None)
        dhcp_subnets = [s for s in data.subnets.get(net_id, ()) if s.enable_dhcp]
        if own is None or not own.ips or not dhcp_subnets:
            return None  # nothing to serve from, or nothing to serve
        mtu = int(data.mtu.get(net_id) or 1500)
        cidr_of = {s.id: s.cidr for s in data.subnets.get(net_id, ())}
        prefix = {sid: cidr_of[sid].split("/")[1] for sid in cidr_of}
        subnet_parts = [self._subnet(s, data) for s in dhcp_subnets]
        isolated = any(s["isolated"] for s in subnet_parts)
        part = {
            "port": {"port_id": own.id, "device": f"ns-{own.id[:11]}", "tap": f"tap{own.id[:11]}", "mac": own.mac,
                     "cidrs": [f"{ip}/{prefix[sid]}" for sid, ip in own.ips if sid in prefix], "mtu": mtu,
                     "ips": {sid: ip for sid, ip in own.ips}},
            "subnets": subnet_parts,
            "hosts": _hosts(members, {s.id for s in dhcp_subnets}),
            "mtu": mtu,
            "isolated_metadata": isolated,
            "lease_duration": self.options.lease_duration,
            "dns_servers": list(self.options.dns_servers),
        }
        if isolated:
            part["metadata"] = metadata_sources(members)
        return part

    def _subnet(self, s: Any, data: DhcpData) -> dict[str, Any]:
        isolated = s.ip_version == 4 and (self.options.force_metadata or (
            self.options.isolated_metadata and s.id not in data.routed))
        return {"id": s.id, "cidr": s.cidr, "ip_version": s.ip_version, "gateway_ip": s.gateway_ip,
                "dns_nameservers": list(s.dns_nameservers or []), "host_routes": list(s.host_routes or []),
                "enable_dhcp": bool(s.enable_dhcp), "isolated": isolated}


def hostname(ip: str) -> str:
    """Neutron's default DHCP host name for an address: host-10-0-0-5."""
    return "host-" + ip.replace(".", "-").replace(":", "-")


def metadata_sources(members: Iterable[PortRow]) -> dict[str, dict[str, str]]:
    """IPv4 address -> the instance and project behind it, for the metadata proxy.

    Only ports that belong to something (a device_id) and are not the
    network's own (``network:*``: DHCP, router) can ask for metadata.
    """
    out = {}
    for p in members:
        if not p.device_id or p.device_owner.startswith("network:"):
            continue
        for _, ip in p.ips:
            if ":" not in ip:
                out[ip] = {"instance_id": p.device_id, "project_id": p.project_id}
    return dict(sorted(out.items()))


def _hosts(members: tuple[PortRow, ...], dhcp_subnets: set[str]) -> list[dict[str, Any]]:
    """One entry per (port, address on a DHCP subnet), DHCP ports excepted."""
    out = []
    for p in members:
        if p.device_owner == DHCP_OWNER:
            continue
        for sid, ip in p.ips:
            if sid in dhcp_subnets:
                out.append({"port_id": p.id, "mac": p.mac, "ip": ip, "subnet_id": sid, "hostname": hostname(ip),
                            "extra_dhcp_opts": [dict(o) for o in p.extra_dhcp_opts]})
    return out
