"""The network resource (core + provider, multi-provider, external-net,
net-mtu(-writable), port-security, availability zones, standard attrs)."""

from __future__ import annotations

from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource, standard_attrs

NETWORK = Resource(
    "network",
    "networks",
    (
        *standard_attrs(),
        Attr("admin_state_up", post=True, put=True, default=True, convert=v.boolean, filter_convert=v.boolean),
        Attr("status"),
        Attr("subnets", sort=False),
        Attr("shared", post=True, put=True, default=False, convert=v.boolean, admin_post=True,
             admin_put=True, filter_convert=v.boolean, sort=False),
        Attr("router:external", post=True, put=True, default=False, convert=v.boolean, admin_post=True,
             admin_put=True, filter_convert=v.boolean, sort=False),
        Attr("provider:network_type", post=True, put=True, convert=v.string(32), admin_post=True,
             admin_put=True, admin_read=True, sort=False),
        Attr("provider:physical_network", post=True, put=True, convert=v.string_or_none(64),
             admin_post=True, admin_put=True, admin_read=True, sort=False),
        Attr("provider:segmentation_id", post=True, put=True, convert=lambda x: None if x is None else v.non_negative_bigint(x),
             admin_post=True, admin_put=True, admin_read=True, sort=False, filter_convert=v.filter_bigint),
        Attr("segments", post=True, put=True, admin_post=True, admin_put=True, admin_read=True,
             filter=False, sort=False),
        Attr("port_security_enabled", post=True, put=True, default=True, convert=v.boolean,
             filter_convert=v.boolean),
        Attr("mtu", post=True, put=True, convert=v.non_negative_int, filter_convert=v.filter_int),
        Attr("availability_zone_hints", post=True, default=list, convert=v.list_of(v.string(255)),
             filter=False, sort=False),
        Attr("availability_zones", filter=False, sort=False),
        Attr("ipv4_address_scope", filter=False, sort=False),
        Attr("ipv6_address_scope", filter=False, sort=False),
        Attr("is_default", post=True, put=True, default=False, convert=v.boolean, admin_post=True,
             admin_put=True, filter_convert=v.boolean),
        Attr("l2_adjacency", filter=False, sort=False),
        Attr("dns_domain", post=True, put=True, default="", convert=v.string(255)),
    ),
)
