"""The firewall part of a host intent → nftables objects and the scripts between them (pure).

Design (docs/design/security-groups-dataplane.md; measured in the shared
dataplane reference §5.1): this kernel has no conntrack in the nft *bridge*
family, so the work is split in three tables, all owned by name:

* ``netdev kaon-sg`` — where the kernel hooks a chain to a device by name
  (``per_device``): per port, a base chain on its tap's ingress hook with its
  anti-spoofing (MAC, IPv4/IPv6 source, ARP sender, with allowed address
  pairs; the DHCP client allowed; DHCP/DHCPv6 server replies and router
  advertisements sent *by* the VM dropped), and a stateless port's egress
  rules after it. Otherwise those chains are in the bridge table, reached
  from bridge prerouting. And where ports are found by MAC (:func:`by_mac`),
  per port a base chain on its tap's egress hook: a stateful port's for the
  frames its MACs do not name, a stateless port's with its ingress rules;
* ``bridge kaon-sg`` — a stateful port's packets are marked with the port
  they come from (low 16 bits, by its anti-spoofing chain) and, where the
  inet table cannot find the receiver by bridge and MAC, the port they go
  to (high 16 bits, at forward). A **stateless** port needs no
  conntrack, so all of it is in the bridge family (or netdev): its egress
  rules after its anti-spoofing (``out-<tap>``), its ingress rules at forward
  or on its tap's egress hook (``to-<tap>``), and its packets are made
  untracked (``notrack``) before br_netfilter hands them to conntrack, where
  they can meet it;
* ``inet kaon-sg`` — stateful ports, reached through br_netfilter: per-port
  egress and ingress chains keyed on that mark (ingress: or on the
  receiver's bridge and destination MAC, :func:`by_mac`), ``ct state
  established,related`` accepted, one chain per security group with its
  rules, remote groups as named interval sets, default drop; a conntrack
  zone per network wherever two networks' traffic meets in conntrack
  (:func:`zones_needed`).

The base chains hold only what the host's ports need: without a stateful
port there is no ``ct`` expression (kaon turns no conntrack on in the
namespace), without a stateless one no ``notrack``.

Stateful egress and ingress share one ``forward`` base chain (one hook
invocation per packet): what the sender's egress chain allows continues with
``goto ingress`` rather than ``accept``, so a packet between two ports of
this host still meets the receiver's ingress chain, whose accept or drop is
final. Between the two families the hooks compose the same way: an accept
ends only its own hook, the next one still decides.

Incremental by construction: the base chains dispatch through *named*
verdict maps (tap → chain, port mark → chain), so a port is its own chains
plus one element in each map. :func:`build` returns the wanted objects
(:class:`Ruleset`); :func:`change_script` turns two of them into one
transaction that touches only what differs — a new port adds its chains and
map elements, a removed one deletes them, a rule change refills its group's
chains — and :func:`full_script` writes the tables whole (first sync, or
when the read-back, :func:`summary`, shows drift). Port numbers (the marks)
must therefore stay the same while a port lives: :func:`number_ports`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import netaddr

from kaon.model import names
from kaon.model.intent import (
    FirewallIntent,
    FirewallPort,
    FirewallRule,
    HostIntent,
    NetworkIntent,
    SecurityGroupIntent,
)

Key = tuple[str, str]  # (family, object name)
TABLE = "kaon-sg"  # the name of the tables (bridge, inet and netdev families)
# The order the tables are written in a full write. netdev first: the kernel binds each anonymous set
# (the ARP rule's in every from- chain) by walking the whole transaction so far, so the thousand per-tap
# chains cost least at its start (a full write of 1,000 ports: 0.6 s, against 1.4 s written last).
FAMILIES = ("netdev", "bridge", "inet")
MAX_PORTS = 0xFFFF  # the port mark has 16 bits per direction
PORT_PROTOCOLS = {6, 17, 33, 132, 136}  # tcp, udp, dccp, sctp, udplite: th dport is at the same place
ICMP = {1: "icmp", 58: "icmpv6"}
# ICMPv6 a port always needs (Neutron's ICMPV6_ALLOWED_*): MLD, router/neighbour discovery.
ND_EGRESS = ("mld-listener-report", "nd-router-solicit", "nd-neighbor-solicit", "nd-neighbor-advert",
             "mld2-listener-report")
ND_INGRESS = ("mld-listener-query", "mld-listener-report", "mld-listener-done", "nd-router-advert",
              "nd-neighbor-solicit", "nd-neighbor-advert", "mld2-listener-report")
DAD = ("nd-neighbor-solicit", "mld2-listener-report", "mld-listener-report")  # what comes from :: before an address
# Constant sets, named once per table rather than an anonymous copy in every port's chains
# (each anonymous set is a kernel object of its own: thousands of them make a full write slow).
CONSTANT_SETS: dict[Key, tuple[str, tuple[str, ...]]] = {
    ("bridge", "udp_icmpv6"): ("inet_proto", ("udp", "icmpv6")),
    ("bridge", "dad_types"): ("icmpv6_type", DAD),
    ("inet", "nd_egress"): ("icmpv6_type", ND_EGRESS),
    ("inet", "nd_ingress"): ("icmpv6_type", ND_INGRESS),
    ("bridge", "nd_egress"): ("icmpv6_type", ND_EGRESS),  # for stateless ports' chains
    ("bridge", "nd_ingress"): ("icmpv6_type", ND_INGRESS),
    ("netdev", "udp_icmpv6"): ("inet_proto", ("udp", "icmpv6")),  # stateful ports' anti-spoofing, per device
    ("netdev", "dad_types"): ("icmpv6_type", DAD),
    ("netdev", "nd_egress"): ("icmpv6_type", ND_EGRESS),  # stateless ports' egress, per device
    ("netdev", "nd_ingress"): ("icmpv6_type", ND_INGRESS),  # stateful ports' group frames (by_mac)
}



@dataclass(frozen=True)
class Ruleset:
    """Both tables as objects: what :func:`full_script` writes and :func:`change_script` diffs."""
    hooks: dict[Key, str] = field(default_factory=dict)  # base chain -> its "type ... hook ..." line
    chains: dict[Key, tuple[str, ...]] = field(default_factory=dict)  # every chain -> its rules
    decls: dict[Key, str] = field(default_factory=dict)  # named set/map -> its declaration body
    elements: dict[Key, dict[str, str]] = field(default_factory=dict)  # set/map -> key -> value ("" for sets)
    guarded: frozenset[str] = frozenset()  # port ids this ruleset filters
    numbers: dict[str, int] = field(default_factory=dict)  # port id -> its mark number

    @property
    def empty(self) -> bool:
        return not self.chains


def secured(fw: FirewallIntent | None) -> set[str]:
    """Ports that must not pass traffic unless their rules are in the kernel."""
    return {pid for pid, p in fw.ports.items() if p.port_security} if fw is not None else set()


def number_ports(previous: Mapping[str, int], ports: Iterable[str]) -> dict[str, int]:
    """A mark number per port: kept while the port lives, the lowest free one for a new port."""
    wanted = sorted(ports)
    kept = {pid: previous[pid] for pid in wanted if pid in previous}
    used = set(kept.values())
    free = (n for n in range(1, MAX_PORTS + 1) if n not in used)
    for pid in wanted:
        if pid not in kept:
            number = next(free, None)
            if number is None:
                raise ValueError(f"{len(wanted)} filtered ports on one host: the port mark has 16 bits")
            kept[pid] = number
    return kept


def build(fw: FirewallIntent | None, networks: Mapping[str, NetworkIntent],
          previous: Mapping[str, int] | None = None, zones: bool = True, per_device: bool = False,
          tracked: frozenset[str] | None = None, bridges: Mapping[str, str] | None = None) -> Ruleset:
    """The wanted objects; ``previous``: the port numbers in force (kept for ports still here).

    ``zones``: a conntrack zone per network. Needed where two networks' traffic meets in the
    namespace's conntrack table (the same addresses in two tenants' networks); where only one
    network's bridge goes through conntrack at all (kaon.agent.firewall's per-bridge mode, see
    :func:`zones_needed`), zones separate nothing and would cost a base chain per packet.

    ``per_device``: a port's anti-spoofing (and a stateless port's egress rules after it) is a
    base chain of its own on its tap's ingress hook (netdev family) instead of a bridge
    prerouting chain reached through the ``from_port`` map: only the VM's own packets run it,
    the rest of the bridge's traffic (the VXLAN device's, the router's) meets no prerouting
    chain at all. Needs a kernel that hooks a chain to a device by name, before the device
    exists and across its re-creation (6.16 on; kaon.agent.firewall probes it).

    ``tracked``: the taps whose packets can meet conntrack (on a bridge that goes through
    br_netfilter); None: all of them. A stateless port elsewhere needs no ``notrack``.

    ``bridges``: port id -> the bridge its frames cross. With ``per_device``, a stateful port's
    ingress is then found by destination MAC (:func:`by_mac`): no bridge ``forward`` hook."""
    ports = {pid: p for pid, p in fw.ports.items() if p.port_security} if fw is not None else {}
    if not ports:
        return Ruleset()
    assert fw is not None
    numbers = number_ports(previous or {}, ports)
    rs = Ruleset(guarded=frozenset(ports), numbers=numbers)
    stateful = any(p.stateful is not False for p in ports.values())
    untracked = {pid for pid, p in ports.items() if p.stateful is False and (tracked is None or p.device in tracked)}
    keys = by_mac(ports, bridges) if per_device else None
    _skeleton(rs, stateful=stateful, untracked=bool(untracked), zones=zones, bridge_from=not per_device,
              forward=keys is None, mac_dispatch=keys is not None)
    for key in rs.decls:
        rs.elements[key] = {}
    for key, (kind, members) in CONSTANT_SETS.items():
        if key[0] != "netdev" or per_device:
            rs.decls[key] = f"set {{ type {kind}; }}"
            rs.elements[key] = dict.fromkeys(members, "")
    for pid, port in sorted(ports.items()):
        _port(rs, numbers[pid], port, fw.groups, per_device, pid in untracked,
              None if keys is None else keys.get(pid, ()))
    # A group's chains (and the remote sets its rules name) in each family one of its ports is
    # filtered in: inet for stateful ports (and netdev for group frames, by MAC), bridge or netdev
    # for stateless ones (see _families).
    for family in FAMILIES:
        used = sorted({g for p in ports.values() if family in _families(p, per_device, keys is not None)
                       for g in p.security_groups or () if g in fw.groups})
        for gid in used:
            _group(rs, family, gid, fw.groups[gid])
        named = {r.remote_set for gid in used for r in fw.groups[gid].rules if r.remote_set}
        for name in sorted(named & fw.sets.keys()):
            kind = "ipv4_addr" if name.startswith("sg4-") else "ipv6_addr"
            rs.decls[family, name] = f"set {{ type {kind}; flags interval; }}"
            rs.elements[family, name] = dict.fromkeys(fw.sets[name], "")
    if ("inet", "zone_of") in rs.decls:
        rs.elements["inet", "zone_of"] = {f'"{net.bridge}"': str(zone(nid))
                                          for nid, net in sorted(networks.items()) if net.bridge}
    return rs


def netfilter_networks(intent: HostIntent) -> set[str]:
    """The networks whose bridge must hand IPv4/IPv6 to netfilter (br_netfilter): those with a
    secured stateful port.

    Only they need it: a stateless port is filtered in the bridge family, and routers' and DHCP
    ports are not filtered. Every other bridge then costs nothing in conntrack (with
    ``[securitygroup] netfilter_all_bridges = false``; see kaon.agent.firewall)."""
    fw = intent.firewall
    if fw is None:
        return set()
    return {intent.ports[pid].network_id for pid, p in fw.ports.items()
            if p.port_security and p.stateful is not False and pid in intent.ports}


def zones_needed(all_bridges: bool, tracked_networks: set[str]) -> bool:
    """Whether conntrack zones are needed: when every bridge of the namespace goes through
    br_netfilter (any bridge, kaon's or not, may carry the same addresses as another), or when
    more than one network's bridge does (per-bridge mode; ``tracked_networks``:
    :func:`netfilter_networks`). The host's own traffic shares zone 0 with the one tracked
    network then, as it shares the table with every network on a host without zones."""
    return all_bridges or len(tracked_networks) > 1


def by_mac(ports: Mapping[str, FirewallPort], bridges: Mapping[str, str] | None) -> dict[str, tuple[str, ...]] | None:
    """Port id -> the ``"bridge" . mac`` keys its stateful ingress is found by in the inet chain, or
    None where that cannot tell every port apart: a port whose bridge is not known, or one bridge
    and MAC two filtered ports share (an address pair's MAC, say). Then the bridge ``forward`` hook
    names the receiving port, as on a kernel without per-device hooks.

    Why: that hook runs for every bridged frame, to the VXLAN device and the router too, and costs
    about a point of throughput (docs/performance-dataplane.md, session 9); keyed by destination
    MAC, as Neutron's Open vSwitch firewall finds a port (network and ``dl_dst``), the stateful
    port needs a hook only on its own tap, for what a MAC cannot name (:func:`_to_port`)."""
    if bridges is None:
        return None
    out: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    for pid, port in sorted(ports.items()):
        if pid not in bridges:
            return None
        keys = tuple(f'"{bridges[pid]}" . {mac}' for mac in _addresses(port))
        if seen & set(keys):
            return None
        seen |= set(keys)
        if _family(port) == "inet":
            out[pid] = keys
    return out


def _families(port: FirewallPort, per_device: bool, mac_dispatch: bool = False) -> tuple[str, ...]:
    """Where a port's groups' chains are needed: inet (stateful; and netdev for the ingress rules on
    its tap's egress hook, see :func:`_to_port`), or, for a stateless port, netdev or bridge for its
    egress rules (after its per-device anti-spoofing) and bridge for its ingress rules — or netdev,
    on its tap's egress hook, where no bridge forward hook is left (``mac_dispatch``)."""
    if _family(port) == "inet":
        return ("inet", "netdev") if mac_dispatch else ("inet",)
    if mac_dispatch:
        return ("netdev",)
    return ("bridge", "netdev") if per_device else ("bridge",)


def _family(port: FirewallPort) -> str:
    """Where a port's rules are: a stateless port needs no conntrack, so all of it is in the bridge
    family, and its packets meet no inet chain of its own (see the module docstring)."""
    return "bridge" if port.stateful is False else "inet"


def zone(network_id: str) -> int:
    """A conntrack zone per network, stable across restarts and hosts (1..65535).

    Why: all bridges of a host share its namespace's conntrack table, and two
    tenants may use the same addresses. A collision of two networks' hashes
    only means they share a zone, which is the situation without zones."""
    return zlib.crc32(network_id.encode()) % 0xFFFF + 1


# -- the fixed part: base chains dispatching through named maps -------------------
def _skeleton(rs: Ruleset, stateful: bool, untracked: bool, zones: bool = True, bridge_from: bool = True,
              forward: bool = True, mac_dispatch: bool = False) -> None:
    """The base chains, and in them only what the host's ports need.

    Every packet crossing the host's namespace runs them (the underlay's VXLAN packets too), so
    a rule or a hook only some ports need is there only while such a port is: without a
    stateful port there is no inet base chain and no ``ct`` expression at all — nothing of
    kaon's turns conntrack on in the namespace — and without a stateless port no ``notrack``."""
    rs.decls.update({
        ("bridge", "from_port"): "map { type ifname : verdict; }",
        ("bridge", "untracked_mac"): "set { type ether_addr; }",  # stateless ports' MACs, as destinations
        ("inet", "out_port"): "map { type mark : verdict; }",
    })
    # The receiving stateful port: by bridge and destination MAC (``mac_dispatch``, see by_mac), or
    # by the mark the bridge forward hook sets from the outgoing port's name.
    if mac_dispatch:
        rs.decls["inet", "in_mac"] = "map { type ifname . ether_addr : verdict; }"
    else:
        rs.decls["inet", "in_port"] = "map { type mark : verdict; }"
    if zones:  # one map lookup per packet, however many networks the host has
        rs.decls["inet", "zone_of"] = "map { typeof iifname : ct zone; }"
    hook = "type filter hook {} priority {}; policy accept;"
    if forward:  # the receiving port named by the bridge: without mac_dispatch
        rs.decls["bridge", "to_port"] = "map { type ifname : verdict; }"
        rs.hooks["bridge", "forward"] = hook.format("forward", "filter")
        rs.chains["bridge", "forward"] = ("oifname vmap @to_port",)
    if bridge_from or untracked:
        rs.hooks["bridge", "prerouting"] = hook.format("prerouting", "filter")
        # A stateless port's packets are never tracked: what it sends gets ``notrack`` in its
        # from- chain, what goes to its MAC here — both before br_netfilter hands the packet to the
        # inet hooks and conntrack. (Before the port dispatch: the from- chains end in a verdict.)
        # ``untracked``: a stateless port whose packets can meet conntrack at all. ``bridge_from``:
        # the ports' anti-spoofing is reached through the bridge (not on their taps' own hooks).
        rs.chains["bridge", "prerouting"] = (("ether daddr @untracked_mac notrack",) if untracked else ()) + (
            ("iifname vmap @from_port",) if bridge_from else ())
    rs.chains["inet", "ingress"] = ("iifname . ether daddr vmap @in_mac" if mac_dispatch else
                                    "meta mark and 0xffff0000 vmap @in_port", "accept")
    if not stateful:  # stateless ports are wholly in the bridge family: no inet hook to run
        return
    if zones:
        rs.hooks["inet", "zones"] = hook.format("prerouting", "raw")
        # A conntrack zone per network, set before conntrack (priority raw) — but not for an
        # untracked packet: setting a zone gives it a conntrack template again.
        rs.chains["inet", "zones"] = (("ct state untracked accept",) if untracked else ()) + (
            "ct zone set iifname map @zone_of",)
    rs.hooks["inet", "forward"] = hook.format("forward", "0")
    rs.chains.update({
        # One base chain (one hook invocation per packet): the sender's egress checks first; what
        # they allow continues with ``goto ingress`` (the receiver's checks), whose accept or drop
        # ends the hook. A packet from no filtered port goes to ``ingress`` directly.
        # Established traffic first, before any per-port lookup: every port chain that could see
        # such a packet accepts it anyway (stateful ports' first rule; a stateless port's packets
        # are untracked, never "established"; an unfiltered port accepts all), so most packets
        # cost one conntrack state test here, however many ports and rules the host has.
        # On kaon's own bridges the port marks are cleared once the packet is let through: a
        # packet with a mark leaves by VXLAN without the tunnel's cached route (the kernel looks
        # the route up again for every marked packet) and would carry the mark onto the underlay.
        # (Marks of traffic the host itself routes are not kaon's to clear.)
        ("inet", "forward"): (f'ct state established,related iifname "{names.BRIDGE}*" meta mark set 0x0 accept',
                              "ct state established,related accept",
                              "meta mark and 0x0000ffff vmap @out_port", "goto ingress"),
    })


# -- a port: four chains and one element per map ----------------------------------
def _port(rs: Ruleset, number: int, port: FirewallPort, groups: Mapping[str, SecurityGroupIntent],
          per_device: bool = False, untracked: bool = False, keys: tuple[str, ...] | None = None) -> None:
    """``untracked``: a stateless port whose packets can meet conntrack (``notrack`` them).
    ``keys``: when ports are found by MAC (by_mac), a stateful port's ``"bridge" . mac`` keys (a
    stateless port has none: its ingress rules are wholly on its tap's egress hook); None: the
    bridge forward hook names the receiver."""
    tap = port.device
    present = tuple(g for g in port.security_groups or () if g in groups)
    rs.chains.update(_port_chains(number, port, present, per_device, untracked, keys is not None))
    if per_device:  # the tap's own ingress hook, by name (it may not exist yet; it may come and go)
        rs.hooks["netdev", f"from-{tap}"] = f'type filter hook ingress device "{tap}" priority filter; policy accept;'
    else:
        rs.elements["bridge", "from_port"][f'"{tap}"'] = f"jump from-{tap}"
    if keys is None:  # the receiver named at bridge forward
        rs.elements["bridge", "to_port"][f'"{tap}"'] = f"jump to-{tap}"
    else:  # the tap's own egress hook
        rs.hooks["netdev", f"to-{tap}"] = f'type filter hook egress device "{tap}" priority filter; policy accept;'
    if _family(port) == "bridge":
        if untracked:
            for mac in _addresses(port):
                rs.elements["bridge", "untracked_mac"][mac] = ""
        return
    rs.elements["inet", "out_port"][f"{number:#010x}"] = f"goto out-{tap}"
    if keys is None:
        rs.elements["inet", "in_port"][f"{number << 16:#010x}"] = f"goto in-{tap}"
        return
    for key in keys:  # found by its MACs; its tap's egress hook judges what they do not name
        rs.elements["inet", "in_mac"][key] = f"goto in-{tap}"


@functools.lru_cache(maxsize=1 << 16)
def _port_chains(number: int, port: FirewallPort, present: tuple[str, ...],
                 per_device: bool = False, untracked: bool = False,
                 mac_dispatch: bool = False) -> dict[Key, tuple[str, ...]]:
    """A port's chains; cached, as a pass rebuilds every port's while few change (and equal
    tuples that are the same object compare at once in :func:`change_script`).

    Stateless: three bridge chains — ``from-`` (anti-spoofing, then ``goto out-``), ``out-``
    (egress rules) and ``to-`` (ingress rules); per device, ``from-`` and ``out-`` are netdev
    chains on the tap's ingress hook, and with ``mac_dispatch`` ``to-`` is one on its egress
    hook. Stateful: ``from-`` and ``to-`` only mark the packet, the rules are in inet ``out-``
    and ``in-`` (with ``mac_dispatch``, ``to-`` judges what the inet chain could not, see
    :func:`_to_port`)."""
    tap = port.device
    out = "netdev" if per_device else "bridge"  # where the port's own packets are judged
    if _family(port) == "bridge":
        into = "netdev" if mac_dispatch else "bridge"  # where what it receives is judged
        return {(out, f"from-{tap}"): _from_port(number, port, untracked),
                (out, f"out-{tap}"): _port_chain("out", port, present, out),
                (into, f"to-{tap}"): _port_chain("in", port, present, into)}
    chains = {(out, f"from-{tap}"): _from_port(number, port)}
    if mac_dispatch:
        groups = f"in-groups-{hashlib.sha256(' '.join(present).encode()).hexdigest()[:16]}"
        chains[("netdev", f"to-{tap}")] = _to_port(port, groups)
        # Shared by every port of these groups: one chain, not one per port (a full write of 1,000
        # ports is ~0.15 s faster). 64 bits of a digest name it: a collision is not a concern.
        chains[("netdev", groups)] = _port_chain("in", port, present, "netdev", conntrack=False)
    else:
        chains[("bridge", f"to-{tap}")] = (f"meta mark set meta mark or {number << 16:#010x}",)
    return {**chains, ("inet", f"out-{tap}"): _port_chain("out", port, present),
            ("inet", f"in-{tap}"): _port_chain("in", port, present)}


def _to_port(port: FirewallPort, groups: str) -> tuple[str, ...]:
    """A stateful port's tap egress hook, where its ingress is found by MAC (:func:`by_mac`).

    A frame to one of the port's MACs was judged by its ingress chain in the inet table already. A
    unicast frame to another MAC reaches the tap only when the bridge floods it: dropped, as
    Neutron's Open vSwitch firewall delivers a port only its own MACs. A frame to a group address
    (broadcast, multicast) names no port: it meets the port's ingress rules here, without conntrack
    (the netdev family has none; ``groups``: the chain of its groups' rules for that, shared by the
    ports of the same groups) — such a frame opens a flow, it never answers one."""
    macs = list(_addresses(port))
    own = macs[0] if len(macs) == 1 else "{ " + ", ".join(macs) + " }"
    return (f"ether daddr {own} accept", "ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 drop",
            f"goto {groups}")


def _group(rs: Ruleset, family: str, gid: str, group: SecurityGroupIntent) -> None:
    for direction, suffix in (("egress", "out"), ("ingress", "in")):
        rs.chains[family, f"sg-{gid}-{suffix}"] = tuple(
            f"{match} {PASS[family][suffix]}"
            for match in _matches([r for r in group.rules if r.direction == direction], family))


def _matches(rules: list[FirewallRule], family: str = "inet") -> list[str]:
    """The rules as nft matches, rules that differ only in their port range as one rule.

    Why: a packet that no rule allows walks the whole chain — every packet of a
    stateless port, every new flow of a stateful one — so 1,000 "tcp port N from
    10.0.0.0/8" rules are one rule with a set of ports (one lookup), not 1,000.
    The rules are alternatives (any accepts), so their order does not matter."""
    out: list[str] = []
    ports: dict[FirewallRule, list[tuple[int, int]]] = {}
    for rule in rules:
        low, high = rule.port_range_min, rule.port_range_max
        if rule.protocol in PORT_PROTOCOLS and low is not None:
            key = FirewallRule(rule.direction, rule.ethertype, rule.protocol, None, None,
                               rule.remote_ip_prefix, rule.remote_set)
            if key not in ports:
                ports[key] = []
                out.append("")  # the merged rule's place: where its first rule was
            ports[key].append((low, high if high is not None else low))
        else:
            out.append(_match(rule, family))
    merged = iter(f"{_match(key, family)} th dport {_port_set(ranges)}" for key, ranges in ports.items())
    return [m or next(merged) for m in out]


def _port_set(ranges: list[tuple[int, int]]) -> str:
    spans: list[list[int]] = []
    for low, high in sorted(ranges):
        if spans and low <= spans[-1][1] + 1:  # overlapping or adjacent: one interval
            spans[-1][1] = max(spans[-1][1], high)
        else:
            spans.append([low, high])
    items = [str(a) if a == b else f"{a}-{b}" for a, b in spans]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }"


# -- scripts -------------------------------------------------------------------------
def full_script(rs: Ruleset) -> str:
    """Both tables made exactly ``rs`` (empty: removed), in one batch."""
    out = []
    for family in FAMILIES:
        # Declaring first makes the delete valid when the table does not exist.
        out.append(f"table {family} {TABLE} {{}}\ndelete table {family} {TABLE}\n")
        if rs.empty:
            continue
        body = [f"  {kind} {name} {{ {spec} }}\n" for (fam, name), (kind, spec) in
                ((k, _decl(v)) for k, v in sorted(rs.decls.items())) if fam == family]
        for (fam, name), rules in rs.chains.items():
            if fam == family:
                hook = rs.hooks.get((fam, name))
                lines = ([hook] if hook else []) + list(rules)
                body.append(f"  chain {name} {{\n" + "".join(f"    {r}\n" for r in lines) + "  }\n")
        out.append(f"table {family} {TABLE} {{\n{''.join(body)}}}\n")
    out += [_elements("add", key, elems) for key, elems in sorted(rs.elements.items()) if elems]
    return "".join(out)


def change_script(old: Ruleset, new: Ruleset) -> str | None:
    """One transaction from ``old`` to ``new`` touching only what differs; None: write whole."""
    if old.empty or new.empty or any(old.hooks[k] != new.hooks[k] for k in old.hooks.keys() & new.hooks.keys()) or any(
            old.decls[k] != new.decls[k] for k in old.decls.keys() & new.decls.keys()):
        return None if old != new else ""
    out = []
    for key in sorted(new.decls.keys() - old.decls.keys()):
        kind, spec = _decl(new.decls[key])
        out.append(f"add {kind} {key[0]} {TABLE} {key[1]} {{ {spec} }}\n")
    for key in [k for k in new.chains if k not in old.chains]:  # a base chain comes with its hook
        hook = f" {{ {new.hooks[key]} }}" if key in new.hooks else ""
        out.append(f"add chain {key[0]} {TABLE} {key[1]}{hook}\n")
    for key, rules in new.chains.items():
        if old.chains.get(key) == rules:
            continue
        if key in old.chains:
            out.append(f"flush chain {key[0]} {TABLE} {key[1]}\n")
        out += [f"add rule {key[0]} {TABLE} {key[1]} {r}\n" for r in rules]
    # Element deletes before adds: an interval set refuses overlapping elements.
    for key, elems in sorted(old.elements.items()):
        if key in new.elements:
            gone = [k for k, v in elems.items() if new.elements[key].get(k) != v]
            if gone:
                out.append(_elements("delete", key, dict.fromkeys(gone, "")))
    for key, elems in sorted(new.elements.items()):
        came = {k: v for k, v in elems.items() if old.elements.get(key, {}).get(k) != v}
        if came:
            out.append(_elements("add", key, came))
    # What is gone: flushed first (a chain still jumped to cannot be deleted), then deleted.
    gone_chains = [key for key in old.chains if key not in new.chains]
    out += [f"flush chain {f} {TABLE} {n}\n" for f, n in gone_chains]
    out += [f"delete chain {f} {TABLE} {n}\n" for f, n in gone_chains]
    for key in sorted(old.decls.keys() - new.decls.keys()):
        out.append(f"delete {_decl(old.decls[key])[0]} {key[0]} {TABLE} {key[1]}\n")
    return "".join(out)


def _decl(text: str) -> tuple[str, str]:
    kind, _, spec = text.partition(" ")
    return kind, spec.strip().removeprefix("{").removesuffix("}").strip()


def _elements(verb: str, key: Key, elems: Mapping[str, str]) -> str:
    items = ", ".join(f"{k} : {v}" if v and verb == "add" else k for k, v in sorted(elems.items()))
    return f"{verb} element {key[0]} {TABLE} {key[1]} {{ {items} }}\n"


def summary(rs: Ruleset) -> dict[str, int]:
    """What a read-back can compare cheaply: rules per chain, elements per set or map.

    An interval set counts as present only: the kernel may list adjacent
    intervals differently from how they were written."""
    out = {f"chain {f} {n}": len(rules) for (f, n), rules in rs.chains.items()}
    for (f, n), spec in rs.decls.items():
        out[f"set {f} {n}"] = -1 if "interval" in spec else len(rs.elements.get((f, n), {}))
    return out


# -- bridge family: anti-spoofing -------------------------------------------------
def _addresses(port: FirewallPort) -> dict[str, list[str]]:
    """MAC → the source addresses it may use: the port's own, then its address pairs'."""
    by_mac: dict[str, list[str]] = {port.mac: list(port.ips or ())}
    for pair in port.allowed_address_pairs or ():
        by_mac.setdefault(pair.mac_address, []).append(pair.ip_address)
    return by_mac


def _merged(addresses: list[str], version: int) -> str:
    """The addresses as one nft value: a set only when there are several (one is a plain compare)."""
    nets = netaddr.cidr_merge([netaddr.IPNetwork(a) for a in addresses if netaddr.IPNetwork(a).version == version])
    items = [str(n.ip) if n.size == 1 else str(n) for n in nets]
    return items[0] if len(items) == 1 else "{ " + ", ".join(items) + " }" if items else ""


def _from_port(number: int, port: FirewallPort, untracked: bool = False) -> tuple[str, ...]:
    # What passes anti-spoofing: a stateful port's packet is marked with the port's number for the
    # inet chains; a stateless port's goes on to its egress rules, in this family.
    mark = f"meta mark set {number:#010x} accept" if _family(port) == "inet" else f"goto out-{port.device}"
    by_mac = _addresses(port)
    # Hot path first: IPv4 that is not UDP, or IPv6 that is neither UDP nor ICMPv6, from the
    # port's own addresses — i.e. what none of the DHCP/RA drops below concerns, and what the
    # general rules further down would accept anyway. Every packet a VM sends runs this chain:
    # the common case must not walk the special cases first.
    # A stateless port's packets are untracked from here on (before conntrack: a tap's ingress hook
    # and bridge prerouting run before br_netfilter's inet hooks), dropped ones included: one
    # expression, no lookup — where they can meet conntrack at all (``untracked``).
    rules = ["notrack"] if untracked else []
    for mac, addresses in by_mac.items():
        v4 = _merged(addresses, 4)
        v6 = _merged([*addresses, str(netaddr.EUI(mac).ipv6_link_local())], 6)
        if v4:
            rules.append(f"ether saddr {mac} ether type ip ip saddr {v4} meta l4proto != udp {mark}")
        rules.append(f"ether saddr {mac} ether type ip6 ip6 saddr {v6} meta l4proto != @udp_icmpv6 {mark}")
    rules += [
        # DHCP discover/request come from 0.0.0.0 before the port has its address.
        f"ether saddr {port.mac} ether type ip udp sport 68 udp dport 67 {mark}",
        "ether type ip udp sport 67 drop",  # a VM answering DHCP
        "ether type ip6 udp sport 547 drop",  # or DHCPv6
        "ether type ip6 icmpv6 type nd-router-advert drop",  # or sending router advertisements
    ]
    for mac, addresses in by_mac.items():
        v4 = _merged(addresses, 4)
        v6 = _merged([*addresses, str(netaddr.EUI(mac).ipv6_link_local())], 6)
        # ARP probes (RFC 5227) come from 0.0.0.0.
        arp = _merged([*addresses, "0.0.0.0"], 4)
        rules.append(f"ether saddr {mac} ether type arp arp saddr ether {mac} arp saddr ip {arp} accept")
        if v4:
            rules.append(f"ether saddr {mac} ether type ip ip saddr {v4} {mark}")
        rules.append(f"ether saddr {mac} ether type ip6 ip6 saddr {v6} {mark}")
        # Duplicate address detection and MLD reports come from :: before an address is up.
        rules.append(f"ether saddr {mac} ether type ip6 ip6 saddr :: icmpv6 type @dad_types {mark}")
    rules.append("drop")  # any other source, ethertype or MAC
    return tuple(rules)


# -- inet family: the stateful part -----------------------------------------------
# What an allowed packet does next. inet: past the sender's egress it still meets the receiver's
# ingress (one base chain). bridge (stateless ports): egress is checked at prerouting, ingress at
# forward, two hooks — an accept ends only its own, the other still decides.
PASS = {"inet": {"out": "goto ingress", "in": "accept"}, "bridge": {"out": "accept", "in": "accept"},
        "netdev": {"out": "accept", "in": "accept"}}


def _port_chain(suffix: str, port: FirewallPort, present: tuple[str, ...], family: str = "inet",
                conntrack: bool = True) -> tuple[str, ...]:
    rules, ok = [], PASS[family][suffix]
    v6 = "meta nfproto ipv6" if family == "inet" else "ether type ip6"
    if family != "inet" and suffix == "in":
        # Rules filter IP only (br_netfilter hands only IPv4/IPv6 to the inet chains): ARP and the rest pass.
        rules.append(f"ether type != ip ether type != ip6 {ok}")
    if port.stateful is not False and conntrack:
        rules += [f"ct state established,related {ok}", "ct state invalid drop"]
    # The groups' rules before the special cases below: everything after ``invalid drop`` only
    # allows, so the order does not change what passes, and the common packet — one a rule
    # allows: a new flow, or any packet of a stateless port — should not test DHCP and ND first.
    rules += [f"jump sg-{g}-{suffix}" for g in present]
    if suffix == "out":
        rules += [f"udp sport 68 udp dport 67 {ok}", f"icmpv6 type @nd_egress {ok}"]
        rules.append(f"{v6} udp sport 546 udp dport 547 {ok}")  # DHCPv6 client to server
    else:
        rules += [f"udp sport 67 udp dport 68 {ok}", f"icmpv6 type @nd_ingress {ok}"]
        # DHCPv6 replies come from the server's link-local address to the client's, which
        # conntrack does not tie to the request (that went to ff02::1:2): Neutron allows them.
        rules.append(f"{v6} udp sport 547 udp dport 546 {ok}")
    rules.append("drop")  # nothing allowed it
    return tuple(rules)


def _match(rule: FirewallRule, table: str = "inet") -> str:
    """One security group rule as an nft match in ``table``'s family (the verdict is added by the caller)."""
    v4 = rule.ethertype == "IPv4"
    family = "ip" if v4 else "ip6"
    where = "saddr" if rule.direction == "ingress" else "daddr"
    parts = [f"meta nfproto {'ipv4' if v4 else 'ipv6'}" if table == "inet" else f"ether type {family}"]
    prefix = rule.remote_ip_prefix
    if prefix and netaddr.IPNetwork(prefix).prefixlen > 0:
        parts.append(f"{family} {where} {prefix}")
    if rule.remote_set:
        parts.append(f"{family} {where} @{rule.remote_set}")
    parts += _protocol(rule)
    return " ".join(parts)


def _protocol(rule: FirewallRule) -> list[str]:
    proto, low, high = rule.protocol, rule.port_range_min, rule.port_range_max
    if not proto:  # None, or 0 ("ip"): every protocol
        return []
    parts = [f"meta l4proto {proto}"]
    if proto in PORT_PROTOCOLS and low is not None:
        parts.append(f"th dport {low}" if high in (None, low) else f"th dport {low}-{high}")
    elif proto in ICMP and low is not None:
        # Neutron's convention: port_range_min is the ICMP type, port_range_max the code.
        parts.append(f"{ICMP[proto]} type {low}")
        if high is not None:
            parts.append(f"{ICMP[proto]} code {high}")
    return parts


def read_summary(listing: str) -> dict[str, int]:
    """:func:`summary`'s shape from a table's JSON listing (``list table ...`` with OUTPUT_JSON)."""
    out: dict[str, int] = {}
    for item in json.loads(listing).get("nftables", []):
        if "chain" in item:
            chain = item["chain"]
            out.setdefault(f"chain {chain['family']} {chain['name']}", 0)
        elif "rule" in item:
            rule = item["rule"]
            key = f"chain {rule['family']} {rule['chain']}"
            out[key] = out.get(key, 0) + 1
        else:
            found = item.get("set") or item.get("map")
            if found is not None:
                interval = "interval" in found.get("flags", ())
                out[f"set {found['family']} {found['name']}"] = -1 if interval else len(found.get("elem", ()))
    return out
