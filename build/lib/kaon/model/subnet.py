"""The subnet resource."""

from __future__ import annotations

from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource, standard_attrs

IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")

SUBNET = Resource(
    "subnet",
    "subnets",
    (
        *standard_attrs(),
        Attr("network_id", post=True, required=True, convert=v.uuid_str),
        # Filter only: a subnet is shared when its network is.
        Attr("shared", sort=False, filter_convert=v.boolean),
        Attr("ip_version", post=True, required=True, convert=v.one_of(4, 6, "4", "6"), filter_convert=v.filter_int),
        Attr("cidr", post=True, convert=v.subnet_cidr),
        Attr("prefixlen", post=True, convert=v.int_in(0, 128), filter=False, sort=False),
        Attr("subnetpool_id", post=True, convert=v.uuid_or_none),
        Attr("use_default_subnetpool", post=True, convert=v.boolean, filter=False, sort=False),
        Attr("gateway_ip", post=True, put=True, convert=v.ip_or_none),
        Attr("allocation_pools", post=True, put=True, filter=False, sort=False),
        Attr("dns_nameservers", post=True, put=True, filter=False, sort=False),
        Attr("host_routes", post=True, put=True, filter=False, sort=False),
        Attr("enable_dhcp", post=True, put=True, default=True, convert=v.boolean, filter_convert=v.boolean),
        Attr("ipv6_ra_mode", post=True, convert=lambda x: None if x is None else v.one_of(*IPV6_MODES)(x)),
        Attr("ipv6_address_mode", post=True,
             convert=lambda x: None if x is None else v.one_of(*IPV6_MODES)(x)),
        Attr("segment_id", post=True, put=True, convert=v.uuid_or_none, admin_post=True, admin_put=True,
             admin_read=True),
        Attr("service_types", post=True, put=True, default=list, convert=v.list_of(v.string(255)),
             admin_post=True, admin_put=True, filter=False, sort=False),
        Attr("dns_publish_fixed_ip", post=True, put=True, default=False, convert=v.boolean,
             filter_convert=v.boolean),
    ),
)
