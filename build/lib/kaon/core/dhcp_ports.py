"""The ``network:dhcp`` ports: one per (network with a DHCP subnet, DHCP agent serving it).

Neutron's DHCP agent asks the server for its port when it starts serving a
network, so the port's address depends on when the agent gets round to it:
seed 002 saw the DHCP port at ``.3`` on one network and ``.2`` on another
because a VM's port came first on one of them. kaon makes the ports on the
server, in the transaction that changes what the DHCP agents serve:

* when a network is scheduled to a DHCP agent (``Scheduler`` binding hooks:
  automatic scheduling on subnet or port create, an agent starting, failover,
  ``dhcp-networks`` by hand), and when a subnet gains, loses or changes
  DHCP (``Subnets.dhcp_hooks``, after scheduling);
* the port's device_id is Neutron's ``dhcp<uuid5(host)>-<network>``, its
  ``binding:host_id`` the agent's host, so it is bound like any port and
  appears in that host's L2 intent; its project is the network's.

**The address rule.** On every DHCP subnet the port asks for the *first
address of the subnet's allocation pools* (the lowest start). With a DHCP
agent alive when the subnet is created (the usual case) the port is made in
the subnet's own transaction, before any other port can take that address,
so a DHCP server is always at the pool's first address whatever the order
of later port creations. Only when ports took it before any DHCP agent
existed does the DHCP port fall back to the next free address (logged).

A port whose agent no longer serves the network is *reserved*
(``device_id = reserved_dhcp_port``, Neutron's convention) and unbound, so
it leaves the old host's intent but keeps its address for the next agent,
which claims it. When the network's last DHCP subnet goes, its DHCP ports
are deleted. Network delete removes them with the network
(``networks.AUTO_DELETE_OWNERS``).
"""

from __future__ import annotations

import logging
from typing import Any

import netaddr
from sqlalchemy import Connection, delete, select, update

from kaon.api.context import Context
from kaon.core.l2 import ipam
from kaon.core.agents.scheduling import DHCP_AGENT, RESERVED_DHCP_PORT, dhcp_device_id
from kaon.core.l2.subnets import is_auto_address
from kaon.db.agent_tables import agents, network_dhcp_agent_bindings
from kaon.db.core_tables import ip_allocations, networks, ports, subnets

LOG = logging.getLogger("kaon.dhcp_ports")

DHCP_OWNER = "network:dhcp"


def first_pool_address(subnet: Any) -> str | None:
    """The rule's address: the lowest start among the subnet's allocation pools."""
    starts = [netaddr.IPAddress(p["start"]) for p in subnet.allocation_pools or []]
    return str(min(starts)) if starts else None


class DhcpPorts:
    """Keeps the DHCP ports of a network in line with its DHCP agents and subnets."""

    def __init__(self, ports_service: Any) -> None:
        self.ports = ports_service

    def sync_network(self, conn: Connection, network_id: str) -> None:
        """Create, claim, readdress, reserve or delete the network's DHCP ports (caller's transaction)."""
        net = conn.execute(select(networks.c.id, networks.c.project_id)
                           .where(networks.c.id == network_id)).first()
        if net is None:
            return
        dhcp_subnets = conn.execute(select(subnets).where(subnets.c.network_id == network_id,
                                                          subnets.c.enable_dhcp.is_(True))
                                    .order_by(subnets.c.created_at, subnets.c.id)).all()
        # Only the ports this module made (or reserved): a network:dhcp port
        # somebody created by hand is theirs, never claimed or deleted here.
        existing = [p for p in conn.execute(
            select(ports.c.id, ports.c.device_id, ports.c.binding_host_id)
            .where(ports.c.network_id == network_id, ports.c.device_owner == DHCP_OWNER)
            .order_by(ports.c.created_at, ports.c.id)).all()
            if p.device_id == RESERVED_DHCP_PORT or p.device_id.startswith("dhcp")]
        if not dhcp_subnets:
            for port in existing:
                self._delete(conn, port.id)
            return
        wanted = self._wanted(conn, network_id)  # device_id -> host
        ctx = Context.admin(net.project_id)
        spare = []
        for port in existing:
            if port.device_id in wanted and port.binding_host_id == wanted[port.device_id]:
                wanted.pop(port.device_id)
                self._readdress(conn, port.id, dhcp_subnets)
            else:
                spare.append(port)
        for device_id, host in sorted(wanted.items()):
            if spare:
                port = spare.pop(0)
                self._claim(ctx, conn, port.id, device_id, host)
                self._readdress(conn, port.id, dhcp_subnets)
            else:
                self._create(ctx, conn, net, device_id, host, dhcp_subnets)
        for port in spare:
            if port.device_id != RESERVED_DHCP_PORT or port.binding_host_id:
                self._claim(ctx, conn, port.id, RESERVED_DHCP_PORT, "")
            self._readdress(conn, port.id, dhcp_subnets)

    @staticmethod
    def _wanted(conn: Connection, network_id: str) -> dict[str, str]:
        hosts = conn.execute(select(agents.c.host).join(
            network_dhcp_agent_bindings, network_dhcp_agent_bindings.c.dhcp_agent_id == agents.c.id)
            .where(network_dhcp_agent_bindings.c.network_id == network_id,
                   agents.c.agent_type == DHCP_AGENT)).scalars()
        return {dhcp_device_id(network_id, host): host for host in hosts}

    def _create(self, ctx: Context, conn: Connection, net: Any, device_id: str, host: str,
                dhcp_subnets: list[Any]) -> None:
        fixed = [self._request(conn, s) for s in dhcp_subnets]
        port_id = self.ports.create(ctx, conn, {
            "network_id": net.id, "project_id": net.project_id, "admin_state_up": True, "name": "",
            "device_owner": DHCP_OWNER, "device_id": device_id, "binding:host_id": host, "fixed_ips": fixed})
        LOG.info("DHCP port %s for network %s on host %s: %s", port_id, net.id, host, fixed)

    @staticmethod
    def _request(conn: Connection, subnet: Any) -> dict[str, str]:
        """The rule (module doc): the pool's first address if free, else any.

        SLAAC and DHCPv6-stateless subnets hand out addresses themselves
        (EUI-64 from the MAC), and a fixed address there is refused: no rule.
        """
        if subnet.ip_version == 6 and is_auto_address(subnet):
            return {"subnet_id": subnet.id}
        first = first_pool_address(subnet)
        if first is not None and conn.execute(select(ip_allocations.c.port_id).where(
                ip_allocations.c.subnet_id == subnet.id, ip_allocations.c.ip_address == first)).first() is None:
            return {"subnet_id": subnet.id, "ip_address": first}
        LOG.warning("The first pool address %s of subnet %s is taken: the DHCP port gets another one",
                    first, subnet.id)
        return {"subnet_id": subnet.id}

    def _claim(self, ctx: Context, conn: Connection, port_id: str, device_id: str, host: str) -> None:
        # Through the port service: its update hooks (re)bind or unbind the port.
        self.ports.update(ctx, conn, port_id, {"device_id": device_id, "binding:host_id": host})

    @staticmethod
    def _readdress(conn: Connection, port_id: str, dhcp_subnets: list[Any]) -> None:
        """One address on every DHCP subnet; none on a subnet whose DHCP was turned off."""
        held = dict(conn.execute(select(ip_allocations.c.subnet_id, ip_allocations.c.ip_address)
                                 .where(ip_allocations.c.port_id == port_id)).all())
        wanted = {s.id for s in dhcp_subnets}
        stale = [sid for sid in held if sid not in wanted]
        missing = [s for s in dhcp_subnets if s.id not in held]
        if stale:
            conn.execute(delete(ip_allocations).where(ip_allocations.c.port_id == port_id,
                                                      ip_allocations.c.subnet_id.in_(stale)))
        for subnet in missing:
            req = DhcpPorts._request(conn, subnet)
            if "ip_address" not in req or not ipam.insert_allocation(conn, port_id, subnet, req["ip_address"]):
                ipam.allocate_any(conn, port_id, subnet)
        if stale or missing:
            conn.execute(update(ports).where(ports.c.id == port_id)
                         .values(revision_number=ports.c.revision_number + 1))

    def _delete(self, conn: Connection, port_id: str) -> None:
        row = conn.execute(select(ports).where(ports.c.id == port_id)).first()
        if row is not None:
            self.ports.remove(conn, row)
