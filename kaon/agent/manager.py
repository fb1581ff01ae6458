"""The contract every part of a host's agent implements: ``Manager``.

A manager owns one part of the host intent (kaon.model.intent) and the
kernel objects that make it real: L2 (``kaon.agent.l2_manager``: bridges,
VXLAN devices, taps), the firewall (``kaon.agent.firewall``: security
groups), DHCP (``kaon.agent.dhcp_role``: ``qdhcp-`` namespaces, dnsmasq) and
L3 (``kaon.agent.l3_role``: ``qrouter-`` namespaces, NAT). An Open vSwitch
agent brings its own L2 manager and firewall manager and changes nothing in
the runtime (kaon.agent.runtime).

The runtime drives them in three steps, as Calico's Felix does:

1. ``update(intent)`` when a new generation arrives, and ``mark_dirty()``
   when something outside the intent may have changed (a periodic resync,
   the first full sync being done) — both only remember, **no I/O**;
2. ``apply(step)`` in the worker, one manager after the other in the fixed
   order below: read back what the kernel has, diff, program, and
3. return an :class:`Outcome`: whether the kernel now matches, the ports
   this manager cannot vouch for (``hold``: every manager after it keeps
   them unplugged), and, for the manager that plugs ports, which are wired.

The order (``ORDER``): DHCP and L3 first — they make the veths whose ``tap``
ends L2 plugs; then the firewall — its rules name those taps and must be in
force before a tap joins its bridge (ports it cannot cover come back in
``hold``); then L2, which plugs every port not held and reports port status.

A manager may skip ``apply`` while nothing it depends on changed (DHCP and
L3 do: they run processes and namespaces); L2 and the firewall look every
pass, because reading back is cheap and a tap may have appeared. ``apply``
reports a kernel failure in its outcome and keeps that work dirty; an
exception out of ``apply`` is a bug, and the runtime ends the pass there
rather than plug ports on a state it does not know (fail closed).

Managers that stand for an agent record of their own (``openstack network
agent list``: Linux bridge agent, DHCP agent, L3 agent) also implement
:class:`AgentRecord`; one that learns of kernel changes by itself (L2's
link watcher) implements :class:`Watcher`. :class:`Wanted` is the dirty
tracking DHCP and L3 share.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from kaon.model.intent import HostIntent

ORDER = ("dhcp", "l3", "firewall", "l2")


@dataclass(frozen=True)
class Step:
    """What a manager may know of the pass it runs in."""
    sweep: bool  # the first full sync is done: a manager may remove its own objects no longer wanted
    hold: frozenset[str] = frozenset()  # ports the managers before it cannot vouch for: keep them unplugged


@dataclass(frozen=True)
class PortStatus:
    up: tuple[str, ...]  # wired as the intent says: the server sets them ACTIVE
    down: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    ok: bool  # the kernel matches this manager's part (False: retry with backoff)
    hold: frozenset[str] = frozenset()  # ports this manager cannot vouch for yet
    ports: PortStatus | None = None  # from the manager that plugs ports
    changes: int = 0  # kernel changes made (logs, tests)
    errors: tuple[tuple[str, str], ...] = ()  # (what, why) the runtime logs, once per 30 s per what


@runtime_checkable
class Manager(Protocol):
    name: str  # one of ORDER

    def update(self, intent: HostIntent) -> None:
        """Take a new intent; mark dirty what changed. No I/O."""
        ...

    def mark_dirty(self) -> None:
        """Look at everything again at the next ``apply`` (the kernel may have drifted). No I/O."""
        ...

    def apply(self, step: Step) -> Outcome:
        """Make the kernel match; report how it went."""
        ...

    def close(self) -> None:
        """Stop what the manager runs (threads, listeners) — not what it made: that outlives the agent."""
        ...


@runtime_checkable
class AgentRecord(Protocol):
    """A manager with its own row in the agents list, reported every ``report_interval``."""
    agent_type: str
    binary: str
    topic: str

    def configurations(self) -> dict[str, Any]:
        """The ``configurations`` of its state report."""
        ...


@runtime_checkable
class Watcher(Protocol):
    """A manager that learns of kernel changes by itself (link events), and wakes the agent."""

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (quick, no I/O) when something it manages changed; returns the function that stops it."""
        ...


def ordered(managers: list[Manager]) -> list[Manager]:
    """``managers`` in ``ORDER``; an unknown name is a programming error."""
    unknown = [m.name for m in managers if m.name not in ORDER]
    if unknown:
        raise ValueError(f"managers {unknown} have no place in the order {ORDER}")
    return sorted(managers, key=lambda m: ORDER.index(m.name))


T = TypeVar("T")


class Wanted(Generic[T]):
    """A manager's part of the intent, keyed by id, and whether the kernel must be looked at again.

    Clean only after a pass that was allowed to sweep went well: until the
    first full sync, and after any failure, every pass reconciles again.
    """

    def __init__(self) -> None:
        self.items: Mapping[str, T] = {}
        self.dirty = True

    def take(self, items: Mapping[str, T]) -> None:
        if items != self.items:
            self.items = items
            self.dirty = True

    def reconcile(self, what: str, step: Step, sync_one: Callable[[str, T], None],
                  sweep: Callable[[set[str]], bool], log: logging.Logger) -> bool:
        """Every item, then the sweep (when the step allows it); True when all went well.

        One broken item (a router, a network's DHCP server) must not hold up
        the others: its failure is logged and reported as "retry", the rest go on.
        """
        if not self.dirty:
            return True
        ok = True
        for key, item in sorted(self.items.items()):
            try:
                sync_one(key, item)
            except Exception as exc:
                log.warning("%s %s: %s: %s", what, key, type(exc).__name__, exc)
                ok = False
        if step.sweep:
            ok = sweep(set(self.items)) and ok
        self.dirty = not (ok and step.sweep)
        return ok
