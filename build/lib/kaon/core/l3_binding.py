"""A router's ports live where its L3 agent runs.

Neutron's L3 agent plugs a router's interface and gateway ports on its own
host and the server then binds them there. In kaon the server does both in
the write that changes the picture: a router port's ``binding:host_id`` is
the host of the L3 agent the router is scheduled to
(``router_l3_agent_bindings``, lowest ``binding_index`` first), and the port
is bound through :class:`kaon.ml2.binding.Binder`, so the Linux bridge
driver binds it and it appears in that host's L2 intent like any VM port.

:meth:`RouterPortHosts.sync_router` is the whole rule and is idempotent; the
hooks call it when a router port is created, when a router action changed
the router (an interface adopted by port), and when a router is scheduled
or unscheduled (by hand, on create, or when an L3 agent registers). An
unscheduled router's ports get an empty host and are unbound.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from kaon.core.l3.routers import GW_OWNER, INTF_OWNER
from kaon.db.agent_tables import agents, router_l3_agent_bindings
from kaon.db.core_tables import ports
from kaon.db.l3_tables import router_ports
from kaon.ml2.binding import RETRYABLE, Binder, utcnow

ROUTER_OWNERS = (INTF_OWNER, GW_OWNER)
R = router_l3_agent_bindings


class RouterPortHosts:
    def __init__(self, binder: Binder) -> None:
        self.binder = binder

    def host_of(self, conn: Connection, router_id: str) -> str:
        """The host of the router's (first) L3 agent; '' when it has none."""
        host = conn.execute(_HOST_OF, {"router_id": router_id}).scalar()
        return str(host or "")

    def _router_ports(self, conn: Connection, router_id: str) -> list[Any]:
        return list(conn.execute(_ROUTER_PORTS, {"router_id": router_id}).all())

    def sync_router(self, conn: Connection, router_id: str) -> list[str]:
        """Put the router's ports on its agent's host; the ids (re)bound."""
        host = self.host_of(conn, router_id)
        done = []
        for port in self._router_ports(conn, router_id):
            if (port.binding_host_id or "") != host:
                # A host change is a change of the port: move its revision, as Neutron does.
                conn.execute(update(ports).where(ports.c.id == port.id).values(
                    binding_host_id=host, revision_number=port.revision_number + 1,
                    updated_at=utcnow().replace(microsecond=0)))
            elif not host or port.binding_vif_type not in RETRYABLE:
                continue  # already where it belongs, and bound (or rightly unbound)
            self.binder.bind_port(conn, port.id)
            done.append(port.id)
        return done

    # -- hooks (signatures of the lists they are registered on) ---------
    def port_created(self, conn: Connection, port_id: str) -> None:
        device_id = conn.execute(_ROUTER_PORT_OF, {"port_id": port_id}).scalar()
        if device_id:
            self.sync_router(conn, device_id)

    def ports_created(self, conn: Connection, port_ids: list[str]) -> None:
        """After a (bulk) port create: the routers of those that are router ports."""
        routers: list[str] = []
        for start in range(0, len(port_ids), 900):
            for (device_id,) in conn.execute(_ROUTER_PORTS_AMONG, {"ids": port_ids[start : start + 900]}):
                if device_id and device_id not in routers:
                    routers.append(device_id)
        for router_id in routers:
            self.sync_router(conn, router_id)

    def router_changed(self, conn: Connection, router_id: str, *_: Any) -> None:
        self.sync_router(conn, router_id)


_ROUTER_PORT_OF = select(ports.c.device_id).where(ports.c.id == bindparam("port_id"),
                                                  ports.c.device_owner.in_(ROUTER_OWNERS))
_ROUTER_PORTS_AMONG = select(ports.c.device_id).where(ports.c.id.in_(bindparam("ids", expanding=True)),
                                                      ports.c.device_owner.in_(ROUTER_OWNERS))
_HOST_OF = (select(agents.c.host).join(R, R.c.l3_agent_id == agents.c.id)
            .where(R.c.router_id == bindparam("router_id")).order_by(R.c.binding_index, agents.c.id).limit(1))
# router_ports is the record the L3 code trusts; device_id also catches a
# port created a moment before its router_ports row.
_ROUTER_PORTS = select(ports.c.id, ports.c.binding_host_id, ports.c.binding_vif_type, ports.c.revision_number).where(
    ports.c.device_owner.in_(ROUTER_OWNERS),
    ports.c.id.in_(select(router_ports.c.port_id).where(router_ports.c.router_id == bindparam("router_id")))
    | (ports.c.device_id == bindparam("router_id")))
