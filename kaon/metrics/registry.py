"""The process's metric objects, in a registry of kaon's own (not the global
default one, so building several apps in one process registers nothing twice).

Latency buckets start at 0.5 ms: a port show takes about a millisecond, and
the default buckets (5 ms first) would put every API call in one bucket.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SLOW_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

REQUEST_SECONDS = Histogram(
    "kaon_http_request_duration_seconds", "Time from request to the end of the response, per route template",
    ["method", "route", "status"], buckets=FAST_BUCKETS, registry=REGISTRY)
REQUEST_DB_SECONDS = Histogram(
    "kaon_http_request_db_seconds", "Time a request spent in database statements, per route template",
    ["method", "route"], buckets=FAST_BUCKETS, registry=REGISTRY)

COMPILE_SECONDS = Histogram(
    "kaon_compiler_pass_duration_seconds", "Duration of one compiler pass (all hosts)",
    buckets=SLOW_BUCKETS, registry=REGISTRY)
COMPILE_HOSTS = Counter(
    "kaon_compiler_hosts_changed", "Host intents a compiler pass gave a new generation", registry=REGISTRY)

AGENT_APPLY_SECONDS = Histogram(
    "kaon_agent_apply_duration_seconds", "Duration of one agent sync pass (fetch, plan, apply, report)",
    ["host"], buckets=SLOW_BUCKETS, registry=REGISTRY)
AGENT_APPLY_FAILURES = Counter(
    "kaon_agent_apply_failures", "Dataplane actions or passes that failed, by what failed",
    ["host", "what"], registry=REGISTRY)
