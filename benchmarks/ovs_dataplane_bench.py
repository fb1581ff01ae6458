"""OVS data-plane benchmark (issue 11): kaon's Open vSwitch agent next to hand-written flows.

VM-to-VM across VXLAN, in one run, side by side (iperf3 runs alternate between the two, so the load
of a shared machine hits both alike), median Gbit/s of ``--runs`` runs of ``--seconds`` s:

* kaon: a real ``kaon server`` and a ``kaon lab`` of two Open vSwitch hosts (userspace datapath,
  each its private OVS; tests/fullstack/stack.py), a VM on each on one VXLAN network, their ports in
  a security group that lets everything in (the agent's ``firewall_driver = openvswitch``: conntrack
  flows on br-int, as deployed); and the same with port security off (kaon's L2 flows alone);
* baseline: the same two userspace bridges set up by hand as shared/reference/dataplane.md §6 does
  (private ovsdb-server + ovs-vswitchd per host namespace, br-int/br-tun/br-phy, patch ports, one
  VXLAN port, veth VMs with ``tx`` checksum offload off) with hand-written flows: br-int NORMAL,
  br-tun local VLAN <-> VNI. Target: kaon >= 90 % of it.

Everything of the baseline lives in namespaces of a unique prefix and one OVS rundir each; it is
undone by exact name and by the daemons' pids.

    sudo .venv/bin/python benchmarks/ovs_dataplane_bench.py [--seconds 3 --runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dataplane_bench import measure, run  # noqa: E402
from kaon.dataplane.ovs_daemons import OvsDaemons  # noqa: E402
from tests.fullstack.stack import Stack, stack, wait_for  # noqa: E402

VM1, VM2 = "10.0.0.11", "10.0.0.12"
VNI, TAG = 1001, 1


class Baseline:
    """Two hosts, each with its own userspace OVS, flows written by hand (dataplane.md §6.1-6.4)."""

    def __init__(self) -> None:
        self.prefix = f"kob{uuid.uuid4().hex[:5]}-"
        self.made: list[str] = []
        self.ovs: list[OvsDaemons] = []

    def ns(self, name: str) -> str:
        ns = f"{self.prefix}{name}"
        run("ip", "netns", "add", ns)
        self.made.append(ns)
        run("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def up(self) -> None:
        ul = self.ns("ul")
        run("ip", "-n", ul, "link", "add", "br-ul", "type", "bridge")
        run("ip", "-n", ul, "link", "set", "br-ul", "up")
        for h, vm_ip in ((1, VM1), (2, VM2)):
            host = self.ns(f"h{h}")
            ovs = OvsDaemons(Path("/run/kaon-ovs") / f"{self.prefix}h{h}", netns=host)
            self.ovs.append(ovs)
            ovs.start()
            ovs.wait_ready()
            env = ovs.env()

            def vs(*args: str, env: dict[str, str] = env, ovs: OvsDaemons = ovs) -> None:
                subprocess.run(["ovs-vsctl", f"--db={ovs.db_remote}", *args], env=env, check=True,
                               capture_output=True, timeout=30)

            for br in ("br-int", "br-tun", "br-phy"):
                vs("--may-exist", "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
            vs("set", "bridge", "br-int", "fail_mode=secure", "--", "set", "bridge", "br-tun", "fail_mode=secure")
            vs("add-port", "br-int", "patch-tun", "--", "set", "interface", "patch-tun", "type=patch",
               "options:peer=patch-int", "--", "add-port", "br-tun", "patch-int", "--", "set", "interface",
               "patch-int", "type=patch", "options:peer=patch-tun")
            # The underlay: a veth into br-phy, the VTEP address on br-phy's internal port.
            run("ip", "-n", ul, "link", "add", f"ul-h{h}", "type", "veth", "peer", "name", "ul0", "netns", host)
            run("ip", "-n", ul, "link", "set", f"ul-h{h}", "master", "br-ul", "up")
            run("ip", "netns", "exec", ul, "ethtool", "-K", f"ul-h{h}", "tx", "off")  # sends into OVS (§6.6)
            run("ip", "-n", host, "link", "set", "ul0", "up")
            vs("add-port", "br-phy", "ul0")
            run("ip", "-n", host, "addr", "add", f"172.31.0.{h}/24", "dev", "br-phy")
            run("ip", "-n", host, "link", "set", "br-phy", "up")
            vs("add-port", "br-tun", "vxlan-peer", "--", "set", "interface", "vxlan-peer", "type=vxlan",
               f"options:remote_ip=172.31.0.{3 - h}", f"options:local_ip=172.31.0.{h}", "options:key=flow")
            # The VM: a veth on br-int with the network's local VLAN.
            vm = self.ns(f"vm{h}")
            run("ip", "-n", host, "link", "add", "tap-vm", "type", "veth", "peer", "name", "eth0", "netns", vm)
            run("ip", "-n", host, "link", "set", "tap-vm", "up")
            vs("add-port", "br-int", "tap-vm", f"tag={TAG}")
            run("ip", "-n", vm, "link", "set", "eth0", "address", f"fa:16:3e:00:00:0{h}", "mtu", "1450", "up")
            run("ip", "-n", vm, "addr", "add", f"{vm_ip}/24", "dev", "eth0")
            run("ip", "netns", "exec", vm, "ethtool", "-K", "eth0", "tx", "off")
            flows = "\n".join((
                "table=0,priority=0,actions=drop",
                "table=0,priority=1,in_port=patch-int,actions=resubmit(,2)",
                "table=0,priority=1,in_port=vxlan-peer,actions=resubmit(,4)",
                f"table=2,priority=1,dl_vlan={TAG},actions=strip_vlan,set_tunnel:{VNI},output:vxlan-peer",
                "table=2,priority=0,actions=drop",
                f"table=4,priority=1,tun_id={VNI},actions=mod_vlan_vid:{TAG},output:patch-int",
                "table=4,priority=0,actions=drop"))
            for bridge, text in (("br-int", "table=0,priority=0,actions=NORMAL"), ("br-tun", flows)):
                subprocess.run(["ovs-ofctl", "add-flows", ovs.mgmt(bridge), "-"], input=text + "\n", text=True,
                               env=env, check=True, capture_output=True, timeout=30)

    def close(self) -> None:
        for ovs in self.ovs:
            ovs.stop()
            shutil.rmtree(ovs.rundir, ignore_errors=True)
        for ns in reversed(self.made):
            run("ip", "netns", "delete", ns, check=False)


def kaon_topology(s: Stack) -> dict[str, str]:
    """One VXLAN network, VM a1 on h1 and a2 on h2, their ports in an open group; the VMs' namespaces."""
    net = s.network("bench", "10.0.0.0/24", enable_dhcp=False)
    sg = s.api("POST", "/v2.0/security-groups", {"security_group": {"name": "bench-open"}})["security_group"]
    s.api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv4"}})
    vms = {"a1": s.vm("a1", "h1", net["id"], ip_address=VM1, security_groups=["bench-open"]),
           "a2": s.vm("a2", "h2", net["id"], ip_address=VM2, security_groups=["bench-open"])}
    wait_for("a1 pings a2", lambda: s.ping("a1", VM2), 30, interval=0.2)
    return {"a1": s.lab.vm("a1")["namespace"], "a2": s.lab.vm("a2")["namespace"],
            "p1": vms["a1"]["port_id"], "p2": vms["a2"]["port_id"], "sg": sg["id"]}


def port_security(s: Stack, ports: tuple[str, ...], sg: str, on: bool) -> None:
    """Both ports in the open group with port security, or neither (Neutron refuses groups without it)."""
    for port in ports:
        body: dict[str, Any] = {"port_security_enabled": on, "security_groups": [sg] if on else []}
        s.api("PUT", f"/v2.0/ports/{port}", {"port": body})
    s.wait_converged()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("ovs_dataplane_bench: needs root (namespaces, OVS daemons)", file=sys.stderr)
        return 2
    base = Baseline()
    try:
        base.up()
        wait_for("baseline vm1 pings vm2", lambda: run("ip", "netns", "exec", f"{base.prefix}vm1", "ping", "-c1",
                                                       "-W1", VM2, check=False).returncode == 0, 15)
        with tempfile.TemporaryDirectory(prefix="kaon-ovs-dp-bench-") as tmp, \
                stack(Path(tmp), hosts=2, mechanism="openvswitch") as s:
            topo = kaon_topology(s)
            ports = (topo["p1"], topo["p2"])
            paths = {"kaon": (topo["a2"], topo["a1"], VM2), "kaon-no-port-security": (topo["a2"], topo["a1"], VM2),
                     "baseline": (f"{base.prefix}vm2", f"{base.prefix}vm1", VM2)}
            state = {"on": True}

            def secured(on: bool) -> None:
                if state["on"] != on:
                    port_security(s, ports, topo["sg"], on)
                    state["on"] = on

            res = measure(paths, args.runs, args.seconds, before={
                "kaon": lambda: secured(True), "kaon-no-port-security": lambda: secured(False)})
    finally:
        base.close()
    b = statistics.median(res["baseline"])
    runs = lambda v: " ".join(f"{x:.2f}" for x in v)  # noqa: E731
    print(f"VM-to-VM across VXLAN on OVS userspace (h1 -> h2), {args.runs} x {args.seconds} s, median Gbit/s:")
    print(f"  hand-written flows (baseline): {b:.2f} [{runs(res['baseline'])}]")
    for name, label in (("kaon", "kaon, firewall_driver = openvswitch, open group"),
                        ("kaon-no-port-security", "kaon, port security off")):
        k = statistics.median(res[name])
        print(f"  {label}: {k:.2f} [{runs(res[name])}] = {k / b:.0%} of the baseline (target >= 90%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
