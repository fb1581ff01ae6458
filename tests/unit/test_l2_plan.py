"""The Linux bridge agent's planner: intent × kernel state → device actions (no kernel needed)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from kaon.agent.config import OWNER_ALIAS, AgentConfig
from kaon.agent.l2_plan import FLOOD_MAC, Observed, plan, port_states
from kaon.model.intent import SCHEMA_VERSION, HostIntent

NET = "11111111-2222-3333-4444-555555555555"
FLAT_NET = "aaaaaaaa-2222-3333-4444-555555555555"
VLAN_NET = "bbbbbbbb-2222-3333-4444-555555555555"
PORT = "99999999-8888-7777-6666-555555555555"
BR, TAP, VX = "brq11111111-22", "tap99999999-88", "vxlan-1001"

CFG = AgentConfig(host="h1", local_ip="10.99.0.1", l2_population=True, interface_mappings={"provider": "eth1"})


@dataclass(frozen=True)
class L:
    name: str
    kind: str = "veth"
    master: str | None = None
    up: bool = True
    mtu: int = 1500
    alias: str = ""
    vxlan_id: int | None = None
    vxlan_local: str | None = None
    vxlan_proxy: bool | None = None


def typed(intent: dict[str, Any]) -> HostIntent:
    for port in intent["ports"].values():
        port.setdefault("device_owner", "compute:nova")
    return HostIntent.from_json({"version": SCHEMA_VERSION, "host": "h1", **intent})


def vx_intent(**port: Any) -> HostIntent:
    return typed({"networks": {NET: {"bridge": BR, "network_type": "vxlan", "segmentation_id": 1001,
                               "physical_network": None, "mtu": 1450,
                               "peers": {"10.99.0.2": [{"mac": "fa:16:3e:00:00:02", "ips": ["10.0.0.2"]}],
                                         "10.99.0.3": [{"mac": "fa:16:3e:00:00:03", "ips": ["10.0.0.3"]}]}}},
            "ports": {PORT: {"network_id": NET, "device": TAP, "mac": "fa:16:3e:00:00:01", "ips": ["10.0.0.1"],
                             "admin_state_up": True, **port}}})


def converged_links() -> dict[str, L]:
    return {BR: L(BR, "bridge", alias=OWNER_ALIAS),
            VX: L(VX, "vxlan", master=BR, mtu=1450, alias=OWNER_ALIAS, vxlan_id=1001, vxlan_local="10.99.0.1",
                  vxlan_proxy=True),
            TAP: L(TAP, master=BR)}


def converged_fdb() -> dict[str, set[tuple[str, str]]]:
    return {VX: {(FLOOD_MAC, "10.99.0.2"), (FLOOD_MAC, "10.99.0.3"), ("fa:16:3e:00:00:02", "10.99.0.2"),
                 ("fa:16:3e:00:00:03", "10.99.0.3")}}


def converged() -> Observed:
    return Observed(converged_links(), converged_fdb(),
                    {VX: {("10.0.0.2", "fa:16:3e:00:00:02"), ("10.0.0.3", "fa:16:3e:00:00:03")}})


def ops(actions: list[Any]) -> list[str]:
    return [str(a) for a in actions]


def test_a_fresh_host_gets_bridge_vxlan_tap_and_l2pop_entries_in_order() -> None:
    seen = Observed({TAP: L(TAP, up=False)})
    result = plan(vx_intent(), seen, CFG, sweep=False)
    assert ops(result.actions) == [
        f"ensure_bridge {BR} alias={OWNER_ALIAS}",
        f"ensure_vxlan {VX} alias={OWNER_ALIAS} group=None local_ip=10.99.0.1 mtu=1450 proxy=True vni=1001",
        f"set_master {VX} bridge={BR}",
        f"set_up {VX} up=True",
        f"set_master {TAP} bridge={BR}",
        f"set_up {TAP} up=True",
        f"fdb_add {VX} key={FLOOD_MAC} value=10.99.0.2",
        f"fdb_add {VX} key={FLOOD_MAC} value=10.99.0.3",
        f"fdb_add {VX} key=fa:16:3e:00:00:02 value=10.99.0.2",
        f"fdb_add {VX} key=fa:16:3e:00:00:03 value=10.99.0.3",
        f"neigh_add {VX} key=10.0.0.2 value=fa:16:3e:00:00:02",
        f"neigh_add {VX} key=10.0.0.3 value=fa:16:3e:00:00:03",
    ]
    assert result.actions[4].port_id == PORT
    assert result.bridges == {NET: BR}


def test_a_converged_host_plans_nothing() -> None:
    assert plan(vx_intent(), converged(), CFG, sweep=True).actions == []


def test_a_tap_not_plugged_yet_is_waited_for_and_reported_down() -> None:
    links = converged_links()
    del links[TAP]
    seen = Observed(links, converged_fdb(), converged().neigh)
    result = plan(vx_intent(), seen, CFG, sweep=True)
    assert result.actions == []
    assert port_states(vx_intent(), seen, result.bridges) == ([], [PORT])
    assert port_states(vx_intent(), converged(), result.bridges) == ([PORT], [])


def test_admin_down_sets_the_tap_down_and_the_port_down() -> None:
    intent = vx_intent(admin_state_up=False)
    result = plan(intent, converged(), CFG, sweep=True)
    assert ops(result.actions) == [f"set_up {TAP} up=False"]
    assert port_states(intent, converged(), result.bridges) == ([], [PORT])


def test_stale_l2pop_entries_go_and_missing_ones_come() -> None:
    seen = converged()
    seen.fdb[VX].add(("fa:16:3e:00:00:09", "10.99.0.9"))
    seen.fdb[VX].add((FLOOD_MAC, "10.99.0.9"))
    seen.fdb[VX].discard(("fa:16:3e:00:00:03", "10.99.0.3"))
    seen.neigh[VX].add(("10.0.0.9", "fa:16:3e:00:00:09"))
    assert ops(plan(vx_intent(), seen, CFG, sweep=False).actions) == [
        f"fdb_add {VX} key=fa:16:3e:00:00:03 value=10.99.0.3",
        f"fdb_del {VX} key={FLOOD_MAC} value=10.99.0.9",
        f"fdb_del {VX} key=fa:16:3e:00:00:09 value=10.99.0.9",
        f"neigh_del {VX} key=10.0.0.9 value=fa:16:3e:00:00:09",
    ]


def test_sweep_removes_only_own_unwanted_devices_and_only_after_sync() -> None:
    links = converged_links()
    links["brqstale0000-0"] = L("brqstale0000-0", "bridge", alias=OWNER_ALIAS)
    links["vxlan-77"] = L("vxlan-77", "vxlan", alias=OWNER_ALIAS, vxlan_id=77)
    links["brqforeign00-0"] = L("brqforeign00-0", "bridge")  # same prefix, not ours: no alias
    links["vxlan-88"] = L("vxlan-88", "vxlan", alias="somebody else", vxlan_id=88)
    links["br-ex"] = L("br-ex", "bridge")
    seen = Observed(links, converged_fdb(), converged().neigh)
    assert plan(vx_intent(), seen, CFG, sweep=False).actions == []
    assert ops(plan(vx_intent(), seen, CFG, sweep=True).actions) == [
        "delete_link brqstale0000-0", "delete_link vxlan-77"]


def test_a_tap_whose_port_went_away_is_released_not_deleted() -> None:
    intent = replace(vx_intent(), ports={})
    links = converged_links()
    links["tapgone000000"] = L("tapgone000000", master=BR)
    result = plan(intent, Observed(links, converged_fdb(), converged().neigh), CFG, sweep=True)
    assert ops(result.actions) == [f"set_master {TAP} bridge=None", "set_master tapgone000000 bridge=None"]


def test_a_network_that_left_the_host_is_swept_and_its_taps_released() -> None:
    empty = HostIntent("h1")
    assert ops(plan(empty, converged(), CFG, sweep=True).actions) == [
        f"set_master {TAP} bridge=None", f"delete_link {BR}", f"delete_link {VX}"]


def test_a_changed_vni_or_local_ip_recreates_the_vxlan_device() -> None:
    links = converged_links()
    links[VX] = replace(links[VX], vxlan_local="10.99.0.100")
    first = plan(vx_intent(), Observed(links, converged_fdb(), converged().neigh), CFG, sweep=True).actions
    assert first[0].op == "ensure_vxlan" and first[0].arg("local_ip") == "10.99.0.1"


def test_a_changed_vni_or_local_ip_re_enslaves_and_refills_the_new_device_in_the_same_pass() -> None:
    links = converged_links()
    links[VX] = replace(links[VX], vxlan_local="10.99.0.100")
    actions = ops(plan(vx_intent(), Observed(links, converged_fdb(), converged().neigh), CFG, sweep=True).actions)
    assert f"set_master {VX} bridge={BR}" in actions and f"set_up {VX} up=True" in actions
    assert sum(a.startswith(f"fdb_add {VX}") for a in actions) == 4
    assert sum(a.startswith(f"neigh_add {VX}") for a in actions) == 2
    assert not [a for a in actions if a.startswith(("fdb_del", "neigh_del"))]


def test_a_network_flooding_arp_has_a_device_without_proxy_and_no_neighbour_entries() -> None:
    flooding = replace(vx_intent(), networks={NET: replace(vx_intent().networks[NET], flood_arp=True)})
    actions = ops(plan(flooding, converged(), CFG, sweep=True).actions)
    assert actions == [
        f"ensure_vxlan {VX} alias={OWNER_ALIAS} group=None local_ip=10.99.0.1 mtu=1450 proxy=False vni=1001",
        f"set_master {VX} bridge={BR}", f"set_up {VX} up=True",
        f"fdb_add {VX} key={FLOOD_MAC} value=10.99.0.2", f"fdb_add {VX} key={FLOOD_MAC} value=10.99.0.3",
        f"fdb_add {VX} key=fa:16:3e:00:00:02 value=10.99.0.2", f"fdb_add {VX} key=fa:16:3e:00:00:03 value=10.99.0.3"]
    links = converged_links()
    links[VX] = replace(links[VX], vxlan_proxy=False)
    assert plan(flooding, Observed(links, converged_fdb()), CFG, sweep=True).actions == []
    # Back to answering: the device is made again with proxy, its entries with it.
    back = ops(plan(vx_intent(), Observed(links, converged_fdb()), CFG, sweep=True).actions)
    assert back[0].endswith("proxy=True vni=1001") and sum(a.startswith("neigh_add") for a in back) == 2


def test_without_l2population_the_vxlan_device_uses_the_group_and_no_entries() -> None:
    cfg = replace(CFG, l2_population=False, vxlan_group="239.1.1.1")
    actions = plan(vx_intent(), Observed({TAP: L(TAP, master=BR)}), cfg, sweep=False).actions
    vx = next(a for a in actions if a.op == "ensure_vxlan")
    assert vx.arg("group") == "239.1.1.1" and vx.arg("proxy") is False
    assert not [a for a in actions if a.op.startswith(("fdb", "neigh"))]


def flat_intent(kind: str = "flat", seg: int | None = None) -> HostIntent:
    net = VLAN_NET if kind == "vlan" else FLAT_NET
    bridge = "brq" + net[:11]
    return typed({"networks": {net: {"bridge": bridge, "network_type": kind, "segmentation_id": seg,
                               "physical_network": "provider", "mtu": 1500, "peers": {}}},
            "ports": {PORT: {"network_id": net, "device": TAP, "mac": "fa:16:3e:00:00:01", "ips": [],
                             "admin_state_up": True}}})


def test_a_flat_network_enslaves_the_mapped_interface() -> None:
    seen = Observed({"eth1": L("eth1"), TAP: L(TAP)})
    assert ops(plan(flat_intent(), seen, CFG, sweep=True).actions) == [
        f"ensure_bridge brqaaaaaaaa-22 alias={OWNER_ALIAS}",
        "set_master eth1 bridge=brqaaaaaaaa-22",
        f"set_master {TAP} bridge=brqaaaaaaaa-22",
    ]


def test_a_flat_network_on_a_mapped_bridge_uses_that_bridge_and_makes_none() -> None:
    cfg = replace(CFG, interface_mappings={}, bridge_mappings={"provider": "br-prov"})
    seen = Observed({"br-prov": L("br-prov", "bridge"), TAP: L(TAP)})
    result = plan(flat_intent(), seen, cfg, sweep=True)
    assert ops(result.actions) == [f"set_master {TAP} bridge=br-prov"]
    assert result.bridges == {FLAT_NET: "br-prov"}


def test_a_vlan_network_plans_the_sub_interface_neutron_would_make() -> None:
    seen = Observed({"eth1": L("eth1"), TAP: L(TAP)})
    assert ops(plan(flat_intent("vlan", 100), seen, CFG, sweep=True).actions) == [
        f"ensure_bridge brqbbbbbbbb-22 alias={OWNER_ALIAS}",
        "ensure_vlan eth1.100 interface=eth1 vid=100",
        "set_master eth1.100 bridge=brqbbbbbbbb-22",
        "set_up eth1.100 up=True",
        f"set_master {TAP} bridge=brqbbbbbbbb-22",
    ]


def test_an_ipv6_peer_gets_its_link_local_neighbour_entry_too() -> None:
    intent = vx_intent()
    net = intent.networks[NET]
    v6_peer = replace(net.peers["10.99.0.2"][0], ips=("10.0.0.2", "2001:db8::2"))
    intent = replace(intent, networks={NET: replace(net, peers={**net.peers, "10.99.0.2": (v6_peer,)})})
    result = plan(intent, converged(), CFG, sweep=True)
    # The proxying VXLAN device answers solicitations for router and DHCP link-local addresses
    # only from its table; the IPv4-only peer gets none.
    assert ops(result.actions) == [
        f"neigh_add {VX} key=2001:db8::2 value=fa:16:3e:00:00:02",
        f"neigh_add {VX} key=fe80::f816:3eff:fe00:2 value=fa:16:3e:00:00:02",
    ]
