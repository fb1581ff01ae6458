"""kaon.agent.ovs_plan: golden flows for Neutron's OVS layout, local VLANs, dead ports (pure, no OVS)."""

from __future__ import annotations

import pytest

from kaon.agent.ovs_plan import (
    DEAD_VLAN,
    OvsAgentOptions,
    OvsHostIntent,
    OvsNetwork,
    OvsPeer,
    OvsPort,
    allocate_local_vlans,
    patch_name,
    plan,
    tunnel_port_name,
)
from kaon.dataplane.ovs_model import KAON_COOKIE, BridgeSpec, PortSpec, PortTag

LOCAL, REMOTE, REMOTE2 = "172.16.0.1", "172.16.0.2", "172.16.0.3"
MAC_A, MAC_R, MAC_R2 = "fa:16:3e:00:00:01", "fa:16:3e:00:00:09", "fa:16:3e:00:00:0a"
LEARN = ("learn(table=20,hard_timeout=300,priority=1,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
         "load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:patch-int")
BR_INT_BASE = [
    "table=0,priority=0,actions=resubmit(,60)",
    "table=23,priority=0,actions=drop",
    "table=60,priority=3,actions=NORMAL",
]


def lines(p, bridge: str) -> list[str]:
    prefix = f"cookie={KAON_COOKIE:#x},"
    out = []
    for f in p.flows.get(bridge, ()):
        line = f.add_line()
        assert line.startswith(prefix)
        out.append(line[len(prefix):])
    return sorted(out)


def tunnel_opts(kind: str, **kw) -> OvsAgentOptions:
    return OvsAgentOptions(local_ip=LOCAL, tunnel_types=(kind,), **kw)


@pytest.mark.parametrize(("kind", "table", "port"), [("vxlan", 4, "vxlan-ac100002"), ("gre", 3, "gre-ac100002"),
                                                      ("geneve", 6, "geneve-ac100002")])
def test_tunnel_network_golden_flows(kind: str, table: int, port: str) -> None:
    intent = OvsHostIntent(
        networks=(OvsNetwork("net1", kind, 1001),),
        ports=(OvsPort("p1", "net1", MAC_A, "tap1"),),
        peers=(OvsPeer("net1", REMOTE, ((MAC_R, "10.0.0.9"),)),))
    p = plan(intent, tunnel_opts(kind))
    assert p.local_vlans == {"net1": 1}
    assert p.tags == (PortTag("tap1", 1, "net1"),)
    assert p.bridges == (BridgeSpec("br-int"), BridgeSpec("br-tun"))
    assert PortSpec.make("br-tun", port, kind, {"remote_ip": REMOTE, "local_ip": LOCAL, "key": "flow"}) in p.ports
    assert PortSpec.make("br-int", "patch-tun", "patch", {"peer": "patch-int"}) in p.ports
    assert PortSpec.make("br-tun", "patch-int", "patch", {"peer": "patch-tun"}) in p.ports
    assert lines(p, "br-int") == sorted(BR_INT_BASE)
    assert lines(p, "br-tun") == sorted([
        "table=0,priority=0,actions=drop",
        "table=0,priority=1,in_port=patch-int,actions=resubmit(,2)",
        f"table=0,priority=1,in_port={port},actions=resubmit(,{table})",
        "table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)",
        "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)",
        f"table={table},priority=0,actions=drop",
        f"table={table},priority=1,tun_id=0x3e9,actions=push_vlan:0x8100,set_field:4097->vlan_vid,resubmit(,10)",
        f"table=10,priority=1,actions={LEARN}",
        "table=20,priority=0,actions=resubmit(,22)",
        f"table=20,priority=2,dl_vlan=1,dl_dst={MAC_R},actions=pop_vlan,set_field:0x3e9->tun_id,output:{port}",
        "table=22,priority=0,actions=drop",
        f"table=22,priority=1,dl_vlan=1,actions=pop_vlan,set_field:0x3e9->tun_id,output:{port}",
    ])
    assert "br-ex" not in p.flows and p.protected == ()


def test_vlan_and_flat_provider_networks_golden_flows() -> None:
    opts = OvsAgentOptions(bridge_mappings=(("physnet1", "br-ex"),))
    intent = OvsHostIntent(
        networks=(OvsNetwork("net-v", "vlan", 100, "physnet1"), OvsNetwork("net-f", "flat", None, "physnet1")),
        ports=(OvsPort("pv", "net-v", MAC_A, "tapv"), OvsPort("pf", "net-f", MAC_R, "tapf")))
    p = plan(intent, opts)
    # Sorted by network id: net-f gets 1, net-v gets 2.
    assert p.local_vlans == {"net-f": 1, "net-v": 2}
    assert p.bridges == (BridgeSpec("br-int"), BridgeSpec("br-ex", own=False))
    assert p.protected == ("br-ex",)
    assert set(p.ports) == {PortSpec.make("br-int", "int-br-ex", "patch", {"peer": "phy-br-ex"}),
                            PortSpec.make("br-ex", "phy-br-ex", "patch", {"peer": "int-br-ex"})}
    assert lines(p, "br-ex") == sorted([
        "table=0,priority=0,actions=NORMAL",
        "table=0,priority=2,in_port=phy-br-ex,actions=drop",
        "table=0,priority=4,in_port=phy-br-ex,dl_vlan=2,actions=set_field:4196->vlan_vid,NORMAL",  # 4096+100
        "table=0,priority=4,in_port=phy-br-ex,dl_vlan=1,actions=pop_vlan,NORMAL",
    ])
    assert lines(p, "br-int") == sorted(BR_INT_BASE + [
        "table=0,priority=2,in_port=int-br-ex,actions=drop",
        "table=0,priority=3,in_port=int-br-ex,dl_vlan=100,actions=set_field:4098->vlan_vid,resubmit(,60)",
        "table=0,priority=3,in_port=int-br-ex,vlan_tci=0x0000/0x1fff,"
        "actions=push_vlan:0x8100,set_field:4097->vlan_vid,resubmit(,60)",
    ])
    assert "br-tun" not in p.flows  # no tunnelling configured


def test_local_vlans_stay_stable_and_new_networks_take_the_lowest_free() -> None:
    assert allocate_local_vlans(["b", "a", "c"], {}) == {"a": 1, "b": 2, "c": 3}
    # "a" left, "d" arrived: b and c keep theirs, d takes the freed 1.
    assert allocate_local_vlans(["b", "c", "d"], {"a": 1, "b": 2, "c": 3}) == {"b": 2, "c": 3, "d": 1}
    # Out-of-range previous values are not kept.
    assert allocate_local_vlans(["x"], {"x": DEAD_VLAN}) == {"x": 1}
    opts = tunnel_opts("vxlan")
    nets = tuple(OvsNetwork(f"net{i}", "vxlan", 1000 + i) for i in range(3))
    first = plan(OvsHostIntent(nets), opts)
    # A restarted agent passes what it read back; adding a network must not renumber the others.
    second = plan(OvsHostIntent((OvsNetwork("net-new", "vxlan", 2000), *nets)), opts, first.local_vlans)
    assert {k: second.local_vlans[k] for k in first.local_vlans} == dict(first.local_vlans)
    assert second.local_vlans["net-new"] == 4
    # And the same input gives the same plan, flow for flow.
    assert plan(OvsHostIntent(nets), opts, first.local_vlans) == first


def test_unbound_and_uncarried_ports_get_the_dead_vlan_and_a_drop_flow() -> None:
    opts = tunnel_opts("vxlan")
    intent = OvsHostIntent(
        networks=(OvsNetwork("net1", "vxlan", 1001), OvsNetwork("net-gre", "gre", 7),
                  OvsNetwork("net-v", "vlan", 100, "physnet-unmapped")),
        ports=(OvsPort("ok", "net1", MAC_A, "tapok"), OvsPort("down", "net1", MAC_R, "tapdown", bound=False),
               OvsPort("gre", "net-gre", MAC_R2, "tapgre"), OvsPort("v", "net-v", MAC_R2, "tapv"),
               OvsPort("gone", "no-such-net", MAC_R2, "tapgone")))
    p = plan(intent, opts)
    assert p.not_carried == {
        "net-gre": "tunnel type gre is not in tunnel_types (or local_ip is not set)",
        "net-v": "physical network physnet-unmapped is not in bridge_mappings"}
    tags = {t.name: t.tag for t in p.tags}
    assert tags == {"tapok": 1, "tapdown": DEAD_VLAN, "tapgre": DEAD_VLAN, "tapv": DEAD_VLAN, "tapgone": DEAD_VLAN}
    drops = [f for f in lines(p, "br-int") if f.startswith("table=0,priority=2,")]
    assert drops == sorted(f"table=0,priority=2,in_port={d},actions=drop"
                           for d in ("tapdown", "tapgre", "tapv", "tapgone"))


def test_flood_follows_l2population_peers_or_every_tunnel_without_it() -> None:
    nets = (OvsNetwork("n1", "vxlan", 10), OvsNetwork("n2", "vxlan", 20))
    peers = (OvsPeer("n1", REMOTE, ((MAC_R, None),)), OvsPeer("n2", REMOTE2, ((MAC_R2, None),)),
             OvsPeer("n1", LOCAL, ((MAC_A, None),)))  # our own VTEP is never a tunnel
    p = plan(OvsHostIntent(nets, (), peers), tunnel_opts("vxlan"))
    t1, t2 = tunnel_port_name("vxlan", REMOTE), tunnel_port_name("vxlan", REMOTE2)
    flood = [f for f in lines(p, "br-tun") if f.startswith("table=22,priority=1")]
    assert flood == [f"table=22,priority=1,dl_vlan=1,actions=pop_vlan,set_field:0xa->tun_id,output:{t1}",
                     f"table=22,priority=1,dl_vlan=2,actions=pop_vlan,set_field:0x14->tun_id,output:{t2}"]
    assert sorted(s.name for s in p.ports if s.type == "vxlan") == [t1, t2]
    no_l2pop = plan(OvsHostIntent(nets, (), peers), tunnel_opts("vxlan", l2_population=False))
    flood = [f for f in lines(no_l2pop, "br-tun") if f.startswith("table=22,priority=1")]
    assert all(f.endswith(f"output:{t1},output:{t2}") for f in flood) and len(flood) == 2
    assert not [f for f in lines(no_l2pop, "br-tun") if f.startswith("table=20,priority=2")]


def test_arp_responder_flows_answer_for_remote_ports() -> None:
    intent = OvsHostIntent((OvsNetwork("n1", "vxlan", 10),), (), (OvsPeer("n1", REMOTE, ((MAC_R, "10.0.0.9"),)),))
    p = plan(intent, tunnel_opts("vxlan", arp_responder=True))
    br_tun = lines(p, "br-tun")
    assert "table=2,priority=1,arp,dl_dst=ff:ff:ff:ff:ff:ff,actions=resubmit(,21)" in br_tun
    assert "table=21,priority=0,actions=resubmit(,22)" in br_tun
    assert ("table=21,priority=1,arp,dl_vlan=1,arp_tpa=10.0.0.9,actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
            f"set_field:{MAC_R}->eth_src,load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],"
            "move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163e000009->NXM_NX_ARP_SHA[],"
            "load:0xa000009->NXM_OF_ARP_SPA[],IN_PORT") in br_tun


def test_names_fit_the_interface_name_limit() -> None:
    assert tunnel_port_name("geneve", "10.1.2.3") == "geneve-0a010203"
    assert len(tunnel_port_name("vxlan", "2001:db8::1")) <= 15
    assert patch_name("int", "br-ex") == "int-br-ex"
    long_a, long_b = patch_name("phy", "br-provider-one"), patch_name("phy", "br-provider-two")
    assert len(long_a) <= 15 and len(long_b) <= 15 and long_a != long_b


def test_vxlan_udp_port_other_than_default_is_set_on_the_tunnel() -> None:
    intent = OvsHostIntent((OvsNetwork("n1", "vxlan", 10),), (), (OvsPeer("n1", REMOTE),))
    p = plan(intent, tunnel_opts("vxlan", vxlan_udp_port=8472))
    (tun,) = [s for s in p.ports if s.type == "vxlan"]
    assert dict(tun.options)["dst_port"] == "8472"
