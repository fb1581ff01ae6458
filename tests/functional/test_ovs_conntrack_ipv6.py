"""Flushing IPv6 entries from ovs-vswitchd's userspace conntrack without killing it (root).

OVS 3.1 (Debian 12) exits on ``dpctl/flush-conntrack zone=N ct_ipv6_dst=...``
when the zone holds an ICMPv6 entry, and on an ICMPv6 entry's whole tuple too;
found by the IPv6 fullstack scenarios on OVS hosts (a security group rule
removed → the agent flushed → every later plug on that host timed out).
kaon.dataplane.ovs_conntrack matches IPv6 tuples against the dump itself and
flushes TCP/UDP entries whole: this runs it against a real ovs-vswitchd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from kaon.dataplane import ovs_conntrack
from kaon.dataplane.ovs_daemons import OvsDaemons
from tests.fixtures import require
from tests.fixtures.netns import NetnsPool

pytestmark = pytest.mark.needs_root

ADDRS = {1: ("2001:db8::1", "10.0.0.1"), 2: ("2001:db8::2", "10.0.0.2")}


def sh(*argv: str, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert r.returncode == 0, f"{' '.join(argv)}: {r.stderr}"
    return r.stdout


@pytest.fixture
def bridge(make_netns: NetnsPool) -> Iterator[tuple[OvsDaemons, dict[int, str]]]:
    """A private OVS (userspace datapath) in a host namespace, two "VMs" on one bridge whose every IP
    packet is committed to conntrack zone 1."""
    require(shutil.which("ovs-vswitchd") is not None, "needs openvswitch-switch (scripts/bootstrap.sh)")
    root = tempfile.mkdtemp(prefix="kovsc-", dir="/tmp")
    host = make_netns("host")
    ovs = OvsDaemons(os.path.join(root, "h"), netns=host)
    try:
        ovs.start()
        ovs.wait_ready()
        vsctl = ["ip", "netns", "exec", host, "ovs-vsctl", f"--db={ovs.db_remote}"]
        sh(*vsctl, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev", env=ovs.env())
        vms = {}
        for i, (v6, v4) in ADDRS.items():
            vm = vms[i] = make_netns(f"vm{i}")
            sh("ip", "-n", host, "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns", vm)
            sh("ip", "-n", host, "link", "set", f"v{i}", "up")
            sh("ip", "-n", vm, "addr", "add", f"{v6}/64", "dev", "eth0", "nodad")
            sh("ip", "-n", vm, "addr", "add", f"{v4}/24", "dev", "eth0")
            sh("ip", "-n", vm, "link", "set", "eth0", "up")
            sh("ip", "netns", "exec", vm, "ethtool", "-K", "eth0", "tx", "off")
            sh(*vsctl, "add-port", "br0", f"v{i}", env=ovs.env())
        for match in ("ip", "ipv6"):
            sh("ovs-ofctl", "add-flow", ovs.mgmt("br0"), f"priority=10,{match},actions=ct(commit,zone=1),NORMAL",
               env=ovs.env())
        yield ovs, vms
    finally:
        ovs.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_ipv6_entries_are_flushed_without_killing_ovs_vswitchd(bridge: tuple[OvsDaemons, dict[int, str]]) -> None:
    ovs, vms = bridge
    sh("ip", "netns", "exec", vms[1], "ping", "-6", "-c", "2", "-W", "2", "2001:db8::2")
    sh("ip", "netns", "exec", vms[1], "ping", "-c", "2", "-W", "2", "10.0.0.2")
    for port in (5000, 5001):  # two UDP "connections" over IPv6, one over IPv4
        sh("ip", "netns", "exec", vms[1], "bash", "-c", f"echo x > /dev/udp/2001:db8::2/{port}")
    sh("ip", "netns", "exec", vms[1], "bash", "-c", "echo x > /dev/udp/10.0.0.2/5000")
    pid = ovs.pid("ovs-vswitchd")
    before = ovs_conntrack.entries(ovs_conntrack.dump(ovs, 1))
    assert sorted(e["ct_nw_proto"] for e in before) == ["1", "17", "17", "17", "58"], before

    # By port: only that entry goes.
    ovs_conntrack.flush(ovs, 1, "ct_ipv6_dst=2001:db8::2,ct_nw_proto=17,ct_tp_dst=5000")
    left = ovs_conntrack.entries(ovs_conntrack.dump(ovs, 1))
    assert [e.get("ct_tp_dst") for e in left if "ct_ipv6_dst" in e and e["ct_nw_proto"] == "17"] == ["5001"]
    # By address alone (what a rule with a remote IP lost asks for): the rest of its TCP/UDP entries go,
    # the ICMPv6 one stays (flushing it is what kills OVS 3.1) and expires; IPv4 is untouched.
    ovs_conntrack.flush(ovs, 1, "ct_ipv6_dst=2001:0db8:0::2")
    left = ovs_conntrack.entries(ovs_conntrack.dump(ovs, 1))
    assert sorted(e["ct_nw_proto"] for e in left) == ["1", "17", "58"], left
    assert ovs.pid("ovs-vswitchd") == pid  # the same process answered every call
    # IPv4 still takes OVS's own partial-tuple flush.
    ovs_conntrack.flush(ovs, 1, "ct_nw_dst=10.0.0.2")
    assert sorted(e["ct_nw_proto"] for e in ovs_conntrack.entries(ovs_conntrack.dump(ovs, 1))) == ["58"]


def test_dump_lines_become_whole_flush_tuples() -> None:
    dumped = ("icmpv6,orig=(src=2001:db8::1,dst=2001:db8::2,id=7,type=128,code=0),reply=(src=2001:db8::2,"
              "dst=2001:db8::1,id=7,type=129,code=0),zone=1\n"
              "tcp,orig=(src=10.0.0.1,dst=10.0.0.2,sport=40000,dport=22),reply=(src=10.0.0.2,dst=10.0.0.1,"
              "sport=22,dport=40000),zone=1,protoinfo=(state=ESTABLISHED)\n"
              "gre,orig=(src=10.0.0.1,dst=10.0.0.2),reply=(src=10.0.0.2,dst=10.0.0.1),zone=1\n")
    assert ovs_conntrack.entries(dumped) == [
        {"ct_ipv6_src": "2001:db8::1", "ct_ipv6_dst": "2001:db8::2", "ct_nw_proto": "58", "icmp_id": "7",
         "icmp_type": "128", "icmp_code": "0"},
        {"ct_nw_src": "10.0.0.1", "ct_nw_dst": "10.0.0.2", "ct_nw_proto": "6", "ct_tp_src": "40000",
         "ct_tp_dst": "22"}]
