"""The firewall part of a host intent → nftables text (pure).

Design (docs/design/security-groups-dataplane.md; measured in the shared
dataplane reference §5.1): this kernel has no conntrack in the nft *bridge*
family, so the work is split in two tables, both owned by name:

* ``bridge kaon-sg`` — stateless, per port: anti-spoofing (MAC, IPv4/IPv6
  source, ARP sender, with allowed address pairs), the DHCP client allowed,
  DHCP/DHCPv6 server replies and router advertisements sent *by* the VM
  dropped, and a mark saying which port the packet comes from (low 16 bits,
  at prerouting) and goes to (high 16 bits, at forward);
* ``inet kaon-sg`` — stateful, reached through br_netfilter: per-port egress
  and ingress chains keyed on that mark, ``ct state established,related``
  accepted for stateful ports, one chain per security group with its rules,
  remote groups as named interval sets, default drop.

Egress and ingress share one ``forward`` base chain (one hook invocation
per packet): what the sender's egress chain allows continues with
``goto ingress`` rather than ``accept``, so a packet between two ports of
this host still meets the receiver's ingress chain, whose accept or drop is
final.

``build`` returns the script for the tables *without* set elements, plus
the elements; the firewall replaces the tables only when that script
changed and otherwise adds and deletes set elements in place, so a remote
group's membership change never rebuilds (or re-handles) a rule.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import netaddr

from kaon.model.intent import FirewallIntent, FirewallPort, FirewallRule, NetworkIntent, SecurityGroupIntent

TABLE = "kaon-sg"  # the name of both tables (bridge and inet families)
PORT_PROTOCOLS = {6, 17, 33, 132, 136}  # tcp, udp, dccp, sctp, udplite: th dport is at the same place
ICMP = {1: "icmp", 58: "icmpv6"}
# ICMPv6 a port always needs (Neutron's ICMPV6_ALLOWED_*): MLD, router/neighbour discovery.
ND_EGRESS = "{ mld-listener-report, nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld2-listener-report }"
ND_INGRESS = ("{ mld-listener-query, mld-listener-report, mld-listener-done, nd-router-advert, "
              "nd-neighbor-solicit, nd-neighbor-advert, mld2-listener-report }")


@dataclass(frozen=True)
class Ruleset:
    script: str  # both tables, sets empty
    elements: dict[str, frozenset[str]] = field(default_factory=dict)  # set name -> elements
    guarded: frozenset[str] = frozenset()  # port ids this ruleset filters


Numbered = list[tuple[int, str, FirewallPort]]  # (mark, port id, port)


def secured(fw: FirewallIntent | None) -> set[str]:
    """Ports that must not pass traffic unless their rules are in the kernel."""
    return {pid for pid, p in fw.ports.items() if p.port_security} if fw is not None else set()


def build(fw: FirewallIntent | None, networks: Mapping[str, NetworkIntent]) -> Ruleset:
    ports = sorted((pid, p) for pid, p in fw.ports.items() if p.port_security) if fw is not None else []
    if not ports:
        return Ruleset(replace_script("", ""))
    if len(ports) > 0xFFFF:
        raise ValueError(f"{len(ports)} filtered ports on one host: the port mark has 16 bits")
    assert fw is not None
    numbered = [(i, pid, p) for i, (pid, p) in enumerate(ports, start=1)]
    groups = fw.groups
    used = sorted({g for _, _, p in numbered for g in p.security_groups or () if g in groups})
    bridge = _bridge_table(numbered)
    inet = _inet_table(numbered, {g: groups[g] for g in used}, fw.sets, networks)
    elements = {name: frozenset(members) for name, members in fw.sets.items()}
    return Ruleset(replace_script(bridge, inet), elements, frozenset(pid for _, pid, _ in numbered))


def replace_script(bridge: str, inet: str) -> str:
    """Both tables made exactly this (empty text: removed), in one batch."""
    out = []
    for family, body in (("bridge", bridge), ("inet", inet)):
        # Declaring first makes the delete valid when the table does not exist.
        out.append(f"table {family} {TABLE} {{}}\ndelete table {family} {TABLE}\n")
        if body:
            out.append(f"table {family} {TABLE} {{\n{body}}}\n")
    return "".join(out)


def element_script(old: Mapping[str, frozenset[str]], new: Mapping[str, frozenset[str]]) -> str:
    """Set element changes in place: deletes before adds (an interval set refuses overlaps)."""
    dels, adds = [], []
    for name in sorted(new):
        gone, came = old.get(name, frozenset()) - new[name], new[name] - old.get(name, frozenset())
        if gone:
            dels.append(f"delete element inet {TABLE} {name} {{ {', '.join(sorted(gone))} }}\n")
        if came:
            adds.append(f"add element inet {TABLE} {name} {{ {', '.join(sorted(came))} }}\n")
    return "".join(dels + adds)


def full_script(rs: Ruleset) -> str:
    return rs.script + element_script({}, rs.elements)


# -- bridge family: anti-spoofing and marks ---------------------------------------
def _bridge_table(numbered: Numbered) -> str:
    from_map = ", ".join(f'"{p.device}" : jump from-{p.device}' for _, _, p in numbered)
    to_map = ", ".join(f'"{p.device}" : jump to-{p.device}' for _, _, p in numbered)
    out = [
        "  chain prerouting {\n    type filter hook prerouting priority filter; policy accept;\n"
        f"    iifname vmap {{ {from_map} }}\n  }}\n",
        "  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
        f"    oifname vmap {{ {to_map} }}\n  }}\n",
    ]
    for number, _, port in numbered:
        out.append(_from_port(number, port))
        out.append(f"  chain to-{port.device} {{\n    meta mark set meta mark or {number << 16:#010x}\n  }}\n")
    return "".join(out)


def _addresses(port: FirewallPort) -> dict[str, list[str]]:
    """MAC → the source addresses it may use: the port's own, then its address pairs'."""
    by_mac: dict[str, list[str]] = {port.mac: list(port.ips or ())}
    for pair in port.allowed_address_pairs or ():
        by_mac.setdefault(pair.mac_address, []).append(pair.ip_address)
    return by_mac


def _merged(addresses: list[str], version: int) -> str:
    nets = netaddr.cidr_merge([netaddr.IPNetwork(a) for a in addresses if netaddr.IPNetwork(a).version == version])
    return ", ".join(str(n.ip) if n.size == 1 else str(n) for n in nets)


def _from_port(number: int, port: FirewallPort) -> str:
    mark = f"meta mark set {number:#010x} accept"
    by_mac = _addresses(port)
    # Hot path first: IPv4 that is not UDP, or IPv6 that is neither UDP nor ICMPv6, from the
    # port's own addresses — i.e. what none of the DHCP/RA drops below concerns, and what the
    # general rules further down would accept anyway. Every packet a VM sends runs this chain:
    # the common case must not walk the special cases first.
    rules = []
    for mac, addresses in by_mac.items():
        v4 = _merged(addresses, 4)
        v6 = _merged([*addresses, str(netaddr.EUI(mac).ipv6_link_local())], 6)
        if v4:
            rules.append(f"ether saddr {mac} ether type ip ip saddr {{ {v4} }} meta l4proto != udp {mark}")
        rules.append(f"ether saddr {mac} ether type ip6 ip6 saddr {{ {v6} }} meta l4proto != {{ udp, icmpv6 }} {mark}")
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
        rules.append(f"ether saddr {mac} ether type arp arp saddr ether {mac} arp saddr ip {{ {arp} }} accept")
        if v4:
            rules.append(f"ether saddr {mac} ether type ip ip saddr {{ {v4} }} {mark}")
        rules.append(f"ether saddr {mac} ether type ip6 ip6 saddr {{ {v6} }} {mark}")
        # Duplicate address detection and MLD reports come from :: before an address is up.
        rules.append(f"ether saddr {mac} ether type ip6 ip6 saddr :: icmpv6 type "
                     f"{{ nd-neighbor-solicit, mld2-listener-report, mld-listener-report }} {mark}")
    rules.append("drop")  # any other source, ethertype or MAC
    body = "".join(f"    {r}\n" for r in rules)
    return f"  chain from-{port.device} {{\n{body}  }}\n"


# -- inet family: the stateful part -----------------------------------------------
def _inet_table(numbered: Numbered, groups: Mapping[str, SecurityGroupIntent],
                sets: Mapping[str, tuple[str, ...]], networks: Mapping[str, NetworkIntent]) -> str:
    out = [f"  set {name} {{\n    type {'ipv4_addr' if name.startswith('sg4-') else 'ipv6_addr'}; flags interval;\n  }}\n"
           for name in sorted(sets)]
    out.append(_zones(networks))
    egress = ", ".join(f"{n:#010x} : goto out-{p.device}" for n, _, p in numbered)
    ingress = ", ".join(f"{n << 16:#010x} : goto in-{p.device}" for n, _, p in numbered)
    # One base chain (one hook invocation per packet): the sender's egress checks first; what
    # they allow continues with ``goto ingress`` (the receiver's checks), whose accept or drop
    # ends the hook. A packet from no filtered port goes to ``ingress`` directly.
    out.append("  chain forward {\n    type filter hook forward priority 0; policy accept;\n"
               f"    meta mark and 0x0000ffff vmap {{ {egress} }}\n    goto ingress\n  }}\n")
    out.append(f"  chain ingress {{\n    meta mark and 0xffff0000 vmap {{ {ingress} }}\n    accept\n  }}\n")
    for _, _, port in numbered:
        out.append(_port_chain("out", port, groups))
        out.append(_port_chain("in", port, groups))
    for gid, group in groups.items():
        for direction, suffix in (("egress", "out"), ("ingress", "in")):
            verdict = PASS["out" if direction == "egress" else "in"]
            rules = [f"    {_match(r)} {verdict}\n" for r in group.rules if r.direction == direction]
            out.append(f"  chain sg-{gid}-{suffix} {{\n{''.join(rules)}  }}\n")
    return "".join(out)


# What an allowed packet does next: past the sender's egress it still meets the receiver's ingress.
PASS = {"out": "goto ingress", "in": "accept"}


def zone(network_id: str) -> int:
    """A conntrack zone per network, stable across restarts and hosts (1..65535).

    Why: all bridges of a host share its namespace's conntrack table, and two
    tenants may use the same addresses. A collision of two networks' hashes
    only means they share a zone, which is the situation without zones."""
    return zlib.crc32(network_id.encode()) % 0xFFFF + 1


def _zones(networks: Mapping[str, NetworkIntent]) -> str:
    # One map lookup per packet, however many networks the host has (not one rule per bridge).
    zones = ", ".join(f'"{net.bridge}" : {zone(nid)}' for nid, net in sorted(networks.items()) if net.bridge)
    rule = f"    ct zone set iifname map {{ {zones} }}\n" if zones else ""
    return f"  chain zones {{\n    type filter hook prerouting priority raw; policy accept;\n{rule}  }}\n"


def _port_chain(suffix: str, port: FirewallPort, groups: Mapping[str, SecurityGroupIntent]) -> str:
    rules, ok = [], PASS[suffix]
    if port.stateful is not False:
        rules += [f"ct state established,related {ok}", "ct state invalid drop"]
    if suffix == "out":
        rules += [f"udp sport 68 udp dport 67 {ok}", f"icmpv6 type {ND_EGRESS} {ok}"]
        rules.append(f"meta nfproto ipv6 udp sport 546 udp dport 547 {ok}")  # DHCPv6 client to server
    else:
        rules += [f"udp sport 67 udp dport 68 {ok}", f"icmpv6 type {ND_INGRESS} {ok}"]
        # DHCPv6 replies come from the server's link-local address to the client's, which
        # conntrack does not tie to the request (that went to ff02::1:2): Neutron allows them.
        rules.append(f"meta nfproto ipv6 udp sport 547 udp dport 546 {ok}")
    rules += [f"jump sg-{g}-{suffix}" for g in port.security_groups or () if g in groups]
    rules.append("drop")  # nothing allowed it
    body = "".join(f"    {r}\n" for r in rules)
    return f"  chain {suffix}-{port.device} {{\n{body}  }}\n"


def _match(rule: FirewallRule) -> str:
    """One security group rule as an nft match (the verdict is added by the caller)."""
    v4 = rule.ethertype == "IPv4"
    family = "ip" if v4 else "ip6"
    where = "saddr" if rule.direction == "ingress" else "daddr"
    parts = [f"meta nfproto {'ipv4' if v4 else 'ipv6'}"]
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
