"""The port resource (core, binding, port-security, allowed-address-pairs,
extra_dhcp_opt, security-group, standard attrs)."""

from __future__ import annotations

from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource, standard_attrs

VNIC_TYPES = (
    "normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder",
    "smart-nic", "vdpa", "accelerator-direct", "accelerator-direct-physical", "remote-managed",
)

PORT = Resource(
    "port",
    "ports",
    (
        *standard_attrs(),
        Attr("network_id", post=True, required=True, convert=v.uuid_str),
        Attr("admin_state_up", post=True, put=True, default=True, convert=v.boolean, filter_convert=v.boolean),
        Attr("mac_address", post=True, put=True, convert=v.mac_address),
        Attr("fixed_ips", post=True, put=True, sort=False),
        Attr("device_id", post=True, put=True, default="", convert=v.string(255)),
        Attr("device_owner", post=True, put=True, default="", convert=v.string(255)),
        Attr("status"),
        # null means "not given" on create (the default group) and "none" on update.
        Attr("security_groups", post=True, put=True, convert=lambda x: None if x is None else v.uuid_list(x),
             sort=False),
        Attr("port_security_enabled", post=True, put=True, convert=v.boolean, filter_convert=v.boolean),
        Attr("allowed_address_pairs", post=True, put=True, filter=False, sort=False),
        Attr("extra_dhcp_opts", post=True, put=True, filter=False, sort=False),
        Attr("binding:host_id", post=True, put=True, default="", convert=v.string(255),
             admin_post=True, admin_put=True, admin_read=True),
        Attr("binding:vnic_type", post=True, put=True, default="normal", convert=v.one_of(*VNIC_TYPES)),
        Attr("binding:profile", post=True, put=True, convert=v.dict_value, admin_post=True,
             admin_put=True, admin_read=True, filter=False, sort=False),
        Attr("binding:vif_type", admin_read=True, sort=False),
        Attr("binding:vif_details", admin_read=True, filter=False, sort=False),
        # kaon's own, read-only: why binding failed (docs/design/binding.md); clients ignore it.
        Attr("binding:failure_reason", admin_read=True, filter=False, sort=False),
        Attr("dns_name", post=True, put=True, default="", convert=v.string(255)),
        Attr("ip_allocation", filter=False, sort=False),
    ),
)
