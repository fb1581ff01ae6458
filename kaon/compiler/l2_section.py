"""The L2 section of a host's intent: its bound ports and the networks they are on.

A host gets its own bound ports and the networks they are on, each network
with the segment its ports were bound to and, for tunnelled types, the peers that
l2population needs: every other host with a port on the same network, by
that host's VTEP, with the MACs and IPs of its ports there. The layout is
kaon.model.intent (``NetworkIntent``, ``PortIntent``).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

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
        self._indexed: tuple[Snapshot, dict[str, list[BoundPort]], dict[str, Peers]] | None = None

    def hosts(self, snap: Snapshot) -> set[str]:
        return {p.host for p in snap.ports}

    def project(self, snap: Snapshot, host: str, intent: HostIntent) -> HostIntent:
        by_host, peers = self._index(snap)
        networks: dict[str, NetworkIntent] = {}
        ports: dict[str, PortIntent] = {}
        for port in sorted(by_host.get(host, ()), key=lambda p: p.id):
            segment = snap.segments.get(port.segment_id or "")
            if segment is None:
                continue  # the segment went away under the binding; the next bind fixes the port
            ports[port.id] = PortIntent(port.network_id, names.tap(port.id), port.mac, port.ips,
                                        port.admin_state_up, port.device_owner)
            if port.network_id not in networks:
                networks[port.network_id] = NetworkIntent(
                    names.bridge(port.network_id), segment.network_type, segment.segmentation_id,
                    segment.physical_network, snap.network_mtu.get(port.network_id, 1500),
                    _peers(snap.vteps.get(host), segment.network_type, peers[port.network_id]))
        if not ports:
            return intent
        return dataclasses.replace(intent, networks=networks, ports=ports)

    def _index(self, snap: Snapshot) -> tuple[dict[str, list[BoundPort]], dict[str, Peers]]:
        if self._indexed is None or self._indexed[0] is not snap:
            by_host: dict[str, list[BoundPort]] = defaultdict(list)
            by_network: dict[str, list[BoundPort]] = defaultdict(list)
            for port in snap.ports:
                by_host[port.host].append(port)
                by_network[port.network_id].append(port)
            self._indexed = (snap, by_host, {net: _by_vtep(members, snap) for net, members in by_network.items()})
        return self._indexed[1], self._indexed[2]


Peers = dict[str, tuple[PeerPort, ...]]  # VTEP -> the network's ports behind it


def _by_vtep(members: list[BoundPort], snap: Snapshot) -> Peers:
    """Every port of a network behind a known VTEP, grouped by VTEP, in port id order."""
    out: dict[str, list[PeerPort]] = {}
    for port in sorted(members, key=lambda p: p.id):
        vtep = snap.vteps.get(port.host)
        if vtep is not None:
            out.setdefault(vtep, []).append(PeerPort(port.mac, port.ips))
    return {vtep: tuple(ports) for vtep, ports in out.items()}


def _peers(own_vtep: str | None, network_type: str, by_vtep: Peers) -> Peers:
    """The peers a host needs: every VTEP but its own (its own ports, and a host sharing
    its VTEP, are reached without the tunnel)."""
    if network_type not in TUNNEL_TYPES:
        return {}
    return {vtep: ports for vtep, ports in by_vtep.items() if vtep != own_vtep}
