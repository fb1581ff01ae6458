"""An agent's metrics: the calls its sync loop makes, and its own endpoint.

``[agent] metrics_port`` (0, the default, is off) and ``[agent]
metrics_bind_host`` (0.0.0.0) choose where ``serve`` listens; Prometheus
scrapes ``http://HOST:PORT/metrics`` there (docs/metrics.md). The endpoint
runs in a daemon thread of prometheus-client's own and reads only counters
this process keeps: a scrape never touches the dataplane.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import start_http_server

from kaon.config import parse_int
from kaon.metrics.registry import AGENT_APPLY_FAILURES, AGENT_APPLY_SECONDS, REGISTRY

LOG = logging.getLogger("kaon.metrics")


def sync_pass(host: str, seconds: float, ok: bool) -> None:
    """One pass of the agent's sync loop (``Agent.sync_once``) ended."""
    AGENT_APPLY_SECONDS.labels(host).observe(seconds)
    if not ok:
        AGENT_APPLY_FAILURES.labels(host, "pass").inc()


def action_failed(host: str, op: str) -> None:
    """A dataplane action (``op``: e.g. ``add_bridge``) failed in a pass."""
    AGENT_APPLY_FAILURES.labels(host, op).inc()


def metrics_port(cfg: Any) -> int:
    port: int = cfg.get_typed("agent", "metrics_port", parse_int, 0)
    if not 0 <= port <= 65535:
        raise ValueError(f"[agent] metrics_port must be 0 (off) or a TCP port, not {port}")
    return port


def serve(cfg: Any) -> Any:
    """Listen on ``[agent] metrics_port`` unless it is 0; the HTTP server
    (``shutdown()`` stops it), or None when off."""
    port = metrics_port(cfg)
    if port == 0:
        return None
    host = cfg.get("agent", "metrics_bind_host") or "0.0.0.0"
    try:
        server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as exc:
        raise OSError(exc.errno, f"[agent] metrics_port {port} on {host}: {exc.strerror}") from None
    LOG.info("agent metrics on http://%s:%d/metrics", host, port)
    return server
