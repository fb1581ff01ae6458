"""Tables of the core resources: networks, subnets, ports and what hangs off them.

Lists that are never filtered on (allocation pools, DNS servers, host routes,
address pairs, DHCP options, binding profile) live in JSON columns: a port or
subnet is then one row, which keeps show and list to one query per table.
Anything that is filtered on or must be unique gets its own table
(IP allocations, security-group bindings, tags, RBAC entries).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from kaon.db.meta import metadata


def _standard() -> list[Column]:
    return [
        Column("project_id", String(255), nullable=False, default="", index=True),
        Column("name", String(255), nullable=False, default=""),
        Column("description", String(255), nullable=False, default=""),
        Column("created_at", DateTime, nullable=False),
        Column("updated_at", DateTime, nullable=False),
        Column("revision_number", BigInteger, nullable=False, default=0),
    ]


networks = Table(
    "networks",
    metadata,
    Column("id", String(36), primary_key=True),
    *_standard(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="ACTIVE"),
    Column("mtu", Integer, nullable=False, default=1500),
    Column("port_security_enabled", Boolean, nullable=False, default=True),
    Column("availability_zone_hints", JSON, nullable=False, default=list),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("dns_domain", String(255), nullable=False, default=""),
)

# What `shared` and `router:external` mean underneath: access_as_shared /
# access_as_external entries, target '*' for everybody.
network_rbacs = Table(
    "network_rbacs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(255), nullable=False),
    Column("object_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_project", String(255), nullable=False),
    UniqueConstraint("object_id", "action", "target_project"),
    Index("ix_network_rbacs_target", "target_project", "action"),
)

subnets = Table(
    "subnets",
    metadata,
    Column("id", String(36), primary_key=True),
    *_standard(),
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("ip_version", Integer, nullable=False),
    Column("cidr", String(64), nullable=False),
    Column("gateway_ip", String(64), nullable=True),
    Column("enable_dhcp", Boolean, nullable=False, default=True),
    Column("ipv6_ra_mode", String(32), nullable=True),
    Column("ipv6_address_mode", String(32), nullable=True),
    Column("subnetpool_id", String(36), nullable=True),
    Column("segment_id", String(36), nullable=True),
    Column("allocation_pools", JSON, nullable=False, default=list),
    Column("dns_nameservers", JSON, nullable=False, default=list),
    Column("host_routes", JSON, nullable=False, default=list),
    Column("service_types", JSON, nullable=False, default=list),
    Column("dns_publish_fixed_ip", Boolean, nullable=False, default=False),
)

ports = Table(
    "ports",
    metadata,
    Column("id", String(36), primary_key=True),
    *_standard(),
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("mac_address", String(32), nullable=False),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="DOWN"),
    Column("device_id", String(255), nullable=False, default="", index=True),
    Column("device_owner", String(255), nullable=False, default="", index=True),
    Column("port_security_enabled", Boolean, nullable=False, default=True),
    Column("binding_host_id", String(255), nullable=False, default="", index=True),
    Column("binding_vnic_type", String(64), nullable=False, default="normal"),
    Column("binding_profile", JSON, nullable=False, default=dict),
    Column("binding_vif_type", String(64), nullable=False, default="unbound"),
    Column("binding_vif_details", JSON, nullable=False, default=dict),
    Column("binding_failure", String(1024), nullable=False, default=""),
    Column("allowed_address_pairs", JSON, nullable=False, default=list),
    Column("extra_dhcp_opts", JSON, nullable=False, default=list),
    Column("dns_name", String(255), nullable=False, default=""),
    UniqueConstraint("network_id", "mac_address"),
)

ip_allocations = Table(
    "ip_allocations",
    metadata,
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("ip_address", String(64), nullable=False),
    Column("subnet_id", String(36), ForeignKey("subnets.id", ondelete="CASCADE"), nullable=False),
    Column("network_id", String(36), nullable=False),
    # One address, one holder, per subnet: the backstop for concurrent creates.
    UniqueConstraint("subnet_id", "ip_address"),
    Index("ix_ip_allocations_ip", "ip_address"),
)

port_security_groups = Table(
    "port_security_groups",
    metadata,
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("security_group_id", String(36), primary_key=True, index=True),
)

tags = Table(
    "tags",
    metadata,
    Column("resource_id", String(36), primary_key=True),
    Column("tag", String(255), primary_key=True),
    Column("resource_type", String(32), nullable=False),
    Index("ix_tags_tag", "tag"),
)

quotas = Table(
    "quotas",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("resource", String(64), primary_key=True),
    Column("limit", Integer, nullable=False),
)
