"""What follows a port write, in order, in the write's transaction.

A port create runs, top to bottom:

1. **create** — :meth:`kaon.core.l2.ports.Ports.create`: policy, quota, the
   row (:class:`kaon.core.l2.port_rows.PortRows`), addresses, security groups;
2. **bind** — a port with a ``binding:host_id`` is bound by ML2
   (:class:`kaon.ml2.binding.Binder`);
3. **schedule DHCP** — the port's network, once it has a DHCP subnet, is
   brought up to ``dhcp_agents_per_network`` agents
   (:meth:`kaon.core.agents.scheduling.Scheduler.schedule_network`);
4. **DHCP ports** — a network whose DHCP agents changed gets its
   ``network:dhcp`` ports at once (the scheduler calls
   :meth:`kaon.core.agents.dhcp_ports.DhcpPorts.sync_network`, which inserts them
   through ``PortRows`` and binds them: they never re-enter step 1);
5. **router hosts** — a router's port goes to its L3 agent's host
   (:meth:`kaon.core.l3.l3_binding.RouterPortHosts.sync_router`).

A port update rebinds when a ``binding:*`` attribute changed. The same
steps follow the other writes that move them, each written at its place:
a subnet gaining or losing DHCP (:class:`kaon.core.l2.subnets.Subnets`: 3, 4),
a router created or changed by an action (:class:`kaon.core.l3.routers.Routers`:
L3 scheduling, 5), an agent arriving (:class:`kaon.core.agents.agents.Agents`).

This replaces hook lists whose order was the order of ``append`` calls at
start-up (Neutron's callback shape, which the design asks us to avoid).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, exists, func, select

from kaon.core.agents.scheduling import DHCP_AGENT, Scheduler
from kaon.core.l3.l3_binding import ROUTER_OWNERS, RouterPortHosts
from kaon.db.agent_tables import agents, network_dhcp_agent_bindings
from kaon.db.core_tables import ports
from kaon.ml2.binding import Binder, utcnow

BINDING_KEYS = frozenset({"binding:host_id", "binding:vnic_type", "binding:profile"})


class PortPipeline:
    def __init__(self, binder: Binder, scheduler: Scheduler, router_hosts: RouterPortHosts) -> None:
        self.binder = binder
        self.scheduler = scheduler
        self.router_hosts = router_hosts

    def created(self, conn: Connection, port_ids: list[str]) -> None:
        """Steps 2-5 for the ports of one create (one, or a bulk)."""
        now = utcnow()
        params = {"agent_type": DHCP_AGENT, "cutoff": self.scheduler.cutoff(now)}
        if len(port_ids) == 1:  # the common case: one prebuilt statement
            rows = conn.execute(_PORT_CREATED, {"port_id": port_ids[0], **params}).all()
        else:
            rows = []
            for start in range(0, len(port_ids), 300):
                rows.extend(conn.execute(_PORTS_CREATED, {"ids": port_ids[start : start + 300], **params}))
        networks: dict[str, Any] = {}
        routers: dict[str, None] = {}
        for row in rows:
            if row.binding_host_id:
                self.binder.bind_port(conn, row.id)  # 2. bind
            networks.setdefault(row.network_id, row)
            if row.device_owner in ROUTER_OWNERS and row.device_id:
                routers[row.device_id] = None
        for net in networks.values():
            # The row answers the common cases (already served, no alive DHCP
            # agent); schedule_network looks again in detail.
            if net.eligible and net.hosted < self.scheduler.per_network:
                self.scheduler.schedule_network(conn, net.network_id, now)  # 3. schedule DHCP -> 4. DHCP ports
        for router_id in routers:
            self.router_hosts.sync_router(conn, router_id)  # 5. router hosts

    def updated(self, conn: Connection, port_id: str, changed: Iterable[str]) -> None:
        if BINDING_KEYS & set(changed):
            self.binder.bind_port(conn, port_id)


_CREATED_COLUMNS = (
    ports.c.id, ports.c.network_id, ports.c.binding_host_id, ports.c.device_owner, ports.c.device_id,
    select(func.count()).select_from(network_dhcp_agent_bindings)
    .where(network_dhcp_agent_bindings.c.network_id == ports.c.network_id).scalar_subquery().label("hosted"),
    exists().where(agents.c.agent_type == bindparam("agent_type"), agents.c.admin_state_up.is_(True),
                   agents.c.heartbeat_timestamp >= bindparam("cutoff")).label("eligible"),
)
_PORT_CREATED = select(*_CREATED_COLUMNS).where(ports.c.id == bindparam("port_id"))
_PORTS_CREATED = select(*_CREATED_COLUMNS).where(ports.c.id.in_(bindparam("ids", expanding=True)))
