"""Security groups as OVS conntrack flows on br-int (``firewall_driver = openvswitch``; pure).

Input: the firewall part of the host intent in the shape kaon.agent.fw_plan
takes (``ports`` / ``groups`` / ``sets``: docs/design/security-groups-dataplane.md)
plus where each filtered port sits on br-int (:class:`FwPlacement`: its OVS
port name, ofport and local VLAN).  Output: br-int flows with kaon's cookie.

Layout as Neutron's ``openvswitch`` firewall (neutron/agent/linux/openvswitch_firewall),
registers as Neutron uses them: ``reg5`` = the filtered port's ofport,
``reg6`` = its conntrack zone, which is the network's local VLAN (one zone per
network on the host, so equal addresses in two networks never share a
connection entry):

* table 0, ``in_port`` of a filtered port → reg5/reg6 → 71 (egress base);
* 71: ARP and IPv6 ND/MLD only from the port's MAC/addresses (and allowed
  address pairs) → 94 (NORMAL); DHCP client → 73; a VM acting as DHCP server
  or sending router advertisements → drop; IP from its addresses, untracked →
  ``ct(table=72, zone=reg6)``; anything else from the port → drop;
* 72 (egress rules): invalid → drop; established/related → 73; ``+new`` that
  a rule allows → ``ct(commit)`` → 73; the rest → drop;
* 73: destined to a filtered port of this host on the same network → clear
  the egress conntrack state, reg5 := that port, → 81; else → 94 (NORMAL);
* 60 (before NORMAL), a frame for a filtered port's MAC (tagged with its local
  VLAN from a trunk, or untagged from a local port) → reg5/reg6 → 81;
* 81: ARP, ND/MLD and DHCP server replies → output to the port; IP,
  untracked → ``ct(table=82, zone=reg6)``; anything else → drop;
* 82 (ingress rules): like 72, accepting with ``output:<port>``.

A stateless port (``stateful: false``) never meets conntrack: its IP goes
from 71 to 72 and from 81 to 82 untouched, its rules match every packet (no
``ct_state``) and accept without a commit, and it has no established shortcut:
replies pass only if a rule allows them, as with the nftables driver.

Ports with port security off are not listed here: their traffic goes NORMAL
unfiltered.  Rule ports ranges become Neutron's bitmask matches
(``tp_dst=0x400/0xfc00``); a rule naming a remote group is a conjunction
(``conjunction(id, 1/2)`` per member CIDR, shared by the host's ports;
``conjunction(id, 2/2)`` per port's rule match: :func:`_conjunctions`).
Flows are written the way ``ovs-ofctl dump-flows`` prints them, so re-applying
changes nothing (see kaon.dataplane.openflow).
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import netaddr

from kaon.dataplane.ovs_model import Flow

__all__ = ["FwPlacement", "plan_firewall", "port_masks"]

BASE_EGRESS, RULES_EGRESS, ACCEPT_OR_INGRESS = 71, 72, 73
BASE_INGRESS, RULES_INGRESS = 81, 82
ACCEPTED_EGRESS_NORMAL = 94
TRANSIENT = 60
ZONE = "NXM_NX_REG6[0..15]"
RULE, CONJUNCTIVE = 70, 69  # a plain rule's flows; a remote group's conjunctive flows, just below
ConjKey = tuple[str, str, bool, bool]  # a conjunction: (remote set, direction, IPv4, stateful)

# ICMPv6 a port always needs (Neutron's ICMPV6_ALLOWED_EGRESS_TYPES / INGRESS_TYPES).
ND_EGRESS = (131, 133, 135, 136, 143)  # MLD report, RS, NS, NA, MLDv2 report
ND_INGRESS = (130, 131, 132, 134, 135, 136, 143)  # MLD query/report/done, RA, NS, NA, MLDv2 report
# Protocol numbers → the keyword ovs-ofctl prints for them (v4, v6).
KEYWORDS = {6: ("tcp", "tcp6"), 17: ("udp", "udp6"), 132: ("sctp", "sctp6"), 1: ("icmp", None), 58: (None, "icmp6")}
PORT_PROTOCOLS = {6, 17, 132}


@dataclass(frozen=True)
class FwPlacement:
    """Where a filtered port sits on br-int: filled by the agent from OVSDB and the L2 plan."""

    device: str  # OVS port name
    ofport: int
    local_vlan: int  # also the conntrack zone


def plan_firewall(fw: Mapping[str, Any], placement: Mapping[str, FwPlacement]) -> tuple[Flow, ...]:
    """br-int flows filtering every port of ``fw`` with port security that ``placement`` locates."""
    groups, sets = fw.get("groups", {}), fw.get("sets", {})
    ports = sorted((pid, p) for pid, p in fw.get("ports", {}).items()
                   if p.get("port_security") and pid in placement)
    flows: list[Flow] = []
    # Remote groups: each port's half of the conjunctions, by (table, match) -> conjunction keys.
    port_side: dict[tuple[int, str], set[ConjKey]] = {}
    for pid, port in ports:
        at = placement[pid]
        stateful = port.get("stateful") is not False
        flows += _egress(port, at, stateful)
        flows += _ingress(port, at, stateful)
        for gid in port.get("security_groups", ()):
            for rule in groups.get(gid, {}).get("rules", ()):
                if rule.get("remote_set"):
                    key = (rule["remote_set"], rule["direction"], rule["ethertype"] == "IPv4", stateful)
                    for table, match in _rule_matches(rule, at, stateful):
                        port_side.setdefault((table, match), set()).add(key)
                else:
                    flows += _rule(rule, at, stateful)
    flows += _conjunctions(port_side, sets)
    # 73: a packet for a filtered port of this host on the same network (zone) goes through its ingress
    # checks; the egress conntrack state is cleared so ingress looks the packet up afresh.
    for pid, port in ports:
        to = placement[pid]
        flows.append(Flow(ACCEPT_OR_INGRESS, 100, f"reg6={to.local_vlan:#x},dl_dst={port['mac'].lower()}",
                          f"ct_clear,load:{to.ofport:#x}->NXM_NX_REG5[],resubmit(,{BASE_INGRESS})"))
    if ports:
        flows += [Flow(ACCEPT_OR_INGRESS, 10, "", f"resubmit(,{ACCEPTED_EGRESS_NORMAL})"),
                  Flow(ACCEPTED_EGRESS_NORMAL, 1, "", "NORMAL")]
    return tuple(sorted(set(flows)))


def _regs(at: FwPlacement) -> str:
    return f"load:{at.ofport:#x}->NXM_NX_REG5[],load:{at.local_vlan:#x}->NXM_NX_REG6[]"


def _addresses(port: Mapping[str, Any]) -> dict[str, list[str]]:
    """MAC → the addresses it may send from: the port's own, then its allowed address pairs'."""
    by_mac: dict[str, list[str]] = {port["mac"].lower(): list(port.get("ips", ()))}
    for pair in port.get("allowed_address_pairs", ()):
        by_mac.setdefault(pair.get("mac_address", port["mac"]).lower(), []).append(pair["ip_address"])
    return by_mac


def _cidrs(addresses: Iterable[str], version: int) -> list[str]:
    return list(_merged(tuple(addresses), version))


@functools.lru_cache(maxsize=4096)
def _merged(addresses: tuple[str, ...], version: int) -> tuple[str, ...]:
    # Cached: a remote group's member set is the same for every port that names it, and parsing it
    # again per port was a tenth of a 1,000-port resync.
    nets = netaddr.cidr_merge([netaddr.IPNetwork(a) for a in addresses if netaddr.IPNetwork(a).version == version])
    return tuple(str(n.ip) if n.size == 1 else str(n) for n in nets)


def _egress(port: Mapping[str, Any], at: FwPlacement, stateful: bool) -> list[Flow]:
    reg = f"reg5={at.ofport:#x}"
    # A stateful port's IP goes through conntrack into the rules; a stateless port's skips it.
    track = f"ct(table={RULES_EGRESS},zone={ZONE})" if stateful else f"resubmit(,{RULES_EGRESS})"
    untracked = "ct_state=-trk," if stateful else ""
    out = [Flow(0, 100, f"in_port={at.device}", f"{_regs(at)},resubmit(,{BASE_EGRESS})")]
    for mac, addresses in _addresses(port).items():
        for ip in _cidrs([*addresses, "0.0.0.0"], 4):  # 0.0.0.0: ARP probes (RFC 5227)
            out.append(Flow(BASE_EGRESS, 95, f"arp,{reg},dl_src={mac},arp_spa={ip}",
                            f"resubmit(,{ACCEPTED_EGRESS_NORMAL})"))
        for t in ND_EGRESS:
            out.append(Flow(BASE_EGRESS, 95, f"icmp6,{reg},dl_src={mac},icmp_type={t}",
                            f"resubmit(,{ACCEPTED_EGRESS_NORMAL})"))
        link_local = str(netaddr.EUI(mac).ipv6_link_local())
        for ip in _cidrs(addresses, 4):
            out.append(Flow(BASE_EGRESS, 65, f"{untracked}ip,{reg},dl_src={mac},nw_src={ip}", track))
        for ip in _cidrs([*addresses, link_local], 6):
            out.append(Flow(BASE_EGRESS, 65, f"{untracked}ipv6,{reg},dl_src={mac},ipv6_src={ip}", track))
    mac = port["mac"].lower()
    out += [
        # DHCP discover/request leave from 0.0.0.0 before the port has its address.
        Flow(BASE_EGRESS, 80, f"udp,{reg},dl_src={mac},tp_src=68,tp_dst=67", f"resubmit(,{ACCEPT_OR_INGRESS})"),
        Flow(BASE_EGRESS, 80, f"udp6,{reg},dl_src={mac},tp_src=546,tp_dst=547", f"resubmit(,{ACCEPT_OR_INGRESS})"),
        Flow(BASE_EGRESS, 70, f"udp,{reg},tp_src=67,tp_dst=68", "drop"),  # a VM answering DHCP
        Flow(BASE_EGRESS, 70, f"udp6,{reg},tp_src=547,tp_dst=546", "drop"),
        Flow(BASE_EGRESS, 70, f"icmp6,{reg},icmp_type=134", "drop"),  # or sending router advertisements
        Flow(BASE_EGRESS, 10, reg, "drop"),  # any other source, ethertype or MAC
        Flow(RULES_EGRESS, 10, reg, "drop"),
    ]
    if stateful:
        out += [Flow(RULES_EGRESS, 77, f"ct_state=+inv+trk,{reg}", "drop"),
                Flow(RULES_EGRESS, 75, f"ct_state=+est-inv+trk,{reg}", f"resubmit(,{ACCEPT_OR_INGRESS})"),
                Flow(RULES_EGRESS, 75, f"ct_state=+rel-inv+trk,{reg}", f"resubmit(,{ACCEPT_OR_INGRESS})")]
    return out


def _ingress(port: Mapping[str, Any], at: FwPlacement, stateful: bool) -> list[Flow]:
    reg, mac, out_port = f"reg5={at.ofport:#x}", port["mac"].lower(), f"output:{at.device}"
    out = [
        # From a trunk (patch-tun, int-<br>) tagged with the local VLAN, or untagged from a local port.
        Flow(TRANSIENT, 100, f"dl_vlan={at.local_vlan},dl_dst={mac}",
             f"pop_vlan,{_regs(at)},resubmit(,{BASE_INGRESS})"),
        Flow(TRANSIENT, 90, f"vlan_tci=0x0000/0x1fff,dl_dst={mac}", f"{_regs(at)},resubmit(,{BASE_INGRESS})"),
        Flow(BASE_INGRESS, 100, f"arp,{reg}", out_port),
        Flow(BASE_INGRESS, 95, f"udp,{reg},tp_src=67,tp_dst=68", out_port),
        Flow(BASE_INGRESS, 95, f"udp6,{reg},tp_src=547,tp_dst=546", out_port),
        Flow(BASE_INGRESS, 10, reg, "drop"),
        Flow(RULES_INGRESS, 10, reg, "drop"),
    ]
    if stateful:
        out += [Flow(BASE_INGRESS, 90, f"ct_state=-trk,ip,{reg}", f"ct(table={RULES_INGRESS},zone={ZONE})"),
                Flow(BASE_INGRESS, 90, f"ct_state=-trk,ipv6,{reg}", f"ct(table={RULES_INGRESS},zone={ZONE})"),
                Flow(RULES_INGRESS, 77, f"ct_state=+inv+trk,{reg}", "drop"),
                Flow(RULES_INGRESS, 75, f"ct_state=+est-inv+trk,{reg}", out_port),
                Flow(RULES_INGRESS, 75, f"ct_state=+rel-inv+trk,{reg}", out_port)]
    else:  # no conntrack: the rules see every packet, replies included
        out += [Flow(BASE_INGRESS, 90, f"ip,{reg}", f"resubmit(,{RULES_INGRESS})"),
                Flow(BASE_INGRESS, 90, f"ipv6,{reg}", f"resubmit(,{RULES_INGRESS})")]
    out += [Flow(BASE_INGRESS, 100, f"icmp6,{reg},icmp_type={t}", out_port) for t in ND_INGRESS]
    return out


def _rule(rule: Mapping[str, Any], at: FwPlacement, stateful: bool) -> list[Flow]:
    """A rule without a remote group: flows in 72 (egress) or 82 (ingress) that accept on their own."""
    egress = rule["direction"] == "egress"
    then = f"resubmit(,{ACCEPT_OR_INGRESS})" if egress else f"output:{at.device}"
    actions = f"ct(commit,zone={ZONE}),{then}" if stateful else then
    return [Flow(table, RULE, match, actions) for table, match in _rule_matches(rule, at, stateful)]


def _rule_matches(rule: Mapping[str, Any], at: FwPlacement, stateful: bool) -> list[tuple[int, str]]:
    """(table, match) per flow of a rule on a port, its remote group left out (the conjunction's other half).

    A stateful port's rules see only a connection's first packet (``+new``); a stateless port's
    see every packet, both ways."""
    v4 = rule["ethertype"] == "IPv4"
    table = RULES_EGRESS if rule["direction"] == "egress" else RULES_INGRESS
    base = f"ct_state=+new-est+trk,reg5={at.ofport:#x}" if stateful else f"reg5={at.ofport:#x}"
    prefix = rule.get("remote_ip_prefix")
    remote = ""
    if prefix and netaddr.IPNetwork(prefix).prefixlen > 0:
        remote = f",{_remote_field(rule['direction'], v4)}={_host(str(netaddr.IPNetwork(prefix).cidr))}"
    return [(table, f"{proto_match},{base}{remote}") for proto_match in _protocol(rule, v4)]


def _remote_field(direction: str, v4: bool) -> str:
    if v4:
        return "nw_dst" if direction == "egress" else "nw_src"
    return "ipv6_dst" if direction == "egress" else "ipv6_src"


def _conjunctions(port_side: Mapping[tuple[int, str], set[ConjKey]], sets: Mapping[str, Any]) -> list[Flow]:
    """Remote groups as conjunctive flows (``conjunction(id, k/2)``), as Neutron's OVS firewall lays them.

    Dimension 2 is a port's rule (protocol, ports, state: ``port_side``, one flow per match, its
    actions naming every conjunction that match takes part in); dimension 1 is the remote group's
    members, one flow per member CIDR, shared by every port of the host whose rules name that
    group in that direction. A member joining adds one flow per direction on the host however
    many ports name the group (it was one per port per member). One id per key; its ``conj_id``
    flow accepts as a plain rule does, the destination port read from reg5. All at one priority
    below the plain rules: a packet a plain rule accepts never needs the conjunction, and two
    conjunctions a packet completes at once accept it the same way.
    """
    keys = {k for ks in port_side.values() for k in ks}
    ids = conjunction_ids(keys)
    out = [Flow(table, CONJUNCTIVE, match, ",".join(f"conjunction({i},2/2)" for i in sorted(ids[k] for k in ks)))
           for (table, match), ks in port_side.items()]
    members: dict[tuple[int, str], set[int]] = {}  # (table, member match) -> conjunction ids
    for key in sorted(keys):
        name, direction, v4, stateful = key
        egress = direction == "egress"
        table = RULES_EGRESS if egress else RULES_INGRESS
        then = f"resubmit(,{ACCEPT_OR_INGRESS})" if egress else "output:NXM_NX_REG5[]"
        family = "ip" if v4 else "ipv6"
        out.append(Flow(table, CONJUNCTIVE, f"conj_id={ids[key]},{family}",
                        f"ct(commit,zone={ZONE}),{then}" if stateful else then))
        field = _remote_field(direction, v4)
        for member in _cidrs(sets.get(name, ()), 4 if v4 else 6):
            members.setdefault((table, f"{family},{field}={member}"), set()).add(ids[key])
    out += [Flow(table, CONJUNCTIVE, match, ",".join(f"conjunction({i},1/2)" for i in sorted(cids)))
            for (table, match), cids in members.items()]
    return out


def conjunction_ids(keys: Iterable[ConjKey]) -> dict[ConjKey, int]:
    """A conjunction id per key, from a hash of it: stable while the key lives whatever else comes and
    goes (so a group's flows are not rewritten when another group appears); a collision takes the next
    free id, in key order."""
    out: dict[ConjKey, int] = {}
    taken: set[int] = set()
    for key in sorted(keys):
        cid = zlib.crc32(repr(key).encode()) or 1
        while cid in taken:
            cid = cid % 0xFFFFFFFF + 1
        taken.add(cid)
        out[key] = cid
    return out


def _host(cidr: str) -> str:
    """ovs-ofctl prints a /32 (/128) without its length."""
    net = netaddr.IPNetwork(cidr)
    return str(net.ip) if net.size == 1 else str(net.cidr)


def _protocol(rule: Mapping[str, Any], v4: bool) -> list[str]:
    """The protocol part of a rule's match(es): one entry per port-range mask."""
    proto, low, high = rule.get("protocol"), rule.get("port_range_min"), rule.get("port_range_max")
    family = "ip" if v4 else "ipv6"
    if not proto:
        return [family]
    keyword = KEYWORDS.get(proto, (None, None))[0 if v4 else 1]
    head = keyword or f"{family},nw_proto={proto}"
    if proto in PORT_PROTOCOLS and low is not None:
        return [f"{head},tp_dst={m}" for m in port_masks(low, high if high is not None else low)]
    if proto in (1, 58) and low is not None:
        parts = f"{head},icmp_type={low}"
        return [parts + (f",icmp_code={high}" if high is not None else "")]
    return [head]


def port_masks(low: int, high: int) -> list[str]:
    """A port range as the fewest value/mask matches (Neutron's port_rule_masking); one port: no mask."""
    if low == high:
        return [str(low)]
    out = []
    while low <= high:
        size = low & -low if low else 1 << 16
        while size > high - low + 1:
            size >>= 1
        out.append(str(low) if size == 1 else f"{low:#x}/{0xFFFF & ~(size - 1):#x}")
        low += size
    return out
