# ruff: noqa: F811  (the two-host lab's fixtures are imported from test_dataplane_ovs and used as arguments)
"""The Open vSwitch agent's manager against real OVS: typed intent in, bridges/tags/flows and port status out.

Two simulated hosts with private OVS daemons (the two-host lab of
test_dataplane_ovs: OVS_RUNDIR per test, daemons stopped by pid); VMs are
veth-plugged namespaces with os-vif's ``iface-id``. Each host's
:class:`OvsManager` gets a :class:`HostIntent` as the compiler makes it and
must wire, report and keep traffic as Neutron's agent does.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from kaon.agent.manager import Manager, Step, Watcher
from kaon.agent.ovs_config import OvsConfig
from kaon.agent.ovs_manager import AGENT_TYPE, OvsManager
from kaon.agent.ovs_plan import DEAD_VLAN, OvsAgentOptions
from kaon.cli.agent import ovs_preflight
from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.dataplane.ovs_model import KAON_COOKIE, Flow
from kaon.dataplane.ovsdb import Ovsdb, OvsdbError
from kaon.model.intent import (
    FirewallIntent,
    FirewallPort,
    FirewallRule,
    HostIntent,
    NetworkIntent,
    PeerPort,
    PortIntent,
    SecurityGroupIntent,
)
from tests.fixtures import require
from tests.functional.test_dataplane_ovs import (  # noqa: F401  (fixtures)
    PHYSNET,
    Host,
    Lab,
    daemons,
    lab,
    ping,
    ping_ok,
    rundir_root,
    sh,
)

pytestmark = pytest.mark.needs_root

SEGMENT = {"vxlan": 1001, "geneve": 1002, "gre": 1003, "vlan": 100}


def options(h: Host, kind: str) -> OvsConfig:
    tunnels = (kind,) if kind in ("vxlan", "gre", "geneve") else ()
    return OvsConfig(OvsAgentOptions(bridge_mappings=((PHYSNET, "br-ex"),), local_ip=h.vtep, tunnel_types=tunnels,
                                     datapath_type="netdev", l2_population=True), h.ovs.db_remote)


def host_intent(lab: Lab, h: Host, kind: str, extra: dict[str, PortIntent] | None = None) -> HostIntent:
    """What the compiler gives host ``h``: its VMs' ports, their network, the other hosts' ports as peers."""
    net = "net-a"
    peers = {o.vtep: tuple(PeerPort(mac, (ip,)) for (_, mac, ip, _n) in o.vms.values())
             for o in lab.hosts if o is not h and o.vms} if kind != "vlan" else {}
    network = NetworkIntent("brq-unused", kind, SEGMENT[kind], PHYSNET if kind == "vlan" else None, 1450, peers)
    ports = {f"port-{name}": PortIntent(net, f"tap{name}", mac, (ip,), True, "compute:nova")
             for name, (_, mac, ip, _n) in h.vms.items()}
    return HostIntent(f"h{h.n}", networks={net: network}, ports={**ports, **(extra or {})})


def manager(h: Host, kind: str) -> OvsManager:
    return OvsManager(options(h, kind), Ovsdb(h.ovs.db_remote), h.of, h.ovs, host=f"h{h.n}")


def kaon_flows(h: Host) -> dict[str, list[Flow]]:
    return {br: sorted(f for f in h.of.dump(br) if f.cookie == KAON_COOKIE) for br in ("br-int", "br-tun", "br-ex")
            if br in h.db.bridges()}


@pytest.mark.parametrize("kind", ["vxlan", "geneve", "vlan"])
def test_manager_wires_vms_reports_status_and_they_ping_across_hosts(lab: Lab, kind: str) -> None:
    h1, h2 = lab.hosts
    lab.add_vm(h1, "a1", "net-a", "192.168.121.11")
    lab.add_vm(h2, "a2", "net-a", "192.168.121.12")
    lab.add_vm(h1, "d1", "net-a", "192.168.121.13")  # admin down: dead VLAN, DOWN
    ghost = PortIntent("net-a", "tapghost", "fa:16:3e:00:00:99", ("192.168.121.99",), True, "compute:nova")
    m1, m2 = manager(h1, kind), manager(h2, kind)
    assert isinstance(m1, Manager) and isinstance(m1, Watcher) and m1.agent_type == AGENT_TYPE
    i1 = host_intent(lab, h1, kind, {"port-ghost": ghost})  # in the intent, not plugged (yet): DOWN
    down = i1.ports["port-d1"]
    i1 = HostIntent(i1.host, networks=i1.networks, ports={
        **i1.ports, "port-d1": PortIntent(down.network_id, down.device, down.mac, down.ips, False, down.device_owner)})
    m1.update(i1)
    m2.update(host_intent(lab, h2, kind))
    try:
        o1, o2 = m1.apply(Step(sweep=False)), m2.apply(Step(sweep=False))
        assert o1.ok and o2.ok, (o1.errors, o2.errors)
        assert o1.ports is not None and o2.ports is not None
        assert o1.ports.up == ("port-a1",) and set(o1.ports.down) == {"port-d1", "port-ghost"}
        assert o2.ports.up == ("port-a2",) and o2.ports.down == ()
        seen = h1.db.ports()
        assert seen["tapa1"].tag == m1.last_plan.local_vlans["net-a"]  # type: ignore[union-attr]
        assert seen["tapd1"].tag == DEAD_VLAN
        assert ping_ok(h1.vms["a1"][0], "192.168.121.12"), f"a1 -> a2 over {kind}"
        assert not ping(h1.vms["d1"][0], "192.168.121.12", count=2, timeout=1), "admin-down port passes traffic"
        # A port the firewall holds back is unwired (dead VLAN) and reported DOWN.
        held = m1.apply(Step(sweep=True, hold=frozenset({"port-a1"})))
        assert held.ok and held.ports is not None and "port-a1" in held.ports.down
        assert h1.db.ports()["tapa1"].tag == DEAD_VLAN
        assert not ping(h1.vms["a1"][0], "192.168.121.12", count=2, timeout=1)
        again = m1.apply(Step(sweep=True))
        assert again.ports is not None and again.ports.up == ("port-a1",)
        assert ping_ok(h1.vms["a1"][0], "192.168.121.12")
        conf = m1.configurations()
        assert conf["bridge_mappings"] == {PHYSNET: "br-ex"} and conf["datapath_type"] == "netdev"
        assert conf["tunneling_ip"] == (h1.vtep if kind != "vlan" else None)
        assert conf["integration_bridge"] == "br-int" and conf["tunnel_bridge"] == "br-tun"
    finally:
        m1.close()
        m2.close()


def test_restarted_manager_keeps_vlans_and_flows_and_sweeps_stale_flows_only_after_sync(lab: Lab) -> None:
    h1, h2 = lab.hosts
    lab.add_vm(h1, "a1", "net-a", "192.168.121.11")
    lab.add_vm(h2, "a2", "net-a", "192.168.121.12")
    m1, m2 = manager(h1, "vxlan"), manager(h2, "vxlan")
    m1.update(host_intent(lab, h1, "vxlan"))
    m2.update(host_intent(lab, h2, "vxlan"))
    assert m1.apply(Step(sweep=True)).ok and m2.apply(Step(sweep=True)).ok
    vlans, flows = dict(m1.last_plan.local_vlans), kaon_flows(h1)  # type: ignore[union-attr]
    stale = Flow(0, 7, "in_port=patch-tun,dl_src=fa:16:3e:de:ad:01", "drop")
    h1.of.sync("br-int", [*flows["br-int"], stale], sweep=False)
    m1.close()
    # A new agent process: a fresh OVSDB connection, nothing remembered — only what OVS holds.
    fresh = manager(h1, "vxlan")
    try:
        fresh.update(host_intent(lab, h1, "vxlan"))
        first = fresh.apply(Step(sweep=False))
        assert first.ok and first.changes == 0, "a restart must not rewrite tags or flows"
        assert dict(fresh.last_plan.local_vlans) == vlans  # type: ignore[union-attr]
        assert stale in h1.of.dump("br-int"), "swept before the first full sync"
        swept = fresh.apply(Step(sweep=True))
        assert swept.ok and swept.changes == 1
        assert kaon_flows(h1) == flows
        assert ping_ok(h1.vms["a1"][0], "192.168.121.12")
    finally:
        fresh.close()
        m2.close()


def test_vswitchd_kill9_wakes_the_manager_which_reprograms(lab: Lab) -> None:
    h1, h2 = lab.hosts
    lab.add_vm(h1, "a1", "net-a", "192.168.121.11")
    lab.add_vm(h2, "a2", "net-a", "192.168.121.12")
    m1, m2 = manager(h1, "vxlan"), manager(h2, "vxlan")
    woke = threading.Event()
    unwatch = m1.watch(woke.set)
    try:
        m1.update(host_intent(lab, h1, "vxlan"))
        m2.update(host_intent(lab, h2, "vxlan"))
        assert m1.apply(Step(sweep=True)).ok and m2.apply(Step(sweep=True)).ok
        assert ping_ok(h1.vms["a1"][0], "192.168.121.12")
        # A VM plugged on br-int wakes the agent (no intent change needed to notice it).
        woke.clear()
        lab.add_vm(h1, "b1", "net-a", "192.168.121.14")
        assert woke.wait(5), "a port plugged on br-int did not wake the agent"
        woke.clear()
        h1.ovs.stop_daemon("ovs-vswitchd", signal.SIGKILL)
        h1.ovs.start_vswitchd()
        h1.ovs.wait_ready()
        assert woke.wait(5), "a restarted ovs-vswitchd did not wake the agent"
        assert not h1.of.has_cookie_flows("br-int", 23)
        deadline = time.monotonic() + 10
        while not (outcome := m1.apply(Step(sweep=True))).ok and time.monotonic() < deadline:
            time.sleep(0.2)
        assert outcome.ok, outcome.errors
        assert h1.of.has_cookie_flows("br-int", 23)
        assert ping_ok(h1.vms["a1"][0], "192.168.121.12")
    finally:
        unwatch()
        m1.close()
        m2.close()


def test_preflight_names_missing_mapped_bridge_and_system_datapath(rundir_root: str,
                                                                    daemons: list[OvsDaemons]) -> None:
    ovs = OvsDaemons(os.path.join(rundir_root, "p"))
    daemons.append(ovs)
    ovs.start()
    ovs.wait_ready()
    missing = OvsConfig(OvsAgentOptions(bridge_mappings=(("physnet1", "br-nothere"),), datapath_type="netdev"),
                        ovs.db_remote)
    with pytest.raises(OvsdbError, match="bridge_mappings names bridge.s. br-nothere that do not exist"):
        ovs_preflight(missing)
    require(not os.path.exists("/sys/module/openvswitch"), "this kernel has the openvswitch module")
    system = OvsConfig(OvsAgentOptions(datapath_type="system"), ovs.db_remote)
    with pytest.raises(OvsdbError, match="datapath_type = netdev"):
        ovs_preflight(system)
    ok = ovs_preflight(OvsConfig(OvsAgentOptions(integration_bridge="br-ok", datapath_type="netdev"), ovs.db_remote))
    try:
        assert ok.bridges()["br-ok"]["datapath_id"]
    finally:
        ok.close()


def test_preflight_says_when_ovsdb_is_unreachable(rundir_root: str) -> None:
    cfg = OvsConfig(OvsAgentOptions(), f"unix:{rundir_root}/nothing/db.sock")
    with pytest.raises(OvsdbError, match="unreachable after .* is ovsdb-server running"):
        ovs_preflight(cfg, connect_timeout=1)


def test_openvswitch_firewall_filters_through_the_manager(lab: Lab) -> None:
    """firewall_driver = openvswitch: the typed firewall intent becomes conntrack flows on br-int."""
    h1 = lab.hosts[0]
    for name, ip in (("a", "192.168.121.11"), ("b", "192.168.121.12"), ("c", "192.168.121.13")):
        lab.add_vm(h1, name, "net-a", ip)
    vms = h1.vms
    egress = tuple(FirewallRule("egress", e, None, None, None, None, None) for e in ("IPv4", "IPv6"))
    groups = {"web": SecurityGroupIntent(True, (*egress, FirewallRule("ingress", "IPv4", 1, None, None, None,
                                                                     "sg4-web"))),
              "open": SecurityGroupIntent(True, (*egress, FirewallRule("ingress", "IPv4", 1, None, None, None,
                                                                      None)))}
    member = {"a": "web", "b": "web", "c": "open"}

    def intent(open_rules: SecurityGroupIntent) -> HostIntent:
        base = host_intent(lab, h1, "vxlan")
        fw = FirewallIntent(
            ports={f"port-{n}": FirewallPort(f"tap{n}", vms[n][1], True, (vms[n][2],), (member[n],)) for n in vms},
            groups={**groups, "open": open_rules}, sets={"sg4-web": (vms["a"][2], vms["b"][2])})
        return HostIntent(base.host, networks=base.networks, ports=base.ports, firewall=fw)

    m = OvsManager(options(h1, "vxlan"), Ovsdb(h1.ovs.db_remote), h1.of, h1.ovs, host="h1", firewall=True)
    try:
        m.update(intent(groups["open"]))
        out = m.apply(Step(sweep=True))
        assert out.ok and out.ports is not None and set(out.ports.up) == {"port-a", "port-b", "port-c"}, out
        a, b, c = (vms[n][0] for n in "abc")
        assert ping_ok(b, "192.168.121.11"), "b -> a: b is in a's remote group"
        assert not ping(c, "192.168.121.11", count=2, timeout=1), "c -> a: not a member of web"
        assert ping_ok(a, "192.168.121.13"), "a -> c: open lets ICMP in; the reply is established"
        assert m.apply(Step(sweep=True)).changes == 0, "re-applying the same intent changed flows"
        m.update(intent(SecurityGroupIntent(True, egress)))  # open no longer lets ICMP in
        assert m.apply(Step(sweep=True)).ok
        assert not ping(a, "192.168.121.13", count=2, timeout=1)
        assert ping_ok(b, "192.168.121.11")
    finally:
        m.close()


def test_unchanged_bridges_are_not_dumped_again_until_a_resync_repairs_drift(lab: Lab) -> None:
    h1 = lab.hosts[0]
    lab.add_vm(h1, "a1", "net-a", "192.168.121.11")
    m = manager(h1, "vxlan")
    try:
        m.update(host_intent(lab, h1, "vxlan"))
        assert m.apply(Step(sweep=True)).ok
        canary = next(f for f in h1.of.dump("br-int") if f.cookie == KAON_COOKIE and f.table == 23)
        sh("ovs-ofctl", "-O", "OpenFlow14", "del-flows", "--strict", h1.ovs.mgmt("br-int"),
           f"table=23,priority={canary.priority}", env=h1.ovs.env())
        assert m.apply(Step(sweep=True)).changes == 0  # wanted flows did not move: br-int not read back
        m.mark_dirty()  # the periodic resync
        assert m.apply(Step(sweep=True)).changes == 1
        assert h1.of.has_cookie_flows("br-int", 23)
    finally:
        m.close()


def test_a_secured_port_binds_in_one_transaction_after_its_flows_without_reading_flows_back(lab: Lab) -> None:
    """The usual bind (network already wired): bundle first, then the tag, one OVSDB transaction, no dump."""
    h1 = lab.hosts[0]
    lab.add_vm(h1, "a", "net-a", "192.168.121.11")
    egress = tuple(FirewallRule("egress", e, None, None, None, None, None) for e in ("IPv4", "IPv6"))
    icmp_in = SecurityGroupIntent(True, (*egress, FirewallRule("ingress", "IPv4", 1, None, None, None, None)))

    def intent(group: SecurityGroupIntent) -> HostIntent:
        base = host_intent(lab, h1, "vxlan")
        vms = h1.vms
        fw = FirewallIntent(ports={f"port-{n}": FirewallPort(f"tap{n}", vms[n][1], True, (vms[n][2],), ("g",))
                                   for n in vms}, groups={"g": group}, sets={})
        return HostIntent(base.host, networks=base.networks, ports=base.ports, firewall=fw)

    m = OvsManager(options(h1, "vxlan"), Ovsdb(h1.ovs.db_remote), h1.of, h1.ovs, host="h1", firewall=True)
    calls: list[str] = []
    db_apply, ofctl = m.db.apply, m.of._ofctl

    def spy_apply(*args: Any, **kwargs: Any) -> bool:
        calls.append("ovsdb")
        return db_apply(*args, **kwargs)

    def spy_ofctl(*args: str, stdin: str | None = None) -> str:
        calls.append(next(a for a in args if not a.startswith("-")))
        return ofctl(*args, stdin=stdin)

    try:
        m.update(intent(icmp_in))
        assert m.apply(Step(sweep=True)).ok
        lab.add_vm(h1, "b", "net-a", "192.168.121.12")
        # ovs-vswitchd gives the new interface its ofport, and the manager's OVSDB cache
        # hears of it, a moment after the add: until then the port is (rightly) DOWN.
        deadline = time.monotonic() + 10
        while not any(p.iface_external_ids.get("iface-id") == "port-b" and (p.ofport or 0) > 0
                      for p in m.db.ports().values()):
            assert time.monotonic() < deadline, "port-b never got an ofport in the manager's OVSDB view"
            time.sleep(0.05)
        m.update(intent(icmp_in))
        m.db.apply, m.of._ofctl = spy_apply, spy_ofctl  # type: ignore[method-assign]
        out = m.apply(Step(sweep=True))
        assert out.ok and out.ports is not None and set(out.ports.up) == {"port-a", "port-b"}, out
        assert calls == ["add-flows", "ovsdb"], calls  # fail closed: filter flows in before the port is tagged
        assert ping_ok(h1.vms["b"][0], "192.168.121.11")
        # A rule removed: the delta against what the last sync left deletes its flow (no read back).
        calls.clear()
        m.update(intent(SecurityGroupIntent(True, egress)))
        assert m.apply(Step(sweep=True)).ok
        assert calls == ["ovsdb", "add-flows"], calls
        assert not ping(h1.vms["b"][0], "192.168.121.11", count=2, timeout=1)
        # What the bridge holds is what the manager believes it holds (the base of its next delta).
        assert {f.key for f in kaon_flows(h1)["br-int"]} == {f.key for f in m._synced["br-int"][0]}
    finally:
        m.db.apply, m.of._ofctl = db_apply, ofctl  # type: ignore[method-assign]
        m.close()


def test_flows_go_to_ovs_by_ofport_and_follow_a_port_plugged_again_under_another_number(lab: Lab) -> None:
    """ovs-ofctl is given numbers (no name lookups in ovs-vswitchd); a re-plugged port's flows follow it."""
    h1 = lab.hosts[0]
    lab.add_vm(h1, "a", "net-a", "192.168.121.11")
    m = manager(h1, "vxlan")
    runs: list[tuple[str, ...]] = []
    ofctl = m.of._ofctl

    def spy_ofctl(*args: str, stdin: str | None = None) -> str:
        runs.append(args)
        return ofctl(*args, stdin=stdin)

    m.of._ofctl = spy_ofctl  # type: ignore[method-assign]
    try:
        base = host_intent(lab, h1, "vxlan")
        down = {pid: replace(p, admin_state_up=False) for pid, p in base.ports.items()}
        m.update(replace(base, ports=down))  # admin down: dead VLAN and a drop flow naming its tap
        assert m.apply(Step(sweep=True)).ok
        assert runs and all("--no-names" in args for args in runs), runs
        drop = Flow(0, 2, "in_port=tapa", "drop")
        assert drop in kaon_flows(h1)["br-int"]
        old = h1.db.ofports()["tapa"]
        # os-vif unplugs and plugs the VM again; ovs-vswitchd gives the port another number.
        sh("ovs-vsctl", f"--db={h1.ovs.db_remote}", "del-port", "br-int", "tapa", "--", "add-port", "br-int", "tapa",
           "--", "set", "Interface", "tapa", f"ofport_request={old + 7}", "external_ids:iface-id=port-a",
           env=h1.ovs.env())
        deadline = time.monotonic() + 10
        while m.db.ofports().get("tapa") != old + 7:
            assert time.monotonic() < deadline, "the manager's OVSDB view never saw the new ofport"
            time.sleep(0.05)
        out = m.apply(Step(sweep=True))  # same wanted flows: only the new number tells them apart
        assert out.ok and out.changes == 2, out  # the drop flow for the new number in, the old one out
        flows = kaon_flows(h1)["br-int"]
        assert drop in flows and not any(f.match == f"in_port={old}" for f in flows), flows
    finally:
        m.of._ofctl = ofctl  # type: ignore[method-assign]
        m.close()


def test_a_pass_with_nothing_to_change_leaves_ovs_vswitchd_alone_and_a_tag_changed_by_hand_is_put_back(lab: Lab) -> None:
    """OVSDB is written from a diff against the IDL cache: nothing when nothing differs, and drift is seen."""
    h1 = lab.hosts[0]
    lab.add_vm(h1, "a", "net-a", "192.168.121.11")
    m = manager(h1, "vxlan")
    try:
        m.update(host_intent(lab, h1, "vxlan"))
        assert m.apply(Step(sweep=True)).ok
        vlan = m.db.ports()["tapa"].tag
        cfg = m.db.next_cfg()
        assert m.apply(Step(sweep=True)).ok
        assert m.db.next_cfg() == cfg, "an unchanged pass made ovs-vswitchd reconfigure"
        # What is compared is OVSDB itself (the IDL cache), not the manager's memory of its last pass.
        sh("ovs-vsctl", f"--db={h1.ovs.db_remote}", "set", "Port", "tapa", "tag=77", env=h1.ovs.env())
        deadline = time.monotonic() + 10
        while m.db.ports()["tapa"].tag != 77:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert m.apply(Step(sweep=True)).ok
        assert m.db.ports()["tapa"].tag == vlan
    finally:
        m.close()
