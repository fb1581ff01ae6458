"""Tables of subnet pools and address scopes, and their RBAC entries.

A pool's prefixes are a JSON list (canonical, merged CIDRs): they are never
filtered on, and the allocator reads the whole list anyway. Which prefixes
are taken is not stored here: it is the CIDRs of the subnets whose
``subnetpool_id`` names the pool (``core_tables.subnets``), so a subnet's
delete frees its prefix with nothing else to update.

``shared`` on both resources means a ``*`` ``access_as_shared`` row in the
RBAC table, exactly as for networks (:mod:`kaon.core.access.rbac`).

A pool references its address scope; deleting a scope that pools still use
is refused by the service (``AddressScopeInUse``) and, as a backstop, by the
foreign key.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint

from kaon.db.core_tables import _standard
from kaon.db.meta import metadata

# Neutron's address scope has no standard attributes (no description, tags,
# timestamps or revision number): just its name, owner and IP version.
address_scopes = Table(
    "address_scopes",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(255), nullable=False, default="", index=True),
    Column("name", String(255), nullable=False, default=""),
    Column("ip_version", Integer, nullable=False),
)

addressscope_rbacs = Table(
    "addressscope_rbacs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(255), nullable=False, index=True),
    Column("object_id", String(36), ForeignKey("address_scopes.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_project", String(255), nullable=False),
    UniqueConstraint("object_id", "action", "target_project"),
    Index("ix_addressscope_rbacs_target", "target_project", "action"),
)

subnetpools = Table(
    "subnetpools",
    metadata,
    Column("id", String(36), primary_key=True),
    *_standard(),
    Column("ip_version", Integer, nullable=False),
    Column("prefixes", JSON, nullable=False, default=list),
    Column("default_prefixlen", Integer, nullable=False),
    Column("min_prefixlen", Integer, nullable=False),
    Column("max_prefixlen", Integer, nullable=False),
    Column("default_quota", Integer, nullable=True),
    Column("is_default", Boolean, nullable=False, default=False),
    Column("address_scope_id", String(36), ForeignKey("address_scopes.id"), nullable=True, index=True),
)

subnetpool_rbacs = Table(
    "subnetpool_rbacs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(255), nullable=False, index=True),
    Column("object_id", String(36), ForeignKey("subnetpools.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target_project", String(255), nullable=False),
    UniqueConstraint("object_id", "action", "target_project"),
    Index("ix_subnetpool_rbacs_target", "target_project", "action"),
)
