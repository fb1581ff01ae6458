"""The ``openvswitch`` mechanism driver: ports plug into the Open vSwitch
agent's integration bridge (``br-int``).

It carries local segments, flat and vlan segments whose physical network is
in the agent's ``bridge_mappings``, and the tunnel types (vxlan, gre,
geneve) the agent lists in ``tunnel_types``. ``vif_details`` follow the
agent's own report (``integration_bridge``, ``datapath_type``,
``ovs_hybrid_plug``), with Neutron's defaults when it reports none.
"""

from __future__ import annotations

from typing import Any

from kaon.ml2.mech.base import (
    LOCAL,
    PHYSNET_TYPES,
    VNIC_NORMAL,
    AgentView,
    mapping,
    no_physnet,
    no_tunnel,
    tunnel_types,
)
from kaon.ml2.segments import Segment

AGENT_TYPE = "Open vSwitch agent"
TUNNEL_TYPES = ("vxlan", "gre", "geneve")


class OpenVSwitchDriver:
    name = "openvswitch"
    agent_type: str | None = AGENT_TYPE
    vif_type = "ovs"
    supported_vnic_types = frozenset({VNIC_NORMAL})

    def check_segment(self, segment: Segment, agent: AgentView) -> str | None:
        kind = segment.network_type
        if kind == LOCAL:
            return None
        if kind in PHYSNET_TYPES:
            bridges = mapping(agent, "bridge_mappings")
            if segment.physical_network not in bridges:
                return no_physnet(segment.physical_network, bridge_mappings=bridges)
            return None
        if kind in TUNNEL_TYPES:
            return None if kind in tunnel_types(agent) else no_tunnel(kind, agent)
        return f"does not support {kind}"

    def vif_details(self, agent: AgentView, network_id: str) -> dict[str, Any]:
        conf = agent.configurations
        return {
            "port_filter": True,
            "ovs_hybrid_plug": bool(conf.get("ovs_hybrid_plug", False)),
            "datapath_type": conf.get("datapath_type") or "system",
            "bridge_name": conf.get("integration_bridge") or "br-int",
            "connectivity": "l2",
        }
