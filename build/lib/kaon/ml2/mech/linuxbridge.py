"""The ``linuxbridge`` mechanism driver: ports plug into ``brq<net>`` bridges
kept by the Linux bridge agent.

It carries local and flat segments, vlan segments (when the kernel can),
and vxlan when the agent lists it in ``tunnel_types``. A flat or vlan segment
needs its physical network in the agent's ``interface_mappings`` or
``bridge_mappings``. An agent may report ``kernel_features: {"vlan": false}``
(optionally with ``"vlan_detail": "..."``) when it cannot make VLAN
subinterfaces; vlan segments are then refused with that reason instead of
binding a port the agent cannot plug.
"""

from __future__ import annotations

from typing import Any

from kaon.ml2.mech.base import (
    FLAT,
    LOCAL,
    PHYSNET_TYPES,
    VLAN,
    VNIC_NORMAL,
    AgentView,
    mapping,
    no_physnet,
    no_tunnel,
    tunnel_types,
)
from kaon.ml2.segments import Segment

AGENT_TYPE = "Linux bridge agent"
VXLAN = "vxlan"


def bridge_name(network_id: str) -> str:
    return f"brq{network_id[:11]}"


class LinuxBridgeDriver:
    name = "linuxbridge"
    agent_type: str | None = AGENT_TYPE
    vif_type = "bridge"
    supported_vnic_types = frozenset({VNIC_NORMAL})

    def check_segment(self, segment: Segment, agent: AgentView) -> str | None:
        kind = segment.network_type
        if kind == LOCAL:
            return None
        if kind in PHYSNET_TYPES:
            interfaces, bridges = mapping(agent, "interface_mappings"), mapping(agent, "bridge_mappings")
            if segment.physical_network not in interfaces and segment.physical_network not in bridges:
                return no_physnet(segment.physical_network, interface_mappings=interfaces,
                                  bridge_mappings=bridges)
            if kind == VLAN:
                return _vlan_problem(agent)
            return None
        if kind == VXLAN:
            return None if VXLAN in tunnel_types(agent) else no_tunnel(VXLAN, agent)
        return f"does not support {kind} (it carries {LOCAL}, {FLAT}, {VLAN} and {VXLAN})"

    def vif_details(self, agent: AgentView, network_id: str) -> dict[str, Any]:
        return {"port_filter": True, "connectivity": "l2", "bridge_name": bridge_name(network_id)}


def _vlan_problem(agent: AgentView) -> str | None:
    features = agent.configurations.get("kernel_features")
    if not isinstance(features, dict) or features.get("vlan", True) is not False:
        return None
    detail = features.get("vlan_detail")
    suffix = f": {detail}" if detail else " (kernel_features vlan: false; is the 8021q module available?)"
    return f"cannot carry vlan segments, its kernel has no VLAN support{suffix}"
