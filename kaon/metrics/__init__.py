"""Prometheus metrics for the server and the agents (docs/metrics.md).

::

    kaon.metrics.registry   the process's CollectorRegistry and the metric objects
    kaon.metrics.http       ASGI middleware: request latency per route template and
                            status, database time per request; serves GET /metrics
    kaon.metrics.dbtime     SQLAlchemy engine events adding statement time to the
                            current request's account
    kaon.metrics.state      read at scrape time: ports by status, binding failures by
                            reason, per-host generation lag
    kaon.metrics.compiler   the one function the compiler calls after a pass
    kaon.metrics.agent      the functions an agent calls (apply passes, failures) and
                            its own HTTP endpoint on ``[agent] metrics_port``

Event metrics (latency, passes) live in one process-wide registry; state
metrics are computed from the database when scraped, so every API worker and
server answers the same numbers for them.
"""
