"""kaon.lab.ovs_host: lab hosts (kaon.lab.topology) running a private OVS each, VXLAN between them (root)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from kaon.agent.ovs_plan import OvsAgentOptions, OvsHostIntent, OvsNetwork, OvsPeer, OvsPort, plan
from kaon.dataplane.openflow import OpenFlow
from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.dataplane.ovs_model import BridgeSpec, PortSpec
from kaon.dataplane.ovsdb import Ovsdb
from kaon.lab import ip, topology
from kaon.lab.ovs_host import ovs_rundir, start_host_ovs, stop_host_ovs
from tests.fixtures import require
from tests.fixtures.netns import remove

pytestmark = pytest.mark.needs_root


@pytest.fixture
def lab(netns_prefix: str) -> Iterator[tuple[topology.Names, str]]:
    require(os.geteuid() == 0, "needs root: creates network namespaces")
    require(shutil.which("ovs-vswitchd") is not None, "needs openvswitch-switch (scripts/bootstrap.sh)")
    names = topology.Names(f"{netns_prefix}lo")
    lab_dir = tempfile.mkdtemp(prefix="kovsl-", dir="/tmp")
    try:
        yield names, lab_dir
    finally:
        for ns in [names.host(1), names.host(2), names.vm("a1"), names.vm("a2"), *names.fixed()]:
            remove(ns)
        shutil.rmtree(lab_dir, ignore_errors=True)


def test_lab_hosts_on_ovs_ping_over_vxlan_and_stop_by_pid(lab: tuple[topology.Names, str]) -> None:
    names, lab_dir = lab
    topology.ensure_fabric(names)
    records = {}
    try:
        for i in (1, 2):
            ns = topology.ensure_host(names, i)
            records[i] = start_host_ovs(lab_dir, ns, i)
            assert start_host_ovs(lab_dir, ns, i)["pids"] == records[i]["pids"]  # idempotent: same daemons
            assert ip.addresses(ns, "br-phy") == [f"{topology.local_ip(i)}/24"]
            assert ip.addresses(ns, "eth0") == []
        for i in (1, 2):
            rec = records[i]
            ovs = OvsDaemons(rec["rundir"], netns=names.host(i))
            vm = names.vm(f"a{i}")
            ip.ensure_netns(vm)
            ip.ensure_veth(names.host(i), f"tapa{i}", vm, "eth0")
            ip.set_up(vm, "eth0", mac=f"fa:16:3e:00:00:0{i}")
            ip.ensure_address(vm, "eth0", f"10.1.0.{i}/24")
            ip.set_up(names.host(i), f"tapa{i}")
            other = 3 - i
            opts = OvsAgentOptions(bridge_mappings=tuple(rec["bridge_mappings"].items()), local_ip=rec["local_ip"],
                                   tunnel_types=("vxlan",))
            intent = OvsHostIntent(
                (OvsNetwork("n", "vxlan", 77),), (OvsPort(f"p{i}", "n", f"fa:16:3e:00:00:0{i}", f"tapa{i}"),),
                (OvsPeer("n", topology.local_ip(other), ((f"fa:16:3e:00:00:0{other}", f"10.1.0.{other}"),)),))
            p = plan(intent, opts)
            with Ovsdb(rec["db"]) as db:
                db.apply([BridgeSpec("br-int")], [PortSpec.make("br-int", f"tapa{i}", own=False)])
                db.apply(p.bridges, p.ports, p.tags, sweep=True, protected=p.protected)
            of = OpenFlow(ovs.mgmt, ovs.env())
            for br, flows in p.flows.items():
                of.sync(br, flows, sweep=True)
        ok = any(ip.exec_in(names.vm("a1"), ["ping", "-c", "1", "-W", "1", "10.1.0.2"], check=False).returncode == 0
                 for _ in range(5))
        assert ok, "VM on lab host 1 -> VM on lab host 2 over VXLAN between the hosts' OVS"
    finally:
        pids = [pid for rec in records.values() for pid in rec["pids"].values()]
        for i, rec in records.items():
            stop_host_ovs(rec, names.host(i), i)
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    for i in (1, 2):
        assert ip.addresses(names.host(i), "eth0") == [f"{topology.local_ip(i)}/24"]  # back as the lab made it
        assert not os.path.exists(records[i]["rundir"])


def test_rundir_falls_back_to_a_short_path_for_deep_lab_dirs() -> None:
    assert str(ovs_rundir("/tmp/lab", "kl-h1")) == "/tmp/lab/ovs-kl-h1"
    deep = "/tmp/" + "d" * 90
    assert str(ovs_rundir(deep, "kl-h1")) == "/run/kaon-ovs/kl-h1"
