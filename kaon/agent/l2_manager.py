"""The Linux bridge L2 manager: bridges, VXLAN devices, taps, l2population entries.

A manager (kaon.agent.manager), last in the order: the taps of DHCP and
router ports exist by then, and the firewall's rules for every tap it
plugs are in force. Every ``apply`` reads the kernel back (one link dump,
and the FDB and neighbour tables of its VXLAN devices), plans
(kaon.agent.l2_plan, pure), runs the actions (kaon.agent.l2_apply) and
reports which ports are wired. Ports in the step's ``hold`` (the firewall
cannot vouch for them) are planned as if absent: released from their
bridge, reported DOWN.

It is also the host's "Linux bridge agent" record, whose
``configurations`` carry the VTEP (``tunneling_ip``) the compiler gives
peers, and the kernel features binding checks.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from kaon.agent.config import AgentConfig
from kaon.agent.firewall import enabled as firewall_enabled
from kaon.agent.fw_plan import netfilter_networks
from kaon.agent.l2_apply import apply, observe
from kaon.agent.l2_plan import Observed, plan, port_states
from kaon.agent.manager import Outcome, PortStatus, Step
from kaon.dataplane.l2_driver import BridgeDriver
from kaon.model import names
from kaon.model.intent import HostIntent

LOG = logging.getLogger("kaon.agent.l2")

AGENT_TYPE = "Linux bridge agent"
BINARY = "neutron-linuxbridge-agent"
# Link events on these wake the agent: a tap Nova (or the lab) plugged, a bridge or VXLAN device that changed.
WATCHED = (names.TAP, names.BRIDGE, names.VXLAN)


class LinuxBridgeManager:
    name = "l2"
    agent_type = AGENT_TYPE
    binary = BINARY
    topic = "N/A"

    def __init__(self, cfg: AgentConfig, driver: BridgeDriver, features: dict[str, Any] | None = None) -> None:
        self.cfg = cfg
        self.driver = driver
        self.features = features or {}
        self.intent = HostIntent(cfg.host)
        self.mtu_mismatches: list[dict[str, Any]] = []  # from the last apply, for the state report

    # -- the manager contract ----------------------------------------------
    def update(self, intent: HostIntent) -> None:
        self.intent = intent

    def mark_dirty(self) -> None:
        """Nothing to do: every ``apply`` reads the kernel back."""

    def apply(self, step: Step) -> Outcome:
        intent = _without(self.intent, step.hold)
        vxlans = [names.vxlan(n.segmentation_id) for n in intent.networks.values()
                  if n.network_type == "vxlan" and n.segmentation_id is not None]
        seen = observe(self.driver, vxlans)
        result = plan(intent, seen, self.cfg, sweep=step.sweep, netfilter=self._netfilter(intent))
        done = apply(self.driver, result.actions)
        if result.actions:
            seen = observe(self.driver, ())
        # Status of every port of the intent; held ones were just released, so they read DOWN.
        up, down = port_states(self.intent, seen, result.bridges)
        self.mtu_mismatches = mtu_mismatches(self.intent, seen)
        errors = tuple((f"{a.op}:{a.dev}", f"{a} failed: {why}") for a, why in done.failed)
        return Outcome(done.ok, ports=PortStatus(tuple(up), tuple(down)), changes=done.done, errors=errors)

    def _netfilter(self, intent: HostIntent) -> frozenset[str] | None:
        """Networks whose bridge is made with br_netfilter on (per-bridge mode; kaon.agent.firewall)."""
        if self.cfg.netfilter_all_bridges or not firewall_enabled(self.cfg):
            return None
        return frozenset(netfilter_networks(intent))

    def close(self) -> None:
        self.driver.close()

    # -- events and the agent record -----------------------------------------
    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Wake the agent on link changes that concern L2; returns the function that stops watching."""
        def on_link(event: str, name: str) -> None:
            if name.startswith(WATCHED):
                wake()

        return self.driver.watch(on_link)

    def health(self) -> dict[str, Any]:
        """For ``kaon doctor``: the devices whose MTU is not their network's."""
        return {"mtu": list(self.mtu_mismatches)}

    def configurations(self) -> dict[str, Any]:
        cfg = self.cfg
        out: dict[str, Any] = {
            "interface_mappings": cfg.interface_mappings,
            "bridge_mappings": cfg.bridge_mappings,
            "tunnel_types": cfg.tunnel_types,
            "tunneling_ip": cfg.local_ip if cfg.tunnel_types else None,
            "l2_population": cfg.l2_population,
            "devices": len(self.intent.ports),
            "kernel_features": self.features,
        }
        if cfg.namespace:
            out["namespace"] = cfg.namespace
        return out


def mtu_mismatches(intent: HostIntent, seen: Observed) -> list[dict[str, Any]]:
    """Devices of the intent whose MTU differs from their network's: a port's tap
    (Nova's to set; a larger one sends frames the tunnel drops, a smaller one
    lowers the bridge's) and a VXLAN device the agent could not set."""
    out = []
    for port_id, port in sorted(intent.ports.items()):
        net = intent.networks.get(port.network_id)
        link = seen.links.get(port.device)
        if net is not None and net.mtu and link is not None and link.mtu != net.mtu:
            out.append({"device": port.device, "port_id": port_id, "network_id": port.network_id,
                        "mtu": link.mtu, "network_mtu": net.mtu})
    for net_id, net in sorted(intent.networks.items()):
        if net.network_type != "vxlan" or net.segmentation_id is None or not net.mtu:
            continue
        link = seen.links.get(names.vxlan(net.segmentation_id))
        if link is not None and link.mtu != net.mtu:
            out.append({"device": link.name, "port_id": None, "network_id": net_id, "mtu": link.mtu,
                        "network_mtu": net.mtu})
    return out


def _without(intent: HostIntent, ports: frozenset[str]) -> HostIntent:
    """The intent as L2 must see it: ports the firewall cannot cover are left out (unplugged, DOWN)."""
    if not ports:
        return intent
    return dataclasses.replace(intent, ports={k: v for k, v in intent.ports.items() if k not in ports})
