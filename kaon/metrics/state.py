"""State metrics, read from the database when Prometheus scrapes.

Counting at scrape time (a few GROUP BY statements) rather than keeping
gauges up to date on every write means every API worker and every server
answers the same numbers, and a write path pays nothing for them. The
statements are the service layer's (kaon.core.l2.port_counts,
kaon.core.agents.generations), run in one read transaction; this module
only names and labels what they return.

* ``kaon_ports{status}``                     ports by status (ACTIVE, DOWN, BUILD, ...)
* ``kaon_port_binding_failures{host,reason}`` ports in ``binding_failed``, by reason
* ``kaon_host_generation_lag{host}``          generations compiled but not yet applied
* ``kaon_host_unapplied_seconds{host}``       how long the newest generation has waited
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from kaon.core.agents import generations
from kaon.core.l2 import port_counts
from kaon.db.engine import read_txn
from kaon.ml2.binding import utcnow


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
            for status, count in port_counts.by_status(conn):
                by_status.add_metric([status], count)
            for host, reason, count in port_counts.binding_failures(conn):
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
