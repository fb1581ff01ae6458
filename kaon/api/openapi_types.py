"""JSON Schema (OpenAPI 3.0 dialect) for the values of a resource attribute,
read off its converter in :mod:`kaon.model.validators`.

The converters are the single source of truth for what an attribute
accepts, so the schema is derived from them rather than written beside
them: a plain converter maps through :data:`PLAIN`, a converter built by a
factory (``string(255)``, ``one_of(...)``, ``int_in(0, 128)``,
``list_of(...)``) is recognised by the factory that made it and its
arguments are read from the closure. A converter this module does not know
(a resource's own function, a lambda) gives ``{}``, any JSON value: the
document then promises nothing it cannot back, and the fuzzer sends
anything there.

A few attributes are validated in the service layer (``fixed_ips``,
``allocation_pools`` ...) and have no converter; :data:`STRUCTURED`
describes their shape as Neutron's API reference does, so that generated
requests get past the first check and exercise the service.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kaon.model import validators as v
from kaon.model.attrs import Attr

Schema = dict[str, Any]

UUID: Schema = {"type": "string", "format": "uuid"}
IP: Schema = {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]}
CIDR: Schema = {"type": "string", "pattern": r"^[0-9a-fA-F.:]+/[0-9]{1,3}$"}

PLAIN: dict[Callable[..., Any], Schema] = {
    v.boolean: {"type": "boolean"},
    v.uuid_str: UUID,
    v.uuid_or_none: {**UUID, "nullable": True},
    v.uuid_list: {"type": "array", "items": UUID, "uniqueItems": True},
    v.non_negative_int: {"type": "integer", "minimum": 0},
    v.ip_address: IP,
    v.ip_or_none: {**IP, "nullable": True},
    v.cidr: CIDR,
    v.subnet_cidr: CIDR,
    v.ip_or_cidr: {"type": "string"},
    v.mac_address: {"type": "string", "pattern": v._MAC.pattern},
    v.timestamp: {"type": "string", "format": "date-time"},
    v.dict_value: {"type": "object", "nullable": True},
}


def _closure(fn: Callable[..., Any]) -> dict[str, Any]:
    code = getattr(fn, "__code__", None)
    cells = getattr(fn, "__closure__", None) or ()
    if code is None:
        return {}
    return {name: cell.cell_contents for name, cell in zip(code.co_freevars, cells, strict=False)}


def _string(env: dict[str, Any]) -> Schema:
    out: Schema = {"type": "string"}
    if env.get("max_len") is not None:
        out["maxLength"] = env["max_len"]
    return out


def _string_or_none(env: dict[str, Any]) -> Schema:
    return {**of_converter(env["inner"]), "nullable": True}


def _int_in(env: dict[str, Any]) -> Schema:
    return {"type": "integer", "minimum": env["low"], "maximum": env["high"]}


def _one_of(env: dict[str, Any]) -> Schema:
    return {"enum": list(env["choices"])}


def _list_of(env: dict[str, Any]) -> Schema:
    out: Schema = {"type": "array", "items": of_converter(env["item"])}
    if env.get("max_len") is not None:
        out["maxItems"] = env["max_len"]
    if env.get("unique"):
        out["uniqueItems"] = True
    return out


# The factories in kaon.model.validators, by the qualified name of the
# function they return.
FACTORIES: dict[str, Callable[[dict[str, Any]], Schema]] = {
    "string.<locals>.check": _string,
    "string_or_none.<locals>.<lambda>": _string_or_none,
    "int_in.<locals>.check": _int_in,
    "one_of.<locals>.check": _one_of,
    "list_of.<locals>.check": _list_of,
}

POOL: Schema = {"type": "object", "properties": {"start": IP, "end": IP}, "required": ["start", "end"]}
ROUTE: Schema = {"type": "object", "properties": {"destination": CIDR, "nexthop": IP},
                 "required": ["destination", "nexthop"]}
FIXED_IP: Schema = {"type": "object", "properties": {"subnet_id": UUID, "ip_address": IP}}

STRUCTURED: dict[str, Schema] = {
    "fixed_ips": {"type": "array", "items": FIXED_IP},
    "allocation_pools": {"type": "array", "items": POOL},
    "host_routes": {"type": "array", "items": ROUTE},
    "routes": {"type": "array", "items": ROUTE, "nullable": True},
    "dns_nameservers": {"type": "array", "items": IP},
    "allowed_address_pairs": {"type": "array", "items": {
        "type": "object", "properties": {"ip_address": {"type": "string"}, "mac_address": {"type": "string"}},
        "required": ["ip_address"]}},
    "extra_dhcp_opts": {"type": "array", "items": {
        "type": "object", "properties": {"opt_name": {"type": "string"}, "opt_value": {"type": "string"},
                                         "ip_version": {"enum": [4, 6]}},
        "required": ["opt_name"]}},
    "external_gateway_info": {"type": "object", "nullable": True, "properties": {
        "network_id": UUID, "enable_snat": {"type": "boolean"},
        "external_fixed_ips": {"type": "array", "items": FIXED_IP}}},
    "prefixes": {"type": "array", "items": CIDR},
}


def of_converter(fn: Callable[..., Any] | None) -> Schema:
    if fn is None:
        return {}
    if fn in PLAIN:
        return dict(PLAIN[fn])
    factory = FACTORIES.get(getattr(fn, "__qualname__", ""))
    if factory is not None and getattr(fn, "__module__", None) == v.__name__:
        return factory(_closure(fn))
    return {}


def of_attr(attr: Attr) -> Schema:
    """The schema of a value a client may send for ``attr``."""
    schema = of_converter(attr.convert)
    if not schema and attr.name in STRUCTURED:
        schema = dict(STRUCTURED[attr.name])
    return schema


def of_filter(attr: Attr) -> Schema:
    """The schema of one query-string filter value for ``attr``."""
    conv = attr.filter_convert
    if conv is v.boolean:
        return {"type": "boolean"}
    if conv in (int, v.non_negative_int):
        return {"type": "integer"}
    if conv is v.timestamp:
        return {"type": "string", "format": "date-time"}
    return {"type": "string"}
