"""Ports counted, not listed: the numbers kaon.metrics.state reports at scrape time.

Each function runs one GROUP BY in the caller's read transaction and
returns plain tuples; naming and labelling them is the metrics' business.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from kaon.db.core_tables import ports
from kaon.ml2.binding import FAILED


def by_status(conn: Connection) -> list[tuple[str, int]]:
    """``(status, ports)`` for every status some port has (ACTIVE, DOWN, BUILD, ...)."""
    rows = conn.execute(select(ports.c.status, func.count()).group_by(ports.c.status))
    return [(status, count) for status, count in rows]


def binding_failures(conn: Connection) -> list[tuple[str, str, int]]:
    """``(host, reason, ports)`` of the ports whose last binding failed (``binding:vif_type`` binding_failed)."""
    rows = conn.execute(select(ports.c.binding_host_id, ports.c.binding_failure, func.count())
                        .where(ports.c.binding_vif_type == FAILED)
                        .group_by(ports.c.binding_host_id, ports.c.binding_failure))
    return [(host, reason, count) for host, reason, count in rows]
