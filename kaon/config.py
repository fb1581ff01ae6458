"""Neutron-style configuration, read once at the edge and passed in.

kaon reads the ini files operators already have (``neutron.conf``,
``ml2_conf.ini``, an agent's ``linuxbridge_agent.ini`` ...), with oslo.config's
rules: several ``--config-file``\\ s merged in order (a later file wins per
option), ``[DEFAULT]`` is a section like any other (nothing inherits from it),
section names other than ``DEFAULT`` are case-insensitive (``[OVS]`` is
``[ovs]``), whole-line ``#``/``;`` comments, values in matching quotes are
unquoted, lists are comma-separated with whitespace stripped, and
``$option`` / ``${section.option}`` in a known option's value is substituted.

Known options become typed, frozen dataclasses; every section and option (known
or not) stays readable in :attr:`Config.sections`, so an agent's options never
cause an error. A bad value of a known option raises :class:`ConfigError`
naming the file, the section and the option. Why configparser and not
oslo.config: ``docs/design/config.md``.
"""

from __future__ import annotations

import configparser
import os
import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

__all__ = ["Config", "ConfigError", "load_config"]

MAX_VLAN, MAX_VNI, MAX_GRE_ID = 4094, 2**24 - 1, 2**32 - 1
_NO_DEFAULT_SECTION = "\x00kaon: no section inherits from DEFAULT"
_TRUE, _FALSE = ("true", "1", "on", "yes"), ("false", "0", "off", "no")
_OVERRIDES = "<overrides>"


class ConfigError(ValueError):
    """A configuration file or value kaon cannot use; says where it is."""

    def __init__(self, message: str, *, file: str | None = None, section: str | None = None,
                 option: str | None = None) -> None:
        where = ": ".join(p for p in (file, section and f"[{section}]" + (f" {option}" if option else "")) if p)
        super().__init__(f"{where}: {message}" if where else message)
        self.file, self.section, self.option = file, section, option


# --- value parsers: str -> typed value, ValueError with a short reason ---

def parse_bool(value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE or low in _FALSE:
        return low in _TRUE
    raise ValueError(f"'{value}' is not a boolean (true/false, yes/no, on/off, 1/0)")


def parse_int(value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ValueError(f"'{value}' is not an integer") from None


def parse_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def parse_mapping(value: str) -> dict[str, str]:
    """``key:value`` pairs, Neutron's ``parse_mappings`` (unique keys)."""
    result: dict[str, str] = {}
    for entry in parse_list(value):
        key, sep, val = entry.partition(":")
        if not sep:
            raise ValueError(f"Invalid mapping: '{entry}'")
        key, val = key.strip(), val.strip()
        if not key:
            raise ValueError(f"Missing key in mapping: '{entry}'")
        if not val:
            raise ValueError(f"Missing value in mapping: '{entry}'")
        if key in result:
            raise ValueError(f"Key {key} in mapping: '{entry}' not unique")
        result[key] = val
    return result


def _mtu_mapping(value: str) -> Mapping[str, int]:
    return MappingProxyType({k: _bounded(parse_int(v), 0, None) for k, v in parse_mapping(value).items()})


def _bounded(n: int, low: int | None, high: int | None) -> int:
    if (low is not None and n < low) or (high is not None and n > high):
        raise ValueError(f"{n} is out of range ({low if low is not None else '-inf'} through "
                         f"{high if high is not None else 'inf'})")
    return n


def parse_vlan_ranges(value: str) -> Mapping[str, tuple[tuple[int, int], ...]]:
    """``physnet`` or ``physnet:min:max`` entries; order of physnets kept."""
    result: dict[str, list[tuple[int, int]]] = {}
    for entry in parse_list(value):
        if ":" not in entry:
            result.setdefault(entry, [])
            continue
        parts = entry.split(":")
        if len(parts) != 3:
            raise ValueError(f"Invalid network VLAN range: '{entry}' - 'Need exactly two values for VLAN range'.")
        physnet, lo, hi = (p.strip() for p in parts)
        if not physnet:
            raise ValueError("Empty physical network name.")
        tags = []
        for tag in (lo, hi):
            if not tag.isdigit() or not 1 <= int(tag) <= MAX_VLAN:
                raise ValueError(f"Invalid network VLAN range: '{entry}' - '{tag} is not a valid VLAN tag'.")
            tags.append(int(tag))
        if tags[1] < tags[0]:
            raise ValueError(f"Invalid network VLAN range: '{entry}' - "
                             "'End of VLAN range is less than start of VLAN range'.")
        result.setdefault(physnet, []).append((tags[0], tags[1]))
    return MappingProxyType({k: tuple(v) for k, v in result.items()})


def _tunnel_ranges(kind: str, maximum: int) -> Callable[[str], tuple[tuple[int, int], ...]]:
    def parse(value: str) -> tuple[tuple[int, int], ...]:
        ranges = []
        for entry in parse_list(value):
            parts = [p.strip() for p in entry.split(":")]
            if len(parts) != 2 or not all(p.isdigit() for p in parts):
                raise ValueError(f"Invalid network tunnel range: '{entry}' - expected <min>:<max>")
            lo, hi = int(parts[0]), int(parts[1])
            for ident in (lo, hi):
                if not 1 <= ident <= maximum:
                    raise ValueError(f"Invalid network tunnel range: '{entry}' - "
                                     f"{ident} is not a valid {kind} identifier")
            if hi < lo:
                raise ValueError(f"Invalid network tunnel range: '{entry}' - "
                                 "End of tunnel range is less than start of tunnel range")
            ranges.append((lo, hi))
        return tuple(ranges)
    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.strip() not in allowed:
            raise ValueError(f"'{value}' is not one of {', '.join(allowed)}")
        return value.strip()
    return parse


def _mac(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", value.strip()):
        raise ValueError(f"'{value}' is not a MAC address")
    return value.strip().lower()


def _url(value: str) -> str:
    if value and not re.match(r"https?://[^/]", value):
        raise ValueError(f"'{value}' is not an http(s) URL")
    return value.rstrip("/")


def _opt(default: Any = MISSING, parse: Callable[[str], Any] | None = None, *, low: int | None = None,
         high: int | None = None, aliases: tuple[str, ...] = (), factory: Callable[[], Any] | None = None) -> Any:
    """A known option: its default, how to parse it, and older names it answers to."""
    meta = {"parse": parse, "low": low, "high": high, "aliases": aliases}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# Parsers picked from the annotation when an option does not name its own.
_BY_ANNOTATION: dict[str, Callable[[str], Any]] = {
    "str": str.strip, "int": parse_int, "bool": parse_bool, "tuple[str, ...]": parse_list,
    "str | None": lambda v: v.strip() or None,
}


@dataclass(frozen=True)
class DefaultOptions:
    bind_host: str = "127.0.0.1"
    bind_port: int = _opt(9696, low=0, high=65535)
    state_path: str = ""  # filled by load_config: /var/lib/kaon as root, else ~/.local/state/kaon
    auth_strategy: str = _opt("kaon", _choice("kaon", "keystone", "noauth"))
    api_workers: int = _opt(1, low=0)
    base_mac: str = _opt("fa:16:3e:00:00:00", _mac)
    mac_generation_retries: int = _opt(16, low=0)
    allow_overlapping_ips: bool = True
    max_dns_nameservers: int = _opt(5, low=-1)
    max_subnet_host_routes: int = _opt(20, low=-1)
    max_allowed_address_pair: int = _opt(10, low=-1)
    global_physnet_mtu: int = _opt(1500, low=0)
    pagination_max_limit: int = _opt(-1, lambda v: -1 if v.strip().lower() == "infinite" else parse_int(v))
    filter_validation: bool = True
    agent_down_time: int = _opt(75, low=1)
    dhcp_agents_per_network: int = _opt(1, low=1)
    network_auto_schedule: bool = True
    router_auto_schedule: bool = True
    allow_automatic_dhcp_failover: bool = True
    default_availability_zones: tuple[str, ...] = ()
    transport_url: str = ""
    host: str = ""  # filled by load_config: socket.gethostname()
    dns_domain: str = "openstacklocal"
    ipv6_pd_enabled: bool = False
    enable_snat_by_default: bool = True
    allow_bulk: bool = True
    public_url: str = _opt("", _url)  # filled by load_config: http://<bind_host>:<bind_port>


@dataclass(frozen=True)
class DatabaseOptions:
    connection: str = ""  # filled by load_config: sqlite:///<state_path>/kaon.sqlite


@dataclass(frozen=True)
class Ml2Options:
    type_drivers: tuple[str, ...] = ("local", "flat", "vlan", "gre", "vxlan", "geneve")
    # Neutron renamed tenant_network_types; both names are read, the new one wins.
    project_network_types: tuple[str, ...] = _opt(("local",), aliases=("tenant_network_types",))
    mechanism_drivers: tuple[str, ...] = ()
    extension_drivers: tuple[str, ...] = ()
    path_mtu: int = _opt(0, low=0)
    physical_network_mtus: Mapping[str, int] = _opt(parse=_mtu_mapping, factory=lambda: MappingProxyType({}))
    external_network_type: str | None = None
    overlay_ip_version: int = _opt(4, lambda v: int(_choice("4", "6")(v)))

    @property
    def tenant_network_types(self) -> tuple[str, ...]:
        return self.project_network_types


@dataclass(frozen=True)
class FlatOptions:
    flat_networks: tuple[str, ...] = ("*",)


@dataclass(frozen=True)
class VlanOptions:
    network_vlan_ranges: Mapping[str, tuple[tuple[int, int], ...]] = _opt(
        parse=parse_vlan_ranges, factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class VxlanOptions:
    vni_ranges: tuple[tuple[int, int], ...] = _opt((), _tunnel_ranges("vxlan", MAX_VNI))
    vxlan_group: str | None = None


@dataclass(frozen=True)
class GreOptions:
    tunnel_id_ranges: tuple[tuple[int, int], ...] = _opt((), _tunnel_ranges("gre", MAX_GRE_ID))


@dataclass(frozen=True)
class GeneveOptions:
    vni_ranges: tuple[tuple[int, int], ...] = _opt((), _tunnel_ranges("geneve", MAX_VNI))
    max_header_size: int = _opt(30, low=0)


DEFAULT_QUOTAS: Mapping[str, int] = MappingProxyType({
    "network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
    "security_group": 10, "security_group_rule": 100, "rbac_policy": 10, "router_route": 30,
})


@dataclass(frozen=True)
class QuotaOptions:
    default_quota: int = -1
    # resource name ("network", "port" ...) -> limit; negative means unlimited.
    limits: Mapping[str, int] = field(default_factory=lambda: DEFAULT_QUOTAS)

    def limit(self, resource: str) -> int:
        return self.limits.get(resource, self.default_quota)


_Raw = Mapping[str, Mapping[str, str]]
_SECTIONS: dict[str, type[Any]] = {
    "DEFAULT": DefaultOptions, "database": DatabaseOptions, "ml2": Ml2Options, "ml2_type_flat": FlatOptions,
    "ml2_type_vlan": VlanOptions, "ml2_type_vxlan": VxlanOptions, "ml2_type_gre": GreOptions,
    "ml2_type_geneve": GeneveOptions,
}


@dataclass(frozen=True)
class Config:
    """Everything kaon was configured with; built only by :func:`load_config`."""

    default: DefaultOptions = field(default_factory=DefaultOptions)
    database: DatabaseOptions = field(default_factory=DatabaseOptions)
    ml2: Ml2Options = field(default_factory=Ml2Options)
    ml2_type_flat: FlatOptions = field(default_factory=FlatOptions)
    ml2_type_vlan: VlanOptions = field(default_factory=VlanOptions)
    ml2_type_vxlan: VxlanOptions = field(default_factory=VxlanOptions)
    ml2_type_gre: GreOptions = field(default_factory=GreOptions)
    ml2_type_geneve: GeneveOptions = field(default_factory=GeneveOptions)
    quotas: QuotaOptions = field(default_factory=QuotaOptions)
    keystone_authtoken: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # Every section as read (known or not), e.g. sections["linux_bridge"]["physical_interface_mappings"].
    sections: _Raw = field(default_factory=lambda: MappingProxyType({}))
    origins: Mapping[tuple[str, str], str] = field(default_factory=lambda: MappingProxyType({}), repr=False)
    files: tuple[str, ...] = ()

    def get(self, section: str, option: str, default: str | None = None) -> str | None:
        return self.sections.get(_section_name(section), {}).get(option, default)

    def get_typed(self, section: str, option: str, parse: Callable[[str], Any], default: Any = None) -> Any:
        """An option of a section kaon's server does not model (an agent's), parsed; errors say where."""
        section = _section_name(section)
        value = self.get(section, option)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as exc:
            raise ConfigError(str(exc), file=self.origins.get((section, option)), section=section,
                              option=option) from None


def _section_name(name: str) -> str:
    return name if name == "DEFAULT" else name.lower()


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _read_file(path: str) -> list[tuple[str, str, str]]:
    parser = configparser.RawConfigParser(
        default_section=_NO_DEFAULT_SECTION, strict=False, interpolation=None,
        comment_prefixes=("#", ";"), inline_comment_prefixes=None, empty_lines_in_values=False)
    # configparser's documented way to keep option names' case; typeshed
    # declares optionxform a method, so assigning to it is flagged.
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=path) from None
    except configparser.Error as exc:
        raise ConfigError(str(exc).replace("\n", " "), file=path) from None
    return [(_section_name(s), k, _unquote(v or "")) for s in parser.sections() for k, v in parser.items(s)]


def _override_items(overrides: Mapping[str, Any]) -> Iterable[tuple[str, str, Any]]:
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            yield from ((_section_name(key), opt, v) for opt, v in value.items())
        elif "." in key:
            section, _, opt = key.rpartition(".")
            yield _section_name(section), opt, value
        else:
            yield "DEFAULT", key, value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_as_text(v) for v in value)
    if isinstance(value, Mapping):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return str(value)


class _Reader:
    """Merged raw values with where each came from, and ``$name`` substitution."""

    def __init__(self, raw: dict[str, dict[str, str]], origins: dict[tuple[str, str], str]) -> None:
        self.raw, self.origins = raw, origins
        self.defaults: dict[tuple[str, str], str] = {
            (section, f.name): _as_text(f.default)
            for section, cls in _SECTIONS.items() for f in fields(cls) if f.default not in (MISSING, None)
        }

    def error(self, section: str, option: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.origins.get((section, option), "<defaults>"),
                           section=section, option=option)

    def value(self, section: str, option: str, depth: int = 0) -> str | None:
        text = self.raw.get(section, {}).get(option)
        if text is None:  # oslo.config substitutes an unset option's default
            text = self.defaults.get((section, option))
        if text is None or "$" not in text:
            return text
        if depth > 8:
            raise self.error(section, option, "substitution nests too deep (a loop?)")

        def sub(match: re.Match[str]) -> str:
            name = match.group(2) or match.group(3)
            if name is None:
                return "$"
            ref_section, _, ref = name.rpartition(".")
            found = self.value(_section_name(ref_section) if ref_section else "DEFAULT", ref, depth + 1)
            if found is None:
                raise self.error(section, option, f"${name} refers to an option that is not set")
            return found

        return re.sub(r"\$(\$|\{([\w.]+)\}|(\w+))", sub, text)

    def build(self, cls: type[Any], section: str) -> Any:
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            names = (f.name, *f.metadata.get("aliases", ()))
            option = next((n for n in names if n in self.raw.get(section, {})), None)
            if option is None:
                continue
            text = self.value(section, option) or ""
            parse = f.metadata.get("parse") or _BY_ANNOTATION[str(f.type)]
            try:
                value = parse(text)
                if isinstance(value, int) and not isinstance(value, bool):
                    value = _bounded(value, f.metadata.get("low"), f.metadata.get("high"))
            except ValueError as exc:
                raise self.error(section, option, str(exc)) from None
            kwargs[f.name] = value
        return cls(**kwargs)

    def quotas(self) -> QuotaOptions:
        limits = dict(DEFAULT_QUOTAS)
        default_quota = -1
        for option, text in self.raw.get("quotas", {}).items():
            if option in ("quota_driver", "quota_items") or not option.startswith(("quota_", "default_quota")):
                continue  # quota_driver, track_quota_usage ... stay in Config.sections
            try:
                number = parse_int(self.value("quotas", option) or text)
            except ValueError as exc:
                raise self.error("quotas", option, str(exc)) from None
            if option == "default_quota":
                default_quota = number
            else:
                limits[option.removeprefix("quota_")] = number
        return QuotaOptions(default_quota=default_quota, limits=MappingProxyType(limits))


def default_state_path() -> str:
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/kaon"
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "kaon")


def _public_url(host: str, port: int, hostname: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        host = hostname  # a wildcard address is not somewhere a client can go
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def load_config(paths: Iterable[str], overrides: Mapping[str, Any] | None = None) -> Config:
    """Read ``paths`` in order (later wins per option), then ``overrides``.

    ``overrides`` maps a section to ``{option: value}``, or takes
    ``"section.option"`` / bare ``"option"`` (``[DEFAULT]``) keys; values may
    be typed (bool, int, list) and go through the same validation as file
    values. ``None`` removes an option set by a file.
    """
    raw: dict[str, dict[str, str]] = {}
    origins: dict[tuple[str, str], str] = {}
    files = (paths,) if isinstance(paths, str) else tuple(str(p) for p in paths)
    for path in files:
        for section, option, value in _read_file(path):
            raw.setdefault(section, {})[option] = value
            origins[(section, option)] = path
    for section, option, value in _override_items(overrides or {}):
        if value is None:
            raw.get(section, {}).pop(option, None)
            continue
        raw.setdefault(section, {})[option] = _as_text(value)
        origins[(section, option)] = _OVERRIDES
    reader = _Reader(raw, origins)
    reader.defaults[("DEFAULT", "state_path")] = default_state_path()
    reader.defaults[("DEFAULT", "host")] = socket.gethostname()
    default = reader.build(DefaultOptions, "DEFAULT")
    state_path = os.path.expanduser(default.state_path or reader.defaults[("DEFAULT", "state_path")])
    host = default.host or reader.defaults[("DEFAULT", "host")]
    default = replace(default, state_path=state_path, host=host,
                       public_url=default.public_url or _public_url(default.bind_host, default.bind_port, host))
    database = reader.build(DatabaseOptions, "database")
    if not database.connection:
        database = DatabaseOptions(connection=f"sqlite:///{os.path.join(state_path, 'kaon.sqlite')}")
    frozen_raw = MappingProxyType({s: MappingProxyType(dict(o)) for s, o in raw.items()})
    return Config(
        default=default,
        database=database,
        ml2=reader.build(Ml2Options, "ml2"),
        ml2_type_flat=reader.build(FlatOptions, "ml2_type_flat"),
        ml2_type_vlan=reader.build(VlanOptions, "ml2_type_vlan"),
        ml2_type_vxlan=reader.build(VxlanOptions, "ml2_type_vxlan"),
        ml2_type_gre=reader.build(GreOptions, "ml2_type_gre"),
        ml2_type_geneve=reader.build(GeneveOptions, "ml2_type_geneve"),
        quotas=reader.quotas(),
        keystone_authtoken=frozen_raw.get("keystone_authtoken", MappingProxyType({})),
        sections=frozen_raw,
        origins=MappingProxyType(dict(origins)),
        files=files,
    )
