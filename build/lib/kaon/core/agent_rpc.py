"""The server's side of the bus: what agents may ask, answered from the database.

Methods (docs/design/agents.md, "Bus"): ``report_state``, ``get_intent``,
``report_applied``, ``update_devices``. Each runs in its own transaction.
A report may bind ports (an agent arrived or revived) and a report's
``configurations`` carry the VTEP peers need, so every report marks the
compiler dirty; device status does not change any intent and does not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, select, update

from kaon import errors
from kaon.compiler import generations
from kaon.compiler.service import Compiler
from kaon.core.agents.agents import Agents
from kaon.db.core_tables import ports
from kaon.db.engine import read_txn, write_txn
from kaon.ml2.binding import utcnow

LOG = logging.getLogger("kaon.agent_rpc")

ACTIVE, DOWN = "ACTIVE", "DOWN"


class AgentRpc:
    def __init__(self, engine: Engine, agents: Agents, compiler: Compiler) -> None:
        self.engine = engine
        self.agents = agents
        self.compiler = compiler
        self.methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "report_state": self.report_state,
            "get_intent": self.get_intent,
            "report_applied": self.report_applied,
            "update_devices": self.update_devices,
        }

    def __call__(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        handler = self.methods.get(method)
        if handler is None:
            raise errors.BadRequest(resource="bus", msg=f"unknown method {method!r}")
        return handler(payload)

    def report_state(self, payload: dict[str, Any]) -> dict[str, Any]:
        with write_txn(self.engine) as conn:
            result = self.agents.report_state(conn, payload.get("report"))
        self.compiler.mark_dirty(urgent=True)  # a new agent is a new host: no idle wait
        return {"agent_id": result.agent_id, "status": result.status}

    def get_intent(self, payload: dict[str, Any]) -> dict[str, Any]:
        host = _host(payload)
        known = payload.get("known_generation")
        with read_txn(self.engine) as conn:
            return generations.fetch(conn, host, known if isinstance(known, int) else None)

    def report_applied(self, payload: dict[str, Any]) -> dict[str, Any]:
        host, generation = _host(payload), payload.get("generation")
        if not isinstance(generation, int):
            raise errors.BadRequest(resource="bus", msg="report_applied needs an integer generation")
        with write_txn(self.engine) as conn:
            generations.mark_applied(conn, host, generation, utcnow())
        return {}

    def update_devices(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Set ports ACTIVE (``up``) or DOWN (``down``); only ports bound to the reporting host."""
        host = _host(payload)
        updated = 0
        with write_txn(self.engine) as conn:
            for status, ids in ((ACTIVE, payload.get("up") or []), (DOWN, payload.get("down") or [])):
                updated += _set_status(conn, host, [str(i) for i in ids], status)
        return {"updated": updated}


def _set_status(conn: Any, host: str, ids: list[str], status: str) -> int:
    if not ids:
        return 0
    now = utcnow().replace(microsecond=0)
    count = 0
    # Status changes bump revision_number like any other port update (Neutron does).
    rows = conn.execute(select(ports.c.id, ports.c.revision_number).where(
        ports.c.id.in_(ids), ports.c.binding_host_id == host, ports.c.status != status)).all()
    for row in rows:
        conn.execute(update(ports).where(ports.c.id == row.id).values(
            status=status, revision_number=row.revision_number + 1, updated_at=now))
        count += 1
    if count:
        LOG.info("host %s: %d port(s) %s", host, count, status)
    return count


def _host(payload: dict[str, Any]) -> str:
    host = payload.get("host")
    if not isinstance(host, str) or not host:
        raise errors.BadRequest(resource="bus", msg="a host is required")
    return host
