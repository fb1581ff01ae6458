"""The OVS firewall flows (kaon.agent.ovs_fw_plan) on a real br-int with userspace conntrack (root).

One simulated host (a namespace with its private OVS, userspace datapath),
three "VMs" plugged by veth on one network; security groups as the API would
hand them (same shape as the nftables driver's intent).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from kaon.agent.fw_conntrack import Flow as Stale
from kaon.agent.ovs_fw_conntrack import ct_tuples
from kaon.agent.ovs_fw_plan import FwPlacement, plan_firewall
from kaon.agent.ovs_plan import OvsAgentOptions, OvsHostIntent, OvsNetwork, OvsPort, plan
from kaon.dataplane import ovs_conntrack
from kaon.dataplane.openflow import OpenFlow
from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.dataplane.ovs_model import BridgeSpec, PortSpec
from kaon.dataplane.ovsdb import Ovsdb
from tests.fixtures import require
from tests.fixtures.netns import NetnsPool

pytestmark = pytest.mark.needs_root

NET = "net1"
VMS = {"a": ("fa:16:3e:00:00:0a", "10.0.0.10", ["web"]),
       "b": ("fa:16:3e:00:00:0b", "10.0.0.11", ["web"]),
       "c": ("fa:16:3e:00:00:0c", "10.0.0.12", ["open"])}
ALL_EGRESS = [{"direction": "egress", "ethertype": e} for e in ("IPv4", "IPv6")]
GROUPS = {
    # web: ICMP in only from members of web; everything out
    "web": {"rules": [*ALL_EGRESS, {"direction": "ingress", "ethertype": "IPv4", "protocol": 1,
                                    "remote_set": "sg4-web"}]},
    # open: ICMP in from anywhere; everything out
    "open": {"rules": [*ALL_EGRESS, {"direction": "ingress", "ethertype": "IPv4", "protocol": 1}]},
}


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {res.returncode}: {res.stderr}")
    return res


def ping(ns: str, ip: str, *extra: str) -> bool:
    return sh("ip", "netns", "exec", ns, "ping", "-c", "2", "-W", "1", "-i", "0.2", *extra, ip,
              check=False).returncode == 0


@pytest.fixture
def host(make_netns: NetnsPool) -> Iterator[tuple[str, OvsDaemons]]:
    require(shutil.which("ovs-vswitchd") is not None, "needs openvswitch-switch (scripts/bootstrap.sh)")
    root = tempfile.mkdtemp(prefix="kovsf-", dir="/tmp")
    ns = make_netns("fw")
    ovs = OvsDaemons(os.path.join(root, "h"), netns=ns)
    try:
        ovs.start()
        ovs.wait_ready()
        yield ns, ovs
    finally:
        ovs.stop()
        shutil.rmtree(root, ignore_errors=True)


def dump_conntrack(ovs: OvsDaemons) -> str:
    return ovs_conntrack.dump(ovs)


class Br:
    """br-int of the test host with veth VMs plugged on one network, programmed as the agent would."""

    def __init__(self, make_netns: NetnsPool, ns: str, ovs: OvsDaemons, db: Ovsdb,
                 vms: dict[str, tuple[str, str, list[str]]]) -> None:
        self.of, self.db, self.vms = OpenFlow(ovs.mgmt, ovs.env()), db, vms
        self.ns: dict[str, str] = {}
        db.apply([BridgeSpec("br-int")], [])
        for name, (mac, ip, _) in vms.items():
            self.ns[name] = make_netns(f"vm{name}")
            sh("ip", "-n", ns, "link", "add", f"tap{name}", "type", "veth", "peer", "name", "eth0", "netns",
               self.ns[name])
            sh("ip", "-n", self.ns[name], "link", "set", "eth0", "address", mac, "up")
            sh("ip", "-n", self.ns[name], "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", f"tap{name}", "up")
            db.apply([], [PortSpec.make("br-int", f"tap{name}", own=False)])

    def program(self, groups: dict[str, Any], sets: dict[str, Any], stateless: tuple[str, ...] = ()) -> int:
        """Programs br-int; returns how many flows were added or deleted."""
        l2 = plan(OvsHostIntent((OvsNetwork(NET, "vxlan", 100),),
                                tuple(OvsPort(n, NET, m, f"tap{n}") for n, (m, _, _) in self.vms.items())),
                  OvsAgentOptions(local_ip="172.16.0.1", tunnel_types=("vxlan",)))
        self.db.apply(l2.bridges, l2.ports, l2.tags)
        ofports = self.db.ofports()
        fw = {"ports": {n: {"port_security": True, "mac": m, "ips": [ip], "security_groups": sgs,
                            "stateful": n not in stateless}
                        for n, (m, ip, sgs) in self.vms.items()},
              "groups": groups, "sets": sets}
        placement = {n: FwPlacement(f"tap{n}", ofports[f"tap{n}"], l2.local_vlans[NET]) for n in self.vms}
        changed = 0
        for br, flows in l2.flows.items():
            wanted = flows + plan_firewall(fw, placement) if br == "br-int" else flows
            delta = self.of.sync(br, wanted, sweep=True)
            changed += len(delta.added) + len(delta.deleted)
        return changed


def test_security_groups_on_ovs_conntrack(make_netns: NetnsPool, host: tuple[str, OvsDaemons]) -> None:
    ns, ovs = host
    with Ovsdb(ovs.db_remote) as db:
        br = Br(make_netns, ns, ovs, db, VMS)
        sets = {"sg4-web": [VMS["a"][1], VMS["b"][1]]}
        assert br.program(GROUPS, sets) > 0
        a, b, c = br.ns["a"], br.ns["b"], br.ns["c"]
        assert ping(b, "10.0.0.10"), "b -> a: b is in a's remote group"
        assert not ping(c, "10.0.0.10"), "c -> a: c is not in a's remote group"
        # a -> c: c lets ICMP in; c's reply is let into a only as established (c is not in web).
        assert ping(a, "10.0.0.12")
        entries = dump_conntrack(ovs)
        assert "10.0.0.10" in entries and "zone=1" in entries, entries
        # Anti-spoofing: a source address that is not a's own never leaves the port.
        sh("ip", "-n", a, "addr", "add", "10.0.0.99/24", "dev", "eth0")
        assert not ping(a, "10.0.0.12", "-I", "10.0.0.99")
        # The same plan again: no flow changes at all (firewall flows are written as OVS prints them).
        before = br.of.dump("br-int")
        assert br.program(GROUPS, sets) == 0
        assert br.of.dump("br-int") == before
        # A rule change takes effect: open no longer lets ICMP in, and a -> c stops.
        br.program({**GROUPS, "open": {"rules": ALL_EGRESS}}, sets)
        assert not ping(a, "10.0.0.12")
        assert ping(b, "10.0.0.10")
        # ovs-vswitchd's conntrack (not the kernel's) is what the cleanup flushes, with partial tuples
        # in a zone: here as for a's remote group losing b, then a losing its ICMP rule.
        assert "src=10.0.0.11,dst=10.0.0.10" in dump_conntrack(ovs)
        for t in ct_tuples(Stale(1, "ipv4", "10.0.0.10", False, "icmp", None, "10.0.0.11")):
            ovs_conntrack.flush(ovs, 1, t)
        left = dump_conntrack(ovs)
        assert "orig=(src=10.0.0.11,dst=10.0.0.10" not in left and "orig=(src=10.0.0.12,dst=10.0.0.10" in left, left
        for t in ct_tuples(Stale(1, "ipv4", "10.0.0.10", False, "icmp")):
            ovs_conntrack.flush(ovs, 1, t)
        left = dump_conntrack(ovs)
        assert "dst=10.0.0.10," not in left.split("reply=")[0] and "orig=(src=10.0.0.10" in left, left
        ovs_conntrack.flush(ovs, 1, "ct_nw_src=10.0.0.10,ct_nw_dst=10.0.0.11,ct_nw_proto=1")  # exact: none left


def test_stateless_ports_and_overlapping_remote_groups(make_netns: NetnsPool, host: tuple[str, OvsDaemons]) -> None:
    """Two remote groups sharing a member and a rule match (one flow, two conjunctions); a stateless
    port that passes only what its rules say, both ways, with no conntrack entry."""
    ns, ovs = host
    icmp_in = {"direction": "ingress", "ethertype": "IPv4", "protocol": 1}
    groups = {
        # a: ICMP in from members of web or of ops; b is in both (one member flow naming both conjunctions)
        "web": {"rules": [*ALL_EGRESS, {**icmp_in, "remote_set": "sg4-web"}, {**icmp_in, "remote_set": "sg4-ops"}]},
        "free": {"rules": [icmp_in, {"direction": "egress", "ethertype": "IPv4", "protocol": 1}]},
        "one-way": {"rules": [icmp_in]},  # ICMP in but no rule for the replies out
        # stateful, ICMP out only to members of ops (an egress conjunction), nothing in but replies
        "talker": {"rules": [{"direction": "egress", "ethertype": "IPv4", "protocol": 1, "remote_set": "sg4-ops"}]},
    }
    vms = {"a": ("fa:16:3e:00:00:0a", "10.0.0.10", ["web"]),
           "b": ("fa:16:3e:00:00:0b", "10.0.0.11", ["web"]),
           "c": ("fa:16:3e:00:00:0c", "10.0.0.12", ["free"]),
           "d": ("fa:16:3e:00:00:0d", "10.0.0.13", ["one-way"]),
           "e": ("fa:16:3e:00:00:0e", "10.0.0.15", ["free"]),
           "f": ("fa:16:3e:00:00:0f", "10.0.0.16", ["talker"])}
    sets = {"sg4-web": ["10.0.0.11", "10.0.0.14"], "sg4-ops": ["10.0.0.11", "10.0.0.12"]}  # no two merge
    with Ovsdb(ovs.db_remote) as db:
        br = Br(make_netns, ns, ovs, db, vms)
        br.program(groups, sets, stateless=("c", "d", "e"))
        assert br.program(groups, sets, stateless=("c", "d", "e")) == 0, "multi-conjunction flows re-read differently"
        shared = [f for f in br.of.dump("br-int") if f.match == "ip,nw_src=10.0.0.11"]
        assert len(shared) == 1 and shared[0].actions.count("conjunction(") == 2, shared
        a, b, c, d, e, f = (br.ns[n] for n in "abcdef")
        assert ping(b, "10.0.0.10"), "b -> a: in both of a's remote groups"
        assert ping(c, "10.0.0.10"), "c -> a: in ops; c's stateless egress rule lets it out, a's reply in by rule"
        assert not ping(d, "10.0.0.10"), "d -> a: in neither group"
        assert ping(a, "10.0.0.12"), "a -> c: c's rules let the request in and the reply out"
        assert not ping(a, "10.0.0.13"), "a -> d: d lets the request in, but nothing lets its reply out"
        assert ping(f, "10.0.0.12"), "f -> c: c is in ops, f's egress conjunction lets it out"
        assert not ping(f, "10.0.0.15"), "f -> e: e (free) would answer, but it is not in ops"
        # Between two stateless ports nothing is tracked (a's entries are a's: a is stateful).
        ovs_conntrack.flush(ovs, 1, "ct_nw_src=10.0.0.12")
        assert ping(c, "10.0.0.15") and ping(e, "10.0.0.12")
        entries = dump_conntrack(ovs)
        assert "10.0.0.15" not in entries and "orig=(src=10.0.0.12" not in entries, entries
        # Membership: c leaves ops, and c -> a stops (a's conjunction loses that member's flow).
        sets["sg4-ops"] = ["10.0.0.11"]
        assert br.program(groups, sets, stateless=("c", "d", "e")) == 2  # its member flow in 82 (a's) and 72 (f's)
        assert not ping(c, "10.0.0.10")
        assert not ping(f, "10.0.0.12")
