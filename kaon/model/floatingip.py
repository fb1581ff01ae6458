"""The floating IP resource (router's floatingips, fip-port-details,
standard attrs; a floating IP has a description but no name).

``subnet_id`` is input only (which external subnet to take the address
from); ``router_id``, ``fixed_ip_address`` (when not given) and
``port_details`` are computed by :mod:`kaon.core.l3.floatingips`.
"""

from __future__ import annotations

from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource, standard_attrs

FLOATINGIP = Resource(
    "floatingip",
    "floatingips",
    (
        *(a for a in standard_attrs() if a.name != "name"),
        Attr("floating_network_id", post=True, required=True, convert=v.uuid_str),
        Attr("floating_ip_address", post=True, convert=v.ip_or_none),
        Attr("subnet_id", post=True, convert=v.uuid_or_none, filter=False, sort=False),
        Attr("port_id", post=True, put=True, convert=v.uuid_or_none, sort=False),
        Attr("fixed_ip_address", post=True, put=True, convert=v.ip_or_none),
        Attr("router_id"),
        Attr("status"),
        Attr("port_details", filter=False, sort=False),
    ),
)
