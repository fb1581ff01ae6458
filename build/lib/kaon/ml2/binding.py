"""Port binding: which mechanism driver, through which agent, carries a port
on its ``binding:host_id``, over which segment of its network.

:func:`decide` is the whole decision and pure: the port, its candidate
segments, the agents registered on its host and the configured drivers in
``[ml2] mechanism_drivers`` order go in; a :class:`Decision` comes out. The
first driver whose agent on the host is alive, enabled and can carry one of
the segments binds the port (Neutron's ``AgentMechanismDriverBase``). When
nothing binds, the decision says why in a sentence a person can act on:

* no mechanism driver that binds ports is configured;
* ``binding:vnic_type`` is one no configured driver supports;
* "host compute has no live Linux bridge agent or Open vSwitch agent"
  (with the hosts that do have one, which catches FQDN vs short names);
* "Linux bridge agent on host compute was last seen 120 s ago (agent_down_time 75 s)";
* "Open vSwitch agent on host compute is disabled (admin_state_up is false)";
* "Open vSwitch agent on host compute has no mapping for physical network
  provider (bridge_mappings: physnet1:br-ex)";
* "Open vSwitch agent on host compute does not support vxlan (tunnel_types: none)";
* "Linux bridge agent on host compute cannot carry vlan segments, its kernel has no VLAN support ...".

:class:`Binder` is the database side: it reads those facts in the caller's
transaction, writes ``binding:vif_type`` / ``binding:vif_details``, the
reason (``ports.binding_failure``, shown to admins as
``binding:failure_reason``) and the bound segment (``port_binding_levels``),
and logs a failure on the ``kaon.binding`` logger with Neutron's wording
("Failed to bind port ... on host ... for vnic_type ... using segments ...").

Unlike Neutron, binding runs inside the request's transaction: the decision
reads only the database and calls no driver over RPC, so there is nothing to
retry against a concurrent change (Neutron's ``MAX_BIND_TRIES`` loop). Unlike
Neutron too, an agent that is administratively down does not bind.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from kaon.db.agent_tables import agents, port_binding_levels
from kaon.db.core_tables import ip_allocations, ports, subnets
from kaon.ml2.mech.base import AgentView, MechanismDriver
from kaon.ml2.segments import Segment

LOG = logging.getLogger("kaon.binding")

UNBOUND = "unbound"
FAILED = "binding_failed"
RETRYABLE = (UNBOUND, FAILED)


@dataclass(frozen=True)
class PortFacts:
    id: str
    network_id: str
    host: str
    vnic_type: str = "normal"


@dataclass(frozen=True)
class Decision:
    vif_type: str
    vif_details: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    driver: str | None = None
    segment: Segment | None = None
    agent_id: str | None = None

    @property
    def bound(self) -> bool:
        return not self.reason


def _failed(reason: str) -> Decision:
    return Decision(FAILED, {}, reason)


def describe(segment: Segment) -> str:
    parts = [segment.network_type, segment.physical_network, segment.segmentation_id]
    return " ".join(str(p) for p in parts if p is not None)


def decide(port: PortFacts, segments: Sequence[Segment], host_agents: Sequence[AgentView],
           drivers: Sequence[MechanismDriver], l2_hosts: Sequence[str] = ()) -> Decision:
    """Bind ``port`` (see the module doc); ``l2_hosts`` only feeds the "no agent" hint."""
    binders = [d for d in drivers if d.agent_type]
    if not binders:
        names = ", ".join(d.name for d in drivers) or "empty"
        return _failed(f"no configured mechanism driver binds ports ([ml2] mechanism_drivers: {names})")
    if not segments:
        return _failed(f"network {port.network_id} has no segment the port can use")
    usable = [d for d in binders if port.vnic_type in d.supported_vnic_types]
    if not usable:
        offered = "; ".join(f"{d.name}: {', '.join(sorted(d.supported_vnic_types))}" for d in binders)
        return _failed(f"vnic_type {port.vnic_type} is not supported by any configured mechanism driver "
                       f"({offered})")
    problems: list[str] = []
    for driver in usable:
        for agent in (a for a in host_agents if a.agent_type == driver.agent_type):
            if not agent.alive:
                problems.append(f"{agent.label} was last seen {int(agent.heartbeat_age)} s ago "
                                f"(agent_down_time {agent.agent_down_time} s)")
                continue
            if not agent.admin_state_up:
                problems.append(f"{agent.label} is disabled (admin_state_up is false)")
                continue
            refusals = []
            for segment in segments:
                why = driver.check_segment(segment, agent)
                if why is None:
                    return Decision(driver.vif_type, driver.vif_details(agent, port.network_id),
                                    driver=driver.name, segment=segment, agent_id=agent.id)
                refusals.append((segment, why))
            problems.append(_refusal(agent, refusals))
    if problems:
        return _failed("; ".join(problems))
    kinds = " or ".join(dict.fromkeys(str(d.agent_type) for d in usable))
    others = sorted(set(l2_hosts) - {port.host})
    hint = f" (hosts that have one: {', '.join(others[:5])}{', ...' if len(others) > 5 else ''})" \
        if others else ""
    return _failed(f"host {port.host} has no live {kinds}{hint}")


def _refusal(agent: AgentView, refusals: list[tuple[Segment, str]]) -> str:
    if len(refusals) == 1:
        return f"{agent.label} {refusals[0][1]}"
    each = "; ".join(f"{describe(s)}: {why}" for s, why in refusals)
    return f"{agent.label} can carry none of the network's segments ({each})"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Binder:
    """Binds ports in the caller's transaction (see the module doc)."""

    def __init__(self, drivers: Sequence[MechanismDriver], types: Any, agent_down_time: int) -> None:
        self.drivers = tuple(drivers)
        self.types = types
        self.agent_down_time = agent_down_time

    @property
    def agent_types(self) -> frozenset[str]:
        """The agent types whose state can change a binding decision."""
        return frozenset(d.agent_type for d in self.drivers if d.agent_type)

    def bind_port(self, conn: Connection, port_id: str, now: dt.datetime | None = None, *,
                  bump: bool = False) -> Decision | None:
        """(Re)bind one port from its current ``binding:host_id``; unbind it when that is empty.

        ``bump`` also moves revision_number/updated_at (a binding retried
        outside a port request, e.g. when an agent revives).
        """
        row = conn.execute(select(ports.c.id, ports.c.network_id, ports.c.binding_host_id,
                                  ports.c.binding_vnic_type, ports.c.revision_number)
                           .where(ports.c.id == port_id)).first()
        if row is None:
            return None
        if not row.binding_host_id:
            self._write(conn, row, Decision(UNBOUND), bump)
            return None
        now = now or utcnow()
        facts = PortFacts(row.id, row.network_id, row.binding_host_id, row.binding_vnic_type)
        decision = decide(facts, self._segments(conn, row), self._host_agents(conn, facts.host, now),
                          self.drivers, self._l2_hosts(conn))
        self._write(conn, row, decision, bump)
        if decision.bound:
            LOG.info("Bound port %s on host %s with %s using segment %s", row.id, facts.host,
                     decision.driver, decision.segment and describe(decision.segment))
        else:
            LOG.warning("Failed to bind port %s on host %s for vnic_type %s using segments %s: %s",
                        row.id, facts.host, facts.vnic_type, self._segment_dicts(conn, row), decision.reason)
        return decision

    def rebind_host(self, conn: Connection, host: str, now: dt.datetime | None = None) -> list[str]:
        """Retry every unbound or failed port on ``host``; the ids that are now bound."""
        ids = conn.execute(select(ports.c.id).where(ports.c.binding_host_id == host,
                                                    ports.c.binding_vif_type.in_(RETRYABLE))
                           .order_by(ports.c.id)).scalars().all()
        bound = []
        for port_id in ids:
            decision = self.bind_port(conn, port_id, now, bump=True)
            if decision is not None and decision.bound:
                bound.append(port_id)
        return bound

    # -- facts ---------------------------------------------------------
    def _segments(self, conn: Connection, row: Any) -> list[Segment]:
        """The network's segments; only those of the port's subnets when they name one (routed networks)."""
        segments: list[Segment] = self.types.segments_for(conn, [row.network_id])[row.network_id]
        wanted = set(conn.execute(select(subnets.c.segment_id).join(
            ip_allocations, ip_allocations.c.subnet_id == subnets.c.id).where(
            ip_allocations.c.port_id == row.id, subnets.c.segment_id.is_not(None))).scalars())
        return [s for s in segments if s.id in wanted] if wanted else segments

    def _host_agents(self, conn: Connection, host: str, now: dt.datetime) -> list[AgentView]:
        rows = conn.execute(select(agents).where(agents.c.host == host, agents.c.agent_type.in_(self.agent_types))
                            .order_by(agents.c.agent_type, agents.c.id)).all()
        return [AgentView.from_row(r, now, self.agent_down_time) for r in rows]

    def _l2_hosts(self, conn: Connection) -> list[str]:
        return list(conn.execute(select(agents.c.host).where(agents.c.agent_type.in_(self.agent_types))
                                 .distinct()).scalars())

    def _segment_dicts(self, conn: Connection, row: Any) -> list[dict[str, Any]]:
        return [{"id": s.id, "network_type": s.network_type, "physical_network": s.physical_network,
                 "segmentation_id": s.segmentation_id, "network_id": s.network_id}
                for s in self._segments(conn, row)]

    # -- writes --------------------------------------------------------
    def _write(self, conn: Connection, row: Any, decision: Decision, bump: bool) -> None:
        values: dict[str, Any] = {"binding_vif_type": decision.vif_type,
                                  "binding_vif_details": decision.vif_details,
                                  # The column holds 1024 characters; a reason past that is cut, not refused.
                                  "binding_failure": decision.reason[:1024]}
        if bump:
            values.update(revision_number=row.revision_number + 1, updated_at=utcnow().replace(microsecond=0))
        conn.execute(update(ports).where(ports.c.id == row.id).values(values))
        conn.execute(delete(port_binding_levels).where(port_binding_levels.c.port_id == row.id))
        if decision.bound and decision.driver is not None:
            conn.execute(insert(port_binding_levels).values(
                port_id=row.id, level=0, host=row.binding_host_id, driver=decision.driver,
                segment_id=decision.segment.id if decision.segment else None))
