"""Run planned device actions against the kernel, one by one, and say which failed.

An action that fails is logged (rate-limited by the runtime) and the others
still run: one bad port must not keep a whole host from converging. The
caller keeps the generation unapplied and retries while anything failed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import assert_never

from kaon.agent.l2_plan import Action, Observed
from kaon.dataplane.l2_driver import BridgeDriver

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


def observe(l2: BridgeDriver, vxlan_devices: Iterable[str]) -> Observed:
    """One link dump, plus FDB and neighbour tables of the VXLAN devices that exist."""
    links = l2.links()
    fdb, neigh = {}, {}
    for dev in vxlan_devices:
        if dev in links:
            fdb[dev] = l2.fdb(dev)
            neigh[dev] = l2.neighbours(dev)
    return Observed(links, fdb, neigh)


def run(l2: BridgeDriver, a: Action) -> None:
    """One action; mypy checks that every ``Op`` has its case."""
    match a.op:
        case "ensure_bridge":
            l2.ensure_bridge(a.dev, alias=a.arg("alias"), netfilter=a.arg("netfilter"))
        case "ensure_vxlan":
            l2.ensure_vxlan(a.dev, a.arg("vni"), a.arg("local_ip"), None, learning=False, proxy=bool(a.arg("proxy")),
                            group=a.arg("group"), mtu=a.arg("mtu"), alias=a.arg("alias"))
        case "ensure_vlan":
            # The agent reports kernel_features vlan=false on such kernels and binding
            # refuses VLAN segments there, so this only runs on a mismatch.
            raise Unsupported(f"cannot create {a.dev}: this kernel has no 802.1Q VLAN devices")
        case "set_master":
            l2.set_master(a.dev, a.arg("bridge"))
        case "set_up":
            l2.set_up(a.dev, bool(a.arg("up")))
        case "set_mtu":
            l2.set_mtu(a.dev, a.arg("mtu"))
        case "fdb_add":
            l2.fdb_add(a.dev, a.arg("key"), a.arg("value"))
        case "fdb_del":
            l2.fdb_del(a.dev, a.arg("key"), a.arg("value"))
        case "neigh_add":
            l2.neigh_replace(a.dev, a.arg("key"), a.arg("value"))
        case "neigh_del":
            l2.neigh_del(a.dev, a.arg("key"), a.arg("value"))
        case "delete_link":
            l2.delete_link(a.dev, missing_ok=True)
        case _:
            assert_never(a.op)


def apply(l2: BridgeDriver, actions: list[Action]) -> Outcome:
    outcome = Outcome()
    for action in actions:
        try:
            run(l2, action)
            outcome.done += 1
        except Exception as exc:  # keep going with the others; the caller retries
            outcome.failed.append((action, f"{type(exc).__name__}: {exc}"))
    return outcome
