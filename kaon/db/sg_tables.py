"""Tables of security groups, their rules, the default-rules template, the
per-project default group and security-group RBAC entries.

``default_security_groups`` holds one row per project naming its default
group. Its primary key is what makes "the default group is created exactly
once" true under concurrency: a second creator cannot insert a second row
(see :mod:`kaon.core.security.default_sg` for how the loser finds the winner's).

Rules reference their group and, optionally, a remote group; deleting a
group deletes both kinds of rule (Neutron's ``ondelete=CASCADE``).
Port bindings are ``core_tables.port_security_groups``.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from kaon.db.core_tables import _standard
from kaon.db.meta import metadata

security_groups = Table(
    "security_groups",
    metadata,
    Column("id", String(36), primary_key=True),
    *_standard(),
    Column("stateful", Boolean, nullable=False, default=True),
)

default_security_groups = Table(
    "default_security_groups",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("security_group_id", String(36), ForeignKey("security_groups.id", ondelete="CASCADE"),
           nullable=False, unique=True),
)

security_group_rules = Table(
    "security_group_rules",
    metadata,
    Column("id", String(36), primary_key=True),
    *[c for c in _standard() if c.name != "name"],
    Column("security_group_id", String(36), ForeignKey("security_groups.id", ondelete="CASCADE"),
           nullable=False, index=True),
    Column("remote_group_id", String(36), ForeignKey("security_groups.id", ondelete="CASCADE"),
           nullable=True, index=True),
    Column("remote_address_group_id", String(36), nullable=True),
    Column("direction", String(16), nullable=False),
    Column("ethertype", String(8), nullable=False),
    Column("protocol", String(40), nullable=True),
    Column("port_range_min", Integer, nullable=True),
    Column("port_range_max", Integer, nullable=True),
    Column("remote_ip_prefix", String(64), nullable=True),
)

# The template new groups take their rules from. remote_group_id is
# 'PARENT' (the group being created), a group id, or NULL.
default_security_group_rules = Table(
    "default_security_group_rules",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("description", String(255), nullable=False, default=""),
    Column("direction", String(16), nullable=False),
    Column("ethertype", String(8), nullable=False),
    Column("protocol", String(40), nullable=True),
    Column("port_range_min", Integer, nullable=True),
    Column("port_range_max", Integer, nullable=True),
    Column("remote_ip_prefix", String(64), nullable=True),
    Column("remote_group_id", String(36), nullable=True),
    Column("remote_address_group_id", String(36), nullable=True),
    Column("used_in_default_sg", Boolean, nullable=False, default=False),
    Column("used_in_non_default_sg", Boolean, nullable=False, default=True),
)

securitygroup_rbacs = Table(
    "securitygroup_rbacs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(255), nullable=False, index=True),
    Column("object_id", String(36), ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_project", String(255), nullable=False),
    UniqueConstraint("object_id", "action", "target_project"),
    Index("ix_securitygroup_rbacs_target", "target_project", "action"),
)
