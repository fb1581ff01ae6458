"""Intent × what the kernel has → the device actions that close the gap (pure).

Order matters and is fixed: bridges, then the segment devices that join
them (VXLAN devices, flat interfaces, VLAN sub-interfaces), then taps, then
l2population entries, then removals. Removals of whole devices happen only
when ``sweep`` is true, i.e. after the agent's first full sync: before it,
the agent cannot tell "no longer wanted" from "not fetched yet".

What the agent owns: bridges and VXLAN devices it made (name prefix *and*
the interface alias ``kaon:l2``), and the FDB/neighbour entries on its own
VXLAN devices. Taps belong to Nova (or the lab): they are enslaved, set up
or down, released from an own bridge when their port is gone — never
deleted. Interfaces named in ``physical_interface_mappings`` are the
operator's: enslaved and released, never deleted. Bridges named in
``bridge_mappings`` are the operator's too: used as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kaon.agent.config import OWNER_ALIAS, AgentConfig

FLOOD_MAC = "00:00:00:00:00:00"
OWN_PREFIXES = ("brq", "vxlan-")
TAP_PREFIX = "tap"


class LinkLike(Protocol):
    name: str
    kind: str
    master: str | None
    up: bool
    mtu: int
    alias: str
    vxlan_id: int | None
    vxlan_local: str | None


@dataclass(frozen=True)
class Observed:
    links: Mapping[str, LinkLike]
    fdb: Mapping[str, set[tuple[str, str]]] = field(default_factory=dict)
    neigh: Mapping[str, set[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    op: str  # ensure_bridge | ensure_vxlan | ensure_vlan | set_master | set_up | set_mtu | fdb_add | ...
    dev: str
    args: tuple[tuple[str, Any], ...] = ()
    port_id: str | None = None  # the port this action wires, for status

    def arg(self, name: str, default: Any = None) -> Any:
        return dict(self.args).get(name, default)

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.args)
        return f"{self.op} {self.dev} {extra}".rstrip()


def act(op: str, dev: str, port_id: str | None = None, **args: Any) -> Action:
    return Action(op, dev, tuple(sorted(args.items())), port_id)


def vxlan_name(vni: int) -> str:
    return f"vxlan-{vni}"


def vlan_name(interface: str, vid: int) -> str:
    return f"{interface}.{vid}"


def is_own(link: LinkLike) -> bool:
    return link.name.startswith(OWN_PREFIXES) and link.alias == OWNER_ALIAS


@dataclass
class _Wanted:
    bridges: dict[str, str | None] = field(default_factory=dict)  # network id -> bridge (None: cannot)
    own_links: set[str] = field(default_factory=set)
    members: dict[str, str] = field(default_factory=dict)  # device -> bridge it must be in
    fdb: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    neigh: dict[str, set[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    actions: list[Action]
    bridges: dict[str, str | None]  # network id -> the bridge its ports go into (None: cannot carry)


def plan(intent: Mapping[str, Any], seen: Observed, cfg: AgentConfig, *, sweep: bool) -> Plan:
    actions: list[Action] = []
    wanted = _Wanted()
    for net_id, net in sorted(intent.get("networks", {}).items()):
        wanted.bridges[net_id] = _network(net, seen, cfg, wanted, actions)
    _ports(intent.get("ports", {}), seen, wanted, actions)
    for dev in sorted(wanted.fdb):
        _entries(dev, wanted.fdb[dev], seen.fdb.get(dev, set()), "fdb", actions, seen)
    for dev in sorted(wanted.neigh):
        _entries(dev, wanted.neigh[dev], seen.neigh.get(dev, set()), "neigh", actions, seen)
    _release(seen, wanted, actions)
    if sweep:
        for name in sorted(seen.links):
            link = seen.links[name]
            if is_own(link) and name not in wanted.own_links:
                actions.append(act("delete_link", name))
    return Plan(actions, wanted.bridges)


def _network(net: Mapping[str, Any], seen: Observed, cfg: AgentConfig, wanted: _Wanted,
             actions: list[Action]) -> str | None:
    kind, physnet, seg_id, mtu = net["network_type"], net.get("physical_network"), net.get("segmentation_id"), \
        net.get("mtu")
    if kind in ("flat", "vlan") and physnet in cfg.bridge_mappings:
        bridge = cfg.bridge_mappings[physnet]  # the operator's bridge: used, not made
        if kind == "vlan":
            return None  # Neutron's agent has no VLAN on a mapped bridge either; binding says so
        return bridge if bridge in seen.links else None
    bridge = net["bridge"]
    wanted.own_links.add(bridge)
    link = seen.links.get(bridge)
    if link is None or not link.up or link.alias != OWNER_ALIAS:
        actions.append(act("ensure_bridge", bridge, alias=OWNER_ALIAS))
    if kind == "vxlan":
        _vxlan(net, bridge, int(seg_id), mtu, seen, cfg, wanted, actions)
    elif kind in ("flat", "vlan"):
        interface = cfg.interface_mappings.get(physnet or "")
        if interface is None:
            return bridge  # no mapping: binding refused such ports already; keep the bridge for what is there
        dev = interface if kind == "flat" else vlan_name(interface, int(seg_id))
        if kind == "vlan" and dev not in seen.links:
            actions.append(act("ensure_vlan", dev, interface=interface, vid=int(seg_id)))
        _member(dev, bridge, seen, wanted, actions)
    return bridge


def _vxlan(net: Mapping[str, Any], bridge: str, vni: int, mtu: int | None, seen: Observed, cfg: AgentConfig,
           wanted: _Wanted, actions: list[Action]) -> None:
    dev = vxlan_name(vni)
    wanted.own_links.add(dev)
    link = seen.links.get(dev)
    group = None if cfg.l2_population else cfg.vxlan_group
    if (link is None or link.kind != "vxlan" or link.vxlan_id != vni or link.vxlan_local != cfg.local_ip
            or link.alias != OWNER_ALIAS):
        actions.append(act("ensure_vxlan", dev, vni=vni, local_ip=cfg.local_ip, group=group,
                           proxy=cfg.l2_population, mtu=mtu, alias=OWNER_ALIAS))
    elif mtu and link.mtu != mtu:
        actions.append(act("set_mtu", dev, mtu=mtu))
    _member(dev, bridge, seen, wanted, actions)
    if not cfg.l2_population:
        return
    fdb: set[tuple[str, str]] = set()
    neigh: set[tuple[str, str]] = set()
    for vtep, remote_ports in net.get("peers", {}).items():
        fdb.add((FLOOD_MAC, vtep))
        for port in remote_ports:
            fdb.add((port["mac"], vtep))
            neigh.update((ip, port["mac"]) for ip in port.get("ips", ()))
    wanted.fdb[dev] = fdb
    wanted.neigh[dev] = neigh


def _member(dev: str, bridge: str, seen: Observed, wanted: _Wanted, actions: list[Action],
            port_id: str | None = None) -> None:
    wanted.members[dev] = bridge
    link = seen.links.get(dev)
    if link is None or link.master != bridge:
        actions.append(act("set_master", dev, port_id, bridge=bridge))
    if link is None or not link.up:
        actions.append(act("set_up", dev, port_id, up=True))


def _ports(ports: Mapping[str, Any], seen: Observed, wanted: _Wanted, actions: list[Action]) -> None:
    for port_id, port in sorted(ports.items()):
        bridge = wanted.bridges.get(port["network_id"])
        dev = port["device"]
        link = seen.links.get(dev)
        if bridge is None or link is None:
            continue  # no tap yet (Nova plugs it; the watcher wakes us) or no way to carry it
        wanted.members[dev] = bridge
        if link.master != bridge:
            actions.append(act("set_master", dev, port_id, bridge=bridge))
        up = bool(port.get("admin_state_up", True))
        if link.up != up:
            actions.append(act("set_up", dev, port_id, up=up))


def _entries(dev: str, want: set[tuple[str, str]], have: set[tuple[str, str]], kind: str,
             actions: list[Action], seen: Observed) -> None:
    fresh = dev not in seen.links  # a device about to be made has no entries yet
    for a, b in sorted(want - (set() if fresh else have)):
        actions.append(act(f"{kind}_add", dev, key=a, value=b))
    if not fresh:
        for a, b in sorted(have - want):
            actions.append(act(f"{kind}_del", dev, key=a, value=b))


def _release(seen: Observed, wanted: _Wanted, actions: list[Action]) -> None:
    """Take taps and mapped interfaces out of own bridges they no longer belong in (isolation first)."""
    own_bridges = {n for n, link in seen.links.items() if is_own(link) and link.kind == "bridge"}
    for name in sorted(seen.links):
        link = seen.links[name]
        if link.master in own_bridges and wanted.members.get(name) != link.master and not is_own(link):
            actions.append(act("set_master", name, bridge=None))


def port_states(intent: Mapping[str, Any], seen: Observed,
                bridges: Mapping[str, str | None]) -> tuple[list[str], list[str]]:
    """Which of the intent's ports are wired (ACTIVE) and which are not (DOWN), as the kernel shows."""
    up, down = [], []
    for port_id, port in sorted(intent.get("ports", {}).items()):
        link = seen.links.get(port["device"])
        bridge = bridges.get(port["network_id"])
        wired = link is not None and link.up and bridge is not None and link.master == bridge
        (up if wired and port.get("admin_state_up", True) else down).append(port_id)
    return up, down
