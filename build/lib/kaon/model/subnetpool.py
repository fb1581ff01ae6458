"""The subnetpool resource (subnet_allocation, default-subnetpools,
address-scope's ``address_scope_id``, standard attributes) and the rules a
pool's prefixes and prefix lengths obey, in Neutron's order and words
(``neutron/ipam/subnet_alloc.py`` SubnetPoolReader/SubnetPoolHelper).

Prefix lengths are shown as strings, as Neutron's ``_make_subnetpool_dict``
does (tempest compares them with strings); they are accepted as integers or
numeric strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import netaddr

from kaon import errors
from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource, standard_attrs

# ip_version -> (default min_prefixlen, maximum prefix length); a pool's
# per-project quota counts /32s (IPv4) or /64s (IPv6).
VERSION_INFO = {4: (8, 32), 6: (64, 128)}
QUOTA_UNIT = {4: 32, 6: 64}

EmptySubnetPoolPrefixList = errors.define(
    "EmptySubnetPoolPrefixList", errors.BadRequest, "Empty subnet pool prefix list.")
PrefixVersionMismatch = errors.define(
    "PrefixVersionMismatch", errors.BadRequest, "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.")
IllegalSubnetPoolPrefixBounds = errors.define(
    "IllegalSubnetPoolPrefixBounds", errors.BadRequest,
    "Illegal prefix bounds: {prefix_type}={prefixlen}, {base_prefix_type}={base_prefixlen}.")
IllegalSubnetPoolPrefixUpdate = errors.define(
    "IllegalSubnetPoolPrefixUpdate", errors.BadRequest, "Illegal update to prefixes: {msg}.")
IllegalSubnetPoolUpdate = errors.define(
    "IllegalSubnetPoolUpdate", errors.BadRequest, "Illegal subnetpool update : {reason}.")
SubnetPoolDeleteError = errors.define(
    "SubnetPoolDeleteError", errors.BadRequest, "Unable to delete subnet pool: {reason}.")
IllegalSubnetPoolAssociationToAddressScope = errors.define(
    "IllegalSubnetPoolAssociationToAddressScope", errors.BadRequest,
    "Illegal subnetpool association: subnetpool {subnetpool_id} cannot be associated with address scope "
    "{address_scope_id}.")
IllegalSubnetPoolIpVersionAssociationToAddressScope = errors.define(
    "IllegalSubnetPoolIpVersionAssociationToAddressScope", errors.BadRequest,
    "Illegal subnetpool association: subnetpool {subnetpool_id} cannot associate with address scope "
    "{address_scope_id} because subnetpool ip_version is not {ip_version}.")
AddressScopePrefixConflict = errors.define(
    "AddressScopePrefixConflict", errors.Conflict,
    "Failed to associate address scope: subnetpools within an address scope must have unique prefixes.")
# Neutron raises this as a bare NeutronException, which its API turns into
# a 500; kaon keeps the type and message and answers 409 (the request was
# fine, the pool is full).
SubnetAllocationError = errors.define(
    "SubnetAllocationError", errors.Conflict, "Failed to allocate subnet: {reason}.")
MinPrefixSubnetAllocationError = errors.define(
    "MinPrefixSubnetAllocationError", errors.BadRequest,
    "Unable to allocate subnet with prefix length {prefixlen}, minimum allowed prefix is {min_prefixlen}.")
MaxPrefixSubnetAllocationError = errors.define(
    "MaxPrefixSubnetAllocationError", errors.BadRequest,
    "Unable to allocate subnet with prefix length {prefixlen}, maximum allowed prefix is {max_prefixlen}.")
SubnetPoolQuotaExceeded = errors.define(
    "SubnetPoolQuotaExceeded", errors.OverQuota, "Per-tenant subnet pool prefix quota exceeded.")
NetworkSubnetPoolAffinityError = errors.define(
    "NetworkSubnetPoolAffinityError", errors.BadRequest,
    "Subnets hosted on the same network must be allocated from the same subnet pool.")
NetworkAddressScopeAffinityError = errors.define(
    "NetworkAddressScopeAffinityError", errors.BadRequest,
    "Subnets of the same address family hosted on the same network must all participate in the same "
    "address scope.")


def _not_empty(value: Any) -> str:
    text = v.string(255)(value)
    if not text.strip():
        raise v.InvalidValue(f"'{value}' Blank strings are not permitted")
    return text


def _prefix_list(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise v.InvalidValue(f"'{value}' is not a list")
    out = [v.subnet_cidr(item) for item in value]
    if len(set(out)) != len(out):
        raise v.InvalidValue(f"Duplicate items in the list: '{', '.join(str(i) for i in value)}'")
    return out


def _quota(value: Any) -> int | None:
    return None if value is None else v.non_negative_int(value)


SUBNETPOOL = Resource(
    "subnetpool",
    "subnetpools",
    (
        *(a for a in standard_attrs() if a.name != "name"),
        Attr("name", post=True, put=True, required=True, convert=_not_empty),
        Attr("prefixes", post=True, put=True, required=True, convert=_prefix_list, filter=False, sort=False),
        Attr("ip_version", filter_convert=v.filter_int),
        Attr("default_prefixlen", post=True, put=True, convert=v.non_negative_int, filter_convert=v.filter_int),
        Attr("min_prefixlen", post=True, put=True, convert=v.non_negative_int, filter_convert=v.filter_int),
        Attr("max_prefixlen", post=True, put=True, convert=v.non_negative_int, filter_convert=v.filter_int),
        Attr("default_quota", post=True, put=True, convert=_quota, filter_convert=v.filter_int),
        Attr("address_scope_id", post=True, put=True, convert=v.uuid_or_none),
        Attr("is_default", post=True, put=True, default=False, convert=v.boolean, admin_post=True,
             admin_put=True, filter_convert=v.boolean),
        Attr("shared", post=True, default=False, convert=v.boolean, admin_post=True, filter_convert=v.boolean,
             sort=False),
    ),
)


def compact(prefixes: Iterable[str]) -> list[str]:
    """Merge overlapping and adjacent prefixes; canonical CIDRs in address order."""
    merged = netaddr.IPSet(prefixes)
    merged.compact()
    return [str(c) for c in merged.iter_cidrs()]


def read(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A pool's prefixes, version and prefix lengths, defaulted and checked
    (Neutron's SubnetPoolReader). ``spec`` holds ``prefixes`` and whichever
    of the three prefix lengths are given."""
    prefixes = list(spec["prefixes"])
    if not prefixes:
        raise EmptySubnetPoolPrefixList()
    versions = {netaddr.IPNetwork(p).version for p in prefixes}
    if len(versions) > 1:
        raise PrefixVersionMismatch()
    version = versions.pop()
    default_min, version_max = VERSION_INFO[version]
    low = spec.get("min_prefixlen")
    low = default_min if low is None else low
    high = spec.get("max_prefixlen")
    high = version_max if high is None else high
    default = spec.get("default_prefixlen")
    default = low if default is None else default
    if low > high:
        raise IllegalSubnetPoolPrefixBounds(prefix_type="min_prefixlen", prefixlen=low,
                                            base_prefix_type="max_prefixlen", base_prefixlen=high)
    if high > version_max:
        raise IllegalSubnetPoolPrefixBounds(prefix_type="max_prefixlen", prefixlen=high,
                                            base_prefix_type="ip_version_max", base_prefixlen=version_max)
    if default < low:
        raise IllegalSubnetPoolPrefixBounds(prefix_type="default_prefixlen", prefixlen=default,
                                            base_prefix_type="min_prefixlen", base_prefixlen=low)
    if default > high:
        raise IllegalSubnetPoolPrefixBounds(prefix_type="default_prefixlen", prefixlen=default,
                                            base_prefix_type="max_prefixlen", base_prefixlen=high)
    return {"prefixes": compact(prefixes), "ip_version": version, "min_prefixlen": low,
            "max_prefixlen": high, "default_prefixlen": default}
