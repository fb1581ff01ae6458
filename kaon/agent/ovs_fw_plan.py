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

Ports with port security off are not listed here: their traffic goes NORMAL
unfiltered.  Rule ports ranges become Neutron's bitmask matches
(``tp_dst=0x400/0xfc00``); a remote group expands to one flow per member CIDR.
Flows are written the way ``ovs-ofctl dump-flows`` prints them, so re-applying
changes nothing (see kaon.dataplane.openflow).
"""

from __future__ import annotations

import functools
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
    for pid, port in ports:
        at = placement[pid]
        flows += _egress(port, at)
        flows += _ingress(port, at)
        for gid in port.get("security_groups", ()):
            for rule in groups.get(gid, {}).get("rules", ()):
                flows += _rule(rule, at, sets)
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


def _egress(port: Mapping[str, Any], at: FwPlacement) -> list[Flow]:
    reg = f"reg5={at.ofport:#x}"
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
            out.append(Flow(BASE_EGRESS, 65, f"ct_state=-trk,ip,{reg},dl_src={mac},nw_src={ip}",
                            f"ct(table={RULES_EGRESS},zone={ZONE})"))
        for ip in _cidrs([*addresses, link_local], 6):
            out.append(Flow(BASE_EGRESS, 65, f"ct_state=-trk,ipv6,{reg},dl_src={mac},ipv6_src={ip}",
                            f"ct(table={RULES_EGRESS},zone={ZONE})"))
    mac = port["mac"].lower()
    out += [
        # DHCP discover/request leave from 0.0.0.0 before the port has its address.
        Flow(BASE_EGRESS, 80, f"udp,{reg},dl_src={mac},tp_src=68,tp_dst=67", f"resubmit(,{ACCEPT_OR_INGRESS})"),
        Flow(BASE_EGRESS, 80, f"udp6,{reg},dl_src={mac},tp_src=546,tp_dst=547", f"resubmit(,{ACCEPT_OR_INGRESS})"),
        Flow(BASE_EGRESS, 70, f"udp,{reg},tp_src=67,tp_dst=68", "drop"),  # a VM answering DHCP
        Flow(BASE_EGRESS, 70, f"udp6,{reg},tp_src=547,tp_dst=546", "drop"),
        Flow(BASE_EGRESS, 70, f"icmp6,{reg},icmp_type=134", "drop"),  # or sending router advertisements
        Flow(BASE_EGRESS, 10, reg, "drop"),  # any other source, ethertype or MAC
        Flow(RULES_EGRESS, 77, f"ct_state=+inv+trk,{reg}", "drop"),
        Flow(RULES_EGRESS, 75, f"ct_state=+est-inv+trk,{reg}", f"resubmit(,{ACCEPT_OR_INGRESS})"),
        Flow(RULES_EGRESS, 75, f"ct_state=+rel-inv+trk,{reg}", f"resubmit(,{ACCEPT_OR_INGRESS})"),
        Flow(RULES_EGRESS, 10, reg, "drop"),
    ]
    return out


def _ingress(port: Mapping[str, Any], at: FwPlacement) -> list[Flow]:
    reg, mac, out_port = f"reg5={at.ofport:#x}", port["mac"].lower(), f"output:{at.device}"
    out = [
        # From a trunk (patch-tun, int-<br>) tagged with the local VLAN, or untagged from a local port.
        Flow(TRANSIENT, 100, f"dl_vlan={at.local_vlan},dl_dst={mac}",
             f"pop_vlan,{_regs(at)},resubmit(,{BASE_INGRESS})"),
        Flow(TRANSIENT, 90, f"vlan_tci=0x0000/0x1fff,dl_dst={mac}", f"{_regs(at)},resubmit(,{BASE_INGRESS})"),
        Flow(BASE_INGRESS, 100, f"arp,{reg}", out_port),
        Flow(BASE_INGRESS, 95, f"udp,{reg},tp_src=67,tp_dst=68", out_port),
        Flow(BASE_INGRESS, 95, f"udp6,{reg},tp_src=547,tp_dst=546", out_port),
        Flow(BASE_INGRESS, 90, f"ct_state=-trk,ip,{reg}", f"ct(table={RULES_INGRESS},zone={ZONE})"),
        Flow(BASE_INGRESS, 90, f"ct_state=-trk,ipv6,{reg}", f"ct(table={RULES_INGRESS},zone={ZONE})"),
        Flow(BASE_INGRESS, 10, reg, "drop"),
        Flow(RULES_INGRESS, 77, f"ct_state=+inv+trk,{reg}", "drop"),
        Flow(RULES_INGRESS, 75, f"ct_state=+est-inv+trk,{reg}", out_port),
        Flow(RULES_INGRESS, 75, f"ct_state=+rel-inv+trk,{reg}", out_port),
        Flow(RULES_INGRESS, 10, reg, "drop"),
    ]
    out += [Flow(BASE_INGRESS, 100, f"icmp6,{reg},icmp_type={t}", out_port) for t in ND_INGRESS]
    return out


def _rule(rule: Mapping[str, Any], at: FwPlacement, sets: Mapping[str, Any]) -> list[Flow]:
    """One security group rule as ``+new`` flows in 72 (egress) or 82 (ingress)."""
    v4 = rule["ethertype"] == "IPv4"
    egress = rule["direction"] == "egress"
    table = RULES_EGRESS if egress else RULES_INGRESS
    then = f"resubmit(,{ACCEPT_OR_INGRESS})" if egress else f"output:{at.device}"
    actions = f"ct(commit,zone={ZONE}),{then}"
    remote_field = ("nw_dst" if egress else "nw_src") if v4 else ("ipv6_dst" if egress else "ipv6_src")
    remotes: list[str | None] = [None]
    prefix = rule.get("remote_ip_prefix")
    if prefix and netaddr.IPNetwork(prefix).prefixlen > 0:
        remotes = [str(netaddr.IPNetwork(prefix).cidr)]
    if rule.get("remote_set"):
        members = _cidrs(sets.get(rule["remote_set"], ()), 4 if v4 else 6)
        remotes = [m for m in members if remotes == [None] or _within(m, remotes[0])]
    base = [f"ct_state=+new-est+trk,reg5={at.ofport:#x}"]
    flows = []
    for proto_match in _protocol(rule, v4):
        for remote in remotes:
            fields = [proto_match, *base]
            if remote is not None:
                fields.append(f"{remote_field}={_host(remote)}")
            flows.append(Flow(table, 70, ",".join(fields), actions))
    return flows


def _within(member: str, prefix: str | None) -> bool:
    return prefix is None or netaddr.IPNetwork(member) in netaddr.IPNetwork(prefix)


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
