"""Validation of a port's list attributes: fixed_ips requests, allowed
address pairs, extra DHCP options, and their interplay with port security."""

from __future__ import annotations

from typing import Any

from kaon import errors
from kaon.model import validators as v
from kaon.model.attrs import HTTPBadRequest

AllowedAddressPairExhausted = errors.define(
    "AllowedAddressPairExhausted", errors.BadRequest,
    "The number of allowed address pair exceeds the maximum {quota}.")
DuplicateAddressPairInRequest = errors.define(
    "DuplicateAddressPairInRequest", errors.BadRequest,
    "Request contains duplicate address pair: mac_address {mac_address} ip_address {ip_address}.")
AddressPairAndPortSecurityRequired = errors.define(
    "AddressPairAndPortSecurityRequired", errors.Conflict,
    "Port Security must be enabled in order to have allowed address pairs on a port.")
PortSecurityAndIPRequiredForSecurityGroups = errors.define(
    "PortSecurityAndIPRequiredForSecurityGroups", errors.BadRequest,
    "Port security must be enabled and port must have an IP address in order to use security groups.")
PortSecurityPortHasSecurityGroup = errors.define(
    "PortSecurityPortHasSecurityGroup", errors.Conflict,
    "Port has security group associated. Cannot disable port security or IP address until security "
    "group is removed.")

DHCP_OPT_KEYS = {"opt_name", "opt_value", "ip_version"}


def _invalid(attr: str, reason: str) -> errors.KaonError:
    return errors.InvalidInput(error_message=f"Invalid input for {attr}. Reason: {reason}")


def fixed_ip_requests(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise _invalid("fixed_ips", f"Invalid data format for fixed IP: '{raw}'.")
    out: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or not item or set(item) - {"subnet_id", "ip_address"}:
            raise _invalid("fixed_ips", f"Invalid data format for fixed IP: '{item}'.")
        req: dict[str, str] = {}
        if "subnet_id" in item:
            try:
                req["subnet_id"] = v.uuid_str(item["subnet_id"])
            except v.InvalidValue as exc:
                raise _invalid("fixed_ips", str(exc)) from None
        if "ip_address" in item:
            try:
                req["ip_address"] = v.ip_address(item["ip_address"])
            except v.InvalidValue as exc:
                raise _invalid("fixed_ips", str(exc)) from None
        if req.get("ip_address") and req in out:
            raise _invalid("fixed_ips", f"Duplicate IP address '{req['ip_address']}'")
        out.append(req)
    return out


def address_pairs(raw: Any, port_mac: str, cfg: Any) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("allowed_address_pairs", f"'{raw}' is not a list")
    limit = cfg.default.max_allowed_address_pair
    if len(raw) > limit:
        raise AllowedAddressPairExhausted(quota=limit)
    out: list[dict[str, str]] = []
    for pair in raw:
        if not isinstance(pair, dict) or "ip_address" not in pair or set(pair) - {"ip_address", "mac_address"}:
            raise _invalid("allowed_address_pairs", "AllowedAddressPair must contain ip_address")
        try:
            ip = v.ip_or_cidr(pair["ip_address"])
            mac = v.mac_address(pair["mac_address"]) if pair.get("mac_address") else port_mac
        except v.InvalidValue as exc:
            raise _invalid("allowed_address_pairs", str(exc)) from None
        item = {"ip_address": ip, "mac_address": mac}
        if item in out:
            raise DuplicateAddressPairInRequest(mac_address=mac, ip_address=ip)
        out.append(item)
    return out


def check_port_security(enabled: bool, pairs: list[Any], sgs: list[str] | None, updating: bool = False) -> None:
    if enabled:
        return
    if pairs:
        raise AddressPairAndPortSecurityRequired()
    if sgs:
        if updating:
            raise PortSecurityPortHasSecurityGroup()
        raise PortSecurityAndIPRequiredForSecurityGroups()


def dhcp_opts(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("extra_dhcp_opts", f"'{raw}' is not a list")
    out: list[dict[str, Any]] = []
    for opt in raw:
        if not isinstance(opt, dict) or "opt_name" not in opt or set(opt) - DHCP_OPT_KEYS:
            raise _invalid("extra_dhcp_opts", f"Invalid data format for extra DHCP option: '{opt}'")
        name, value = opt["opt_name"], opt.get("opt_value")
        if not isinstance(name, str) or not name:
            raise _invalid("extra_dhcp_opts", f"'{name}' is not a valid option name")
        if value is not None and not isinstance(value, str):
            raise _invalid("extra_dhcp_opts", f"'{value}' is not a valid option value")
        version = int(opt.get("ip_version", 4)) if str(opt.get("ip_version", 4)) in ("4", "6") else None
        if version is None:
            raise _invalid("extra_dhcp_opts", f"'{opt.get('ip_version')}' is not a valid ip_version")
        out.append({"opt_name": name, "opt_value": value, "ip_version": version})
    return [o for o in out if o["opt_value"] is not None]


def merge_dhcp_opts(current: list[dict[str, Any]], raw: Any) -> list[dict[str, Any]]:
    """Neutron's update semantics: named options replace, a null value removes."""
    if raw is None:
        return current
    if not isinstance(raw, list):
        raise HTTPBadRequest(msg="extra_dhcp_opts must be a list")
    merged = {(o["opt_name"], o["ip_version"]): o for o in current}
    for opt in raw:
        checked = dhcp_opts([{**opt, "opt_value": opt.get("opt_value") or "x"}])[0]
        key = (checked["opt_name"], checked["ip_version"])
        if opt.get("opt_value") is None:
            merged.pop(key, None)
        else:
            merged[key] = {**checked, "opt_value": opt["opt_value"]}
    return list(merged.values())
