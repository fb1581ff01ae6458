"""ML2 tables: a network's segments, and which segmentation IDs are taken.

``network_segments`` is what the API shows as ``provider:*`` / ``segments``.

``ml2_segment_allocations`` holds one row per *taken* ID, keyed by
``(network_type, physical_network, segmentation_id)``. Its primary key is what
makes an ID belong to one network even when two servers allocate at the same
moment on PostgreSQL: the second INSERT waits for the first transaction and
then fails, and the allocator moves on to the next free ID (see
``kaon.ml2.types.pool``). Unlike Neutron, free IDs have no rows: a VXLAN range
of 16 million VNIs costs nothing, and no start-up sync is needed when the
configured ranges change.

Key conventions: tunnel types store ``physical_network = ''`` (a NULL in a
primary key would not compare equal, so it could not guard anything); a flat
network takes ``segmentation_id = 0``, the whole physical network.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Integer, String, Table

from kaon.db.meta import metadata

network_segments = Table(
    "network_segments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("network_type", String(32), nullable=False),
    Column("physical_network", String(64), nullable=True),
    Column("segmentation_id", BigInteger, nullable=True),
    Column("segment_index", Integer, nullable=False, default=0),
    # Segments that mechanism drivers add while binding (hierarchical binding).
    Column("is_dynamic", Boolean, nullable=False, default=False),
    Column("name", String(255), nullable=True),
)

ml2_segment_allocations = Table(
    "ml2_segment_allocations",
    metadata,
    Column("network_type", String(32), primary_key=True),
    Column("physical_network", String(64), primary_key=True),
    # GRE keys go up to 2**32 - 1, past a signed 32-bit INTEGER.
    Column("segmentation_id", BigInteger, primary_key=True, autoincrement=False),
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True),
)
