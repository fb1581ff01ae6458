"""The agent's loop: hints, timers and link events wake one worker that syncs.

Threads: the bus listener (hints; reconnects call ``on_reconnect``), the link
watcher (taps appearing and disappearing), the reporter (state report every
``report_interval``) and the worker. Callbacks only set flags and wake the
worker; all I/O towards the kernel happens in the worker, one pass at a time:

1. fetch the intent when told to (hint with a newer generation, reconnect,
   start, periodic resync) — ``get_intent`` answers "unchanged" cheaply —
   read it as a typed kaon.model.intent.HostIntent (a schema version this
   agent does not know is refused, the old intent stays in force) and hand
   it to every manager (``update``: no I/O);
2. run the managers (kaon.agent.manager) in their fixed order — DHCP, L3,
   firewall, L2 — each ``apply`` seeing the ports the ones before it hold
   back;
3. report port status changes (``update_devices``) from L2's outcome and,
   when nothing failed, the applied generation (``report_applied``).

Every state report also carries kaon's ``health`` (read by ``kaon doctor``):
this agent's clock, the last failed action of a pass that failed (cleared
by a pass that goes well), the L2 record's tunnel reachability from the
VXLAN prober (kaon.agent.probe) and what a manager adds of its own
(``health()``: the DHCP manager's dnsmasq processes).

The first successful pass is the first full sync; only after it may the
managers sweep their own objects that are no longer wanted (a second pass
runs straight away). Failures keep the work pending and retry with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kaon.agent.config import AgentConfig
from kaon.agent.manager import AgentRecord, Manager, PortStatus, Step, Watcher, ordered
from kaon.bus.base import AgentBus
from kaon.metrics import agent as agent_metrics
from kaon.model.intent import HostIntent, IntentError

if TYPE_CHECKING:  # the prober (netlink, packet sockets) is built by kaon.cli.agent, not here
    from kaon.agent.probe import VxlanProber

LOG = logging.getLogger("kaon.agent")

# Neutron's DHCP and L3 agents name their availability zone; its L2 agents do not.
ZONED_AGENT_TYPES = ("DHCP agent", "L3 agent")
METADATA_AGENT_TYPE = "Metadata agent"
METADATA_BINARY = "neutron-metadata-agent"
ACTIVE, DOWN = "ACTIVE", "DOWN"


class Agent:
    def __init__(self, cfg: AgentConfig, bus: AgentBus, managers: Sequence[Manager],
                 prober: VxlanProber | None = None) -> None:
        self.cfg = cfg
        self.bus = bus
        self.managers = ordered(list(managers))
        self.prober = prober
        self.last_failure: dict[str, str] | None = None  # the last failed action of the latest pass
        self.generation: int | None = None  # generation of self.intent
        self.applied: int | None = None  # last generation reported applied
        self.intent: HostIntent | None = None
        self.synced = False
        self.reported: dict[str, str] = {}  # port id -> status the server has from us
        self.passes = 0
        self._need_fetch = True
        self._wake = threading.Event()
        self._report_now = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unwatch: list[Callable[[], None]] = []
        self._last_warning: dict[str, float] = {}
        self.start_flag = True
        self.started = time.monotonic()
        self.actions_total = 0

    # -- lifecycle ------------------------------------------------------
    def start(self) -> None:
        self._unwatch = [m.watch(self._wake.set) for m in self.managers if isinstance(m, Watcher)]
        self.bus.listen(self.cfg.host, self._on_message, self._on_reconnect)
        for target, name in ((self._work, "kaon-agent-sync"), (self._report_loop, "kaon-agent-report")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.prober is not None:
            self.prober.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._report_now.set()
        for unwatch in self._unwatch:
            unwatch()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.prober is not None:
            self.prober.close()
        for manager in self.managers:
            manager.close()
        self.bus.close()

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    # -- callbacks (no I/O here) ------------------------------------------
    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "hint" and message.get("generation") != self.generation:
            self._need_fetch = True
            self._wake.set()

    def _on_reconnect(self) -> None:
        # Anything may have happened while we were away: fetch, and say we are alive.
        self._need_fetch = True
        self._wake.set()
        self._report_now.set()

    # -- state reports --------------------------------------------------
    def reports(self) -> list[dict[str, Any]]:
        """One state report per agent record this host's managers stand for.

        L2's first (the reverse of the apply order): its record is what binding
        looks for on the host, and what the other records' ports are bound through.
        A host whose DHCP or L3 manager proxies metadata also gets the "Metadata
        agent" row that Neutron's neutron-metadata-agent reports beside them."""
        records = [m for m in reversed(self.managers) if isinstance(m, AgentRecord)]
        reports = []
        for m in records:
            report = {"agent_type": m.agent_type, "binary": m.binary, "topic": m.topic, "host": self.cfg.host,
                      "configurations": m.configurations(), "start_flag": self.start_flag,
                      "health": self._health(m)}
            if m.agent_type in ZONED_AGENT_TYPES:
                report["availability_zone"] = self.cfg.availability_zone
            reports.append(report)
        if any(m.agent_type in ZONED_AGENT_TYPES for m in records):
            reports.append({"agent_type": METADATA_AGENT_TYPE, "binary": METADATA_BINARY, "topic": "N/A",
                            "host": self.cfg.host, "start_flag": self.start_flag, "health": self._health(None),
                            "configurations": {
                                "nova_metadata_host": self.cfg.nova_metadata_host,
                                "nova_metadata_port": self.cfg.nova_metadata_port,
                                "log_agent_heartbeats": False}})
        return reports

    def _health(self, manager: object) -> dict[str, Any]:
        health: dict[str, Any] = {"time": time.time()}
        if self.last_failure is not None:
            health["last_failure"] = self.last_failure
        own = getattr(manager, "health", None)
        if callable(own):
            health.update(own())
        if self.prober is not None and getattr(manager, "name", None) == "l2":
            health["tunnels"] = self.prober.results()
            health["tunnel_mtu"] = self.prober.mtu_results()
            if self.prober.error:
                health["tunnel_probe_error"] = self.prober.error
        return health

    def report_once(self) -> bool:
        try:
            for report in self.reports():
                self.bus.call("report_state", {"report": report}, timeout=10)
        except Exception as exc:
            self._warn("report", f"state report failed: {exc}")
            return False
        self.start_flag = False
        return True

    def _report_loop(self) -> None:
        while not self._stop.is_set():
            ok = self.report_once()
            self._report_now.wait(self.cfg.report_interval if ok else min(2.0, self.cfg.report_interval))
            self._report_now.clear()

    # -- sync -------------------------------------------------------------
    def _work(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            woke = self._wake.wait(self.cfg.resync_interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not woke:
                # The periodic resync repairs drift and lost hints: fetch, and every manager looks again.
                self._need_fetch = True
                self._mark_dirty()
            started = time.perf_counter()
            try:
                done = self.sync_once()
            except Exception as exc:
                self._warn("sync", f"sync failed: {type(exc).__name__}: {exc}")
                self.last_failure = {"manager": "sync", "action": "sync", "reason": f"{type(exc).__name__}: {exc}"}
                done = False
            agent_metrics.sync_pass(self.cfg.host, time.perf_counter() - started, done)
            if done:
                backoff = 0.1
            else:
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                self._wake.set()

    def sync_once(self) -> bool:
        """One pass; True when the kernel matches the intent and the server knows it."""
        if self._need_fetch or self.intent is None:
            self._fetch()
        intent = self.intent
        assert intent is not None
        first = not self.synced  # the first full sync says what it does as it does it (issue 14, item 5)
        if first:
            LOG.info("first sync: intent generation %s: %d ports on %d networks, %d routers, %d DHCP networks, "
                     "%d filtered ports", self.generation, len(intent.ports), len(intent.networks),
                     len(intent.routers), len(intent.dhcp), len(intent.firewall.ports) if intent.firewall else 0)
        step = Step(sweep=self.synced)
        ok = True
        ports: PortStatus | None = None
        failure: dict[str, str] | None = None
        for manager in self.managers:
            t0 = time.monotonic()
            # An exception here is a bug: it ends the pass before later managers plug anything.
            outcome = manager.apply(step)
            if first:
                LOG.info("first sync: %s applied in %.0f ms (%d changes%s)", manager.name,
                         (time.monotonic() - t0) * 1000, outcome.changes,
                         f", {len(outcome.errors)} errors" if outcome.errors else "")
            for what, why in outcome.errors:
                self._warn(what, why)
                failure = {"manager": manager.name, "action": what, "reason": why}
                # Labelled by manager, not by ``what``: device names would make a series per device.
                agent_metrics.action_failed(self.cfg.host, manager.name)
            ok = ok and outcome.ok
            step = replace(step, hold=step.hold | outcome.hold)
            ports = outcome.ports if outcome.ports is not None else ports
            self.actions_total += outcome.changes
        self.passes += 1
        self.last_failure = failure
        reported = ports is None or self._report_devices(ports)
        if not ok or not reported:
            return False
        if self.applied != self.generation:
            self.bus.call("report_applied", {"host": self.cfg.host, "generation": self.generation}, timeout=10)
            self.applied = self.generation
        if not self.synced:
            self.synced = True
            LOG.info("first full sync done in %.3f s: generation %s, %d ports, %d device actions",
                     time.monotonic() - self.started, self.generation, len(intent.ports), self.actions_total)
            self._mark_dirty()  # the sweeping pass looks at everything again
            self._wake.set()
        return True

    def _mark_dirty(self) -> None:
        for manager in self.managers:
            manager.mark_dirty()

    def _fetch(self) -> None:
        known = self.generation if self.intent is not None else None
        # Cleared before the call: a hint that lands while it is in flight sets it again.
        self._need_fetch = False
        try:
            reply = self.bus.call("get_intent", {"host": self.cfg.host, "known_generation": known}, timeout=10)
        except Exception:
            self._need_fetch = True
            raise
        if reply.get("intent") is None:
            return
        try:
            intent = HostIntent.from_json(reply["intent"])
        except IntentError as exc:
            # Keep what is in force; an upgrade of the server or of this agent fixes it.
            self._need_fetch = True
            raise type(exc)(f"generation {reply.get('generation')} not applied: {exc}") from exc
        self.intent = intent
        self.generation = int(reply["generation"])
        for manager in self.managers:
            manager.update(intent)

    def _report_devices(self, ports: PortStatus) -> bool:
        changed_up = [p for p in ports.up if self.reported.get(p) != ACTIVE]
        changed_down = [p for p in ports.down if self.reported.get(p) != DOWN]
        if changed_up or changed_down:
            try:
                self.bus.call("update_devices", {"host": self.cfg.host, "up": changed_up, "down": changed_down},
                              timeout=10)
            except Exception as exc:
                self._warn("devices", f"device status report failed: {exc}")
                return False
        self.reported = {**{p: ACTIVE for p in ports.up}, **{p: DOWN for p in ports.down}}
        return True

    def _warn(self, key: str, message: str) -> None:
        """Log a repeated problem once per 30 s, not once per retry."""
        now = time.monotonic()
        if now - self._last_warning.get(key, -1e9) >= 30:
            self._last_warning[key] = now
            LOG.warning("%s", message)
