"""Validation of a port's list attributes: fixed_ips requests, allowed
address pairs, extra DHCP options, and their interplay with port security."""

from __future__ import annotations

from typing import Any

from kaon import errors
from kaon.model import validators as v

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
VALID_BLANK_EXTRA_DHCP_OPTS = ("router", "classless-static-route")


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


def check_port_security(enabled: bool, pairs: list[Any], requested_sgs: list[str] | None,
                        bound_sgs: list[str] | None = None) -> None:
    """Neutron's port-security rules, the one place they live.

    ``pairs`` are the address pairs the port will have; ``requested_sgs``
    the ``security_groups`` of the request (``None`` when it names none);
    ``bound_sgs`` the groups an existing port has (updates only). With port
    security off: address pairs are a 409, groups asked for are a 400
    (``PortSecurityAndIPRequiredForSecurityGroups``), and groups kept from
    before are a 409 (``PortSecurityPortHasSecurityGroup``), until the same
    request clears them with ``security_groups: []``.
    """
    if enabled:
        return
    if pairs:
        raise AddressPairAndPortSecurityRequired()
    if requested_sgs:
        raise PortSecurityAndIPRequiredForSecurityGroups()
    if requested_sgs is None and bound_sgs:
        raise PortSecurityPortHasSecurityGroup()


def _dhcp_opt(opt: Any) -> dict[str, Any]:
    """One option, checked as neutron-lib's EXTRA_DHCP_OPT_KEY_SPECS do:
    opt_name and opt_value are required; the value may be null (meaning
    "remove" on update), and empty only for router and classless-static-route."""
    if not isinstance(opt, dict) or not {"opt_name", "opt_value"} <= set(opt) or set(opt) - DHCP_OPT_KEYS:
        raise _invalid("extra_dhcp_opts", f"Invalid data format for extra DHCP option: '{opt}'")
    name, value = opt["opt_name"], opt["opt_value"]
    if not isinstance(name, str) or not name.strip() or "\n" in name or len(name) > 64:
        raise _invalid("extra_dhcp_opts", f"'{name}' is not a valid option name")
    blank_ok = name in VALID_BLANK_EXTRA_DHCP_OPTS
    if value is not None and (not isinstance(value, str) or len(value) > 255 or "\n" in value
                              or (not value.strip() and not blank_ok)):
        raise _invalid("extra_dhcp_opts", f"'{value}' is not a valid option value")
    version = opt.get("ip_version", 4)
    if str(version) not in ("4", "6") or isinstance(version, bool):
        raise _invalid("extra_dhcp_opts", f"'{version}' is not in [4, 6]")
    return {"opt_name": name, "opt_value": value, "ip_version": int(version)}


def dhcp_opts(raw: Any) -> list[dict[str, Any]]:
    """A create's options; null values store nothing."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _invalid("extra_dhcp_opts", f"'{raw}' is not a list")
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for opt in map(_dhcp_opt, raw):
        if opt["opt_value"] is not None:
            out[(opt["opt_name"], opt["ip_version"])] = opt
    return list(out.values())


def merge_dhcp_opts(current: list[dict[str, Any]], raw: Any) -> list[dict[str, Any]]:
    """Neutron's update semantics: a named option replaces the one with the
    same name and IP version, a null value removes it, others stay."""
    if raw is None:
        return current
    if not isinstance(raw, list):
        raise _invalid("extra_dhcp_opts", f"'{raw}' is not a list")
    merged = {(o["opt_name"], o["ip_version"]): o for o in current}
    for opt in map(_dhcp_opt, raw):
        key = (opt["opt_name"], opt["ip_version"])
        if opt["opt_value"] is None:
            merged.pop(key, None)
        else:
            merged[key] = opt
    return list(merged.values())
