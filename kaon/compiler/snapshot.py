"""The compiler's input: typed rows of everything a host agent needs, nothing else.

kaon.core.agents.snapshot reads them from the database in one transaction; the
projections (``kaon.compiler.l2_section`` and the other sections) turn them
into host intents without seeing the database. Every collection here is
ordered or keyed, so the same rows always give the same intents.
"""

from __future__ import annotations

from dataclasses import dataclass, field


# -- L2 ------------------------------------------------------------------
@dataclass(frozen=True)
class BoundPort:
    """A port bound by the linuxbridge or openvswitch mechanism driver (binding level 0)."""
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


# -- DHCP ----------------------------------------------------------------
@dataclass(frozen=True)
class DhcpServed:
    """A network scheduled to a host's DHCP agent, and the device_id its DHCP port has there."""
    network_id: str
    host: str
    device_id: str


@dataclass(frozen=True)
class SubnetRow:
    id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None
    enable_dhcp: bool
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)
    ipv6_address_mode: str | None = None
    ipv6_ra_mode: str | None = None


@dataclass(frozen=True)
class PortRow:
    """Any port on a served network (DHCP reservations, the DHCP port itself, router interfaces)."""
    id: str
    network_id: str
    mac: str
    device_owner: str
    device_id: str
    host: str
    extra_dhcp_opts: tuple[tuple[str, str, int], ...]  # (opt_name, opt_value, ip_version)
    ips: tuple[tuple[str, str], ...]  # (subnet id, address)
    project_id: str = ""


@dataclass(frozen=True)
class DhcpData:
    served: tuple[DhcpServed, ...] = ()
    subnets: dict[str, tuple[SubnetRow, ...]] = field(default_factory=dict)  # by network
    ports: dict[str, tuple[PortRow, ...]] = field(default_factory=dict)  # by network
    mtu: dict[str, int] = field(default_factory=dict)
    routed: frozenset[str] = frozenset()  # subnets with a router interface


# -- L3 ------------------------------------------------------------------
@dataclass(frozen=True)
class PortAddress:
    ip: str
    cidr: str
    gateway_ip: str | None
    ipv6_ra_mode: str | None = None
    dns_nameservers: tuple[str, ...] = ()


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
    l3_hosts: frozenset[str] = frozenset()
    routers: tuple[RouterRow, ...] = ()
    ports: dict[str, tuple[RouterPort, ...]] = field(default_factory=dict)  # by router
    fips: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)  # router -> (fip, fixed)
    routes: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    # router -> (ip, instance id, project id) of the ports behind its interfaces
    sources: dict[str, tuple[tuple[str, str, str], ...]] = field(default_factory=dict)


# -- security groups -----------------------------------------------------
@dataclass(frozen=True)
class PortSecurity:
    enabled: bool
    pairs: tuple[tuple[str, str | None], ...]  # (ip or cidr, mac or None)
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    direction: str
    ethertype: str
    protocol: int | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None


@dataclass(frozen=True)
class FirewallData:
    ports: dict[str, PortSecurity] = field(default_factory=dict)  # bound ports (linuxbridge, openvswitch), by id
    hosts: frozenset[str] = frozenset()  # the hosts those ports are bound on
    stateful: dict[str, bool] = field(default_factory=dict)  # group -> stateful
    rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)  # group -> rules
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # remote group -> addresses


# -- the whole -----------------------------------------------------------
@dataclass(frozen=True)
class Snapshot:
    ports: tuple[BoundPort, ...] = ()
    segments: dict[str, SegmentRow] = field(default_factory=dict)
    network_mtu: dict[str, int] = field(default_factory=dict)
    vteps: dict[str, str] = field(default_factory=dict)  # host -> tunneling_ip of its Linux bridge agent
    known_hosts: frozenset[str] = frozenset()  # hosts that had an intent: they keep one, even empty
    dhcp: DhcpData = field(default_factory=DhcpData)
    routers: L3Data = field(default_factory=L3Data)
    firewall: FirewallData = field(default_factory=FirewallData)

