"""Binding decisions (kaon.ml2.binding.decide): which driver binds, with which
vif_type/vif_details, and for every refusal the sentence an operator reads."""

from __future__ import annotations

from typing import Any

import pytest

from kaon.config import ConfigError, load_config
from kaon.ml2.binding import FAILED, PortFacts, decide
from kaon.ml2.mech.base import AgentView, mapping
from kaon.ml2.mech.l2population import L2PopulationDriver
from kaon.ml2.mech.linuxbridge import LinuxBridgeDriver
from kaon.ml2.mech.openvswitch import OpenVSwitchDriver
from kaon.ml2.mech.registry import build_mechanism_drivers
from kaon.ml2.segments import Segment

NET = "3d2a325a-b057-45ec-ade0-97849ce0a1f0"
PORT = PortFacts("d5d48599-1e43-43fa-9a59-7bc2679503b4", NET, "compute")
LB, OVS, L2POP = LinuxBridgeDriver(), OpenVSwitchDriver(), L2PopulationDriver()


def seg(kind: str, physnet: str | None = None, seg_id: int | None = None, index: int = 0) -> Segment:
    return Segment(f"seg-{kind}-{index}", NET, kind, physnet, seg_id, index)


VXLAN = seg("vxlan", None, 336)
FLAT = seg("flat", "provider")
VLAN = seg("vlan", "provider", 100)


def agent(kind: str = "lb", host: str = "compute", age: float = 5, up: bool = True, **conf: Any) -> AgentView:
    agent_type = {"lb": "Linux bridge agent", "ovs": "Open vSwitch agent"}[kind]
    return AgentView(id=f"{kind}-{host}", agent_type=agent_type, host=host, admin_state_up=up,
                     heartbeat_age=age, agent_down_time=75, configurations=conf)


# -- success ---------------------------------------------------------------
def test_linuxbridge_binds_vxlan_with_bridge_vif() -> None:
    d = decide(PORT, [VXLAN], [agent("lb", tunnel_types=["vxlan"])], [LB, OVS])
    assert d.bound and d.reason == ""
    assert d.vif_type == "bridge" and d.driver == "linuxbridge" and d.segment == VXLAN
    assert d.vif_details == {"port_filter": True, "connectivity": "l2", "bridge_name": "brq3d2a325a-b0"}
    assert d.agent_id == "lb-compute"


@pytest.mark.parametrize("conf", [{"interface_mappings": {"provider": "eth1"}},
                                  {"bridge_mappings": {"provider": "br-eth1"}}])
def test_linuxbridge_flat_and_vlan_through_either_mapping(conf: dict[str, Any]) -> None:
    for segment in (FLAT, VLAN):
        d = decide(PORT, [segment], [agent("lb", **conf)], [LB])
        assert d.bound and d.vif_type == "bridge", d.reason


def test_local_needs_no_mapping() -> None:
    assert decide(PORT, [seg("local")], [agent("lb")], [LB]).bound
    assert decide(PORT, [seg("local")], [agent("ovs")], [OVS]).bound


def test_openvswitch_binds_with_ovs_vif_from_the_agents_report() -> None:
    d = decide(PORT, [FLAT], [agent("ovs", bridge_mappings={"provider": "br-ex"})], [OVS])
    assert d.bound and d.vif_type == "ovs" and d.driver == "openvswitch"
    assert d.vif_details == {"port_filter": True, "ovs_hybrid_plug": False, "datapath_type": "system",
                             "bridge_name": "br-int", "connectivity": "l2"}
    d = decide(PORT, [VXLAN], [agent("ovs", tunnel_types=["vxlan"], integration_bridge="br-kaon",
                                     datapath_type="netdev")], [OVS])
    assert d.vif_details["bridge_name"] == "br-kaon" and d.vif_details["datapath_type"] == "netdev"


@pytest.mark.parametrize("kind", ["vxlan", "gre", "geneve"])
def test_openvswitch_tunnels_follow_tunnel_types(kind: str) -> None:
    segment = seg(kind, None, 7)
    assert decide(PORT, [segment], [agent("ovs", tunnel_types=[kind])], [OVS]).bound
    d = decide(PORT, [segment], [agent("ovs", tunnel_types=[])], [OVS])
    assert d.reason == f"Open vSwitch agent on host compute does not support {kind} (tunnel_types: none)"


def test_configured_order_decides_between_two_able_drivers() -> None:
    agents = [agent("lb", tunnel_types=["vxlan"]), agent("ovs", tunnel_types=["vxlan"])]
    assert decide(PORT, [VXLAN], agents, [OVS, LB]).driver == "openvswitch"
    assert decide(PORT, [VXLAN], agents, [LB, OVS]).driver == "linuxbridge"


def test_a_later_driver_binds_when_the_first_cannot() -> None:
    agents = [agent("lb"), agent("ovs", tunnel_types=["vxlan"])]
    d = decide(PORT, [VXLAN], agents, [LB, L2POP, OVS])
    assert d.bound and d.driver == "openvswitch"


def test_first_segment_the_agent_can_carry_wins() -> None:
    segments = [seg("vxlan", None, 9, 0), seg("flat", "provider", None, 1)]
    d = decide(PORT, segments, [agent("ovs", bridge_mappings={"provider": "br-ex"})], [OVS])
    assert d.bound and d.segment == segments[1]


def test_an_agent_just_within_agent_down_time_is_alive() -> None:
    assert decide(PORT, [seg("local")], [agent("lb", age=75)], [LB]).bound


# -- every reason ----------------------------------------------------------
def test_no_agent_on_the_host() -> None:
    d = decide(PORT, [VXLAN], [], [LB, OVS])
    assert d.vif_type == FAILED and not d.bound and d.vif_details == {}
    assert d.reason == "host compute has no live Linux bridge agent or Open vSwitch agent"


def test_no_agent_names_hosts_that_have_one() -> None:
    d = decide(PORT, [VXLAN], [], [OVS], l2_hosts=["compute.example.com", "controller", "compute"])
    assert d.reason == ("host compute has no live Open vSwitch agent "
                        "(hosts that have one: compute.example.com, controller)")


def test_an_agent_of_an_unconfigured_type_does_not_count() -> None:
    d = decide(PORT, [VXLAN], [agent("lb", tunnel_types=["vxlan"])], [OVS])
    assert d.reason == "host compute has no live Open vSwitch agent"


def test_dead_agent() -> None:
    d = decide(PORT, [VXLAN], [agent("lb", age=120, tunnel_types=["vxlan"])], [LB, OVS])
    assert d.reason == "Linux bridge agent on host compute was last seen 120 s ago (agent_down_time 75 s)"


def test_disabled_agent() -> None:
    d = decide(PORT, [VXLAN], [agent("ovs", up=False, tunnel_types=["vxlan"])], [OVS])
    assert d.reason == "Open vSwitch agent on host compute is disabled (admin_state_up is false)"


def test_no_mapping_for_the_physical_network() -> None:
    d = decide(PORT, [FLAT], [agent("ovs", bridge_mappings={"physnet1": "br-ex"})], [OVS])
    assert d.reason == ("Open vSwitch agent on host compute has no mapping for physical network provider "
                        "(bridge_mappings: physnet1:br-ex)")
    d = decide(PORT, [VLAN], [agent("lb")], [LB])
    assert d.reason == ("Linux bridge agent on host compute has no mapping for physical network provider "
                        "(interface_mappings: none; bridge_mappings: none)")


def test_vxlan_not_in_tunnel_types() -> None:
    # The seed's "Failed to bind port ... using segments [{'network_type': 'vxlan' ...}]".
    d = decide(PORT, [VXLAN], [agent("lb")], [LB])
    assert d.reason == "Linux bridge agent on host compute does not support vxlan (tunnel_types: none)"


def test_linuxbridge_carries_no_gre_or_geneve() -> None:
    d = decide(PORT, [seg("gre", None, 5)], [agent("lb", tunnel_types=["vxlan", "gre"])], [LB])
    assert d.reason == ("Linux bridge agent on host compute does not support gre "
                        "(it carries local, flat, vlan and vxlan)")


def test_linuxbridge_kernel_without_vlan() -> None:
    conf = {"interface_mappings": {"provider": "eth1"}, "kernel_features": {"vlan": False}}
    d = decide(PORT, [VLAN], [agent("lb", **conf)], [LB])
    assert d.reason.startswith("Linux bridge agent on host compute cannot carry vlan segments, "
                               "its kernel has no VLAN support (kernel_features vlan: false")
    assert decide(PORT, [FLAT], [agent("lb", **conf)], [LB]).bound  # flat does not need it
    conf["kernel_features"] = {"vlan": False, "vlan_detail": "module 8021q not found"}
    d = decide(PORT, [VLAN], [agent("lb", **conf)], [LB])
    assert d.reason.endswith("its kernel has no VLAN support: module 8021q not found")


def test_every_segment_refused_lists_each() -> None:
    segments = [seg("vxlan", None, 9, 0), seg("flat", "provider", None, 1)]
    d = decide(PORT, segments, [agent("ovs")], [OVS])
    assert d.reason == ("Open vSwitch agent on host compute can carry none of the network's segments "
                        "(vxlan 9: does not support vxlan (tunnel_types: none); flat provider: has no mapping "
                        "for physical network provider (bridge_mappings: none))")


def test_reasons_of_several_agents_are_joined() -> None:
    agents = [agent("lb", age=300), agent("ovs", bridge_mappings={})]
    d = decide(PORT, [FLAT], agents, [LB, OVS])
    assert d.reason == ("Linux bridge agent on host compute was last seen 300 s ago (agent_down_time 75 s); "
                        "Open vSwitch agent on host compute has no mapping for physical network provider "
                        "(bridge_mappings: none)")


def test_no_binding_driver_configured() -> None:
    assert decide(PORT, [VXLAN], [], [L2POP]).reason == \
        "no configured mechanism driver binds ports ([ml2] mechanism_drivers: l2population)"
    assert decide(PORT, [VXLAN], [], []).reason == \
        "no configured mechanism driver binds ports ([ml2] mechanism_drivers: empty)"


def test_unsupported_vnic_type() -> None:
    port = PortFacts(PORT.id, NET, "compute", "direct")
    d = decide(port, [VXLAN], [agent("ovs", tunnel_types=["vxlan"])], [LB, OVS])
    assert d.reason == ("vnic_type direct is not supported by any configured mechanism driver "
                        "(linuxbridge: normal; openvswitch: normal)")


def test_network_without_segments() -> None:
    assert decide(PORT, [], [agent("lb")], [LB]).reason == f"network {NET} has no segment the port can use"


# -- drivers and registry --------------------------------------------------
def test_mappings_reported_as_a_string_are_read() -> None:
    a = agent("ovs", bridge_mappings="provider:br-ex, physnet2:br-p2")
    assert mapping(a, "bridge_mappings") == {"provider": "br-ex", "physnet2": "br-p2"}
    assert decide(PORT, [FLAT], [a], [OVS]).bound


def test_registry_follows_configured_order() -> None:
    cfg = load_config([], {"ml2": {"mechanism_drivers": "openvswitch,l2population,linuxbridge"}})
    assert [d.name for d in build_mechanism_drivers(cfg)] == ["openvswitch", "l2population", "linuxbridge"]


def test_registry_refuses_an_unknown_driver() -> None:
    cfg = load_config([], {"ml2": {"mechanism_drivers": "openvswitch,ovn"}})
    with pytest.raises(ConfigError, match="unknown mechanism driver 'ovn'"):
        build_mechanism_drivers(cfg)
