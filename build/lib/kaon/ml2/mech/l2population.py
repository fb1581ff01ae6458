"""The ``l2population`` mechanism driver: it binds nothing.

In Neutron it fans forwarding entries out to the L2 agents; in kaon the
compiler puts peer VTEPs and MACs in each host's intent, so this driver only
exists so that an existing ``mechanism_drivers = openvswitch,l2population``
keeps working.
"""

from __future__ import annotations

from typing import Any

from kaon.ml2.mech.base import AgentView
from kaon.ml2.segments import Segment


class L2PopulationDriver:
    name = "l2population"
    agent_type: str | None = None
    vif_type = ""
    supported_vnic_types: frozenset[str] = frozenset()

    def check_segment(self, segment: Segment, agent: AgentView) -> str | None:
        return "binds no ports"

    def vif_details(self, agent: AgentView, network_id: str) -> dict[str, Any]:
        return {}
