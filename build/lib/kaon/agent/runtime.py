"""The agent's loop: hints, timers and link events wake one worker that syncs.

Threads: the bus listener (hints; reconnects call ``on_reconnect``), the link
watcher (taps appearing and disappearing), the reporter (state report every
``report_interval``) and the worker. Callbacks only set flags and wake the
worker; all I/O towards the kernel happens in the worker, one pass at a time:

1. fetch the intent when told to (hint with a newer generation, reconnect,
   start, periodic resync) — ``get_intent`` answers "unchanged" cheaply;
2. the firewall (security groups, ``kaon.agent.firewall``), then observe
   the kernel, plan, apply (``l2_plan``, ``l2_apply``);
3. report port status changes (``update_devices``) and, when nothing
   failed, the applied generation (``report_applied``).

The first successful pass is the first full sync; only after it does the
worker sweep its own devices that are no longer wanted (a second pass runs
straight away). Failures keep the work pending and retry with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kaon.agent.config import AgentConfig
from kaon.agent.firewall import Firewall
from kaon.agent.l2_apply import apply, observe
from kaon.agent.l2_plan import Observed, plan, port_states, vxlan_name

LOG = logging.getLogger("kaon.agent")

AGENT_TYPE = "Linux bridge agent"
BINARY = "neutron-linuxbridge-agent"
ACTIVE, DOWN = "ACTIVE", "DOWN"


class Agent:
    def __init__(self, cfg: AgentConfig, bus: Any, l2: Any, features: dict[str, Any] | None = None,
                 roles: list[Any] | None = None, firewall: Any = None) -> None:
        self.cfg = cfg
        self.firewall = firewall if firewall is not None else Firewall(cfg)
        self.bus = bus
        self.l2 = l2
        self.features = features or {}
        self.roles = list(roles or [])  # kaon.agent.roles.Role: DHCP, L3
        self.generation: int | None = None  # generation of self.intent
        self.applied: int | None = None  # last generation reported applied
        self.intent: dict[str, Any] | None = None
        self.synced = False
        self.reported: dict[str, str] = {}  # port id -> status the server has from us
        self.passes = 0
        # The generation every role last reconciled without a failure. Roles
        # (namespaces, dnsmasq, NAT) only depend on the intent, so a pass woken
        # by a tap's link event need not run them; a new generation, a failure
        # or the periodic resync does.
        self._roles_generation: int | None = None
        self._periodic = False
        self._need_fetch = True
        self._wake = threading.Event()
        self._report_now = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._unwatch: Any = None
        self._last_warning: dict[str, float] = {}
        self.start_flag = True
        self.started = time.monotonic()
        self.actions_total = 0

    # -- lifecycle ------------------------------------------------------
    def start(self) -> None:
        self._unwatch = self.l2.watch(self._on_link)
        self.bus.listen(self.cfg.host, self._on_message, self._on_reconnect)
        for target, name in ((self._work, "kaon-agent-sync"), (self._report_loop, "kaon-agent-report")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._report_now.set()
        if self._unwatch is not None:
            self._unwatch()
        for thread in self._threads:
            thread.join(timeout=5)
        for role in self.roles:
            role.close()
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

    def _on_link(self, event: str, name: str) -> None:
        if name.startswith("tap") or name.startswith("brq") or name.startswith("vxlan-"):
            self._wake.set()

    # -- state reports --------------------------------------------------
    def state_report(self) -> dict[str, Any]:
        cfg = self.cfg
        configurations = {
            "interface_mappings": cfg.interface_mappings,
            "bridge_mappings": cfg.bridge_mappings,
            "tunnel_types": cfg.tunnel_types,
            "tunneling_ip": cfg.local_ip if cfg.tunnel_types else None,
            "l2_population": cfg.l2_population,
            "devices": len((self.intent or {}).get("ports", {})),
            "kernel_features": self.features,
        }
        if cfg.namespace:
            configurations["namespace"] = cfg.namespace
        return {"agent_type": AGENT_TYPE, "binary": BINARY, "topic": "N/A", "host": cfg.host,
                "configurations": configurations, "start_flag": self.start_flag}

    def role_reports(self) -> list[dict[str, Any]]:
        return [{"agent_type": r.agent_type, "binary": r.binary, "topic": r.topic, "host": self.cfg.host,
                 "configurations": r.configurations(), "start_flag": self.start_flag} for r in self.roles]

    def report_once(self) -> bool:
        try:
            for report in [self.state_report(), *self.role_reports()]:
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
            # The periodic resync repairs drift and lost hints: fetch, and run the roles too.
            self._periodic = not woke
            if not woke:
                self._need_fetch = True
            try:
                done = self.sync_once()
            except Exception as exc:
                self._warn("sync", f"sync failed: {type(exc).__name__}: {exc}")
                done = False
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
        # Roles first: they make the veths whose tap ends L2 plugs below.
        roles_ok = self._sync_roles(intent)
        # The firewall before L2: its rules name taps, so they are in force
        # before a new tap joins its bridge. Ports it cannot cover stay out.
        fw = self.firewall.sync(intent)
        vxlans = [vxlan_name(int(n["segmentation_id"])) for n in intent["networks"].values()
                  if n["network_type"] == "vxlan"]
        seen = observe(self.l2, vxlans)
        result = plan(_without(intent, fw.hold), seen, self.cfg, sweep=self.synced)
        outcome = apply(self.l2, result.actions)
        self.actions_total += outcome.done
        for action, why in outcome.failed:
            self._warn(f"{action.op}:{action.dev}", f"{action} failed: {why}")
        if result.actions:
            seen = observe(self.l2, ())
        self.passes += 1
        reported = self._report_devices(intent, seen, result.bridges)
        if not outcome.ok or not reported or not roles_ok or not fw.ok:
            return False
        if self.applied != self.generation:
            self.bus.call("report_applied", {"host": self.cfg.host, "generation": self.generation}, timeout=10)
            self.applied = self.generation
        if not self.synced:
            self.synced = True
            LOG.info("first full sync done in %.3f s: generation %s, %d ports, %d device actions",
                     time.monotonic() - self.started, self.generation, len(intent["ports"]), self.actions_total)
            self._wake.set()  # the sweeping pass
        return True

    def _sync_roles(self, intent: dict[str, Any]) -> bool:
        if not self.synced or self._periodic or self._roles_generation != self.generation:
            ok = True
            for role in self.roles:
                try:
                    ok = role.sync(intent, self.synced) and ok
                except Exception as exc:
                    ok = False
                    self._warn(f"role:{role.name}", f"{role.name} sync failed: {type(exc).__name__}: {exc}")
            # Only a pass allowed to sweep counts: the first full sync is
            # followed by a sweeping pass that must run the roles again.
            self._roles_generation = self.generation if ok and self.synced else None
            return ok
        return True

    def _fetch(self) -> None:
        known = self.generation if self.intent is not None else None
        # Cleared before the call: a hint that lands while it is in flight sets it again.
        self._need_fetch = False
        try:
            reply = self.bus.call("get_intent", {"host": self.cfg.host, "known_generation": known}, timeout=10)
        except Exception:
            self._need_fetch = True
            raise
        if reply.get("intent") is not None:
            self.intent = reply["intent"]
            self.generation = int(reply["generation"])

    def _report_devices(self, intent: dict[str, Any], seen: Observed, bridges: dict[str, str | None]) -> bool:
        up, down = port_states(intent, seen, bridges)
        changed_up = [p for p in up if self.reported.get(p) != ACTIVE]
        changed_down = [p for p in down if self.reported.get(p) != DOWN]
        if changed_up or changed_down:
            try:
                self.bus.call("update_devices", {"host": self.cfg.host, "up": changed_up, "down": changed_down},
                              timeout=10)
            except Exception as exc:
                self._warn("devices", f"device status report failed: {exc}")
                return False
        self.reported = {**{p: ACTIVE for p in up}, **{p: DOWN for p in down}}
        return True

    def _warn(self, key: str, message: str) -> None:
        """Log a repeated problem once per 30 s, not once per retry."""
        now = time.monotonic()
        if now - self._last_warning.get(key, -1e9) >= 30:
            self._last_warning[key] = now
            LOG.warning("%s", message)


def _without(intent: dict[str, Any], ports: frozenset[str]) -> dict[str, Any]:
    """The intent as L2 must see it: ports the firewall cannot cover are left out (unplugged, DOWN)."""
    if not ports:
        return intent
    return {**intent, "ports": {k: v for k, v in intent["ports"].items() if k not in ports}}
