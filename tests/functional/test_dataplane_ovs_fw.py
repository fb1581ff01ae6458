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

import pytest

from kaon.agent.ovs_fw_plan import FwPlacement, plan_firewall
from kaon.agent.ovs_plan import OvsAgentOptions, OvsHostIntent, OvsNetwork, OvsPort, plan
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


def test_security_groups_on_ovs_conntrack(make_netns: NetnsPool, host: tuple[str, OvsDaemons]) -> None:
    ns, ovs = host
    of = OpenFlow(ovs.mgmt, ovs.env())
    vm_ns = {}
    with Ovsdb(ovs.db_remote) as db:
        db.apply([BridgeSpec("br-int")], [])
        for name, (mac, ip, _) in VMS.items():
            vm_ns[name] = make_netns(f"vm{name}")
            sh("ip", "-n", ns, "link", "add", f"tap{name}", "type", "veth", "peer", "name", "eth0", "netns",
               vm_ns[name])
            sh("ip", "-n", vm_ns[name], "link", "set", "eth0", "address", mac, "up")
            sh("ip", "-n", vm_ns[name], "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", f"tap{name}", "up")
            db.apply([], [PortSpec.make("br-int", f"tap{name}", own=False)])

        def program(groups: dict) -> int:  # type: ignore[type-arg]
            """Programs br-int; returns how many flows were added or deleted."""
            l2 = plan(OvsHostIntent((OvsNetwork(NET, "vxlan", 100),),
                                    tuple(OvsPort(n, NET, m, f"tap{n}") for n, (m, _, _) in VMS.items())),
                      OvsAgentOptions(local_ip="172.16.0.1", tunnel_types=("vxlan",)))
            db.apply(l2.bridges, l2.ports, l2.tags)
            ofports = db.ofports()
            fw = {"ports": {n: {"port_security": True, "mac": m, "ips": [ip], "security_groups": sgs}
                            for n, (m, ip, sgs) in VMS.items()},
                  "groups": groups, "sets": {"sg4-web": [VMS["a"][1], VMS["b"][1]]}}
            placement = {n: FwPlacement(f"tap{n}", ofports[f"tap{n}"], l2.local_vlans[NET]) for n in VMS}
            changed = 0
            for br, flows in l2.flows.items():
                wanted = flows + plan_firewall(fw, placement) if br == "br-int" else flows
                delta = of.sync(br, wanted, sweep=True)
                changed += len(delta.added) + len(delta.deleted)
            return changed

        assert program(GROUPS) > 0
        a, b, c = vm_ns["a"], vm_ns["b"], vm_ns["c"]
        assert ping(b, "10.0.0.10"), "b -> a: b is in a's remote group"
        assert not ping(c, "10.0.0.10"), "c -> a: c is not in a's remote group"
        # a -> c: c lets ICMP in; c's reply is let into a only as established (c is not in web).
        assert ping(a, "10.0.0.12")
        entries = sh("ovs-appctl", "-t", f"{ovs.rundir}/ovs-vswitchd.{ovs.pid('ovs-vswitchd')}.ctl",
                     "dpctl/dump-conntrack").stdout
        assert "10.0.0.10" in entries and "zone=1" in entries, entries
        # Anti-spoofing: a source address that is not a's own never leaves the port.
        sh("ip", "-n", a, "addr", "add", "10.0.0.99/24", "dev", "eth0")
        assert not ping(a, "10.0.0.12", "-I", "10.0.0.99")
        # The same plan again: no flow changes at all (firewall flows are written as OVS prints them).
        before = of.dump("br-int")
        assert program(GROUPS) == 0
        assert of.dump("br-int") == before
        # A rule change takes effect: open no longer lets ICMP in, and a -> c stops.
        program({**GROUPS, "open": {"rules": ALL_EGRESS}})
        assert not ping(a, "10.0.0.12")
        assert ping(b, "10.0.0.10")
