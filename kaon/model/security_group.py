"""Security groups, their rules and the default-rules template
(security-group, stateful-security-group, security-groups-normalized-cidr,
security-groups-rules-belongs-to-default-sg, security-groups-default-rules,
rbac-security-groups' read-only ``shared``).

The converters here turn a client's value into the stored one with
Neutron's error types (``SecurityGroupRuleInvalidProtocol``,
``SecurityGroupInvalidPortValue`` ...); the checks that need several
attributes at once (port range against protocol, prefix against ethertype)
are :func:`check_rule`, shared by rules and the template.
"""

from __future__ import annotations

import functools
from typing import Any

import netaddr

from kaon import errors
from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource, project_attrs, standard_attrs

# -- errors (Neutron's names and wording) ------------------------------------
SecurityGroupNotFound = errors.define("SecurityGroupNotFound", errors.NotFound,
                                      "Security group {id} does not exist")
SecurityGroupRuleNotFound = errors.define("SecurityGroupRuleNotFound", errors.NotFound,
                                          "Security group rule {id} does not exist")
DefaultSecurityGroupRuleNotFound = errors.define("DefaultSecurityGroupRuleNotFound", errors.NotFound,
                                                 "Default Security Group rule {id} does not exist")
AddressGroupNotFound = errors.define("AddressGroupNotFound", errors.NotFound,
                                     "Address group {address_group_id} could not be found.")
SecurityGroupInUse = errors.define("SecurityGroupInUse", errors.InUse, "Security Group {id} {reason}.")
SecurityGroupCannotRemoveDefault = errors.define(
    "SecurityGroupCannotRemoveDefault", errors.InUse, "Insufficient rights for removing default security group.")
SecurityGroupCannotUpdateDefault = errors.define(
    "SecurityGroupCannotUpdateDefault", errors.InUse, "Updating default security group not allowed.")
SecurityGroupDefaultAlreadyExists = errors.define(
    "SecurityGroupDefaultAlreadyExists", errors.InUse, "Default security group already exists.")
SecurityGroupRuleExists = errors.define(
    "SecurityGroupRuleExists", errors.InUse, "Security group rule already exists. Rule id is {rule_id}.")
DuplicateSecurityGroupRuleInPost = errors.define(
    "DuplicateSecurityGroupRuleInPost", errors.InUse, "Duplicate Security Group Rule in POST.")
DefaultSecurityGroupRuleExists = errors.define(
    "DefaultSecurityGroupRuleExists", errors.InUse,
    "Default Security group rule already exists. Rule id is {rule_id}.")
DuplicateDefaultSgRuleInPost = errors.define(
    "DuplicateDefaultSgRuleInPost", errors.InUse, "Duplicate Default Security Group Rule in POST.")
SecurityGroupInvalidPortRange = errors.define(
    "SecurityGroupInvalidPortRange", errors.InvalidInput,
    "For TCP/UDP protocols, port_range_min must be <= port_range_max")
SecurityGroupInvalidPortValue = errors.define(
    "SecurityGroupInvalidPortValue", errors.InvalidInput, "Invalid value for port {port}.")
SecurityGroupInvalidProtocolForPort = errors.define(
    "SecurityGroupInvalidProtocolForPort", errors.InvalidInput,
    "Ports cannot be specified for protocol {protocol}. Ports are only supported for {valid_port_protocols}.")
SecurityGroupInvalidIcmpValue = errors.define(
    "SecurityGroupInvalidIcmpValue", errors.InvalidInput,
    "Invalid value for ICMP {field} ({attr}) {value}. It must be 0 to 255.")
SecurityGroupMissingIcmpType = errors.define(
    "SecurityGroupMissingIcmpType", errors.InvalidInput,
    "ICMP code (port-range-max) {value} is provided but ICMP type (port-range-min) is missing.")
SecurityGroupEthertypeConflictWithProtocol = errors.define(
    "SecurityGroupEthertypeConflictWithProtocol", errors.InvalidInput,
    "Invalid ethertype {ethertype} for protocol {protocol}.")
SecurityGroupRuleInvalidProtocol = errors.define(
    "SecurityGroupRuleInvalidProtocol", errors.InvalidInput,
    "Security group rule protocol {protocol} not supported. Only protocol values {values} and integer "
    "representations [0 to 255] are supported.")
SecurityGroupRuleInvalidEtherType = errors.define(
    "SecurityGroupRuleInvalidEtherType", errors.InvalidInput,
    "Security group rule for ethertype '{ethertype}' not supported. Allowed values are {values}.")
SecurityGroupRuleParameterConflict = errors.define(
    "SecurityGroupRuleParameterConflict", errors.InvalidInput,
    "Conflicting value ethertype {ethertype} for CIDR {cidr}")
SecurityGroupProtocolRequiredWithPorts = errors.define(
    "SecurityGroupProtocolRequiredWithPorts", errors.InvalidInput,
    "Must also specify protocol if port range is given.")
SecurityGroupRemoteGroupAndRemoteIpPrefix = errors.define(
    "SecurityGroupRemoteGroupAndRemoteIpPrefix", errors.InvalidInput,
    "Only remote_ip_prefix or remote_group_id may be provided.")
SecurityGroupRemoteGroupAndRemoteAddressGroup = errors.define(
    "SecurityGroupRemoteGroupAndRemoteAddressGroup", errors.InvalidInput,
    "Only remote_group_id or remote_address_group_id may be provided.")
SecurityGroupRemoteAddressGroupAndRemoteIpPrefix = errors.define(
    "SecurityGroupRemoteAddressGroupAndRemoteIpPrefix", errors.InvalidInput,
    "Only remote_ip_prefix or remote_address_group_id may be provided.")
InvalidCIDR = errors.define("InvalidCIDR", errors.BadRequest, "Invalid CIDR {input} given as IP prefix.")

# -- protocols (neutron-lib's IP_PROTOCOL_MAP) ---------------------------------
IP_PROTOCOL_MAP: dict[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ip": 0,
    "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59,
    "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6,
    "udp": 17, "udplite": 136, "vrrp": 112,
}
NUM_TO_NAME = {str(num): name for name, num in IP_PROTOCOL_MAP.items() if name not in ("icmpv6", "hopopt")}
SUPPORTED_PROTOCOLS: list[str | None] = [None, *IP_PROTOCOL_MAP]
PORT_PROTOCOLS = ("dccp", "sctp", "tcp", "udp", "udplite")
PORT_PROTOCOL_NUMS = {IP_PROTOCOL_MAP[p] for p in PORT_PROTOCOLS}
ICMP_NUMS = {1, 58}
# Protocols that only exist for IPv6, by name and number.
IPV6_ONLY = {"ipv6-encap", "ipv6-frag", "ipv6-icmp", "icmpv6", "ipv6-nonxt", "ipv6-opts", "ipv6-route",
             "41", "44", "58", "59", "60", "43"}
ETHERTYPES = ("IPv4", "IPv6")
DIRECTIONS = ("ingress", "egress")
PARENT = "PARENT"  # the template's stand-in for "the group being created"
MAX_ETHERTYPE_PREFIX = {"IPv4": "0.0.0.0/0", "IPv6": "::/0"}


# -- converters -----------------------------------------------------------------
def sg_name(value: Any) -> str:
    """A name other than ``default`` (any case), reserved for the project's default group."""
    name = v.string(255)(value)
    if name.lower() == "default":
        raise SecurityGroupDefaultAlreadyExists()
    return name


def protocol(value: Any) -> str | None:
    """A name from :data:`IP_PROTOCOL_MAP` (lower-cased), or a number 0-255
    kept as a string; ``None`` and ``any`` mean every protocol."""
    if value is None or (isinstance(value, str) and value.lower() == "any"):
        return None
    if isinstance(value, bool):
        raise SecurityGroupRuleInvalidProtocol(protocol=value, values=SUPPORTED_PROTOCOLS)
    try:
        number = int(value)
    except (TypeError, ValueError):
        if isinstance(value, str) and value.lower() in IP_PROTOCOL_MAP:
            return value.lower()
        raise SecurityGroupRuleInvalidProtocol(protocol=value, values=SUPPORTED_PROTOCOLS) from None
    if not 0 <= number <= 255 or (isinstance(value, float) and number != value):
        raise SecurityGroupRuleInvalidProtocol(protocol=value, values=SUPPORTED_PROTOCOLS)
    return str(number)


def port_value(value: Any) -> int | None:
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value)
    except (TypeError, ValueError):
        raise SecurityGroupInvalidPortValue(port=value) from None
    if not 0 <= number <= 65535:
        raise SecurityGroupInvalidPortValue(port=value)
    return number


def ethertype(value: Any) -> str:
    if isinstance(value, str):
        for known in ETHERTYPES:
            if known.lower() == value.lower():
                return known
    raise SecurityGroupRuleInvalidEtherType(ethertype=value, values=list(ETHERTYPES))


def ip_prefix(value: Any) -> str | None:
    """Any address or network; a bare address gets its full mask. Host bits
    are kept (``normalized_cidr`` shows the network)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidCIDR(input=value)
    return _prefix(value)


# Rules repeat a handful of prefixes (0.0.0.0/0, ::/0, a few networks);
# parsing one with netaddr costs more than the rest of a rule's checks.
@functools.lru_cache(maxsize=4096)
def _prefix(value: str) -> str:
    try:
        return str(netaddr.IPNetwork(value))
    except (TypeError, ValueError, netaddr.AddrFormatError):
        raise InvalidCIDR(input=value) from None


@functools.lru_cache(maxsize=4096)
def _prefix_version(value: str) -> int:
    return int(netaddr.IPNetwork(value).version)


@functools.lru_cache(maxsize=4096)
def normalized_cidr(prefix: str | None) -> str | None:
    return None if prefix is None else str(netaddr.IPNetwork(prefix).cidr)


def group_ref(value: Any) -> str | None:
    """remote_group_id / security_group_id: any string; an id that names no
    visible group is a 404 later, as in Neutron."""
    if value is None:
        return None
    return v.string(255)(value)


# -- checks across attributes -------------------------------------------------------
def proto_number(proto: str | None) -> int | None:
    if proto is None:
        return None
    if proto in IP_PROTOCOL_MAP:
        return IP_PROTOCOL_MAP[proto]
    return int(proto)


def canonical_protocol(proto: str | None, ether: str) -> str | None:
    """Neutron stores the legacy IPv6 ICMP spellings as ``ipv6-icmp``/58."""
    if ether == "IPv6":
        if proto in ("icmp", "icmpv6"):
            return "ipv6-icmp"
        if proto == "1":
            return "58"
    return proto


def check_rule(rule: dict[str, Any]) -> None:
    """Neutron's rule validation, in its order; ``rule`` is canonicalised in
    place (protocol spelling, prefix with its mask)."""
    rule["protocol"] = canonical_protocol(rule.get("protocol"), rule["ethertype"])
    _check_port_range(rule)
    prefix = rule.get("remote_ip_prefix")
    if prefix is not None:
        rule["remote_ip_prefix"] = _prefix(prefix)
        if rule["ethertype"] != f"IPv{_prefix_version(prefix)}":
            raise SecurityGroupRuleParameterConflict(ethertype=rule["ethertype"], cidr=prefix)
    if rule.get("protocol") in IPV6_ONLY and rule["ethertype"] == "IPv4":
        raise SecurityGroupEthertypeConflictWithProtocol(ethertype=rule["ethertype"], protocol=rule["protocol"])
    remote_group, address_group = rule.get("remote_group_id"), rule.get("remote_address_group_id")
    if prefix and remote_group:
        raise SecurityGroupRemoteGroupAndRemoteIpPrefix()
    if address_group and remote_group:
        raise SecurityGroupRemoteGroupAndRemoteAddressGroup()
    if address_group and prefix:
        raise SecurityGroupRemoteAddressGroupAndRemoteIpPrefix()


def _check_port_range(rule: dict[str, Any]) -> None:
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if low is None and high is None:
        return
    if not rule.get("protocol"):
        raise SecurityGroupProtocolRequiredWithPorts()
    number = proto_number(rule["protocol"])
    if number in PORT_PROTOCOL_NUMS:
        if low == 0 or high == 0:
            raise SecurityGroupInvalidPortValue(port=0)
        if low is None or high is None or low > high:
            raise SecurityGroupInvalidPortRange()
    elif number in ICMP_NUMS:
        for attr, field, value in (("port_range_min", "type", low), ("port_range_max", "code", high)):
            if value is not None and not 0 <= value <= 255:
                raise SecurityGroupInvalidIcmpValue(field=field, attr=attr, value=value)
        if low is None and high is not None:
            raise SecurityGroupMissingIcmpType(value=high)
    else:
        raise SecurityGroupInvalidProtocolForPort(
            protocol=number, valid_port_protocols=", ".join(p.upper() for p in PORT_PROTOCOLS))


def rule_key(rule: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two rules the same rule (Neutron's ``_rule_to_key``): the
    any-address prefix equals no prefix, a protocol name equals its number."""
    prefix = rule.get("remote_ip_prefix")
    if prefix in (None, "0.0.0.0/0", "::/0"):
        prefix = None
    proto = rule.get("protocol")
    if proto is not None:
        proto = canonical_protocol(str(proto), rule.get("ethertype", "IPv4"))
        proto = NUM_TO_NAME.get(proto, proto) if proto is not None and proto.isdigit() else proto
        proto = "ipv6-icmp" if proto == "icmpv6" else proto
    return (rule.get("direction"), rule.get("ethertype"), rule.get("port_range_max"),
            rule.get("port_range_min"), proto, rule.get("remote_group_id"),
            rule.get("remote_address_group_id"), prefix)


# -- resources ------------------------------------------------------------------------
def _sg_attrs() -> tuple[Attr, ...]:
    out = []
    for attr in standard_attrs():
        if attr.name == "name":
            attr = Attr("name", post=True, put=True, default="", convert=sg_name)
        out.append(attr)
    return tuple(out)


SECURITY_GROUP = Resource(
    "security_group",
    "security_groups",
    (
        *_sg_attrs(),
        Attr("stateful", post=True, put=True, default=True, convert=v.boolean, filter_convert=v.boolean),
        Attr("shared", filter_convert=v.boolean, sort=False),
        Attr("security_group_rules", filter=False, sort=False),
    ),
)

_RULE_COMMON = (
    Attr("remote_group_id", post=True, default=None, convert=group_ref),
    Attr("remote_address_group_id", post=True, default=None, convert=v.uuid_or_none),
    Attr("direction", post=True, required=True, convert=v.one_of(*DIRECTIONS)),
    Attr("protocol", post=True, default=None, convert=protocol),
    Attr("port_range_min", post=True, default=None, convert=port_value, filter_convert=v.filter_int),
    Attr("port_range_max", post=True, default=None, convert=port_value, filter_convert=v.filter_int),
    Attr("ethertype", post=True, default="IPv4", convert=ethertype),
    Attr("remote_ip_prefix", post=True, default=None, convert=ip_prefix),
)

SECURITY_GROUP_RULE = Resource(
    "security_group_rule",
    "security_group_rules",
    (
        Attr("id", convert=v.uuid_str),
        *project_attrs(),
        Attr("security_group_id", post=True, required=True, convert=group_ref),
        *_RULE_COMMON,
        # standard-attr-description: the one thing a rule lets you change.
        Attr("description", post=True, put=True, default="", convert=v.string(255)),
        Attr("normalized_cidr", filter=False, sort=False),
        Attr("belongs_to_default_sg", filter_convert=v.boolean, sort=False),
        # Converted as standard_attrs() does: PostgreSQL refuses to compare
        # a timestamp or integer column with an arbitrary string.
        Attr("created_at", filter_convert=v.timestamp),
        Attr("updated_at", filter_convert=v.timestamp),
        Attr("revision_number", filter_convert=v.non_negative_int),
    ),
)


def template_remote_group(value: Any) -> str | None:
    """``PARENT`` (the new group itself), a group id, or nothing."""
    if value is None:
        return None
    return PARENT if value == PARENT else v.uuid_str(value)


DEFAULT_SECURITY_GROUP_RULE = Resource(
    "default_security_group_rule",
    "default_security_group_rules",
    (
        Attr("id", convert=v.uuid_str),
        Attr("description", post=True, default="", convert=v.string(255)),
        Attr("remote_group_id", post=True, default=None, convert=template_remote_group),
        *[a for a in _RULE_COMMON if a.name != "remote_group_id"],
        Attr("used_in_default_sg", post=True, default=False, convert=v.boolean, filter_convert=v.boolean),
        Attr("used_in_non_default_sg", post=True, default=True, convert=v.boolean, filter_convert=v.boolean),
    ),
)
