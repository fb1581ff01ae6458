"""Agents: registration and heartbeat, the admin API, and what an agent's
arrival sets off.

:meth:`Agents.report_state` is what the bus calls with an agent's periodic
state report (Neutron's shape: ``agent_type``, ``binary``, ``topic``,
``host``, ``configurations``, ``availability_zone``, ``start_flag``). It
creates the agent on its first report (unique on ``(agent_type, host)``) and
refreshes it afterwards. An agent is *alive* while its last report is at
most ``agent_down_time`` seconds old.

When an agent is new, revives, restarts (``start_flag``) or an admin
enables it again:

* an L2 agent's host gets its unbound and ``binding_failed`` ports retried
  (a port that failed because the agent was down or lacked a mapping binds
  as soon as the agent can carry it) — also when it reports different
  configurations;
* a DHCP agent picks up networks short of agents, an L3 agent unhosted
  routers (``network_auto_schedule`` / ``router_auto_schedule``).

Every report also runs the DHCP failover sweep
(:meth:`kaon.core.agents.scheduling.Scheduler.reschedule_dead_dhcp`).

Agents are visible to admins only; others get an empty list, and 404 for an
item, as with Neutron's policy.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kaon import errors
from kaon.api.context import Context
from kaon.api.listing import ListQuery
from kaon.core.agents import availability_zones
from kaon.core.query import fetch_page, where_filters
from kaon.core.agents.scheduling import DHCP_AGENT, L3_AGENT, AgentNotFound, Scheduler
from kaon.core.stdattrs import new_id
from kaon.db.agent_tables import agents, network_dhcp_agent_bindings
from kaon.db.core_tables import ports
from kaon.ml2.binding import Binder, utcnow

LOG = logging.getLogger("kaon.agents")

NEW, REVIVED, ALIVE = "new", "revived", "alive"
REQUIRED = ("agent_type", "binary", "topic", "host")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # Neutron shows agent times like this, not ISO 8601
BINDING_KEYS = frozenset({"binding:host_id", "binding:vnic_type", "binding:profile"})

COLUMNS = {name: agents.c[name] for name in (
    "id", "agent_type", "binary", "topic", "host", "admin_state_up", "description", "availability_zone",
    "resources_synced", "created_at", "started_at", "heartbeat_timestamp",
)}


@dataclass
class ReportResult:
    """What one state report did, for the caller (the bus) and for tests."""

    agent_id: str
    status: str  # new | revived | alive
    rebound_ports: list[str] = field(default_factory=list)
    scheduled_networks: list[str] = field(default_factory=list)
    scheduled_routers: list[str] = field(default_factory=list)
    rescheduled: list[tuple[str, str]] = field(default_factory=list)


def _stamp(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime(TIME_FORMAT)


def _agent_type_filter(values: list[Any]) -> Any:
    """``agent_type`` matches without regard to case: Neutron's reference
    database (MySQL) compares so, and clients rely on it (tempest asks for
    "DHCP Agent" where agents say "DHCP agent")."""
    return func.lower(agents.c.agent_type).in_([str(v).lower() for v in values])


def _bad_report(why: str) -> errors.KaonError:
    return errors.InvalidInput(error_message=f"agent state report: {why}")


def _checked(report: Any) -> dict[str, Any]:
    if not isinstance(report, dict):
        raise _bad_report("not an object")
    for key in REQUIRED:
        if not isinstance(report.get(key), str) or not report[key]:
            raise _bad_report(f"'{key}' must be a non-empty string")
    configs = report.get("configurations") or {}
    if not isinstance(configs, dict):
        raise _bad_report("'configurations' must be an object")
    zone = report.get("availability_zone")
    if zone is not None and not isinstance(zone, str):
        raise _bad_report("'availability_zone' must be a string")
    return {**report, "configurations": configs}


def _load(agent_type: str, configs: dict[str, Any]) -> int:
    # Neutron's dhcp_load_type=networks: a DHCP agent's load is how many networks it serves.
    if agent_type != DHCP_AGENT:
        return 0
    try:
        return int(configs.get("networks", 0))
    except (TypeError, ValueError):
        return 0


class Agents:
    def __init__(self, cfg: Any, binder: Binder, scheduler: Scheduler) -> None:
        self.down_time = int(cfg.default.agent_down_time)
        self.binder = binder
        self.scheduler = scheduler

    # -- reads ---------------------------------------------------------
    def render(self, rows: Iterable[Any], now: dt.datetime | None = None) -> list[dict[str, Any]]:
        cutoff = (now or utcnow()) - dt.timedelta(seconds=self.down_time)
        return [{
            "id": r.id, "agent_type": r.agent_type, "binary": r.binary, "topic": r.topic, "host": r.host,
            "admin_state_up": r.admin_state_up, "description": r.description,
            "created_at": _stamp(r.created_at), "started_at": _stamp(r.started_at),
            "heartbeat_timestamp": _stamp(r.heartbeat_timestamp), "alive": r.heartbeat_timestamp >= cutoff,
            "configurations": r.configurations or {}, "availability_zone": r.availability_zone,
            "resources_synced": r.resources_synced,
        } for r in rows]

    def get(self, ctx: Context, conn: Connection, agent_id: str) -> dict[str, Any]:
        if not ctx.is_admin:
            raise AgentNotFound(id=agent_id)
        return self.render([self.scheduler.agent(conn, agent_id)])[0]

    def by_ids(self, conn: Connection, ids: list[str]) -> list[dict[str, Any]]:
        rows = conn.execute(select(agents).where(agents.c.id.in_(ids)).order_by(agents.c.host, agents.c.id)).all()
        return self.render(rows)

    def _alive_filter(self, values: list[Any]) -> Any:
        fresh = agents.c.heartbeat_timestamp >= utcnow() - dt.timedelta(seconds=self.down_time)
        wanted: set[Any] = set(values)
        if wanted == {True}:
            return fresh
        if wanted == {False}:
            return ~fresh
        return agents.c.id.is_not(None)

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], bool]:
        if not ctx.is_admin:
            return [], False
        stmt = select(agents)
        special = {"alive": self._alive_filter, "agent_type": _agent_type_filter}
        for clause in where_filters(q, COLUMNS, special, agents.c.id):
            stmt = stmt.where(clause)
        rows, more = fetch_page(conn, stmt, q, COLUMNS, agents.c.id, agents)
        return self.render(rows), more

    # -- the admin API -------------------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        raise errors.NotImplementedError_("Agents register themselves; they cannot be created.")

    def update(self, ctx: Context, conn: Connection, agent_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        if not ctx.is_admin:
            raise AgentNotFound(id=agent_id)
        row = self.scheduler.agent(conn, agent_id)
        out = {k: changes[k] for k in ("admin_state_up", "description") if k in changes}
        if out:
            conn.execute(update(agents).where(agents.c.id == agent_id).values(out))
        if changes.get("admin_state_up") and not row.admin_state_up:
            LOG.info("%s on host %s enabled", row.agent_type, row.host)
            self._arrived(conn, self.scheduler.agent(conn, agent_id), utcnow(), ReportResult(agent_id, ALIVE), True)

    def delete(self, ctx: Context, conn: Connection, agent_id: str, check: Any = None) -> None:
        if not ctx.is_admin:
            raise AgentNotFound(id=agent_id)
        self.scheduler.agent(conn, agent_id)
        # Its DHCP and L3 bindings go with it (ON DELETE CASCADE); bound ports stay bound, as in Neutron.
        conn.execute(delete(agents).where(agents.c.id == agent_id))

    # -- the bus -------------------------------------------------------
    def report_state(self, conn: Connection, report: dict[str, Any], now: dt.datetime | None = None) -> ReportResult:
        """Create or refresh an agent from its state report, in the caller's transaction."""
        state = _checked(report)
        now = now or utcnow()
        configs = state["configurations"]
        values: dict[str, Any] = {"binary": state["binary"], "topic": state["topic"], "configurations": configs,
                                  "load": _load(state["agent_type"], configs), "heartbeat_timestamp": now}
        if "availability_zone" in state:
            values["availability_zone"] = state["availability_zone"]
        if "resources_synced" in state:
            values["resources_synced"] = state["resources_synced"]
        row = self._find(conn, state["agent_type"], state["host"])
        created = False
        if row is None:
            row, created = self._register(conn, state, values, now)
        if created:
            status = NEW
        else:
            status = REVIVED if row.heartbeat_timestamp < now - dt.timedelta(seconds=self.down_time) else ALIVE
            if state.get("start_flag"):
                values["started_at"] = now
            conn.execute(update(agents).where(agents.c.id == row.id).values(values))
        result = ReportResult(row.id, status)
        started = status != ALIVE or bool(state.get("start_flag"))
        if started or row.configurations != configs:
            if status != ALIVE:
                LOG.info("%s on host %s is %s", state["agent_type"], state["host"], status)
            self._arrived(conn, self.scheduler.agent(conn, row.id), now, result, started)
        result.rescheduled = self.scheduler.reschedule_dead_dhcp(conn, now)
        return result

    def _find(self, conn: Connection, agent_type: str, host: str) -> Any:
        return conn.execute(select(agents).where(agents.c.agent_type == agent_type, agents.c.host == host)).first()

    def _register(self, conn: Connection, state: dict[str, Any], values: dict[str, Any],
                  now: dt.datetime) -> tuple[Any, bool]:
        """Insert a new agent; (its row, whether this call created it)."""
        row = {**values, "id": new_id(), "agent_type": state["agent_type"], "host": state["host"],
               "admin_state_up": True, "created_at": now, "started_at": now}
        created = True
        if conn.dialect.name == "sqlite":  # write transactions are serialized: the lookup above holds
            conn.execute(insert(agents).values(row))
        else:
            try:
                with conn.begin_nested():
                    conn.execute(insert(agents).values(row))
            except IntegrityError:
                created = False  # another server registered it a moment ago: refresh that row instead
        return self._find(conn, state["agent_type"], state["host"]), created

    def _arrived(self, conn: Connection, row: Any, now: dt.datetime, result: ReportResult, started: bool) -> None:
        """An agent (re)started, or reported other configurations (``started`` false).

        A configuration change retries bindings (a mapping may have been
        added; one query when nothing waits), but does not reschedule: DHCP
        and L3 agents report counters there that change all the time.
        """
        if row.agent_type in self.binder.agent_types:
            result.rebound_ports = self.binder.rebind_host(conn, row.host, now)
        elif started and row.agent_type == DHCP_AGENT:
            result.scheduled_networks = self.scheduler.auto_schedule_networks(conn, row.id, now)
        elif started and row.agent_type == L3_AGENT:
            result.scheduled_routers = self.scheduler.auto_schedule_routers(conn, row.id, now)


_PORT_CREATED = select(
    ports.c.network_id, ports.c.binding_host_id,
    select(func.count()).select_from(network_dhcp_agent_bindings)
    .where(network_dhcp_agent_bindings.c.network_id == ports.c.network_id).scalar_subquery().label("hosted"),
    exists().where(agents.c.agent_type == bindparam("agent_type"), agents.c.admin_state_up.is_(True),
                   agents.c.heartbeat_timestamp >= bindparam("cutoff")).label("eligible"),
).where(ports.c.id == bindparam("port_id"))

_PORTS_CREATED = select(ports.c.id, *list(_PORT_CREATED.selected_columns)[:4]).where(
    ports.c.id.in_(bindparam("ids", expanding=True)))


class WriteHooks:
    """What port, subnet and router writes set off here (registered on those
    services by the app): binding on ``binding:*`` changes, DHCP scheduling
    once a network needs it, a new router's zone hints and L3 scheduling."""

    def __init__(self, binder: Binder, scheduler: Scheduler) -> None:
        self.binder = binder
        self.scheduler = scheduler

    def port_created(self, conn: Connection, port_id: str) -> None:
        # One statement answers the common case (network already served, or
        # no alive DHCP agent at all); schedule_network looks again in detail.
        now = utcnow()
        row = conn.execute(_PORT_CREATED, {"port_id": port_id, "agent_type": DHCP_AGENT,
                                           "cutoff": self.scheduler.cutoff(now)}).first()
        if row is None:
            return
        if row.binding_host_id:
            self.binder.bind_port(conn, port_id)
        if row.eligible and row.hosted < self.scheduler.per_network:
            self.scheduler.schedule_network(conn, row.network_id, now)

    def ports_created(self, conn: Connection, port_ids: list[str]) -> None:
        """:meth:`port_created` for the ports of one bulk create: each port
        is bound, each network scheduled once."""
        now = utcnow()
        cutoff = self.scheduler.cutoff(now)
        networks: dict[str, Any] = {}
        for start in range(0, len(port_ids), 300):
            for row in conn.execute(_PORTS_CREATED, {"ids": port_ids[start : start + 300], "agent_type": DHCP_AGENT,
                                                     "cutoff": cutoff}):
                if row.binding_host_id:
                    self.binder.bind_port(conn, row.id)
                networks.setdefault(row.network_id, row)
        for row in networks.values():
            if row.eligible and row.hosted < self.scheduler.per_network:
                self.scheduler.schedule_network(conn, row.network_id, now)

    def port_updated(self, conn: Connection, port_id: str, changed: Iterable[str]) -> None:
        if BINDING_KEYS & set(changed):
            self.binder.bind_port(conn, port_id)

    def subnet_written(self, conn: Connection, network_id: str) -> None:
        self.scheduler.schedule_network(conn, network_id, utcnow())

    def router_created(self, conn: Connection, router_id: str, values: dict[str, Any]) -> None:
        availability_zones.set_router_hints(conn, router_id, values.get("availability_zone_hints"))
        self.scheduler.schedule_router(conn, router_id, utcnow())
