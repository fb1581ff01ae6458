"""Security groups on the host: the Linux bridge agent's firewall (nftables).

``[securitygroup] enable_security_group`` (default true) and
``firewall_driver``: as in Neutron, an unset driver or ``noop`` means no
filtering; ``iptables``, ``iptables_hybrid`` and ``nftables`` (and Neutron's
class paths for them) all select kaon's nftables firewall, which gives the
semantics those drivers give. The rules are built by ``kaon.agent.fw_plan``
(pure); this module applies them in the host's namespace and decides which
ports are safe to plug. It is a manager (kaon.agent.manager) that runs
after DHCP and L3 and before L2, and looks every pass; it does not read the
tables back but compares with what it last wrote (unknown after a failure
or a restart: then it writes them whole).

Fail closed: the stateful half of the design works only while bridged IPv4
and IPv6 traverse netfilter (``net.bridge.bridge-nf-call-iptables`` and
``-ip6tables`` = 1 in the host namespace). The firewall sets and checks
them on every pass; when it cannot, or when the kernel refuses the ruleset,
it logs an ERROR and names the secured ports it cannot vouch for (its
outcome's ``hold``) — L2 keeps those out of their bridges (DOWN) rather than let them pass
traffic unfiltered. A ruleset that failed to load leaves the previous one in
force (one netlink batch: all or nothing), so ports that one already
filtered stay plugged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from kaon.agent import fw_plan
from kaon.agent.config import AgentConfig
from kaon.agent.manager import Outcome, Step
from kaon.config import ConfigError
from kaon.dataplane import netns, nft
from kaon.model.intent import HostIntent

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


Run = Callable[[str | None, str], object]  # (namespace, nft script) -> output
Ensure = Callable[[str | None], None]  # make bridged traffic reach netfilter in a namespace, or raise


class Firewall:
    name = "firewall"

    def __init__(self, cfg: AgentConfig, run: Run | None = None, ensure: Ensure | None = None) -> None:
        self.cfg = cfg
        self.enabled = enabled(cfg)
        self._run: Run = run or nft.run  # tests pass a fake
        self._ensure: Ensure = ensure or ensure_br_netfilter
        self._intent: HostIntent | None = None
        self.applied: fw_plan.Ruleset | None = None  # what the kernel has, as far as we know
        self.rebuilds = 0  # whole-table replacements (tests and benchmarks read it)
        self.set_updates = 0  # in-place set element changes
        self._last_error = -1e9

    # -- the manager contract ----------------------------------------------
    def update(self, intent: HostIntent) -> None:
        self._intent = intent

    def mark_dirty(self) -> None:
        """Nothing to do: every ``apply`` compares the whole ruleset with what it last wrote."""

    def close(self) -> None:
        """Nothing runs: the tables outlive the agent and are adopted (rewritten once) at restart."""

    def apply(self, step: Step) -> Outcome:
        if not self.enabled or self._intent is None:
            return Outcome(True)
        fw = self._intent.firewall
        secured = fw_plan.secured(fw)
        try:
            self._ensure(self.cfg.namespace)
        except FirewallUnavailable as exc:
            # Every rule of the inet table would be bypassed: no secured port is safe.
            self._error(f"security groups cannot be enforced, keeping {len(secured)} port(s) down: {exc}")
            return Outcome(False, frozenset(secured))
        try:
            changes = self._write(fw_plan.build(fw, self._intent.networks))
        except Exception as exc:
            guarded = self.applied.guarded if self.applied is not None else frozenset()
            self.applied = None  # unknown now: the next pass replaces the tables whole
            self._error(f"firewall update failed, ports it does not cover yet stay down: {exc}")
            return Outcome(False, frozenset(secured - guarded))
        return Outcome(True, changes=changes)

    def _write(self, want: fw_plan.Ruleset) -> int:
        have = self.applied
        changes = 0
        if have is not None and have.script == want.script:
            script = fw_plan.element_script(have.elements, want.elements)
            if script:
                self._run(self.cfg.namespace, script)
                self.set_updates += 1
                changes = 1
        else:
            started = time.monotonic()
            self._run(self.cfg.namespace, fw_plan.full_script(want))
            self.rebuilds += 1
            LOG.info("firewall tables written: %d filtered port(s), %d set(s), %.1f ms",
                     len(want.guarded), len(want.elements), (time.monotonic() - started) * 1000)
            changes = 1
        self.applied = want
        return changes

    def _error(self, message: str) -> None:
        # Loud, but once per 30 s while the problem lasts, not once per retry.
        now = time.monotonic()
        if now - self._last_error >= 30:
            self._last_error = now
            LOG.error("%s", message)
