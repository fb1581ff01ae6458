"""Snapshot → one intent per host (pure).

A host gets its own bound ports and the networks they are on, each network
with the segment its ports were bound to and, for VXLAN, the peers that
l2population needs: every other host with a port on the same network, by
that host's VTEP, with the MACs and IPs of its ports there. The layout is
in docs/design/agents.md ("Intent").
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import orjson

from kaon.compiler.snapshot import BoundPort, Snapshot

INTENT_VERSION = 1
TUNNEL_TYPES = ("vxlan",)


def bridge_name(network_id: str) -> str:
    return f"brq{network_id[:11]}"


def tap_name(port_id: str) -> str:
    return f"tap{port_id[:11]}"


def project(snap: Snapshot) -> dict[str, dict[str, Any]]:
    """Every host's intent (without generation); hosts in ``known_hosts`` get one even when empty."""
    by_host: dict[str, list[BoundPort]] = defaultdict(list)
    by_network: dict[str, list[BoundPort]] = defaultdict(list)
    for port in snap.ports:
        by_host[port.host].append(port)
        by_network[port.network_id].append(port)
    hosts = set(by_host) | set(snap.known_hosts)
    return {host: _host_intent(host, by_host.get(host, []), by_network, snap) for host in sorted(hosts)}


def _host_intent(host: str, mine: list[BoundPort], by_network: dict[str, list[BoundPort]],
                 snap: Snapshot) -> dict[str, Any]:
    networks: dict[str, Any] = {}
    ports: dict[str, Any] = {}
    for port in sorted(mine, key=lambda p: p.id):
        segment = snap.segments.get(port.segment_id or "")
        if segment is None:
            continue  # the segment went away under the binding; the next bind fixes the port
        ports[port.id] = {"network_id": port.network_id, "device": tap_name(port.id), "mac": port.mac,
                          "ips": list(port.ips), "admin_state_up": port.admin_state_up,
                          "device_owner": port.device_owner}
        if port.network_id not in networks:
            networks[port.network_id] = {
                "bridge": bridge_name(port.network_id), "network_type": segment.network_type,
                "segmentation_id": segment.segmentation_id, "physical_network": segment.physical_network,
                "mtu": snap.network_mtu.get(port.network_id, 1500),
                "peers": _peers(host, segment.network_type, by_network[port.network_id], snap),
            }
    return {"version": INTENT_VERSION, "host": host, "networks": networks, "ports": ports}


def _peers(host: str, network_type: str, members: list[BoundPort], snap: Snapshot) -> dict[str, list[Any]]:
    if network_type not in TUNNEL_TYPES:
        return {}
    peers: dict[str, list[Any]] = {}
    own_vtep = snap.vteps.get(host)
    for port in sorted(members, key=lambda p: p.id):
        vtep = snap.vteps.get(port.host)
        if port.host == host or vtep is None or vtep == own_vtep:
            continue
        peers.setdefault(vtep, []).append({"mac": port.mac, "ips": list(port.ips)})
    return peers


def digest(intent: dict[str, Any]) -> str:
    """A stable hash of an intent's content (keys sorted)."""
    return hashlib.sha256(orjson.dumps(intent, option=orjson.OPT_SORT_KEYS)).hexdigest()
