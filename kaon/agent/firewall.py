"""Security groups on the host: the Linux bridge agent's firewall (nftables).

``[securitygroup] enable_security_group`` (default true) and
``firewall_driver``: as in Neutron, an unset driver or ``noop`` means no
filtering; ``iptables``, ``iptables_hybrid`` and ``nftables`` (and Neutron's
class paths for them) all select kaon's nftables firewall, which gives the
semantics those drivers give. The rules are built by ``kaon.agent.fw_plan``
(pure); this module applies them in the host's namespace and decides which
ports are safe to plug. It is a manager (kaon.agent.manager) that runs
after DHCP and L3 and before L2, and looks every pass. A pass compares the
wanted objects with what it last wrote and sends one transaction with the
difference (a port's own chains and map elements, a group's chains, set
elements); it writes the tables whole only when it does not know what the
kernel has (first sync, a failure) or when reading them back — on the
periodic resync (``mark_dirty``) — shows that someone else changed them.
After a change it deletes the conntrack entries of flows the new rules no
longer allow (kaon.agent.fw_conntrack), as Neutron does.

Fail closed: the stateful half of the design works only while bridged IPv4
and IPv6 traverse netfilter (br_netfilter). With ``[securitygroup]
netfilter_all_bridges = true`` (the default, Neutron's way) that is
``net.bridge.bridge-nf-call-iptables`` and ``-ip6tables`` = 1 in the host
namespace, for every bridge in it. With ``false`` — for a namespace kaon owns,
as the lab's hosts and ``kaon up``'s — those sysctls are set to 0 and only the
bridges that carry a stateful port get the bridge's own switches
(``nf_call_iptables``/``ip6tables``): L2 makes such a bridge with them on, and
the firewall sets them on a bridge that exists before L2 plugs a port into
it. Every other bridge's traffic (a router's external network, networks of
stateless ports only) then skips br_netfilter and conntrack altogether: the
firewall turns a bridge's switches off again once its network's last stateful
port is gone (after the new ruleset is in force; kaon's own bridges, and an
operator's only if this agent turned them on). The
firewall sets and checks this on every pass; when it cannot, or when the
kernel refuses the ruleset,
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

from kaon.agent import fw_conntrack, fw_plan
from kaon.agent.config import AgentConfig
from kaon.agent.l2_plan import bridge_of
from kaon.agent.manager import Outcome, Step
from kaon.config import ConfigError
from kaon.dataplane import LinkNotFound, conntrack, netns, nft
from kaon.dataplane.linux_l2 import LinuxL2
from kaon.model.intent import FirewallIntent, HostIntent

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


def ensure_br_netfilter(namespace: str | None, all_bridges: bool = True) -> None:
    """The namespace-wide br_netfilter sysctls in ``namespace``: 1 when every bridge's traffic is
    to traverse the inet hooks, 0 when only some bridges' is (their own switches, set per bridge);
    raise when br_netfilter is not there or the value does not hold."""
    value = "1" if all_bridges else "0"

    def ensure() -> None:
        for key in SYSCTLS:
            path = "/proc/sys/" + key.replace(".", "/")
            with open(path) as fh:
                if fh.read().strip() == value:
                    continue
            with open(path, "w") as fh:
                fh.write(value)
            with open(path) as fh:
                if fh.read().strip() != value:
                    raise OSError(f"{key} stays {fh.read().strip()!r} after writing {value}")

    try:
        netns.run_in(namespace, ensure)
    except OSError as exc:
        # No /proc/sys/net/bridge: br_netfilter is not loaded (modprobe br_netfilter).
        raise FirewallUnavailable(f"cannot {'enable' if all_bridges else 'set'} br_netfilter "
                                  f"({', '.join(SYSCTLS)}): {exc}") from exc


def set_bridge_netfilter(namespace: str | None, bridge: str, on: bool) -> None:
    with LinuxL2(namespace) as links:
        links.set_bridge_netfilter(bridge, on)


class FirewallUnavailable(Exception):
    pass


Run = Callable[..., object]  # (namespace, nft script[, output flags]) -> output
Forget = Callable[[str | None, list[str]], None]  # (namespace, conntrack -D arguments)
Generation = Callable[[str | None], int]  # the nftables ruleset generation of a namespace
Ensure = Callable[[str | None, bool], None]  # (namespace, all bridges?): bridged traffic to netfilter, or raise
SetBridge = Callable[[str | None, str, bool], None]  # (namespace, bridge, on): a bridge's own br_netfilter switches


class Firewall:
    name = "firewall"

    def __init__(self, cfg: AgentConfig, run: Run | None = None, ensure: Ensure | None = None,
                 forget: Forget | None = None, generation: Generation | None = None,
                 set_bridge: SetBridge | None = None, per_device: bool | None = None) -> None:
        self.cfg = cfg
        self.enabled = enabled(cfg)
        self._run: Run = run or nft.run  # tests pass fakes
        self._ensure: Ensure = ensure or ensure_br_netfilter
        self._forget: Forget = forget or conntrack.delete
        self._generation: Generation = generation or nft.generation
        self._set_bridge: SetBridge = set_bridge or set_bridge_netfilter
        # Bridge -> what this firewall last set its own br_netfilter switches to (forgotten at each
        # resync, so they are set again); and the operator's bridges it turned on (the only ones
        # of theirs it turns off).
        self._nf_set: dict[str, bool] = {}
        self._nf_ours: set[str] = set()
        self._per_device = per_device  # anti-spoofing on the taps' own hooks (None: probe the kernel once)
        self._written_gen: int | None = None  # the namespace's nft generation right after our last write
        self._intent: HostIntent | None = None
        self._firewall: FirewallIntent | None = None  # the intent part ``applied`` was built from
        self.applied: fw_plan.Ruleset | None = None  # what the kernel has, as far as we know
        self._check = True  # read the tables back on the next pass (periodic resync)
        self.rebuilds = 0  # whole-table writes (tests and benchmarks read these)
        self.updates = 0  # incremental transactions
        self.repairs = 0  # drift found by reading back
        self.forgotten = 0  # conntrack deletions made
        self._last_error = -1e9

    # -- the manager contract ----------------------------------------------
    def update(self, intent: HostIntent) -> None:
        self._intent = intent

    def mark_dirty(self) -> None:
        """Read the tables back on the next pass: someone may have edited them (and set the
        bridges' br_netfilter switches again: someone may have turned one off)."""
        self._check = True
        self._nf_set.clear()

    def close(self) -> None:
        """Nothing runs: the tables outlive the agent and are adopted (rewritten once) at restart."""

    def apply(self, step: Step) -> Outcome:
        if not self.enabled or self._intent is None:
            return Outcome(True)
        intent = self._intent
        fw = intent.firewall
        secured = fw_plan.secured(fw)
        try:
            self._ensure(self.cfg.namespace, self.cfg.netfilter_all_bridges)
        except FirewallUnavailable as exc:
            # Every rule of the inet table would be bypassed: no secured port is safe.
            self._error(f"security groups cannot be enforced, keeping {len(secured)} port(s) down: {exc}")
            return Outcome(False, frozenset(secured))
        # Ports and their networks, and the networks whose bridges go through br_netfilter: once a pass.
        network_of = {pid: p.network_id for pid, p in intent.ports.items()}
        tracked = fw_plan.netfilter_networks(intent)
        zones = fw_plan.zones_needed(self.cfg.netfilter_all_bridges, tracked)
        unsafe = self._ensure_bridges(intent, tracked, network_of)
        if unsafe:
            return Outcome(False, frozenset(unsafe & secured))
        try:
            if self._check:
                self._read_back()
            previous = self.applied.numbers if self.applied is not None else None
            if self._per_device is None:
                self._per_device = nft.netdev_hooks_by_name(self.cfg.namespace)
                LOG.info("anti-spoofing on %s", "each tap's own ingress hook" if self._per_device else
                         "the bridges' prerouting hook (this kernel hooks no chain to a device by name)")
            # The taps whose packets can meet conntrack: all with br_netfilter on every bridge.
            taps = None if self.cfg.netfilter_all_bridges else frozenset(
                p.device for p in intent.ports.values() if p.network_id in tracked)
            # The bridge each filtered port's frames cross: its stateful ingress is found by it and MAC.
            bridges = {pid: bridge for pid, net_id in network_of.items()
                       if net_id in intent.networks and (bridge := bridge_of(intent.networks[net_id], self.cfg))}
            changes = self._write(fw_plan.build(fw, intent.networks, previous, zones=zones,
                                                per_device=self._per_device, tracked=taps, bridges=bridges))
        except Exception as exc:
            guarded = self.applied.guarded if self.applied is not None else frozenset()
            self.applied = None  # unknown now: the next pass replaces the tables whole
            self._error(f"firewall update failed, ports it does not cover yet stay down: {exc}")
            return Outcome(False, frozenset(secured - guarded))
        self._release_bridges(intent, tracked)
        errors = self._forget_flows(self._firewall, fw, network_of, fw_plan.zone if zones else lambda network_id: 0)
        self._firewall = fw
        return Outcome(True, changes=changes, errors=errors)

    def _ensure_bridges(self, intent: HostIntent, tracked: set[str], network_of: dict[str, str]) -> set[str]:
        """Per-bridge mode: br_netfilter on for each existing bridge of the ``tracked`` networks (one
        that does not exist yet is made with it by L2). Returns the ports it could not vouch for."""
        if self.cfg.netfilter_all_bridges:
            return set()
        unsafe: set[str] = set()
        for net_id in sorted(tracked):
            net = intent.networks.get(net_id)
            if net is None:
                continue
            bridge = bridge_of(net, self.cfg)
            if bridge is None or self._nf_set.get(bridge) is True:
                continue
            try:
                self._set_bridge(self.cfg.namespace, bridge, True)
            except LinkNotFound:
                continue  # L2 makes it, with the switches on, before it plugs anything into it
            except Exception as exc:
                self._error(f"cannot turn br_netfilter on for bridge {bridge}: its ports stay down: {exc}")
                unsafe |= {pid for pid, n in network_of.items() if n == net_id}
                continue
            self._nf_set[bridge] = True
            if bridge != net.bridge:
                self._nf_ours.add(bridge)
        return unsafe

    def _release_bridges(self, intent: HostIntent, tracked: set[str]) -> None:
        """Per-bridge mode: br_netfilter off again for the bridges no tracked network uses — once
        the ruleset without their stateful ports is in force (until then those ports' rules need
        it). Off is only a saving: a failure is logged, and tried again at the next resync."""
        if self.cfg.netfilter_all_bridges:
            return
        needed = {bridge_of(intent.networks[n], self.cfg) for n in tracked if n in intent.networks}
        for net in intent.networks.values():
            bridge = bridge_of(net, self.cfg)
            if bridge is None or bridge in needed or self._nf_set.get(bridge) is False:
                continue
            if bridge != net.bridge and bridge not in self._nf_ours:
                continue  # an operator's bridge: its switches are theirs unless this agent set them
            try:
                self._set_bridge(self.cfg.namespace, bridge, False)
            except LinkNotFound:
                continue  # not made yet: L2 makes a bridge of an untracked network with them off
            except Exception as exc:
                self._error(f"cannot turn br_netfilter off for bridge {bridge} (no stateful port uses it): {exc}")
                continue
            self._nf_set[bridge] = False
            self._nf_ours.discard(bridge)

    def _write(self, want: fw_plan.Ruleset) -> int:
        have = self.applied
        script = fw_plan.change_script(have, want) if have is not None else None
        if script == "":
            return 0
        started = time.monotonic()
        before = self._gen()
        if script is None:
            self._run(self.cfg.namespace, fw_plan.full_script(want))
            self.rebuilds += 1
            LOG.info("firewall tables written whole: %d filtered port(s), %.1f ms",
                     len(want.guarded), (time.monotonic() - started) * 1000)
        else:
            self._run(self.cfg.namespace, script)
            self.updates += 1
            LOG.debug("firewall updated in place: %d command(s), %.1f ms",
                      script.count("\n"), (time.monotonic() - started) * 1000)
        self.applied = want
        after = self._gen()
        # Exactly one commit since ``before``: ours. Otherwise someone else wrote too: the next
        # read-back must look at the tables.
        self._written_gen = after if before is not None and after == before + 1 else None
        return 1

    def _gen(self) -> int | None:
        try:
            return self._generation(self.cfg.namespace)
        except Exception:  # no answer: the read-back lists the tables instead
            return None

    def _read_back(self) -> None:
        """Compare the kernel's tables with what was last written; drift: write them whole."""
        self._check = False
        have = self.applied
        if have is None:
            return  # written whole on this pass anyway
        if self._written_gen is not None and self._gen() == self._written_gen:
            return  # no nftables transaction in the namespace since ours: nothing to list
        found: dict[str, int] = {}
        for family in fw_plan.FAMILIES:
            try:
                listing = self._run(self.cfg.namespace, f"list table {family} {fw_plan.TABLE}", nft.OUTPUT_JSON)
            except nft.NftError:
                continue  # no such table: everything it had is missing below
            found.update(fw_plan.read_summary(str(listing)))
        want = fw_plan.summary(have)
        if found != want:
            drift = sorted(k for k in want.keys() | found.keys() if found.get(k) != want.get(k))
            LOG.warning("firewall tables differ from what kaon wrote (%s%s): writing them whole",
                        ", ".join(drift[:5]), ", ..." if len(drift) > 5 else "")
            self.repairs += 1
            self.applied = None
        else:
            self._written_gen = self._gen()  # someone else's commit, not touching our tables

    def _forget_flows(self, old: FirewallIntent | None, new: FirewallIntent | None,
                      network_of: dict[str, str], zone_of: Callable[[str], int | None]) -> tuple[tuple[str, str], ...]:
        """Delete the conntrack entries of flows the change no longer allows (after the new rules are in)."""
        errors = []
        for flow in fw_conntrack.stale_flows(old, new, network_of, zone_of):
            try:
                self._forget(self.cfg.namespace, flow.args())
                self.forgotten += 1
            except Exception as exc:  # the rules are in force; a surviving entry is logged, not retried
                errors.append(("conntrack", str(exc)))
        return tuple(errors)

    def _error(self, message: str) -> None:
        # Loud, but once per 30 s while the problem lasts, not once per retry.
        now = time.monotonic()
        if now - self._last_error >= 30:
            self._last_error = now
            LOG.error("%s", message)
