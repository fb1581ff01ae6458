"""The L2 part of a host intent → the OVSDB objects and OpenFlow flows of Neutron's OVS agent (pure).

Layout, as Neutron's ``ovs_neutron_agent`` and its native ``br_int``/``br_tun``/
``br_phys`` make it (tables from neutron/plugins/ml2/drivers/openvswitch/agent/
common/constants.py):

* **br-int** (integration bridge): every port of a network carries the
  network's *host-local* VLAN as its access tag; a port whose network this
  host cannot carry, or that is not bound, gets :data:`DEAD_VLAN` (4095) and a
  drop flow.  Table 0 sends everything to table 60 (NORMAL); traffic from a
  physical bridge (``int-<br>``) is admitted only for the networks it carries:
  provider VLAN → local VLAN (``set_field``), untagged (flat) → local VLAN
  (``push_vlan``).  Table 23 holds the canary flow whose absence tells the
  agent that ovs-vswitchd restarted and lost its flows.
* **br-tun** (tunnel bridge, when tunnelling is configured): ``patch-int`` ↔
  ``patch-tun``; one tunnel port per (remote VTEP, tunnel type), named
  ``<type>-<hex of the IP>`` as Neutron names them.  Table 0 dispatches
  (patch-int → 2; a gre/vxlan/geneve port → 3/4/6), 2 splits unicast (20),
  broadcast ARP (21, with the ARP responder) and flood (22); 3/4/6 map
  VNI → local VLAN and go to 10, which learns the sender's VTEP into 20 and
  outputs to patch-int; 20 holds l2population unicast entries; 21 answers
  ARP for remote ports from their l2pop MAC/IP; 22 floods a network's frames
  to the VTEPs that have its ports.
* **physical bridges** (``bridge_mappings``, the operator's): ``phy-<br>`` ↔
  ``int-<br>``; ``phy-<br>`` traffic leaves with the provider VLAN (vlan) or
  untagged (flat); anything else from br-int is dropped.

Ordering and ownership: bridges first (kaon's own: br-int, br-tun; the
operator's: those of bridge_mappings — they must exist and are never
deleted), then kaon's ports (patch pairs, tunnel ports), then the tags of
VM ports (Nova's: tagged, never created or deleted here), then flows per
bridge.  Deletions are the applier's, only after the first full sync.

Local VLANs: a network keeps the local VLAN it had (``previous``, read back
from OVSDB by the caller) as long as it is on this host; a new one takes the
lowest free VLAN (1–4094).  Stable VLANs mean an agent restart rewrites no
tags and no flows.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kaon.dataplane.ovs_model import BridgeSpec, Flow, PortSpec, PortTag

__all__ = ["DEAD_VLAN", "OvsAgentOptions", "OvsHostIntent", "OvsNetwork", "OvsPeer", "OvsPlan", "OvsPort",
           "allocate_local_vlans", "plan", "tunnel_port_name"]

DEAD_VLAN = 4095
MAX_VLAN = 4094
TUNNEL_TYPES = ("gre", "vxlan", "geneve")
PHYSICAL_TYPES = ("flat", "vlan")
IFNAMSIZ = 15

# Neutron's table numbers (common/constants.py)
LOCAL_SWITCHING = 0
CANARY_TABLE = 23
TRANSIENT_TABLE = 60
PATCH_LV_TO_TUN = 2
TUN_TABLE = {"gre": 3, "vxlan": 4, "geneve": 6}
LEARN_FROM_TUN = 10
UCAST_TO_TUN = 20
ARP_RESPONDER = 21
FLOOD_TO_TUN = 22

UNICAST = "dl_dst=00:00:00:00:00:00/01:00:00:00:00:00"
MULTICAST = "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00"
# Learn the sender's VTEP into table 20, as Neutron's br_tun (printed the way ovs-ofctl prints it).
LEARN = ("learn(table=20,hard_timeout=300,priority=1,NXM_OF_VLAN_TCI[0..11],"
         "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],"
         "load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[])")


# -- input: filled from the host intent (the coordinator wires these to kaon.model.intent) --

@dataclass(frozen=True)
class OvsNetwork:
    """A network with ports on this host: its segment as the server bound it."""

    id: str
    network_type: str  # vxlan | gre | geneve | vlan | flat | local
    segmentation_id: int | None = None  # VNI or provider VLAN
    physical_network: str | None = None


@dataclass(frozen=True)
class OvsPort:
    """A port plugged on br-int (the device exists there; Nova/os-vif or the lab plugged it)."""

    id: str
    network_id: str
    mac: str
    device: str  # the OVS port name (tap…)
    bound: bool = True  # False: not (or no longer) bound here, or admin down → dead VLAN


@dataclass(frozen=True)
class OvsPeer:
    """l2population: a remote VTEP that has ports of ``network_id`` (their MAC/IP pairs)."""

    network_id: str
    vtep_ip: str
    ports: tuple[tuple[str, str | None], ...] = ()  # (mac, ip or None)


@dataclass(frozen=True)
class OvsAgentOptions:
    """openvswitch_agent.ini: [ovs] and [agent] options the layout depends on."""

    integration_bridge: str = "br-int"
    tunnel_bridge: str = "br-tun"
    bridge_mappings: tuple[tuple[str, str], ...] = ()  # (physnet, bridge)
    local_ip: str | None = None
    tunnel_types: tuple[str, ...] = ()
    datapath_type: str = "netdev"
    l2_population: bool = True
    arp_responder: bool = False
    vxlan_udp_port: int = 4789


@dataclass(frozen=True)
class OvsHostIntent:
    networks: tuple[OvsNetwork, ...] = ()
    ports: tuple[OvsPort, ...] = ()
    peers: tuple[OvsPeer, ...] = ()


# -- output ------------------------------------------------------------------

@dataclass(frozen=True)
class OvsPlan:
    bridges: tuple[BridgeSpec, ...]
    ports: tuple[PortSpec, ...]
    tags: tuple[PortTag, ...]
    flows: Mapping[str, tuple[Flow, ...]]  # bridge -> its kaon flows
    local_vlans: Mapping[str, int]  # network id -> local VLAN
    not_carried: Mapping[str, str]  # network id -> why this host cannot carry it
    protected: tuple[str, ...]  # the operator's bridges: never deleted


def allocate_local_vlans(network_ids: Iterable[str], previous: Mapping[str, int]) -> dict[str, int]:
    """Keep each network's previous local VLAN; give new networks the lowest free ones."""
    ids = sorted(set(network_ids))
    out = {n: previous[n] for n in ids if 0 < previous.get(n, 0) <= MAX_VLAN}
    used = set(out.values())
    free = (v for v in range(1, MAX_VLAN + 1) if v not in used)
    for n in ids:
        if n not in out:
            vlan = next(free, None)
            if vlan is None:
                raise ValueError("no free local VLAN on this host (4094 networks in use)")
            out[n] = vlan
    return out


def tunnel_port_name(tunnel_type: str, remote_ip: str) -> str:
    """Neutron's name: ``vxlan-ac100002`` (type, dash, the remote IPv4 in hex; hashed for IPv6)."""
    addr = ipaddress.ip_address(remote_ip)
    tail = f"{int(addr):08x}" if addr.version == 4 else hashlib.sha1(addr.packed).hexdigest()
    return f"{tunnel_type}-{tail}"[:IFNAMSIZ]


def patch_name(prefix: str, bridge: str) -> str:
    """``int-<br>`` / ``phy-<br>``, shortened with a hash when over the 15-byte interface name limit."""
    name = f"{prefix}-{bridge}"
    if len(name) <= IFNAMSIZ:
        return name
    digest = hashlib.sha1(bridge.encode()).hexdigest()[:6]
    return f"{prefix}-{bridge[:IFNAMSIZ - len(prefix) - 8]}-{digest}"


def _vid(vlan: int) -> str:
    return f"set_field:{4096 + vlan}->vlan_vid"  # OFPVID_PRESENT | vlan


def _tun_id(vni: int) -> str:
    return f"set_field:{vni:#x}->tun_id"


@dataclass
class _Build:
    opts: OvsAgentOptions
    ports: list[PortSpec] = field(default_factory=list)
    flows: dict[str, list[Flow]] = field(default_factory=dict)

    def flow(self, bridge: str, table: int, priority: int, match: str, actions: str) -> None:
        self.flows.setdefault(bridge, []).append(Flow(table, priority, match, actions))

    def patch(self, bridge: str, name: str, peer: str) -> None:
        self.ports.append(PortSpec.make(bridge, name, "patch", {"peer": peer}))


def plan(intent: OvsHostIntent, opts: OvsAgentOptions, previous_vlans: Mapping[str, int] | None = None) -> OvsPlan:
    br_int, br_tun = opts.integration_bridge, opts.tunnel_bridge
    mappings = dict(opts.bridge_mappings)
    tunnelling = bool(opts.tunnel_types and opts.local_ip)
    b = _Build(opts)

    not_carried: dict[str, str] = {}
    for net in intent.networks:
        reason = _cannot_carry(net, opts, mappings, tunnelling)
        if reason:
            not_carried[net.id] = reason
    carried = [n for n in sorted(intent.networks, key=lambda n: n.id) if n.id not in not_carried]
    vlans = allocate_local_vlans((n.id for n in carried), previous_vlans or {})

    bridges = [BridgeSpec(br_int, opts.datapath_type)]
    if tunnelling:
        bridges.append(BridgeSpec(br_tun, opts.datapath_type))
    for bridge in sorted(set(mappings.values())):
        bridges.append(BridgeSpec(bridge, opts.datapath_type, own=False))

    # br-int basics (Neutron's br_int.setup_default_table + canary)
    b.flow(br_int, LOCAL_SWITCHING, 0, "", f"resubmit(,{TRANSIENT_TABLE})")
    b.flow(br_int, TRANSIENT_TABLE, 3, "", "NORMAL")
    b.flow(br_int, CANARY_TABLE, 0, "", "drop")

    for bridge in sorted(set(mappings.values())):
        _physical(b, bridge, [n for n in carried if mappings.get(n.physical_network or "") == bridge], vlans)
    if tunnelling:
        _tunnels(b, [n for n in carried if n.network_type in TUNNEL_TYPES], intent.peers, vlans)

    tags = []
    for port in sorted(intent.ports, key=lambda p: p.device):
        vlan = vlans.get(port.network_id) if port.bound else None
        tags.append(PortTag(port.device, vlan or DEAD_VLAN, port.network_id if vlan else None))
        if vlan is None:  # Neutron's port_dead: tag 4095 and drop whatever it sends
            b.flow(br_int, LOCAL_SWITCHING, 2, f"in_port={port.device}", "drop")

    return OvsPlan(
        bridges=tuple(bridges), ports=tuple(b.ports), tags=tuple(tags),
        flows={br: tuple(sorted(fl)) for br, fl in sorted(b.flows.items())},
        local_vlans=vlans, not_carried=not_carried, protected=tuple(sorted(set(mappings.values()))))


def _cannot_carry(net: OvsNetwork, opts: OvsAgentOptions, mappings: Mapping[str, str],
                  tunnelling: bool) -> str | None:
    kind = net.network_type
    if kind in PHYSICAL_TYPES:
        if net.physical_network not in mappings:
            return f"physical network {net.physical_network} is not in bridge_mappings"
        if kind == "vlan" and not (net.segmentation_id and 1 <= net.segmentation_id <= MAX_VLAN):
            return f"vlan network without a valid segmentation_id ({net.segmentation_id})"
        return None
    if kind in TUNNEL_TYPES:
        if not tunnelling or kind not in opts.tunnel_types:
            return f"tunnel type {kind} is not in tunnel_types (or local_ip is not set)"
        if net.segmentation_id is None:
            return f"{kind} network without a segmentation_id"
        return None
    if kind == "local":
        return None
    return f"network type {kind} is not supported by the Open vSwitch agent"


def _physical(b: _Build, bridge: str, nets: list[OvsNetwork], vlans: Mapping[str, int]) -> None:
    br_int = b.opts.integration_bridge
    int_port, phy_port = patch_name("int", bridge), patch_name("phy", bridge)
    b.patch(br_int, int_port, phy_port)
    b.patch(bridge, phy_port, int_port)
    # br_phys.setup_default_table / br_int: drop what is not translated
    b.flow(bridge, 0, 0, "", "NORMAL")
    b.flow(bridge, 0, 2, f"in_port={phy_port}", "drop")
    b.flow(br_int, LOCAL_SWITCHING, 2, f"in_port={int_port}", "drop")
    for net in nets:
        lv = vlans[net.id]
        if net.network_type == "vlan":
            seg = int(net.segmentation_id or 0)
            b.flow(bridge, 0, 4, f"in_port={phy_port},dl_vlan={lv}", f"{_vid(seg)},NORMAL")
            b.flow(br_int, LOCAL_SWITCHING, 3, f"in_port={int_port},dl_vlan={seg}",
                   f"{_vid(lv)},resubmit(,{TRANSIENT_TABLE})")
        else:  # flat: untagged on the wire
            b.flow(bridge, 0, 4, f"in_port={phy_port},dl_vlan={lv}", "pop_vlan,NORMAL")
            b.flow(br_int, LOCAL_SWITCHING, 3, f"in_port={int_port},vlan_tci=0x0000/0x1fff",
                   f"push_vlan:0x8100,{_vid(lv)},resubmit(,{TRANSIENT_TABLE})")


def _tunnels(b: _Build, nets: list[OvsNetwork], peers: Iterable[OvsPeer], vlans: Mapping[str, int]) -> None:
    opts = b.opts
    br_int, br_tun = opts.integration_bridge, opts.tunnel_bridge
    b.patch(br_int, "patch-tun", "patch-int")
    b.patch(br_tun, "patch-int", "patch-tun")
    by_id = {n.id: n for n in nets}

    # One tunnel port per (type, remote VTEP) that some carried network needs.
    tun_ports: dict[tuple[str, str], str] = {}
    net_peers: dict[str, list[OvsPeer]] = {}
    for peer in sorted(peers, key=lambda p: (p.network_id, p.vtep_ip)):
        net = by_id.get(peer.network_id)
        if net is None or peer.vtep_ip == opts.local_ip:
            continue
        net_peers.setdefault(net.id, []).append(peer)
        key = (net.network_type, peer.vtep_ip)
        if key not in tun_ports:
            tun_ports[key] = tunnel_port_name(*key)
    for (kind, remote), name in sorted(tun_ports.items()):
        options = {"remote_ip": remote, "local_ip": str(opts.local_ip), "key": "flow"}
        if kind == "vxlan" and opts.vxlan_udp_port != 4789:
            options["dst_port"] = str(opts.vxlan_udp_port)
        b.ports.append(PortSpec.make(br_tun, name, kind, options))
        b.flow(br_tun, 0, 1, f"in_port={name}", f"resubmit(,{TUN_TABLE[kind]})")

    # br_tun.setup_default_table
    b.flow(br_tun, 0, 1, "in_port=patch-int", f"resubmit(,{PATCH_LV_TO_TUN})")
    b.flow(br_tun, 0, 0, "", "drop")
    b.flow(br_tun, PATCH_LV_TO_TUN, 0, UNICAST, f"resubmit(,{UCAST_TO_TUN})")
    b.flow(br_tun, PATCH_LV_TO_TUN, 0, MULTICAST, f"resubmit(,{FLOOD_TO_TUN})")
    if opts.arp_responder:
        b.flow(br_tun, PATCH_LV_TO_TUN, 1, "arp,dl_dst=ff:ff:ff:ff:ff:ff", f"resubmit(,{ARP_RESPONDER})")
        b.flow(br_tun, ARP_RESPONDER, 0, "", f"resubmit(,{FLOOD_TO_TUN})")
    for kind in sorted(set(opts.tunnel_types) & set(TUN_TABLE)):
        b.flow(br_tun, TUN_TABLE[kind], 0, "", "drop")
    b.flow(br_tun, LEARN_FROM_TUN, 1, "", f"{LEARN},output:patch-int")
    b.flow(br_tun, UCAST_TO_TUN, 0, "", f"resubmit(,{FLOOD_TO_TUN})")
    b.flow(br_tun, FLOOD_TO_TUN, 0, "", "drop")

    all_of_type: dict[str, list[str]] = {}
    for (kind, _remote), name in sorted(tun_ports.items()):
        all_of_type.setdefault(kind, []).append(name)
    for net in nets:
        lv, vni = vlans[net.id], int(net.segmentation_id or 0)
        b.flow(br_tun, TUN_TABLE[net.network_type], 1, f"tun_id={vni:#x}",
               f"push_vlan:0x8100,{_vid(lv)},resubmit(,{LEARN_FROM_TUN})")
        mine = net_peers.get(net.id, [])
        # l2population floods only to VTEPs with ports on the network; without it, to every tunnel of the type.
        flood = sorted({tun_ports[(net.network_type, p.vtep_ip)] for p in mine}) if opts.l2_population \
            else all_of_type.get(net.network_type, [])
        if flood:
            outputs = ",".join(f"output:{n}" for n in flood)
            b.flow(br_tun, FLOOD_TO_TUN, 1, f"dl_vlan={lv}", f"pop_vlan,{_tun_id(vni)},{outputs}")
        if not opts.l2_population:
            continue
        for peer in mine:
            port = tun_ports[(net.network_type, peer.vtep_ip)]
            for mac, ip in sorted(peer.ports, key=lambda mi: (mi[0], mi[1] or "")):
                b.flow(br_tun, UCAST_TO_TUN, 2, f"dl_vlan={lv},dl_dst={mac.lower()}",
                       f"pop_vlan,{_tun_id(vni)},output:{port}")
                if opts.arp_responder and ip and ipaddress.ip_address(ip).version == 4:
                    b.flow(br_tun, ARP_RESPONDER, 1, f"arp,dl_vlan={lv},arp_tpa={ip}", _arp_reply(mac, ip))


def _arp_reply(mac: str, ip: str) -> str:
    """Neutron's br_tun.install_arp_responder actions: turn the request into the reply, back out IN_PORT."""
    mac_hex = "0x" + mac.lower().replace(":", "").lstrip("0") if mac.strip("0:") else "0x0"
    ip_hex = f"{int(ipaddress.ip_address(ip)):#x}"
    return ("move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
            f"set_field:{mac.lower()}->eth_src,"
            "load:0x2->NXM_OF_ARP_OP[],"
            "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
            "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
            f"load:{mac_hex}->NXM_NX_ARP_SHA[],"
            f"load:{ip_hex}->NXM_OF_ARP_SPA[],"
            "IN_PORT")
