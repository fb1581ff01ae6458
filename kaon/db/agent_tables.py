"""Tables of host agents and of what they host or bind.

``agents``: one row per (agent_type, host), Neutron's unique key. A renamed
host therefore registers a *new* agent and the old row stays, dead, until an
admin deletes it (as in Neutron).

``network_dhcp_agent_bindings`` / ``router_l3_agent_bindings``: which DHCP
agent serves which network and which L3 agent hosts which router; an agent's
bindings go with it (``ON DELETE CASCADE``).

``router_az_hints``: a router's ``availability_zone_hints``.

``port_binding_levels``: what bound a port (driver, segment, host); one
level, since kaon has no hierarchical binding. The compiler reads the bound
segment of a port on a multi-segment network from here.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Table,
    UniqueConstraint,
)

from kaon.db.meta import metadata

agents = Table(
    "agents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("agent_type", String(255), nullable=False),
    Column("binary", String(255), nullable=False),
    Column("topic", String(255), nullable=False),
    Column("host", String(255), nullable=False, index=True),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("description", String(255), nullable=True),
    # created_at: first report ever; started_at: last report with start_flag;
    # heartbeat_timestamp: last report (naive UTC, like every kaon timestamp).
    Column("created_at", DateTime, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("heartbeat_timestamp", DateTime, nullable=False),
    Column("configurations", JSON, nullable=False, default=dict),
    Column("availability_zone", String(255), nullable=True),
    Column("resources_synced", Boolean, nullable=True),
    # What the agent says it carries (DHCP: its "networks" count).
    Column("load", Integer, nullable=False, default=0),
    # kaon's own facts from the last report, for ``kaon doctor`` (not in the
    # API's agent): the agent's clock skew, its tunnels' reachability, its
    # last failed action, the dnsmasq processes it runs (docs/design/doctor.md).
    Column("health", JSON, nullable=True),
    UniqueConstraint("agent_type", "host"),
)

network_dhcp_agent_bindings = Table(
    "network_dhcp_agent_bindings",
    metadata,
    Column("network_id", String(36), ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True),
    Column("dhcp_agent_id", String(36), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True,
           index=True),
)

router_l3_agent_bindings = Table(
    "router_l3_agent_bindings",
    metadata,
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True),
    Column("l3_agent_id", String(36), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True,
           index=True),
    Column("binding_index", Integer, nullable=False, default=1),
)

# A router's availability_zone_hints (extension router_availability_zone),
# beside the routers table as Neutron keeps them in router_extra_attributes;
# a router without a row has no hints.
router_az_hints = Table(
    "router_az_hints",
    metadata,
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True),
    Column("hints", JSON, nullable=False, default=list),
)

port_binding_levels = Table(
    "port_binding_levels",
    metadata,
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("host", String(255), nullable=False),
    Column("driver", String(64), nullable=False),
    Column("segment_id", String(36), nullable=True),
)
