"""Tables of the L3 resources: routers, the ports they own, their extra
routes, and floating IPs.

``router_ports`` says which ports a router owns and in which role
(``network:router_gateway`` or ``network:router_interface``). A port's
``device_id`` says the same thing, but a client may rewrite it; this table
is the record the L3 code trusts (Neutron's ``routerports``).

A floating IP is a row here plus a port on the external network
(``floating_port_id``) that holds its address: IPAM and MAC rules are the
ports' own. Deleting that port deletes the floating IP row with it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    String,
    Table,
    UniqueConstraint,
)

from kaon.db.core_tables import _standard
from kaon.db.meta import metadata

routers = Table(
    "routers",
    metadata,
    Column("id", String(36), primary_key=True),
    *_standard(),
    Column("admin_state_up", Boolean, nullable=False, default=True),
    Column("status", String(16), nullable=False, default="ACTIVE"),
    Column("gw_port_id", String(36), ForeignKey("ports.id", ondelete="SET NULL"), nullable=True),
    Column("enable_snat", Boolean, nullable=False, default=True),
)

router_ports = Table(
    "router_ports",
    metadata,
    Column("port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("port_type", String(255), nullable=False),
)

router_routes = Table(
    "router_routes",
    metadata,
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True),
    Column("destination", String(64), primary_key=True),
    Column("nexthop", String(64), primary_key=True),
)

floatingips = Table(
    "floatingips",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(255), nullable=False, default="", index=True),
    Column("description", String(255), nullable=False, default=""),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("revision_number", BigInteger, nullable=False, default=0),
    Column("floating_network_id", String(36), ForeignKey("networks.id"), nullable=False, index=True),
    Column("floating_port_id", String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False,
           unique=True),
    Column("floating_ip_address", String(64), nullable=False),
    Column("fixed_port_id", String(36), ForeignKey("ports.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("fixed_ip_address", String(64), nullable=True),
    Column("router_id", String(36), ForeignKey("routers.id", ondelete="SET NULL"), nullable=True, index=True),
    Column("last_known_router_id", String(36), nullable=True),
    Column("status", String(16), nullable=False, default="DOWN"),
    # One floating IP per fixed address per external network: the backstop
    # for two associations racing (NULLs, i.e. unassociated rows, never clash).
    UniqueConstraint("floating_network_id", "fixed_port_id", "fixed_ip_address"),
)
