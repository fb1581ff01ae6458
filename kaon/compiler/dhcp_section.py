"""The ``dhcp`` section of a host's intent: what its DHCP agent serves.

For every network scheduled to the host's DHCP agent
(``network_dhcp_agent_bindings``) whose DHCP port (kaon.core.agents.dhcp_ports)
is bound on the host, a ``DhcpNetwork`` (kaon.model.intent): the DHCP
port (``ns-``/``tap`` veth, addresses), the DHCP subnets, one reservation
per (port, address on a DHCP subnet) with host name ``host-10-0-0-5`` and
the port's extra DHCP options, the MTU, lease time and upstream resolvers,
and — only with isolated metadata — who may ask the metadata proxy.

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
The rows are read by kaon.core.agents.snapshot (``DhcpData``); this is pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kaon.compiler.snapshot import DhcpData, DhcpServed, PortRow, Snapshot, SubnetRow
from kaon.config import parse_bool, parse_int, parse_list
from kaon.model import names
from kaon.model.intent import (
    DhcpHost,
    DhcpNetwork,
    DhcpOption,
    DhcpPort,
    DhcpSubnet,
    HostIntent,
    MetadataSource,
    Route,
)

DHCP_OWNER = "network:dhcp"


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


class DhcpSection:
    name = "dhcp"

    def __init__(self, options: DhcpOptions) -> None:
        self.options = options

    def hosts(self, snap: Snapshot) -> set[str]:
        return {s.host for s in snap.dhcp.served}

    def project(self, snap: Snapshot, host: str, intent: HostIntent) -> HostIntent:
        part = self.networks(snap.dhcp, host)
        return dataclasses.replace(intent, dhcp=part) if part else intent

    def networks(self, data: DhcpData, host: str) -> dict[str, DhcpNetwork]:
        """The networks ``host`` serves, by id."""
        out = {}
        for served in data.served:
            if served.host == host:
                part = self._network(data, served)
                if part is not None:
                    out[served.network_id] = part
        return out

    def _network(self, data: DhcpData, served: DhcpServed) -> DhcpNetwork | None:
        net_id = served.network_id
        members = data.ports.get(net_id, ())
        own = next((p for p in members if p.device_id == served.device_id and p.host == served.host), None)
        dhcp_subnets = [s for s in data.subnets.get(net_id, ()) if s.enable_dhcp]
        if own is None or not own.ips or not dhcp_subnets:
            return None  # nothing to serve from, or nothing to serve
        mtu = int(data.mtu.get(net_id) or 1500)
        prefix = {s.id: s.cidr.split("/")[1] for s in data.subnets.get(net_id, ())}
        subnet_parts = tuple(self._subnet(s, data) for s in dhcp_subnets)
        isolated = any(s.isolated for s in subnet_parts)
        port = DhcpPort(own.id, names.dhcp_interface(own.id), names.tap(own.id), own.mac,
                        tuple(f"{ip}/{prefix[sid]}" for sid, ip in own.ips if sid in prefix), mtu,
                        {sid: ip for sid, ip in own.ips})
        return DhcpNetwork(port, subnet_parts, _hosts(members, {s.id for s in dhcp_subnets}), mtu, isolated,
                           self.options.lease_duration, self.options.dns_servers,
                           metadata_sources(members) if isolated else None)

    def _subnet(self, s: SubnetRow, data: DhcpData) -> DhcpSubnet:
        isolated = s.ip_version == 4 and (self.options.force_metadata or (
            self.options.isolated_metadata and s.id not in data.routed))
        return DhcpSubnet(s.id, s.cidr, s.ip_version, s.gateway_ip, s.dns_nameservers,
                          tuple(Route(d, n) for d, n in s.host_routes), s.enable_dhcp, isolated,
                          s.ipv6_address_mode if s.ip_version == 6 else None)


def hostname(ip: str) -> str:
    """Neutron's default DHCP host name for an address: host-10-0-0-5."""
    return "host-" + ip.replace(".", "-").replace(":", "-")


def metadata_sources(members: Iterable[PortRow]) -> dict[str, MetadataSource]:
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
                out[ip] = MetadataSource(p.device_id, p.project_id)
    return dict(sorted(out.items()))


def _hosts(members: tuple[PortRow, ...], dhcp_subnets: set[str]) -> tuple[DhcpHost, ...]:
    """One entry per (port, address on a DHCP subnet), DHCP ports excepted."""
    out = []
    for p in members:
        if p.device_owner == DHCP_OWNER:
            continue
        options = tuple(DhcpOption(*o) for o in p.extra_dhcp_opts)
        for sid, ip in p.ips:
            if sid in dhcp_subnets:
                out.append(DhcpHost(p.id, p.mac, ip, sid, hostname(ip), options))
    return tuple(out)
