"""Which DHCP agents serve a network and which L3 agent hosts a router.

DHCP (extension ``dhcp_agent_scheduler``), with Neutron's defaults:

* a network is scheduled once it has a DHCP-enabled subnet (when such a
  subnet is created or enabled, or a port is created on the network) onto
  ``dhcp_agents_per_network`` alive, enabled DHCP agents, least loaded first
  (load = networks already hosted, counted in the database rather than the
  agent's last report, so two networks scheduled back to back spread out);
  ``availability_zone_hints`` (else ``default_availability_zones``) narrow
  the candidates;
* a DHCP agent that registers, revives or restarts picks up the networks
  still short of agents (``network_auto_schedule``);
* failover (``allow_automatic_dhcp_failover``): networks of an enabled DHCP
  agent silent for 2 × ``agent_down_time`` move to live agents — but only
  when some DHCP agent is alive, so a control-plane outage does not strip
  every network. :meth:`Scheduler.reschedule_dead_dhcp` does it; it runs on
  every agent heartbeat (:meth:`kaon.core.agents.agents.Agents.report_state`),
  which stands in for Neutron's periodic status-check worker;
* an admin may add and remove networks by hand (``POST/DELETE
  /v2.0/agents/{id}/dhcp-networks``); removing one reserves the agent's DHCP
  port (``device_id = reserved_dhcp_port``) so its address is reused.

L3 (extension ``l3_agent_scheduler``): a router goes to the alive, enabled
L3 agent hosting the fewest routers (``LeastRoutersScheduler``), not to
``dvr``-mode agents; a router's bindings go with it (``ON DELETE CASCADE``).

Two servers scheduling the same network at once could both add an agent;
on PostgreSQL the network row is locked first (``SELECT ... FOR UPDATE``),
and on SQLite write transactions are serialized anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)

from kaon import errors
from kaon.db.agent_tables import (
    agents,
    network_dhcp_agent_bindings,
    router_az_hints,
    router_l3_agent_bindings,
)
from kaon.db.core_tables import networks, ports, subnets
from kaon.db.l3_tables import routers

if TYPE_CHECKING:  # both import this module's names
    from kaon.core.agents.dhcp_ports import DhcpPorts
    from kaon.core.l3.l3_binding import RouterPortHosts

LOG = logging.getLogger("kaon.scheduling")

DHCP_AGENT = "DHCP agent"
L3_AGENT = "L3 agent"
RESERVED_DHCP_PORT = "reserved_dhcp_port"

AgentNotFound = errors.define("AgentNotFound", errors.NotFound, "Agent {id} could not be found.")
InvalidDHCPAgent = errors.define("InvalidDHCPAgent", AgentNotFound,
                                 "Agent {id} is not a valid DHCP Agent or has been disabled.")
NetworkHostedByDHCPAgent = errors.define(
    "NetworkHostedByDHCPAgent", errors.Conflict,
    "The network {network_id} has been already hosted by the DHCP Agent {agent_id}.")
NetworkNotHostedByDhcpAgent = errors.define(
    "NetworkNotHostedByDhcpAgent", errors.Conflict,
    "The network {network_id} is not hosted by the DHCP Agent {agent_id}.")
InvalidL3Agent = errors.define("InvalidL3Agent", AgentNotFound,
                               "Agent {id} is not a L3 Agent or has been disabled")
RouterHostedByL3Agent = errors.define(
    "RouterHostedByL3Agent", errors.Conflict,
    "The router {router_id} has been already hosted by the L3 Agent {agent_id}.")
RouterNotHostedByL3Agent = errors.define(
    "RouterNotHostedByL3Agent", errors.Conflict,
    "The router {router_id} is not hosted by L3 agent {agent_id}.")
RouterNotFound = errors.define("RouterNotFound", errors.NotFound, "Router {router_id} could not be found.")

B = network_dhcp_agent_bindings
R = router_l3_agent_bindings


def dhcp_device_id(network_id: str, host: str) -> str:
    """The device_id of a DHCP agent's port: Neutron's formula, on the short host name."""
    short = host.split(".")[0]
    return f"dhcp{uuid.uuid5(uuid.NAMESPACE_DNS, short)}-{network_id}"


class Scheduler:
    """Agent scheduling and what directly follows it: a network whose DHCP
    agents changed gets its DHCP ports (:class:`kaon.core.agents.dhcp_ports.DhcpPorts`),
    a router that moved takes its ports to the new host
    (:class:`kaon.core.l3.l3_binding.RouterPortHosts`), in the same transaction."""

    def __init__(self, cfg: Any, dhcp_ports: DhcpPorts, router_hosts: RouterPortHosts) -> None:
        d = cfg.default
        self.down_time = int(d.agent_down_time)
        self.per_network = int(d.dhcp_agents_per_network)
        self.network_auto = bool(d.network_auto_schedule)
        self.router_auto = bool(d.router_auto_schedule)
        self.failover = bool(d.allow_automatic_dhcp_failover)
        self.default_azs = tuple(d.default_availability_zones)
        self.dhcp_ports = dhcp_ports
        self.router_hosts = router_hosts

    def _router_moved(self, conn: Connection, router_id: str) -> None:
        self.router_hosts.sync_router(conn, router_id)

    def _dhcp_bindings_changed(self, conn: Connection, network_id: str) -> None:
        self.dhcp_ports.sync_network(conn, network_id)

    def cutoff(self, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(seconds=self.down_time)

    def dhcp_state(self, conn: Connection, network_id: str, now: dt.datetime) -> Any:
        """(hosted, eligible, dhcp_ports) of a network in one statement: how
        many DHCP agents host it, whether any DHCP agent is alive and
        enabled, whether it has ``network:dhcp`` ports. Answers the common
        cases (no agent at all, already served) of a write that may need
        scheduling without the detailed look of :meth:`schedule_network`."""
        return conn.execute(_DHCP_STATE, {"network_id": network_id, "agent_type": DHCP_AGENT,
                                          "cutoff": self.cutoff(now)}).one()

    def agent(self, conn: Connection, agent_id: str) -> Any:
        row = conn.execute(select(agents).where(agents.c.id == agent_id)).first()
        if row is None:
            raise AgentNotFound(id=agent_id)
        return row

    def _any_eligible(self, conn: Connection, agent_type: str, now: dt.datetime) -> bool:
        """One cheap query that ends the common no-agent case (API-only nodes)."""
        return conn.execute(select(agents.c.id).where(
            agents.c.agent_type == agent_type, agents.c.admin_state_up.is_(True),
            agents.c.heartbeat_timestamp >= self.cutoff(now)).limit(1)).first() is not None

    def _candidates(self, conn: Connection, agent_type: str, binding: Table, agent_col: Any,
                    now: dt.datetime, azs: tuple[str, ...]) -> list[Any]:
        """Alive, enabled agents of a type with how much each hosts, least loaded first."""
        hosted = func.count(binding.c[agent_col]).label("hosted")
        rows = conn.execute(
            select(agents, hosted).outerjoin(binding, binding.c[agent_col] == agents.c.id)
            .where(agents.c.agent_type == agent_type, agents.c.admin_state_up.is_(True),
                   agents.c.heartbeat_timestamp >= self.cutoff(now))
            .group_by(agents.c.id)).all()
        rows = [r for r in rows if not azs or r.availability_zone in azs]
        return sorted(rows, key=lambda r: (r.hosted, r.host, r.id))

    # -- DHCP: reads ---------------------------------------------------
    def networks_of_agent(self, conn: Connection, agent_id: str) -> list[str]:
        self.agent(conn, agent_id)
        return list(conn.execute(select(B.c.network_id).where(B.c.dhcp_agent_id == agent_id)
                                 .order_by(B.c.network_id)).scalars())

    def dhcp_agents_of_network(self, conn: Connection, network_id: str) -> list[str]:
        if conn.execute(select(networks.c.id).where(networks.c.id == network_id)).first() is None:
            raise errors.NetworkNotFound(net_id=network_id)
        return list(conn.execute(select(B.c.dhcp_agent_id).where(B.c.network_id == network_id)
                                 .order_by(B.c.dhcp_agent_id)).scalars())

    # -- DHCP: by hand -------------------------------------------------
    def add_network(self, conn: Connection, agent_id: str, network_id: str) -> None:
        if conn.execute(select(networks.c.id).where(networks.c.id == network_id)).first() is None:
            raise errors.NetworkNotFound(net_id=network_id)
        agent = self.agent(conn, agent_id)
        if agent.agent_type != DHCP_AGENT or not agent.admin_state_up:
            raise InvalidDHCPAgent(id=agent_id)
        if conn.execute(select(B.c.network_id).where(B.c.network_id == network_id,
                                                     B.c.dhcp_agent_id == agent_id)).first() is not None:
            raise NetworkHostedByDHCPAgent(network_id=network_id, agent_id=agent_id)
        conn.execute(insert(B).values(network_id=network_id, dhcp_agent_id=agent_id))
        self._dhcp_bindings_changed(conn, network_id)

    def remove_network(self, conn: Connection, agent_id: str, network_id: str) -> None:
        agent = self.agent(conn, agent_id)
        gone = conn.execute(delete(B).where(B.c.network_id == network_id, B.c.dhcp_agent_id == agent_id))
        if not gone.rowcount:
            raise NetworkNotHostedByDhcpAgent(network_id=network_id, agent_id=agent_id)
        self._reserve_dhcp_port(conn, network_id, agent.host)
        self._dhcp_bindings_changed(conn, network_id)

    def _reserve_dhcp_port(self, conn: Connection, network_id: str, host: str) -> None:
        # Keep the port (and its address) for whichever agent serves the
        # network next, as Neutron does; the agent's own sweep drops its device.
        conn.execute(update(ports).where(
            ports.c.network_id == network_id, ports.c.device_owner == "network:dhcp",
            ports.c.device_id == dhcp_device_id(network_id, host)).values(
            device_id=RESERVED_DHCP_PORT, revision_number=ports.c.revision_number + 1))

    # -- DHCP: automatic -----------------------------------------------
    def _hosting(self, conn: Connection, network_id: str) -> set[str]:
        return set(conn.execute(select(B.c.dhcp_agent_id).where(B.c.network_id == network_id)).scalars())

    def _needs_dhcp(self, conn: Connection, network_id: str) -> bool:
        return bool(conn.execute(select(exists().where(subnets.c.network_id == network_id,
                                                       subnets.c.enable_dhcp.is_(True)))).scalar())

    def schedule_network(self, conn: Connection, network_id: str, now: dt.datetime) -> list[str]:
        """Bring a network with a DHCP subnet up to ``dhcp_agents_per_network``; the agents added.

        Runs on every port create, so the common cases (already served, no
        DHCP subnet, no eligible agent) end before taking the network's lock.
        """
        if not self.network_auto:
            return []
        hosting = self._hosting(conn, network_id)
        if len(hosting) >= self.per_network or not self._any_eligible(conn, DHCP_AGENT, now) \
                or not self._needs_dhcp(conn, network_id):
            return []
        hints = conn.execute(select(networks.c.availability_zone_hints).where(networks.c.id == network_id)).scalar()
        azs = tuple(hints or ()) or self.default_azs
        candidates = [r for r in self._candidates(conn, DHCP_AGENT, B, "dhcp_agent_id", now, azs)
                      if r.id not in hosting]
        if not candidates:
            LOG.debug("Network %s needs a DHCP agent but none is eligible", network_id)
            return []
        # Lock, then look again: another server may have just scheduled it.
        conn.execute(select(networks.c.id).where(networks.c.id == network_id).with_for_update())
        hosting = self._hosting(conn, network_id)
        chosen = [r for r in candidates if r.id not in hosting][:max(0, self.per_network - len(hosting))]
        for agent in chosen:
            conn.execute(insert(B).values(network_id=network_id, dhcp_agent_id=agent.id))
            LOG.info("Scheduled network %s to DHCP agent %s on host %s", network_id, agent.id, agent.host)
        if chosen:
            self._dhcp_bindings_changed(conn, network_id)
        return [a.id for a in chosen]

    def auto_schedule_networks(self, conn: Connection, agent_id: str, now: dt.datetime) -> list[str]:
        """Give an (alive, enabled) DHCP agent the networks still short of agents; the networks added."""
        agent = self.agent(conn, agent_id)
        if (not self.network_auto or agent.agent_type != DHCP_AGENT or not agent.admin_state_up
                or agent.heartbeat_timestamp < self.cutoff(now)):
            return []
        with_dhcp = select(subnets.c.network_id).where(subnets.c.enable_dhcp.is_(True))
        nets = conn.execute(select(networks.c.id, networks.c.availability_zone_hints)
                            .where(networks.c.id.in_(with_dhcp)).order_by(networks.c.id)).all()
        counts: dict[str, int] = {str(n): int(c) for n, c in conn.execute(
            select(B.c.network_id, func.count()).group_by(B.c.network_id))}
        mine = set(conn.execute(select(B.c.network_id).where(B.c.dhcp_agent_id == agent_id)).scalars())
        added = []
        for net in nets:
            azs = tuple(net.availability_zone_hints or ()) or self.default_azs
            if net.id in mine or counts.get(net.id, 0) >= self.per_network:
                continue
            if azs and agent.availability_zone not in azs:
                continue
            conn.execute(insert(B).values(network_id=net.id, dhcp_agent_id=agent_id))
            self._dhcp_bindings_changed(conn, net.id)
            added.append(net.id)
        if added:
            LOG.info("Scheduled %d network(s) to DHCP agent %s on host %s", len(added), agent_id, agent.host)
        return added

    def reschedule_dead_dhcp(self, conn: Connection, now: dt.datetime) -> list[tuple[str, str]]:
        """Failover (see the module doc); the (network, dead agent) pairs moved.

        Neutron also spares an agent that is "starting up"; since its
        heartbeat is already older than 2 × agent_down_time that grace only
        adds 2 s per network, and kaon leaves it out.
        """
        if not self.failover:
            return []
        limit = 2 * self.down_time
        dead = conn.execute(
            select(B.c.network_id, B.c.dhcp_agent_id, agents.c.host).join(agents, agents.c.id == B.c.dhcp_agent_id)
            .where(agents.c.agent_type == DHCP_AGENT, agents.c.admin_state_up.is_(True),
                   agents.c.heartbeat_timestamp < now - dt.timedelta(seconds=limit))
            .order_by(B.c.network_id, B.c.dhcp_agent_id)).all()
        if not dead:
            return []
        if not self._candidates(conn, DHCP_AGENT, B, "dhcp_agent_id", now, ()):
            LOG.warning("No DHCP agents available, skipping rescheduling of %d network(s)", len(dead))
            return []
        moved = []
        for net_id, agent_id, host in dead:
            LOG.warning("Removing network %s from agent %s because the agent did not report to the server "
                        "in the last %s seconds.", net_id, agent_id, limit)
            conn.execute(delete(B).where(B.c.network_id == net_id, B.c.dhcp_agent_id == agent_id))
            self._reserve_dhcp_port(conn, net_id, host)
            if not self.schedule_network(conn, net_id, now):
                self._dhcp_bindings_changed(conn, net_id)
            moved.append((net_id, agent_id))
        return moved

    # -- L3 ------------------------------------------------------------
    def router(self, conn: Connection, router_id: str) -> Any:
        row = conn.execute(select(routers).where(routers.c.id == router_id)).first()
        if row is None:
            raise RouterNotFound(router_id=router_id)
        return row

    def routers_of_agent(self, conn: Connection, agent_id: str) -> list[str]:
        self.agent(conn, agent_id)
        return list(conn.execute(select(R.c.router_id).where(R.c.l3_agent_id == agent_id)
                                 .order_by(R.c.router_id)).scalars())

    def l3_agents_of_router(self, conn: Connection, router_id: str) -> list[str]:
        self.router(conn, router_id)
        return list(conn.execute(select(R.c.l3_agent_id).where(R.c.router_id == router_id)
                                 .order_by(R.c.binding_index, R.c.l3_agent_id)).scalars())

    def add_router(self, conn: Connection, agent_id: str, router_id: str) -> None:
        router = self.router(conn, router_id)
        agent = self.agent(conn, agent_id)
        if agent.agent_type != L3_AGENT or not agent.admin_state_up:
            raise InvalidL3Agent(id=agent_id)
        hosting = list(conn.execute(select(R.c.l3_agent_id).where(R.c.router_id == router_id)).scalars())
        if agent_id in hosting:
            return  # already there: nothing to do, as in Neutron
        if hosting and not getattr(router, "ha", False):
            raise RouterHostedByL3Agent(router_id=router_id, agent_id=hosting[0])
        conn.execute(insert(R).values(router_id=router_id, l3_agent_id=agent_id, binding_index=len(hosting) + 1))
        self._router_moved(conn, router_id)

    def remove_router(self, conn: Connection, agent_id: str, router_id: str) -> None:
        self.agent(conn, agent_id)
        gone = conn.execute(delete(R).where(R.c.router_id == router_id, R.c.l3_agent_id == agent_id))
        if not gone.rowcount:
            raise RouterNotHostedByL3Agent(router_id=router_id, agent_id=agent_id)
        self._router_moved(conn, router_id)

    def _l3_candidates(self, conn: Connection, now: dt.datetime, azs: tuple[str, ...]) -> list[Any]:
        rows = self._candidates(conn, L3_AGENT, R, "l3_agent_id", now, azs)
        return [r for r in rows if (r.configurations or {}).get("agent_mode", "legacy") != "dvr"]

    def _router_hints(self, conn: Connection, router_id: str) -> list[str]:
        hints = conn.execute(select(router_az_hints.c.hints).where(router_az_hints.c.router_id == router_id)).scalar()
        return list(hints or [])

    def schedule_router(self, conn: Connection, router_id: str, now: dt.datetime) -> str | None:
        """Put an unhosted router on the least loaded L3 agent (``router_auto_schedule``); that agent."""
        if not self.router_auto:
            return None
        self.router(conn, router_id)
        if conn.execute(select(R.c.l3_agent_id).where(R.c.router_id == router_id)).first() is not None:
            return None
        azs = tuple(self._router_hints(conn, router_id)) or self.default_azs
        candidates = self._l3_candidates(conn, now, azs)
        if not candidates:
            LOG.info("Failed to schedule router %s: no eligible L3 agent", router_id)
            return None
        conn.execute(insert(R).values(router_id=router_id, l3_agent_id=candidates[0].id, binding_index=1))
        self._router_moved(conn, router_id)
        return str(candidates[0].id)

    def auto_schedule_routers(self, conn: Connection, agent_id: str, now: dt.datetime) -> list[str]:
        """Give an (alive, enabled) L3 agent every router no agent hosts; the routers added."""
        agent = self.agent(conn, agent_id)
        if (not self.router_auto or agent.agent_type != L3_AGENT or not agent.admin_state_up
                or agent.heartbeat_timestamp < self.cutoff(now)
                or (agent.configurations or {}).get("agent_mode", "legacy") == "dvr"):
            return []
        unhosted = conn.execute(select(routers).where(routers.c.id.not_in(select(R.c.router_id)))
                                .order_by(routers.c.id)).all()
        added = []
        for router in unhosted:
            azs = tuple(self._router_hints(conn, router.id)) or self.default_azs
            if azs and agent.availability_zone not in azs:
                continue
            conn.execute(insert(R).values(router_id=router.id, l3_agent_id=agent_id, binding_index=1))
            self._router_moved(conn, router.id)
            added.append(router.id)
        return added


_NET: BindParameter[str] = bindparam("network_id")
_DHCP_STATE = select(
    select(func.count()).select_from(B).where(B.c.network_id == _NET).scalar_subquery().label("hosted"),
    exists().where(agents.c.agent_type == bindparam("agent_type"), agents.c.admin_state_up.is_(True),
                   agents.c.heartbeat_timestamp >= bindparam("cutoff")).label("eligible"),
    exists().where(ports.c.network_id == _NET, ports.c.device_owner == "network:dhcp").label("dhcp_ports"),
)
