"""Open vSwitch hosts in the intents: ports bound by the openvswitch driver reach their host's
agent, OVS and Linux bridge hosts are each other's l2population peers (mixed clouds), GRE and
Geneve networks get peers too, and binding follows the OVS agent's own report."""

from __future__ import annotations

from typing import Any

import pytest

from kaon.core.agents.agent_rpc import AgentRpc
from tests.api import core_support
from tests.api.agent_support import report, services
from tests.api.core_support import Api

make_api, project = core_support.make_api, core_support.project

CONF = {"ml2": {"mechanism_drivers": "linuxbridge,openvswitch,l2population",
                "type_drivers": "local,flat,vlan,vxlan,gre,geneve", "tenant_network_types": "vxlan"},
        "ml2_type_vlan": {"network_vlan_ranges": "default:100:101,default:200:201,physnet9"},
        "ml2_type_gre": {"tunnel_id_ranges": "1:100"}}


def ovs_agent(api: Api, host: str, ip: str, tunnels: list[str]) -> None:
    report(api, "ovs", host, tunnel_types=tunnels, tunneling_ip=ip, l2_population=True,
           bridge_mappings={"default": "br-ex"}, datapath_type="netdev", integration_bridge="br-int",
           tunnel_bridge="br-tun", arp_responder=False, ovs_hybrid_plug=False)


@pytest.fixture
def api(make_api: Any) -> Api:
    api = make_api(**CONF)
    ovs_agent(api, "o1", "10.99.0.11", ["vxlan", "gre"])
    ovs_agent(api, "o2", "10.99.0.12", ["vxlan", "gre"])
    report(api, "lb", "l1", tunnel_types=["vxlan"], tunneling_ip="10.99.0.21", l2_population=True,
           interface_mappings={"default": "eth1"})
    return api


def intent(api: Api, host: str) -> dict[str, Any]:
    svc = services(api)
    svc.compiler.compile_now()
    return AgentRpc(svc.engine, svc.agents, svc.compiler).get_intent({"host": host, "known_generation": None})["intent"]


def vm(api: Api, net: str, host: str) -> dict[str, Any]:
    return api.admin().port(net, **{"binding:host_id": host, "device_owner": "compute:nova"})


def test_ovs_ports_reach_their_host_with_gre_peers_and_ovs_vif_details(api: Api) -> None:
    admin = api.admin()
    net = admin.network(**{"provider:network_type": "gre"})
    admin.subnet(net["id"], "10.0.1.0/24")
    a, b = vm(api, net["id"], "o1"), vm(api, net["id"], "o2")
    assert a["binding:vif_type"] == "ovs"
    assert a["binding:vif_details"] == {"port_filter": True, "ovs_hybrid_plug": False, "datapath_type": "netdev",
                                        "bridge_name": "br-int", "connectivity": "l2"}
    mine = intent(api, "o1")
    assert list(mine["ports"]) == [a["id"]] and mine["ports"][a["id"]]["device"] == "tap" + a["id"][:11]
    network = mine["networks"][net["id"]]
    assert network["network_type"] == "gre" and network["segmentation_id"] == net["provider:segmentation_id"]
    assert network["peers"] == {"10.99.0.12": [{"mac": b["mac_address"],
                                                 "ips": [b["fixed_ips"][0]["ip_address"]]}]}


def test_mixed_cloud_linuxbridge_and_ovs_hosts_are_each_others_vxlan_peers(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.0.2.0/24")
    o, lb = vm(api, net["id"], "o1"), vm(api, net["id"], "l1")
    assert (o["binding:vif_type"], lb["binding:vif_type"]) == ("ovs", "bridge")
    assert list(intent(api, "o1")["networks"][net["id"]]["peers"]) == ["10.99.0.21"]
    peers = intent(api, "l1")["networks"][net["id"]]["peers"]
    assert peers == {"10.99.0.11": [{"mac": o["mac_address"], "ips": [o["fixed_ips"][0]["ip_address"]]}]}


def test_binding_refusals_name_the_ovs_agents_configuration(api: Api) -> None:
    admin = api.admin()
    geneve = admin.network(**{"provider:network_type": "geneve", "provider:segmentation_id": 5000})
    port = vm(api, geneve["id"], "o1")
    assert port["binding:vif_type"] == "binding_failed"
    assert "does not support geneve (tunnel_types: vxlan, gre)" in port["binding:failure_reason"]
    other = admin.network(**{"provider:network_type": "vlan", "provider:physical_network": "physnet9",
                             "provider:segmentation_id": 300})
    port = vm(api, other["id"], "o1")
    assert port["binding:vif_type"] == "binding_failed"
    assert "has no mapping for physical network physnet9 (bridge_mappings: default:br-ex)" in \
        port["binding:failure_reason"]
    # Seed 002's VLAN networks bind on OVS (Linux bridge here cannot: no 802.1Q devices).
    vlan = admin.network(**{"provider:network_type": "vlan", "provider:physical_network": "default",
                            "provider:segmentation_id": 100})
    bound = vm(api, vlan["id"], "o2")
    assert bound["binding:vif_type"] == "ovs"
    network = intent(api, "o2")["networks"][vlan["id"]]
    assert (network["network_type"], network["physical_network"], network["segmentation_id"], network["peers"]) \
        == ("vlan", "default", 100, {})
