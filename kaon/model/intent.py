"""A host's intent: everything one host's agent must make real, typed and versioned.

The compiler (kaon.compiler) produces one :class:`HostIntent` per host; the
server stores its JSON form (``host_intents.intent``) with a digest of it
and hands it to the agent over the bus (``get_intent``); the agent reads it
back with :meth:`HostIntent.from_json`, which refuses another schema
version with :class:`IntentVersionError` rather than guess. Every name in
it is pre-resolved (kaon.model.names), every peer, address and rule set
expanded: an agent never computes membership.

The JSON form, section by section (a section a host has nothing for is
left out, so an idle host's intent is ``{"version", "host", "networks": {},
"ports": {}}``)::

    {"version": 1, "host": "h1",
     "networks": {"<net>": {"bridge": "brq…", "network_type": "vxlan",
                            "segmentation_id": 1001, "physical_network": null, "mtu": 1450,
                            "peers": {"<vtep ip>": [{"mac", "ips": [...]}]},
                            "flood_arp": true}},  # only when true
     "ports": {"<port>": {"network_id", "device": "tap…", "mac", "ips": [...],
                          "admin_state_up": true, "device_owner"}},
     "routers": {"<router>": RouterIntent},     # kaon.compiler.l3_section
     "dhcp": {"<net>": DhcpNetwork},            # kaon.compiler.dhcp_section
     "firewall": FirewallIntent}                # kaon.compiler.firewall_section

Bump :data:`SCHEMA_VERSION` with any change an older agent would misread
(a field renamed or given a new meaning; a new section an agent must not
ignore). The server and its agents are upgraded together; a mismatch says
so in the agent's log and keeps the old intent in force.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from kaon.model.typed_json import OMIT_EMPTY, OMIT_NONE, ShapeError, decode, dumps_pruned

SCHEMA_VERSION = 1



class IntentError(ValueError):
    """An intent that does not have the shape this code reads."""


class IntentVersionError(IntentError):
    """An intent of a schema version this agent does not know."""


# -- L2 ------------------------------------------------------------------
@dataclass(frozen=True)
class PeerPort:
    """A port on another host of a tunnelled network (l2population's FDB and ARP entries)."""
    mac: str
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class NetworkIntent:
    bridge: str
    network_type: str
    segmentation_id: int | None
    physical_network: str | None
    mtu: int
    peers: Mapping[str, tuple[PeerPort, ...]] = field(default_factory=dict)  # VTEP -> its ports
    # l2population on Linux bridge hosts: ARP and neighbour solicitations go to the peers rather
    # than being answered by the VXLAN device, which cannot answer for every allowed address pair
    # on the network (kaon.compiler.l2_section). Left out of the JSON form when false.
    flood_arp: bool = field(default=False, metadata=OMIT_EMPTY)


@dataclass(frozen=True)
class PortIntent:
    network_id: str
    device: str
    mac: str
    ips: tuple[str, ...]
    admin_state_up: bool
    device_owner: str


# -- L3 ------------------------------------------------------------------
@dataclass(frozen=True)
class MetadataSource:
    """Who an address on a network is, for the metadata proxy's headers."""
    instance_id: str
    project_id: str


@dataclass(frozen=True)
class RouterInterface:
    port_id: str
    device: str  # qr-… (or qg-… for the gateway), inside the router's namespace
    tap: str  # the veth end in the host's namespace that L2 plugs
    mac: str
    cidrs: tuple[str, ...]
    mtu: int


@dataclass(frozen=True)
class RouterGateway(RouterInterface):
    gateway_ip: str | None  # the default route's next hop, if the external subnet has one
    # The IPv6 default route's next hop, if the external network has a v6 subnet with a gateway.
    gateway_ip6: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class FloatingIp:
    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True)
class Route:
    destination: str
    nexthop: str


@dataclass(frozen=True)
class RaPrefix:
    """An IPv6 subnet the router advertises on one of its ``qr-`` devices (radvd)."""
    device: str
    cidr: str
    mtu: int
    ra_mode: str | None = field(default=None, metadata=OMIT_NONE)  # slaac | dhcpv6-stateful | dhcpv6-stateless
    dns_nameservers: tuple[str, ...] = field(default=(), metadata=OMIT_EMPTY)


@dataclass(frozen=True)
class RouterIntent:
    admin_state_up: bool
    interfaces: tuple[RouterInterface, ...]
    gateway: RouterGateway | None
    enable_snat: bool
    floating_ips: tuple[FloatingIp, ...]
    routes: tuple[Route, ...]
    metadata: Mapping[str, MetadataSource] = field(default_factory=dict)  # IPv4 address -> source
    # IPv6 subnets behind qr- devices with an ipv6_ra_mode: the router sends their RAs.
    advertise: tuple[RaPrefix, ...] = field(default=(), metadata=OMIT_EMPTY)


# -- DHCP ----------------------------------------------------------------
@dataclass(frozen=True)
class DhcpPort:
    port_id: str
    device: str  # ns-…, inside the qdhcp- namespace
    tap: str
    mac: str
    cidrs: tuple[str, ...]
    mtu: int
    ips: Mapping[str, str]  # subnet id -> the port's address on it


@dataclass(frozen=True)
class DhcpSubnet:
    id: str
    cidr: str
    ip_version: int
    gateway_ip: str | None
    dns_nameservers: tuple[str, ...]
    host_routes: tuple[Route, ...]
    enable_dhcp: bool
    isolated: bool  # no router on it: metadata goes through the DHCP port
    # IPv6 only: how clients get addresses (slaac, dhcpv6-stateful, dhcpv6-stateless).
    ipv6_address_mode: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class DhcpOption:
    opt_name: str
    opt_value: str
    ip_version: int = 4


@dataclass(frozen=True)
class DhcpHost:
    port_id: str
    mac: str
    ip: str
    subnet_id: str
    hostname: str
    extra_dhcp_opts: tuple[DhcpOption, ...] = ()


@dataclass(frozen=True)
class DhcpNetwork:
    port: DhcpPort
    subnets: tuple[DhcpSubnet, ...]
    hosts: tuple[DhcpHost, ...]
    mtu: int
    isolated_metadata: bool
    lease_duration: int
    dns_servers: tuple[str, ...]
    # Only with isolated metadata: the proxy in the namespace answers then.
    metadata: Mapping[str, MetadataSource] | None = field(default=None, metadata=OMIT_NONE)


# -- security groups -----------------------------------------------------
@dataclass(frozen=True)
class AddressPair:
    ip_address: str
    mac_address: str


@dataclass(frozen=True)
class FirewallPort:
    """A filtered port; without port security only the first three fields (allow all)."""
    device: str
    mac: str
    port_security: bool
    ips: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)
    security_groups: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)
    stateful: bool | None = field(default=None, metadata=OMIT_NONE)
    allowed_address_pairs: tuple[AddressPair, ...] | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class FirewallRule:
    direction: str  # ingress | egress
    ethertype: str  # IPv4 | IPv6
    protocol: int | None
    port_range_min: int | None  # ICMP: the type
    port_range_max: int | None  # ICMP: the code
    remote_ip_prefix: str | None
    remote_set: str | None  # a remote group's addresses, as a kernel set (sets below)


@dataclass(frozen=True)
class SecurityGroupIntent:
    stateful: bool
    rules: tuple[FirewallRule, ...]


@dataclass(frozen=True)
class FirewallIntent:
    ports: Mapping[str, FirewallPort]
    groups: Mapping[str, SecurityGroupIntent]
    sets: Mapping[str, tuple[str, ...]]


# -- the whole -----------------------------------------------------------
@dataclass(frozen=True)
class HostIntent:
    host: str
    networks: Mapping[str, NetworkIntent] = field(default_factory=dict)
    ports: Mapping[str, PortIntent] = field(default_factory=dict)
    routers: Mapping[str, RouterIntent] = field(default_factory=dict, metadata=OMIT_EMPTY)
    dhcp: Mapping[str, DhcpNetwork] = field(default_factory=dict, metadata=OMIT_EMPTY)
    firewall: FirewallIntent | None = field(default=None, metadata=OMIT_EMPTY)
    version: int = SCHEMA_VERSION

    def to_json(self) -> dict[str, Any]:
        """The JSON form (kaon.model.typed_json: orjson in C, since the compiler encodes
        every host's intent on every pass)."""
        return dumps_pruned(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostIntent:
        """The intent as the agent reads it; :class:`IntentVersionError` for another schema."""
        version = data.get("version") if isinstance(data, Mapping) else None
        if version != SCHEMA_VERSION:
            raise IntentVersionError(
                f"host intent has schema version {version!r}; this agent reads version {SCHEMA_VERSION} "
                "(upgrade the server and its agents together)")
        try:
            return decode(cls, data, "intent")
        except ShapeError as exc:
            raise IntentError(str(exc)) from None

    def digest(self) -> str:
        """A stable hash of the content. Taken over orjson's full dump of the dataclasses (keys
        sorted), not over :meth:`to_json`: the compiler digests every host on every pass and
        needs the JSON form only for the hosts whose digest moved."""
        return hashlib.sha256(orjson.dumps(self, option=orjson.OPT_SORT_KEYS)).hexdigest()
