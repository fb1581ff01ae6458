"""The router resource (router, ext-gw-mode, extraroute, l3-ha, standard attrs).

``external_gateway_info`` and ``routes`` are checked for shape here; who
may set ``enable_snat`` and ``external_fixed_ips`` (admin only) and whether
a route's nexthop is reachable are the service's business
(:mod:`kaon.core.l3.routers`).
"""

from __future__ import annotations

from typing import Any

from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource, standard_attrs

GATEWAY_KEYS = {"network_id", "enable_snat", "external_fixed_ips"}


def gateway_info(value: Any) -> dict[str, Any] | None:
    """``None`` or ``{}`` clears the gateway; otherwise network_id is required."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise v.InvalidValue(f"'{value}' is not a dictionary")
    unknown = set(value) - GATEWAY_KEYS
    if unknown or "network_id" not in value:
        raise v.InvalidValue(f"Validation of dictionary's keys failed. Expected keys: {{'network_id'}} "
                             f"Provided keys: {set(value)}")
    out: dict[str, Any] = {"network_id": v.uuid_str(value["network_id"])}
    if "enable_snat" in value:
        out["enable_snat"] = v.boolean(value["enable_snat"])
    if "external_fixed_ips" in value:
        out["external_fixed_ips"] = _fixed_ips(value["external_fixed_ips"])
    return out


def _fixed_ips(value: Any) -> list[dict[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise v.InvalidValue(f"Invalid data format for fixed IP: '{value}'")
    out = []
    for item in value:
        if not isinstance(item, dict) or not item or set(item) - {"subnet_id", "ip_address"}:
            raise v.InvalidValue(f"Invalid data format for fixed IP: '{item}'")
        entry = {}
        if "subnet_id" in item:
            entry["subnet_id"] = v.uuid_str(item["subnet_id"])
        if "ip_address" in item:
            entry["ip_address"] = v.ip_address(item["ip_address"])
        out.append(entry)
    return out


def routes(value: Any) -> list[dict[str, str]]:
    """Neutron's ``type:hostroutes``; null means no routes."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise v.InvalidValue(f"'{value}' is not a list")
    out: list[dict[str, str]] = []
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise v.InvalidValue(f"Invalid data format for hostroute: '{route}'")
        item = {"destination": v.cidr(route["destination"]), "nexthop": v.ip_address(route["nexthop"])}
        if item in out:
            raise v.InvalidValue(f"Duplicate hostroute '{route}'")
        out.append(item)
    return out


ROUTER = Resource(
    "router",
    "routers",
    (
        *standard_attrs(),
        Attr("admin_state_up", post=True, put=True, default=True, convert=v.boolean, filter_convert=v.boolean),
        Attr("status"),
        Attr("external_gateway_info", post=True, put=True, convert=gateway_info, filter=False, sort=False),
        Attr("routes", put=True, convert=routes, filter=False, sort=False),
        # router_availability_zone (kaon.core.agents.availability_zones).
        Attr("availability_zone_hints", post=True, default=list, convert=v.list_of(v.string(255)),
             filter=False, sort=False),
        Attr("availability_zones", filter=False, sort=False),
        # l3-ha: admin-only to set and to read, as Neutron's policies
        # (create/get/update_router:ha); kaon routers are single-node, so it
        # reads false and true is refused (kaon.core.l3.routers).
        Attr("ha", post=True, put=True, convert=v.boolean, admin_post=True, admin_put=True, admin_read=True,
             filter=False, sort=False),
    ),
)
