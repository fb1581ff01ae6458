"""Security groups on the host: the Linux bridge agent's firewall (nftables).

``[securitygroup] enable_security_group`` (default true) and
``firewall_driver``: as in Neutron, an unset driver or ``noop`` means no
filtering; ``iptables``, ``iptables_hybrid`` and ``nftables`` (and Neutron's
class paths for them) all select kaon's nftables firewall, which gives the
semantics those drivers give. The rules are built by ``kaon.agent.fw_plan``
(pure); this module applies them in the host's namespace and decides which
ports are safe to plug.

Fail closed: the stateful half of the design works only while bridged IPv4
and IPv6 traverse netfilter (``net.bridge.bridge-nf-call-iptables`` and
``-ip6tables`` = 1 in the host namespace). The firewall sets and checks
them on every pass; when it cannot, or when the kernel refuses the ruleset,
it logs an ERROR and names the secured ports it cannot vouch for — the
runtime keeps those out of their bridges (DOWN) rather than let them pass
traffic unfiltered. A ruleset that failed to load leaves the previous one in
force (one netlink batch: all or nothing), so ports that one already
filtered stay plugged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaon.agent import fw_plan
from kaon.agent.config import AgentConfig
from kaon.config import ConfigError
from kaon.dataplane import netns, nft

LOG = logging.getLogger("kaon.agent.firewall")

NOOP = ("", "noop", "neutron.agent.firewall.NoopFirewallDriver")
DRIVERS = ("iptables", "iptables_hybrid", "nftables", "kaon",
           "neutron.agent.linux.iptables_firewall.IptablesFirewallDriver",
           "neutron.agent.linux.iptables_firewall.OVSHybridIptablesFirewallDriver")
SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")


def enabled(cfg: AgentConfig) -> bool:
    driver = (cfg.firewall_driver or "").strip()
    if driver not in NOOP and driver not in DRIVERS:
        raise ConfigError(f"[securitygroup] firewall_driver = {driver}: unknown "
                          f"(known: noop, {', '.join(DRIVERS[:4])})")
    return cfg.enable_security_group and driver not in NOOP


@dataclass(frozen=True)
class Result:
    ok: bool
    hold: frozenset[str] = field(default_factory=frozenset)  # secured ports that must stay unplugged


def ensure_br_netfilter(namespace: str | None) -> None:
    """Make bridged traffic traverse the inet hooks in ``namespace``; raise when it cannot."""
    def ensure() -> None:
        for key in SYSCTLS:
            path = "/proc/sys/" + key.replace(".", "/")
            with open(path) as fh:
                if fh.read().strip() == "1":
                    continue
            with open(path, "w") as fh:
                fh.write("1")
            with open(path) as fh:
                if fh.read().strip() != "1":
                    raise OSError(f"{key} stays {fh.read().strip()!r} after writing 1")

    try:
        netns.run_in(namespace, ensure)
    except OSError as exc:
        # No /proc/sys/net/bridge: br_netfilter is not loaded (modprobe br_netfilter).
        raise FirewallUnavailable(f"cannot enable br_netfilter ({', '.join(SYSCTLS)}): {exc}") from exc


class FirewallUnavailable(Exception):
    pass


class Firewall:
    def __init__(self, cfg: AgentConfig, run: Any = None, ensure: Any = None) -> None:
        self.cfg = cfg
        self.enabled = enabled(cfg)
        self._run = run or nft.run  # (namespace, script) -> output; tests pass a fake
        self._ensure = ensure or ensure_br_netfilter
        self.applied: fw_plan.Ruleset | None = None  # what the kernel has, as far as we know
        self.rebuilds = 0  # whole-table replacements (tests and benchmarks read it)
        self.set_updates = 0  # in-place set element changes
        self._last_error = -1e9

    def sync(self, intent: Mapping[str, Any]) -> Result:
        if not self.enabled:
            return Result(True)
        fw = intent.get("firewall") or {}
        secured = fw_plan.secured(fw)
        try:
            self._ensure(self.cfg.namespace)
        except FirewallUnavailable as exc:
            # Every rule of the inet table would be bypassed: no secured port is safe.
            self._error(f"security groups cannot be enforced, keeping {len(secured)} port(s) down: {exc}")
            return Result(False, frozenset(secured))
        try:
            self._apply(fw_plan.build(fw, intent.get("networks", {})))
        except Exception as exc:
            guarded = self.applied.guarded if self.applied is not None else frozenset()
            self.applied = None  # unknown now: the next pass replaces the tables whole
            self._error(f"firewall update failed, ports it does not cover yet stay down: {exc}")
            return Result(False, frozenset(secured - guarded))
        return Result(True)

    def _apply(self, want: fw_plan.Ruleset) -> None:
        have = self.applied
        if have is not None and have.script == want.script:
            script = fw_plan.element_script(have.elements, want.elements)
            if script:
                self._run(self.cfg.namespace, script)
                self.set_updates += 1
        else:
            started = time.monotonic()
            self._run(self.cfg.namespace, fw_plan.full_script(want))
            self.rebuilds += 1
            LOG.info("firewall tables written: %d filtered port(s), %d set(s), %.1f ms",
                     len(want.guarded), len(want.elements), (time.monotonic() - started) * 1000)
        self.applied = want

    def _error(self, message: str) -> None:
        # Loud, but once per 30 s while the problem lasts, not once per retry.
        now = time.monotonic()
        if now - self._last_error >= 30:
            self._last_error = now
            LOG.error("%s", message)
