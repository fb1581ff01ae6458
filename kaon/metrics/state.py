"""State metrics, read from the database when Prometheus scrapes.

Counting at scrape time (a few GROUP BY statements) rather than keeping
gauges up to date on every write means every API worker and every server
answers the same numbers, and a write path pays nothing for them.

* ``kaon_ports{status}``                     ports by status (ACTIVE, DOWN, BUILD, ...)
* ``kaon_port_binding_failures{host,reason}`` ports in ``binding_failed``, by reason
* ``kaon_host_generation_lag{host}``          generations compiled but not yet applied
* ``kaon_host_unapplied_seconds{host}``       how long the newest generation has waited
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from kaon.core.agents import generations
from kaon.db.core_tables import ports
from kaon.db.engine import read_txn
from kaon.ml2.binding import utcnow

BINDING_FAILED = "binding_failed"


class StateCollector(Collector):
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status = GaugeMetricFamily("kaon_ports", "Ports by status", labels=["status"])
        failures = GaugeMetricFamily("kaon_port_binding_failures", "Ports that could not be bound, by host and reason",
                                     labels=["host", "reason"])
        lag = GaugeMetricFamily("kaon_host_generation_lag",
                                "Generations of a host's intent compiled but not yet applied by its agent",
                                labels=["host"])
        waited = GaugeMetricFamily("kaon_host_unapplied_seconds",
                                   "Seconds since the host's newest generation was compiled, 0 when applied",
                                   labels=["host"])
        now = utcnow()
        with read_txn(self.engine) as conn:
            for status, count in conn.execute(select(ports.c.status, func.count()).group_by(ports.c.status)):
                by_status.add_metric([status], count)
            failed = (select(ports.c.binding_host_id, ports.c.binding_failure, func.count())
                      .where(ports.c.binding_vif_type == BINDING_FAILED)
                      .group_by(ports.c.binding_host_id, ports.c.binding_failure))
            for host, reason, count in conn.execute(failed):
                failures.add_metric([host, reason], count)
            for state in generations.states(conn):
                lag.add_metric([state.host], max(0, state.generation - state.applied_generation))
                compiled = state.compiled_at
                behind = compiled is not None and not state.converged
                waited.add_metric([state.host], (now - compiled).total_seconds() if behind and compiled else 0.0)
        yield by_status
        yield failures
        yield lag
        yield waited
