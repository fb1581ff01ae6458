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
from typing import Any, Literal

import netaddr

from kaon.agent.config import OWNER_ALIAS, AgentConfig
from kaon.dataplane.l2_driver import LinkLike
from kaon.model import names
from kaon.model.intent import HostIntent, NetworkIntent, PortIntent

FLOOD_MAC = "00:00:00:00:00:00"
OWN_PREFIXES = (names.BRIDGE, names.VXLAN)


@dataclass(frozen=True)
class Observed:
    links: Mapping[str, LinkLike]
    fdb: Mapping[str, set[tuple[str, str]]] = field(default_factory=dict)
    neigh: Mapping[str, set[tuple[str, str]]] = field(default_factory=dict)


Op = Literal["ensure_bridge", "ensure_vxlan", "ensure_vlan", "set_master", "set_up", "set_mtu",
             "fdb_add", "fdb_del", "neigh_add", "neigh_del", "delete_link"]


@dataclass(frozen=True)
class Action:
    op: Op
    dev: str
    args: tuple[tuple[str, Any], ...] = ()
    port_id: str | None = None  # the port this action wires, for status

    def arg(self, name: str, default: Any = None) -> Any:
        return dict(self.args).get(name, default)

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.args)
        return f"{self.op} {self.dev} {extra}".rstrip()


def act(op: Op, dev: str, port_id: str | None = None, **args: Any) -> Action:
    return Action(op, dev, tuple(sorted(args.items())), port_id)


def is_own(link: LinkLike) -> bool:
    return link.name.startswith(OWN_PREFIXES) and link.alias == OWNER_ALIAS


@dataclass
class _Wanted:
    bridges: dict[str, str | None] = field(default_factory=dict)  # network id -> bridge (None: cannot)
    own_links: set[str] = field(default_factory=set)
    members: dict[str, str] = field(default_factory=dict)  # device -> bridge it must be in
    fdb: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    neigh: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    fresh: set[str] = field(default_factory=set)  # devices this plan re-creates


@dataclass(frozen=True)
class Plan:
    actions: list[Action]
    bridges: dict[str, str | None]  # network id -> the bridge its ports go into (None: cannot carry)


def plan(intent: HostIntent, seen: Observed, cfg: AgentConfig, *, sweep: bool,
         netfilter: frozenset[str] | None = None) -> Plan:
    """``netfilter``: networks whose bridge is made with br_netfilter on (per bridge; None: the
    namespace-wide sysctls decide, the bridges are made as they are)."""
    actions: list[Action] = []
    wanted = _Wanted()
    for net_id, net in sorted(intent.networks.items()):
        nf = None if netfilter is None else net_id in netfilter
        wanted.bridges[net_id] = _network(net, seen, cfg, wanted, actions, nf)
    _ports(intent.ports, seen, wanted, actions)
    for dev in sorted(wanted.fdb):
        _entries(dev, wanted.fdb[dev], seen.fdb.get(dev, set()), ("fdb_add", "fdb_del"), actions, seen, wanted)
    for dev in sorted(wanted.neigh):
        _entries(dev, wanted.neigh[dev], seen.neigh.get(dev, set()), ("neigh_add", "neigh_del"), actions, seen,
                 wanted)
    _release(seen, wanted, actions)
    if sweep:
        for name in sorted(seen.links):
            link = seen.links[name]
            if is_own(link) and name not in wanted.own_links:
                actions.append(act("delete_link", name))
    return Plan(actions, wanted.bridges)


def bridge_of(net: NetworkIntent, cfg: AgentConfig) -> str | None:
    """The bridge a network's ports go into on this host: the operator's for a mapped flat
    network, kaon's own otherwise (None: a VLAN on a mapped bridge, which cannot carry it)."""
    if net.network_type in ("flat", "vlan") and net.physical_network in cfg.bridge_mappings:
        return cfg.bridge_mappings[net.physical_network] if net.network_type == "flat" else None
    return net.bridge


def _network(net: NetworkIntent, seen: Observed, cfg: AgentConfig, wanted: _Wanted,
             actions: list[Action], netfilter: bool | None = None) -> str | None:
    kind, physnet, seg_id, mtu = net.network_type, net.physical_network, net.segmentation_id, net.mtu
    if kind in ("flat", "vlan") and physnet in cfg.bridge_mappings:
        # The operator's bridge: used, not made. No VLAN on it (Neutron's agent has none either;
        # binding says so).
        mapped = bridge_of(net, cfg)
        return mapped if mapped is not None and mapped in seen.links else None
    bridge = net.bridge
    wanted.own_links.add(bridge)
    link = seen.links.get(bridge)
    if link is None or not link.up or link.alias != OWNER_ALIAS:
        # A bridge made for a stateful port's network has br_netfilter on from its first packet
        # (kaon.agent.firewall sets it on bridges that already exist, before their ports are plugged).
        if netfilter:
            actions.append(act("ensure_bridge", bridge, alias=OWNER_ALIAS, netfilter=True))
        else:
            actions.append(act("ensure_bridge", bridge, alias=OWNER_ALIAS))
    if kind == "vxlan":
        _vxlan(net, bridge, _vid(seg_id), mtu, seen, cfg, wanted, actions)
    elif kind in ("flat", "vlan"):
        interface = cfg.interface_mappings.get(physnet or "")
        if interface is None:
            return bridge  # no mapping: binding refused such ports already; keep the bridge for what is there
        dev = interface if kind == "flat" else names.vlan(interface, _vid(seg_id))
        if kind == "vlan" and dev not in seen.links:
            actions.append(act("ensure_vlan", dev, interface=interface, vid=_vid(seg_id)))
        _member(dev, bridge, seen, wanted, actions)
    return bridge


def _vid(segmentation_id: int | None) -> int:
    if segmentation_id is None:
        raise ValueError("a VLAN or VXLAN network without a segmentation id")
    return segmentation_id


def _vxlan(net: NetworkIntent, bridge: str, vni: int, mtu: int | None, seen: Observed, cfg: AgentConfig,
           wanted: _Wanted, actions: list[Action]) -> None:
    dev = names.vxlan(vni)
    wanted.own_links.add(dev)
    link = seen.links.get(dev)
    group = None if cfg.l2_population else cfg.vxlan_group
    # The device answers ARP/ND from its neighbour entries (proxy) unless the network has
    # addresses no entry can answer for (flood_arp): the kernel cannot change the flag on a
    # live device, so a change of it re-creates the device (entries and all, this same pass).
    proxy = cfg.l2_population and not net.flood_arp
    if (link is None or link.kind != "vxlan" or link.vxlan_id != vni or link.vxlan_local != cfg.local_ip
            or link.vxlan_proxy != proxy or link.alias != OWNER_ALIAS):
        actions.append(act("ensure_vxlan", dev, vni=vni, local_ip=cfg.local_ip, group=group,
                           proxy=proxy, mtu=mtu, alias=OWNER_ALIAS))
        if link is not None:  # re-created: not enslaved, no entries, whatever the old one had
            wanted.fresh.add(dev)
            seen = Observed({n: lk for n, lk in seen.links.items() if n != dev})
    elif mtu and link.mtu != mtu:
        actions.append(act("set_mtu", dev, mtu=mtu))
    _member(dev, bridge, seen, wanted, actions)
    if not cfg.l2_population:
        return
    fdb: set[tuple[str, str]] = set()
    neigh: set[tuple[str, str]] = set()
    for vtep, remote_ports in net.peers.items():
        fdb.add((FLOOD_MAC, vtep))
        for port in remote_ports:
            fdb.add((port.mac, vtep))
            if not proxy:
                continue  # no one reads neighbour entries on a device that does not answer ARP
            neigh.update((ip, port.mac) for ip in port.ips)
            if any(":" in ip for ip in port.ips):
                # The VXLAN device answers neighbour solicitations itself (proxy) and drops
                # those it has no entry for: IPv6 next hops are link-local (a router's, from
                # its advertisements; a DHCPv6 client's), the EUI-64 of the port's MAC.
                neigh.add((str(netaddr.EUI(port.mac).ipv6_link_local()), port.mac))
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


def _ports(ports: Mapping[str, PortIntent], seen: Observed, wanted: _Wanted, actions: list[Action]) -> None:
    for port_id, port in sorted(ports.items()):
        bridge = wanted.bridges.get(port.network_id)
        dev = port.device
        link = seen.links.get(dev)
        if bridge is None or link is None:
            continue  # no tap yet (Nova plugs it; the watcher wakes us) or no way to carry it
        wanted.members[dev] = bridge
        if link.master != bridge:
            actions.append(act("set_master", dev, port_id, bridge=bridge))
        up = port.admin_state_up
        if link.up != up:
            actions.append(act("set_up", dev, port_id, up=up))


def _entries(dev: str, want: set[tuple[str, str]], have: set[tuple[str, str]], ops: tuple[Op, Op],
             actions: list[Action], seen: Observed, wanted: _Wanted) -> None:
    fresh = dev not in seen.links or dev in wanted.fresh  # a device about to be made has no entries yet
    for a, b in sorted(want - (set() if fresh else have)):
        actions.append(act(ops[0], dev, key=a, value=b))
    if not fresh:
        for a, b in sorted(have - want):
            actions.append(act(ops[1], dev, key=a, value=b))


def _release(seen: Observed, wanted: _Wanted, actions: list[Action]) -> None:
    """Take taps and mapped interfaces out of own bridges they no longer belong in (isolation first)."""
    own_bridges = {n for n, link in seen.links.items() if is_own(link) and link.kind == "bridge"}
    for name in sorted(seen.links):
        link = seen.links[name]
        if link.master in own_bridges and wanted.members.get(name) != link.master and not is_own(link):
            actions.append(act("set_master", name, bridge=None))


def port_states(intent: HostIntent, seen: Observed,
                bridges: Mapping[str, str | None]) -> tuple[list[str], list[str]]:
    """Which of the intent's ports are wired (ACTIVE) and which are not (DOWN), as the kernel shows."""
    up: list[str] = []
    down: list[str] = []
    for port_id, port in sorted(intent.ports.items()):
        link = seen.links.get(port.device)
        bridge = bridges.get(port.network_id)
        wired = link is not None and link.up and bridge is not None and link.master == bridge
        (up if wired and port.admin_state_up else down).append(port_id)
    return up, down
