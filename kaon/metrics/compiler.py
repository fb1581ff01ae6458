"""The compiler's metric hook: one call per pass (kaon.core.agents.intents)."""

from __future__ import annotations

from kaon.metrics.registry import COMPILE_HOSTS, COMPILE_SECONDS


def compile_pass(seconds: float, hosts_changed: int) -> None:
    """A pass (``Compiler.compile_now``) took ``seconds`` and moved ``hosts_changed`` hosts."""
    COMPILE_SECONDS.observe(seconds)
    if hosts_changed:
        COMPILE_HOSTS.inc(hosts_changed)
