"""Run planned device actions against the kernel, one by one, and say which failed.

An action that fails is logged (rate-limited by the runtime) and the others
still run: one bad port must not keep a whole host from converging. The
caller keeps the generation unapplied and retries while anything failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kaon.agent.l2_plan import Action, Observed

LOG = logging.getLogger("kaon.agent.apply")


class Unsupported(Exception):
    """The kernel cannot do this (e.g. 802.1Q sub-interfaces here)."""


@dataclass
class Outcome:
    done: int = 0
    failed: list[tuple[Action, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def observe(l2: Any, vxlan_devices: Iterable[str]) -> Observed:
    """One link dump, plus FDB and neighbour tables of the VXLAN devices that exist."""
    links = l2.links()
    fdb, neigh = {}, {}
    for dev in vxlan_devices:
        if dev in links:
            fdb[dev] = l2.fdb(dev)
            neigh[dev] = l2.neighbours(dev)
    return Observed(links, fdb, neigh)


def _ops(l2: Any) -> dict[str, Callable[[Action], None]]:
    return {
        "ensure_bridge": lambda a: l2.ensure_bridge(a.dev, alias=a.arg("alias")),
        "ensure_vxlan": lambda a: l2.ensure_vxlan(a.dev, a.arg("vni"), a.arg("local_ip"), None,
                                                  learning=False, proxy=bool(a.arg("proxy")),
                                                  group=a.arg("group"), mtu=a.arg("mtu"), alias=a.arg("alias")),
        "ensure_vlan": _vlan,
        "set_master": lambda a: l2.set_master(a.dev, a.arg("bridge")),
        "set_up": lambda a: l2.set_up(a.dev, bool(a.arg("up"))),
        "set_mtu": lambda a: l2.set_mtu(a.dev, a.arg("mtu")),
        "fdb_add": lambda a: l2.fdb_add(a.dev, a.arg("key"), a.arg("value")),
        "fdb_del": lambda a: l2.fdb_del(a.dev, a.arg("key"), a.arg("value")),
        "neigh_add": lambda a: l2.neigh_replace(a.dev, a.arg("key"), a.arg("value")),
        "neigh_del": lambda a: l2.neigh_del(a.dev, a.arg("key"), a.arg("value")),
        "delete_link": lambda a: l2.delete_link(a.dev, missing_ok=True),
    }


def _vlan(action: Action) -> None:
    # The agent reports kernel_features vlan=false on such kernels and binding
    # refuses VLAN segments there, so this only runs on a mismatch.
    raise Unsupported(f"cannot create {action.dev}: this kernel has no 802.1Q VLAN devices")


def apply(l2: Any, actions: list[Action]) -> Outcome:
    ops = _ops(l2)
    outcome = Outcome()
    for action in actions:
        try:
            ops[action.op](action)
            outcome.done += 1
        except Exception as exc:  # keep going with the others; the caller retries
            outcome.failed.append((action, f"{type(exc).__name__}: {exc}"))
    return outcome
