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
                            "peers": {"<vtep ip>": [{"mac", "ips": [...]}]}}},
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

import dataclasses
import functools
import hashlib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

SCHEMA_VERSION = 1

# Field metadata: leave the key out of the JSON form when the value is None
# (OMIT_NONE), or also when it is empty (OMIT_EMPTY): such a section or
# option is absent rather than null.
OMIT_NONE: Mapping[str, str] = types.MappingProxyType({"omit": "none"})
OMIT_EMPTY: Mapping[str, str] = types.MappingProxyType({"omit": "empty"})


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


@dataclass(frozen=True)
class FloatingIp:
    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True)
class Route:
    destination: str
    nexthop: str


@dataclass(frozen=True)
class RouterIntent:
    admin_state_up: bool
    interfaces: tuple[RouterInterface, ...]
    gateway: RouterGateway | None
    enable_snat: bool
    floating_ips: tuple[FloatingIp, ...]
    routes: tuple[Route, ...]
    metadata: Mapping[str, MetadataSource] = field(default_factory=dict)  # IPv4 address -> source


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
        """The JSON form (what :func:`encode` gives, built by orjson in C: the compiler
        encodes every host's intent on every pass)."""
        out: dict[str, Any] = orjson.loads(orjson.dumps(self))
        prune = _pruner(HostIntent)
        if prune is not None:
            prune(out)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HostIntent:
        """The intent as the agent reads it; :class:`IntentVersionError` for another schema."""
        version = data.get("version") if isinstance(data, Mapping) else None
        if version != SCHEMA_VERSION:
            raise IntentVersionError(
                f"host intent has schema version {version!r}; this agent reads version {SCHEMA_VERSION} "
                "(upgrade the server and its agents together)")
        return decode(cls, data)

    def digest(self) -> str:
        return digest(self.to_json())


def digest(intent_json: Mapping[str, Any]) -> str:
    """A stable hash of an intent's JSON form (keys sorted)."""
    return hashlib.sha256(orjson.dumps(intent_json, option=orjson.OPT_SORT_KEYS)).hexdigest()


# -- JSON ----------------------------------------------------------------
def encode(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, leaving out what OMIT_NONE/OMIT_EMPTY say."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for name, omit in _fields(type(value)):
            item = getattr(value, name)
            if (item is None and omit) or (omit == "empty" and not item):
                continue
            out[name] = encode(item)
        return out
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {k: encode(v) for k, v in value.items()}
    return value


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, f.metadata.get("omit", "")) for f in dataclasses.fields(cls))


Prune = Callable[[Any], None]


@functools.cache
def _pruner(hint: Any) -> Prune | None:
    """What removes the OMIT_NONE/OMIT_EMPTY keys from the full JSON form of ``hint``, in place;
    None when nothing under ``hint`` is ever left out (that part is not walked at all)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _pruner(inner)
    if origin is tuple:
        return _each(_pruner(args[0]), lambda values: values)
    if origin in (Mapping, dict):
        return _each(_pruner(args[1]), lambda values: values.values())
    if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
        return None
    hints = _hints(hint)
    plan = [(name, omit, _pruner(hints[name])) for name, omit in _fields(hint)]
    plan = [(name, omit, inner) for name, omit, inner in plan if omit or inner is not None]
    if not plan:
        return None

    def prune(obj: dict[str, Any]) -> None:
        for name, omit, inner in plan:
            value = obj.get(name)
            if (value is None and omit) or (omit == "empty" and not value):
                obj.pop(name, None)
            elif inner is not None and value is not None:
                inner(value)

    return prune


def _each(inner: Prune | None, items: Callable[[Any], Any]) -> Prune | None:
    if inner is None:
        return None

    def prune(values: Any) -> None:
        for value in items(values):
            inner(value)

    return prune


T = TypeVar("T")
Reader = Callable[[Any], Any]


def decode(cls: type[T], data: Any, where: str = "intent") -> T:
    """Build ``cls`` from its JSON form, checking every field's type; :class:`IntentError` says where not."""
    try:
        out: T = _reader(cls)(data)  # type: ignore[arg-type]  # a class is hashable
    except _Misfit as exc:
        raise IntentError(f"{where}{''.join(reversed(exc.path))}: {exc.why}") from None
    return out


class _Misfit(Exception):
    """A value of the wrong shape; ``path`` grows on the way out, so a good intent pays nothing for it."""

    def __init__(self, why: str) -> None:
        self.why = why
        self.path: list[str] = []

    def at(self, segment: str) -> _Misfit:
        self.path.append(segment)
        return self


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _reader(hint: Any) -> Reader:
    """A function that reads a JSON value as ``hint``, built once per type (the agent reads every intent)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _optional(_reader(inner))
    if origin is tuple:
        return _sequence(_reader(args[0]))
    if origin in (Mapping, dict):
        return _mapping(_reader(args[1]))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint)
    if hint is Any:
        return lambda data: data
    return _scalar(hint)


def _optional(inner: Reader) -> Reader:
    def read(data: Any) -> Any:
        return None if data is None else inner(data)
    return read


def _sequence(item: Reader) -> Reader:
    def read(data: Any) -> tuple[Any, ...]:
        if not isinstance(data, list | tuple):
            raise _Misfit(f"expected a list, got {type(data).__name__}")
        out = []
        for i, value in enumerate(data):
            try:
                out.append(item(value))
            except _Misfit as exc:
                raise exc.at(f"[{i}]") from None
        return tuple(out)
    return read


def _mapping(value_reader: Reader) -> Reader:
    def read(data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise _Misfit(f"expected an object, got {type(data).__name__}")
        out = {}
        for key, value in data.items():
            try:
                out[str(key)] = value_reader(value)
            except _Misfit as exc:
                raise exc.at(f".{key}") from None
        return out
    return read


def _record(cls: type) -> Reader:
    hints = _hints(cls)
    names = frozenset(hints)
    plan = [(f.name, _reader(hints[f.name]),
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls)]

    def read(data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise _Misfit(f"expected an object, got {type(data).__name__}")
        unknown = data.keys() - names
        if unknown:
            raise _Misfit(f"unknown field(s) {', '.join(sorted(unknown))}")
        kwargs = {}
        for name, read_field, required in plan:
            if name in data:
                try:
                    kwargs[name] = read_field(data[name])
                except _Misfit as exc:
                    raise exc.at(f".{name}") from None
            elif required:
                raise _Misfit(f"missing field {name}")
        return cls(**kwargs)
    return read


def _scalar(hint: type) -> Reader:
    def read(data: Any) -> Any:
        # bool is an int in Python; an int where a bool belongs (or back) is a bug upstream.
        if data.__class__ is not hint and (not isinstance(data, hint) or (hint is int and isinstance(data, bool))):
            raise _Misfit(f"expected {hint.__name__}, got {type(data).__name__}")
        return data
    return read
