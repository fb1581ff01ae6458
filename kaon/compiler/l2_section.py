"""The L2 section of a host's intent: its bound ports and the networks they are on.

A host gets its own bound ports and the networks they are on, each network
with the segment its ports were bound to and, for tunnelled types, the peers that
l2population needs: every other host with a port on the same network, by
that host's VTEP, with the MACs and IPs of its ports there. The layout is
kaon.model.intent (``NetworkIntent``, ``PortIntent``).

A peer's addresses include its allowed address pairs, not only its fixed IPs:
a Linux bridge host's VXLAN device answers ARP and neighbour solicitations
itself (proxy) and drops those it has no entry for, so a VIP (keepalived's
address, moved between ports by updating their pairs) must have an entry to
be reachable from another host. A pair with its own MAC is a peer entry of
its own (an FDB entry for that MAC, the pair's address behind it). Neutron's
l2population sends fixed IPs only, and its Linux bridge agent leaves its ARP
responder off by default for that reason ("not fully compatible with
allowed-address-pairs"); kaon's is always on, so it must know the pairs.

A pair's address gets an entry only when one port claims it, with a MAC no
other port uses: a pair that is a CIDR (no single address to answer for), an
address listed on two ports (keepalived's VIP on both routers), or a MAC two
ports' pairs name (VRRP's virtual MAC) has none — an entry would pin it to a
port, or a VTEP, that may not hold it now. A fixed IP is its port's alone
(IPAM makes it unique); a pair naming another port's fixed IP does not take
it over. A tunnelled network with such a pair is marked ``flood_arp``: its
hosts' VXLAN devices stop answering ARP themselves (they would drop the
requests for those addresses, and every gratuitous ARP a new VIP holder
sends) and send it to the peers, as Neutron's Linux bridge agent does with
its ARP responder off.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import netaddr

from kaon.compiler.snapshot import BoundPort, Snapshot
from kaon.model import names
from kaon.model.intent import HostIntent, NetworkIntent, PeerPort, PortIntent

# Tunnelled segments whose hosts need each other's VTEPs (vxlan on both agents; gre/geneve on OVS).
TUNNEL_TYPES = ("vxlan", "gre", "geneve")


class L2Section:
    name = "l2"

    def __init__(self) -> None:
        # One index per snapshot: the projection runs once per host, and a
        # network's peers are the same objects in every host's intent.
        self._indexed: tuple[Snapshot, dict[str, list[BoundPort]], dict[str, Members]] | None = None

    def hosts(self, snap: Snapshot) -> set[str]:
        return {p.host for p in snap.ports}

    def project(self, snap: Snapshot, host: str, intent: HostIntent) -> HostIntent:
        by_host, members = self._index(snap)
        networks: dict[str, NetworkIntent] = {}
        ports: dict[str, PortIntent] = {}
        for port in sorted(by_host.get(host, ()), key=lambda p: p.id):
            segment = snap.segments.get(port.segment_id or "")
            if segment is None:
                continue  # the segment went away under the binding; the next bind fixes the port
            ports[port.id] = PortIntent(port.network_id, names.tap(port.id), port.mac, port.ips,
                                        port.admin_state_up, port.device_owner)
            if port.network_id not in networks:
                by_vtep, unanswered = members[port.network_id]
                tunnelled = segment.network_type in TUNNEL_TYPES
                networks[port.network_id] = NetworkIntent(
                    names.bridge(port.network_id), segment.network_type, segment.segmentation_id,
                    segment.physical_network, snap.network_mtu.get(port.network_id, 1500),
                    _peers(snap.vteps.get(host), by_vtep) if tunnelled else {}, tunnelled and unanswered)
        if not ports:
            return intent
        return dataclasses.replace(intent, networks=networks, ports=ports)

    def _index(self, snap: Snapshot) -> tuple[dict[str, list[BoundPort]], dict[str, Members]]:
        if self._indexed is None or self._indexed[0] is not snap:
            by_host: dict[str, list[BoundPort]] = defaultdict(list)
            by_network: dict[str, list[BoundPort]] = defaultdict(list)
            for port in snap.ports:
                by_host[port.host].append(port)
                by_network[port.network_id].append(port)
            self._indexed = (snap, by_host, {net: _by_vtep(members, snap) for net, members in by_network.items()})
        return self._indexed[1], self._indexed[2]


Peers = dict[str, tuple[PeerPort, ...]]  # VTEP -> the network's ports behind it
Members = tuple[Peers, bool]  # a network's ports by VTEP, and whether some pair on it has no entry


def _by_vtep(members: list[BoundPort], snap: Snapshot) -> Members:
    """Every port of a network behind a known VTEP, grouped by VTEP, in port id order.

    A port is one PeerPort with its MAC (its fixed IPs, then the pairs that use
    its MAC), then one per other MAC its pairs name, in MAC order.
    """
    pairs = {p.id: _host_pairs(p, snap) for p in members}
    owner = _owners(members, pairs)
    unanswered = any(owner.get(ip) != (port.id, mac) for port in members for ip, mac in pairs[port.id]) or any(
        netaddr.IPNetwork(cidr).size > 1 for port in members for cidr, _ in _pairs(port, snap))
    out: dict[str, list[PeerPort]] = {}
    for port in sorted(members, key=lambda p: p.id):
        vtep = snap.vteps.get(port.host)
        if vtep is None:
            continue
        by_mac: dict[str, list[str]] = {port.mac: list(port.ips)}
        for ip, mac in pairs[port.id]:
            if owner.get(ip) == (port.id, mac) and ip not in by_mac.setdefault(mac, []):
                by_mac[mac].append(ip)
        out.setdefault(vtep, []).append(PeerPort(port.mac, tuple(by_mac.pop(port.mac))))
        out[vtep].extend(PeerPort(mac, tuple(ips)) for mac, ips in sorted(by_mac.items()) if ips)
    return {vtep: tuple(ports) for vtep, ports in out.items()}, unanswered


def _pairs(port: BoundPort, snap: Snapshot) -> tuple[tuple[str, str | None], ...]:
    security = snap.firewall.ports.get(port.id)
    return security.pairs if security else ()


def _host_pairs(port: BoundPort, snap: Snapshot) -> list[tuple[str, str]]:
    """``(address, MAC)`` of a port's allowed address pairs that name one address (a /32 or /128 too)."""
    out = []
    for cidr, mac in _pairs(port, snap):
        net = netaddr.IPNetwork(cidr)
        if net.size == 1:
            out.append((str(net.ip), mac or port.mac))  # the API stored the MAC in colon form, lower case
    return out


def _owners(members: list[BoundPort], pairs: dict[str, list[tuple[str, str]]]) -> dict[str, tuple[str, str]]:
    """Address -> the one (port, MAC) that answers for it on the network (see the module docstring).

    A pair's address has an owner when exactly one port claims it, and the MAC
    it names is that port's alone: a MAC two ports' pairs name (VRRP's) moves
    between hosts, so no host may pin it to a VTEP.
    """
    fixed = {ip: (port.id, port.mac) for port in members for ip in port.ips}
    holders: dict[str, set[str]] = defaultdict(set)
    claims: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for port in members:
        holders[port.mac].add(port.id)
        for ip, mac in pairs[port.id]:
            holders[mac].add(port.id)
            if ip not in fixed:
                claims[ip].add((port.id, mac))
    answered = {ip: next(iter(c)) for ip, c in claims.items() if len(c) == 1 and len(holders[next(iter(c))[1]]) == 1}
    return {**answered, **fixed}


def _peers(own_vtep: str | None, by_vtep: Peers) -> Peers:
    """The peers a host needs: every VTEP but its own (its own ports, and a host sharing
    its VTEP, are reached without the tunnel)."""
    return {vtep: ports for vtep, ports in by_vtep.items() if vtep != own_vtep}
