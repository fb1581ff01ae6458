"""kaon doctor's per-host checks in throwaway network namespaces (root):
br_netfilter's sysctls turned off, a local_ip that is not on the host (Linux
bridge's and Open vSwitch's), and an Open vSwitch agent's bad input against a
private OVS per test: a bridge of bridge_mappings missing, a bridge in
fail_mode secure with no flows, ovsdb-server not answering, and
datapath_type = system on a kernel without the openvswitch module."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from kaon.config import load_config
from kaon.doctor import host_checks, registry
from kaon.doctor.finding import Report
from tests.fixtures import require

pytestmark = pytest.mark.needs_root


def doctor(check: str, **sections: dict[str, Any]) -> Report:
    return registry.run(load_config([], sections), kinds=[registry.HOST], only=[check])


def lines(check: str, **sections: dict[str, Any]) -> list[str]:
    out = doctor(check, **sections)
    assert not out.not_checked, out.not_checked
    return [f.line() for f in out.findings]


def in_ns(ns: str, *argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, capture_output=True)


@pytest.fixture
def ns(make_netns: Any) -> str:
    require(os.geteuid() == 0, "needs root (network namespaces)")
    return make_netns("doctor")


SG = {"firewall_driver": "iptables_hybrid", "netfilter_all_bridges": "true"}


def test_br_netfilter_sysctl_off_where_security_groups_need_it(ns: str) -> None:
    require(os.path.exists("/proc/sys/net/bridge"), "needs br_netfilter loaded on this machine")
    agent = {"host": "h1", "namespace": ns}
    in_ns(ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1", "net.bridge.bridge-nf-call-ip6tables=1")
    assert lines("br_netfilter", agent=agent, securitygroup=SG) == []
    in_ns(ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")
    assert lines("br_netfilter", agent=agent, securitygroup=SG) == [
        f"h1: net.bridge.bridge-nf-call-iptables: = 0 (namespace {ns}): bridged packets skip the security group "
        "rules — sysctl -w net.bridge.bridge-nf-call-iptables=1 and persist it in /etc/sysctl.d/ (the agent sets "
        "it when it runs as root; 0 again means something else resets it)"]
    # No firewall configured: nothing to say about it.
    out = doctor("br_netfilter", agent=agent, securitygroup={"firewall_driver": "noop"})
    assert [s.check for s in out.not_applicable] == ["br_netfilter"] and not out.findings


def test_br_netfilter_per_bridge_wants_the_sysctls_off(ns: str) -> None:
    # In a namespace of its own the agent turns br_netfilter on per bridge and the sysctls off:
    # 0 is what it wants there, nothing to report.
    require(os.path.exists("/proc/sys/net/bridge"), "needs br_netfilter loaded on this machine")
    agent = {"host": "h1", "namespace": ns}
    in_ns(ns, "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0", "net.bridge.bridge-nf-call-ip6tables=0")
    assert lines("br_netfilter", agent=agent, securitygroup={"firewall_driver": "nftables"}) == []
    assert len(lines("br_netfilter", agent=agent, securitygroup=SG)) == 2  # all bridges asked for: both off


def test_br_netfilter_module_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Unloading br_netfilter would change the whole machine: the missing
    # /proc/sys/net/bridge is simulated at the one function that reads it.
    monkeypatch.setattr(host_checks, "_read_sysctls", lambda: dict.fromkeys(host_checks.NF_SYSCTLS))
    assert lines("br_netfilter", agent={"host": "h1"}, securitygroup=SG) == [
        "h1: br_netfilter: is not loaded: no /proc/sys/net/bridge; security groups' stateful rules never see "
        "bridged traffic — modprobe br_netfilter, and list it in /etc/modules-load.d/ so it loads at boot"]


def test_local_ip_not_on_the_host(ns: str) -> None:
    pytest.importorskip("kaon.config_check", reason="kaon.config_check (branch firsthour) is not merged yet")
    in_ns(ns, "ip", "addr", "add", "10.77.0.1/24", "dev", "lo")
    agent = {"host": "h1", "namespace": ns}
    assert lines("local_ip", agent=agent, vxlan={"local_ip": "10.77.0.1"}) == []
    found = lines("local_ip", agent=agent, vxlan={"local_ip": "10.77.0.9"})
    assert len(found) == 1 and found[0].startswith("h1: [vxlan] local_ip: 10.77.0.9 ")
    assert found[0].endswith("— set local_ip to this host's address on the overlay network (ip -br addr shows them)")


@pytest.fixture
def ovs(ns: str) -> Iterator[Any]:
    require(shutil.which("ovs-vswitchd") is not None, "needs openvswitch-switch (scripts/bootstrap.sh)")
    from kaon.dataplane.ovs_daemons import OvsDaemons

    rundir = tempfile.mkdtemp(prefix="kdoc-", dir="/tmp")  # short: unix socket paths stay under 107 bytes
    daemons = OvsDaemons(rundir, netns=ns)
    try:
        daemons.start()
        daemons.wait_ready()
        yield daemons
    finally:
        daemons.stop()
        shutil.rmtree(rundir, ignore_errors=True)


def vsctl(ovs: Any, *args: str) -> None:
    subprocess.run(["ovs-vsctl", f"--db={ovs.db_remote}", *args], check=True, capture_output=True, env=ovs.env())


def test_ovs_bridge_secure_without_flows_and_a_missing_bridge(ovs: Any) -> None:
    vsctl(ovs, "add-br", "br-ex", "--", "set", "bridge", "br-ex", "datapath_type=netdev", "fail_mode=secure")
    conf = {"ovs": {"bridge_mappings": "physnet1:br-ex,physnet2:br-eth9", "ovsdb_connection": ovs.db_remote},
            "agent": {"host": "h1"}}
    assert lines("ovs_bridges", **conf) == [
        "h1: OVS bridge br-eth9: is named in [ovs] bridge_mappings but does not exist: the Open vSwitch agent "
        "refuses to start — ovs-vsctl add-br br-eth9 and add the physical interface to it, or fix bridge_mappings",
        "h1: OVS bridge br-ex: fail_mode = secure and no flows: it drops every packet — start the OVS agent on this "
        "host, or ovs-vsctl del-fail-mode br-ex while it is down"]
    vsctl(ovs, "add-br", "br-eth9", "--", "set", "bridge", "br-eth9", "datapath_type=netdev")
    subprocess.run(["ovs-ofctl", "add-flow", ovs.mgmt("br-ex"), "priority=0,actions=normal"], check=True,
                   capture_output=True, env=ovs.env())
    assert lines("ovs_bridges", **conf) == []


def test_ovs_bridges_not_applicable_without_mappings() -> None:
    out = doctor("ovs_bridges", agent={"host": "h1"})
    assert [s.check for s in out.not_applicable] == ["ovs_bridges"] and not out.findings and not out.not_checked


def test_ovs_local_ip_not_on_the_host(ns: str) -> None:
    in_ns(ns, "ip", "addr", "add", "10.77.0.1/24", "dev", "lo")
    agent = {"host": "h1", "namespace": ns}
    assert lines("local_ip", agent=agent, ovs={"local_ip": "10.77.0.1"}) == []
    assert lines("local_ip", agent=agent, ovs={"local_ip": "10.77.0.9"}) == [
        f"h1: [ovs] local_ip: 10.77.0.9 is not an address of any interface of network namespace {ns} (VXLAN "
        "devices bound to it could never send) — set local_ip to this host's address on the overlay network "
        "(ip -br addr shows them)"]


def test_ovsdb_server_not_answering_is_a_finding_with_the_fix(tmp_path: Any) -> None:
    remote = f"unix:{tmp_path}/db.sock"
    out = doctor("ovsdb", ovs={"ovsdb_connection": remote}, agent={"host": "h1"})
    assert len(out.findings) == 1 and not out.not_checked, out
    line = out.findings[0].line()
    assert line.startswith(f"h1: ovsdb-server at {remote}: does not answer: ovsdb-server at {remote} unreachable "
                           "after "), line
    assert line.endswith("— start Open vSwitch on this host (systemctl start openvswitch-switch), or set [ovs] "
                         "ovsdb_connection to where it listens; the agent retries and carries on by itself once it "
                         "answers")
    # ovs_bridges cannot look without it: said once, as "not checked", beside the finding.
    both = registry.run(load_config([], {"ovs": {"ovsdb_connection": remote, "bridge_mappings": "p:br-ex"}}),
                        kinds=[registry.HOST], only=["ovsdb", "ovs_bridges"])
    assert [f.check for f in both.findings] == ["ovsdb"] and [n.check for n in both.not_checked] == ["ovs_bridges"]
    assert both.exit_code == 1


def test_system_datapath_without_the_kernel_module_says_use_netdev(ovs: Any) -> None:
    vsctl(ovs, "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=system")
    conf = {"ovs": {"ovsdb_connection": ovs.db_remote, "datapath_type": "system"}, "agent": {"host": "h1"}}
    if host_checks.ovs_kernel_module_loaded():  # a kernel with the module: system is a real datapath
        assert lines("ovsdb", **conf) == []
        return
    assert lines("ovsdb", **conf) == [
        "h1: [ovs] datapath_type: = system, but this kernel has no openvswitch module (no /sys/module/openvswitch): "
        "ovs-vswitchd makes the bridges (ovs-vsctl add-br succeeds) and they forward nothing; without a datapath "
        "now: br-int — set datapath_type = netdev (Open vSwitch's userspace datapath) and restart the agent, or "
        "load the module (modprobe openvswitch) where the kernel has it"]
    # The default datapath_type is Neutron's, system: the same finding without the option.
    assert len(lines("ovsdb", ovs={"ovsdb_connection": ovs.db_remote})) == 1
    vsctl(ovs, "set", "bridge", "br-int", "datapath_type=netdev")
    conf["ovs"]["datapath_type"] = "netdev"
    assert lines("ovsdb", **conf) == []


def test_ovsdb_not_applicable_to_a_linux_bridge_agent() -> None:
    out = doctor("ovsdb", agent={"host": "h1"}, vxlan={"local_ip": "10.0.0.1"})
    assert [s.check for s in out.not_applicable] == ["ovsdb"] and not out.findings and not out.not_checked
