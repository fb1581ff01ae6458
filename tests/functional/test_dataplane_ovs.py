"""The OVS agent's data plane on the wire: private OVS per simulated host, programmed from the planner.

Two "hosts" are network namespaces, each with its own ovsdb-server and
ovs-vswitchd (userspace datapath, OVS_RUNDIR unique per test, started and
stopped by pid).  They share an underlay Linux bridge (tunnels: 172.16.0.0/24
on each host's ``br-phy``) and a provider Linux bridge (``br-ex``'s NIC).
"VMs" are namespaces plugged into br-int by veth, as os-vif plugs a tap.
Everything on br-int/br-tun/br-ex is programmed from kaon.agent.ovs_plan
through kaon.dataplane.ovsdb and kaon.dataplane.openflow.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from kaon.agent.ovs_plan import (
    DEAD_VLAN,
    OvsAgentOptions,
    OvsHostIntent,
    OvsNetwork,
    OvsPeer,
    OvsPlan,
    OvsPort,
    plan,
)
from kaon.dataplane.openflow import Delta, OpenFlow
from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.dataplane.ovs_model import KAON_COOKIE, BridgeSpec, Flow, PortSpec
from kaon.dataplane.ovsdb import OvsDatapathError, Ovsdb, OvsdbError, OvsdbUnreachable
from tests.fixtures import require
from tests.fixtures.netns import NetnsPool

pytestmark = pytest.mark.needs_root

PHYSNET = "physnet1"


def sh(*argv: str, check: bool = True, env: dict[str, str] | None = None) -> str:
    res = subprocess.run(argv, capture_output=True, text=True, env=env)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: exit {res.returncode}: {res.stderr}")
    return res.stdout


def alive(pid: int) -> bool:
    """Running (a detached daemon that exited may stay a zombie until its new parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def ping(ns: str, ip: str, count: int = 2, timeout: int = 2) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", str(count), "-W", str(timeout), "-i", "0.2", ip],
                          capture_output=True).returncode == 0


def ping_ok(ns: str, ip: str, deadline: float = 10.0) -> bool:
    """First packets may be lost to ARP and MAC learning: retry a few times."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if ping(ns, ip, count=1, timeout=1):
            return True
    return False


@pytest.fixture
def rundir_root() -> Iterator[str]:
    # Short: unix socket paths (ovs-vswitchd.<pid>.ctl, br-int.mgmt) must stay under 107 bytes.
    d = tempfile.mkdtemp(prefix="kovs-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def daemons(make_netns: NetnsPool, rundir_root: str) -> Iterator[list[OvsDaemons]]:
    """Started OVS instances, stopped by pid at teardown (append to the list)."""
    require(shutil.which("ovs-vswitchd") is not None, "needs openvswitch-switch (scripts/bootstrap.sh)")
    started: list[OvsDaemons] = []
    yield started
    for d in started:
        d.stop()


# ---------------------------------------------------------------- the two-host lab

@dataclass
class Host:
    n: int
    ns: str
    ovs: OvsDaemons
    db: Ovsdb
    of: OpenFlow
    vms: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)  # name -> (ns, mac, ip, net)
    last_plan: OvsPlan | None = None

    @property
    def vtep(self) -> str:
        return f"172.16.0.{self.n}"


class Lab:
    def __init__(self, make_netns: NetnsPool, rundir_root: str, started: list[OvsDaemons]) -> None:
        self.make_netns = make_netns
        self.ul = make_netns("ul")
        self.pn = make_netns("pn")
        sh("ip", "-n", self.ul, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.ul, "link", "set", "br0", "up")
        sh("ip", "-n", self.pn, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.pn, "link", "set", "br0", "up")
        self.hosts: list[Host] = []
        for n in (1, 2):
            ns = make_netns(f"h{n}")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            for side, nic in ((self.ul, "ul0"), (self.pn, "px0")):
                sh("ip", "-n", side, "link", "add", f"h{n}", "type", "veth", "peer", "name", nic, "netns", ns)
                sh("ip", "-n", side, "link", "set", f"h{n}", "master", "br0", "up")
                sh("ip", "-n", ns, "link", "set", nic, "up")
            ovs = OvsDaemons(os.path.join(rundir_root, f"h{n}"), netns=ns)
            started.append(ovs)
            ovs.start()
            ovs.wait_ready()
            vs = ["ovs-vsctl", f"--db={ovs.db_remote}"]
            # The operator's part: the underlay bridge with the VTEP address, and br-ex with the provider NIC.
            sh(*vs, "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
               "--", "add-port", "br-phy", "ul0", "--", "add-br", "br-ex", "--", "set", "bridge", "br-ex",
               "datapath_type=netdev", "--", "add-port", "br-ex", "px0")
            sh("ip", "-n", ns, "addr", "add", f"172.16.0.{n}/24", "dev", "br-phy")
            sh("ip", "-n", ns, "link", "set", "br-phy", "up")
            host = Host(n, ns, ovs, Ovsdb(ovs.db_remote), OpenFlow(ovs.mgmt, ovs.env()))
            host.db.apply([BridgeSpec("br-int")], [])  # the agent makes br-int at start, before VMs plug in
            self.hosts.append(host)

    def close(self) -> None:
        for h in self.hosts:
            h.db.close()

    def add_vm(self, host: Host, name: str, net: str, ip: str) -> None:
        """Plug a VM as os-vif does: a veth whose host end is an OVS port with iface-id/attached-mac."""
        ns = self.make_netns(name)
        mac = f"fa:16:3e:{host.n:02x}:{len(host.vms) + 1:02x}:{secrets.randbelow(256):02x}"
        tap = f"tap{name}"
        sh("ip", "-n", host.ns, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", ns, "link", "set", "eth0", "address", mac, "up")
        sh("ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", host.ns, "link", "set", tap, "up")
        host.db.apply([], [PortSpec.make("br-int", tap, "", tag=DEAD_VLAN, own=False, iface_external_ids={
            "iface-id": f"port-{name}", "attached-mac": mac, "iface-status": "active"})])
        host.vms[name] = (ns, mac, ip, net)

    def program(self, networks: list[OvsNetwork], tunnel_type: str | None, *, sweep: bool = True,
                arp_responder: bool = False) -> dict[int, dict[str, Delta]]:
        deltas = {}
        for h in self.hosts:
            opts = OvsAgentOptions(bridge_mappings=((PHYSNET, "br-ex"),), local_ip=h.vtep,
                                   tunnel_types=(tunnel_type,) if tunnel_type else (), arp_responder=arp_responder)
            ports = tuple(OvsPort(f"port-{name}", net, mac, f"tap{name}") for name, (_, mac, _, net) in h.vms.items())
            peers = tuple(
                OvsPeer(net_id, o.vtep, tuple((mac, ip) for (_, mac, ip, n) in o.vms.values() if n == net_id))
                for o in self.hosts if o is not h for net_id in sorted({v[3] for v in o.vms.values()}))
            previous = h.last_plan.local_vlans if h.last_plan else {}
            p = plan(OvsHostIntent(tuple(networks), ports, peers), opts, previous)
            h.db.apply(p.bridges, p.ports, p.tags, sweep=sweep, protected=p.protected)
            deltas[h.n] = {br: h.of.sync(br, flows, sweep=sweep) for br, flows in p.flows.items()}
            h.last_plan = p
        return deltas


@pytest.fixture
def lab(make_netns: NetnsPool, rundir_root: str, daemons: list[OvsDaemons]) -> Iterator[Lab]:
    lab = Lab(make_netns, rundir_root, daemons)
    yield lab
    lab.close()


def two_nets_same_cidr(lab: Lab, kind: str) -> list[OvsNetwork]:
    h1, h2 = lab.hosts
    lab.add_vm(h1, "a1", "net-a", "192.168.121.11")
    lab.add_vm(h1, "b1", "net-b", "192.168.121.21")
    lab.add_vm(h2, "a2", "net-a", "192.168.121.12")
    lab.add_vm(h2, "b2", "net-b", "192.168.121.22")
    return [OvsNetwork("net-a", kind, 1001), OvsNetwork("net-b", kind, 1002)]


@pytest.mark.parametrize("kind", ["vxlan", "gre", "geneve"])
def test_vms_ping_across_hosts_over_tunnel_and_same_cidr_networks_are_isolated(lab: Lab, kind: str) -> None:
    nets = two_nets_same_cidr(lab, kind)
    lab.program(nets, kind)
    a1, b1 = lab.hosts[0].vms["a1"][0], lab.hosts[0].vms["b1"][0]
    assert ping_ok(a1, "192.168.121.12"), f"a1 -> a2 over {kind}"
    assert ping_ok(b1, "192.168.121.22"), f"b1 -> b2 over {kind}"
    # Same CIDR, other network: a2's address exists only on net-a; b1 must not reach it (nor a1 reach b2).
    assert not ping(b1, "192.168.121.12", count=2, timeout=1)
    assert not ping(a1, "192.168.121.22", count=2, timeout=1)
    h1 = lab.hosts[0]
    tun = {p.name: p for p in h1.db.ports().values() if p.type == kind}
    assert list(tun) == [f"{kind}-ac100002"]
    assert tun[f"{kind}-ac100002"].options["remote_ip"] == "172.16.0.2"


def test_arp_responder_answers_for_remote_ports(lab: Lab) -> None:
    nets = two_nets_same_cidr(lab, "vxlan")
    lab.program(nets, "vxlan", arp_responder=True)
    h1, h2 = lab.hosts
    # Cut learning: the remote VM does not answer ARP itself; the responder on h1 must.
    a2 = h2.vms["a2"][0]
    sh("ip", "netns", "exec", a2, "ip", "link", "set", "eth0", "arp", "off")
    a1 = h1.vms["a1"][0]
    out = sh("ip", "netns", "exec", a1, "arping", "-c", "1", "-w", "2", "-I", "eth0", "192.168.121.12", check=False)
    assert h2.vms["a2"][1] in out.lower(), out


def test_vlan_provider_network_carries_8021q_tags_between_hosts(lab: Lab) -> None:
    require(shutil.which("tcpdump") is not None, "needs tcpdump (scripts/bootstrap.sh)")
    h1, h2 = lab.hosts
    lab.add_vm(h1, "v1", "net-v", "192.168.130.11")
    lab.add_vm(h2, "v2", "net-v", "192.168.130.12")
    lab.add_vm(h1, "f1", "net-f", "198.51.100.11")
    lab.add_vm(h2, "f2", "net-f", "198.51.100.12")
    nets = [OvsNetwork("net-v", "vlan", 100, PHYSNET), OvsNetwork("net-f", "flat", None, PHYSNET)]
    lab.program(nets, None)
    cap = subprocess.Popen(["ip", "netns", "exec", lab.pn, "tcpdump", "-e", "-nn", "-l", "-i", "h1", "-c", "4",
                            "icmp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)
        assert ping_ok(h1.vms["v1"][0], "192.168.130.12"), "vlan 100 between hosts"
        assert ping_ok(h1.vms["f1"][0], "198.51.100.12"), "flat between hosts"
        out, _ = cap.communicate(timeout=10)
    finally:
        if cap.poll() is None:
            cap.send_signal(signal.SIGTERM)
            cap.wait(5)
    vlan_lines = [line for line in out.splitlines() if "192.168.130." in line]
    flat_lines = [line for line in out.splitlines() if "198.51.100." in line]
    assert vlan_lines and all("802.1Q" in line and "vlan 100," in line for line in vlan_lines), out
    assert flat_lines and not any("802.1Q" in line for line in flat_lines), out
    # The provider VLAN is translated to each host's own local VLAN on br-int.
    assert h1.db.ports()["tapv1"].tag == h1.last_plan.local_vlans["net-v"]  # type: ignore[union-attr]


def test_reapply_changes_nothing_and_sweep_removes_stale_flows_only(lab: Lab) -> None:
    nets = two_nets_same_cidr(lab, "vxlan")
    lab.program(nets, "vxlan")
    h1 = lab.hosts[0]
    def kaon_flows() -> dict[str, list[Flow]]:
        # Learned flows (table 20, cookie 0) come and go with traffic; kaon's must not move at all.
        return {br: [f for f in h1.of.dump(br) if f.cookie == KAON_COOKIE] for br in ("br-int", "br-tun", "br-ex")}

    before = kaon_flows()
    again = lab.program(nets, "vxlan")
    assert all(not d for per_host in again.values() for d in per_host.values()), again
    assert kaon_flows() == before
    # An operator's flow (other cookie) and a stale kaon flow
    sh("ovs-ofctl", "-O", "OpenFlow14", "add-flow", h1.ovs.mgmt("br-tun"), "cookie=0x1,table=40,priority=1,actions=drop")
    sh("ovs-ofctl", "-O", "OpenFlow14", "add-flow", h1.ovs.mgmt("br-tun"),
       f"cookie={KAON_COOKIE:#x},table=41,priority=1,actions=drop")
    no_sweep = lab.program(nets, "vxlan", sweep=False)
    assert not no_sweep[1]["br-tun"]
    swept = lab.program(nets, "vxlan", sweep=True)
    assert swept[1]["br-tun"].deleted == (Flow(41, 1, "", "drop"),)
    tables = {(f.table, f.cookie) for f in h1.of.dump("br-tun")}
    assert (40, 1) in tables and (41, KAON_COOKIE) not in tables


def test_agent_restart_reapply_keeps_pings_flowing(lab: Lab) -> None:
    nets = two_nets_same_cidr(lab, "vxlan")
    lab.program(nets, "vxlan")
    h1 = lab.hosts[0]
    assert ping_ok(h1.vms["a1"][0], "192.168.121.12")
    # A restarted agent: no memory of previous VLANs beyond OVSDB, new connections, first sync without sweep.
    result: dict[str, str] = {}

    def flood() -> None:
        result["out"] = sh("ip", "netns", "exec", h1.vms["a1"][0], "ping", "-c", "300", "-i", "0.005", "-W", "1",
                           "192.168.121.12", check=False)

    t = threading.Thread(target=flood)
    t.start()
    for h in lab.hosts:
        h.db.close()
        h.db = Ovsdb(h.ovs.db_remote)
        h.of = OpenFlow(h.ovs.mgmt, h.ovs.env())
        vlans = h.db.local_vlans()  # read back from OVSDB, as a restarted agent does
        assert h.last_plan and vlans == dict(h.last_plan.local_vlans)
        h.last_plan = _vlans_only(vlans)
    # The restarted agent came up with arp_responder on, so its syncs do rewrite br-tun while traffic flows:
    # first sync adds (no sweep), the second sweeps the flows the new configuration no longer wants.
    first = lab.program(nets, "vxlan", sweep=False, arp_responder=True)
    second = lab.program(nets, "vxlan", sweep=True, arp_responder=True)
    t.join(30)
    assert first[1]["br-tun"].added and not first[1]["br-tun"].deleted
    assert not second[1]["br-tun"].added
    assert not first[1]["br-int"] and not second[1]["br-int"]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", result["out"])
    assert m and m.group(1) == m.group(2) == "300", result["out"]


def _vlans_only(vlans: dict[str, int]) -> OvsPlan:
    # All a restarted agent knows: the local VLANs it read back from the ports.
    return OvsPlan((), (), (), {}, vlans, {}, ())


def test_vswitchd_kill9_is_detected_and_reprogramming_restores_pings(lab: Lab) -> None:
    nets = two_nets_same_cidr(lab, "vxlan")
    lab.program(nets, "vxlan")
    h1 = lab.hosts[0]
    a1 = h1.vms["a1"][0]
    assert ping_ok(a1, "192.168.121.12")
    ident = h1.ovs.vswitchd_identity()
    assert ident is not None and h1.of.has_cookie_flows("br-int", 23)
    h1.ovs.stop_daemon("ovs-vswitchd", signal.SIGKILL)
    h1.ovs.start_vswitchd()
    h1.ovs.wait_ready()
    new = h1.ovs.vswitchd_identity()
    assert new is not None and new != ident
    # The canary is gone with the flows: the agent must re-program (fail_mode=secure drops meanwhile).
    assert not h1.of.has_cookie_flows("br-int", 23)
    assert not ping(a1, "192.168.121.12", count=1, timeout=1)
    lab.program(nets, "vxlan")
    assert h1.of.has_cookie_flows("br-int", 23)
    assert ping_ok(a1, "192.168.121.12")


# ---------------------------------------------------------------- daemons, ovsdb, errors

def test_daemons_start_stop_by_pid_and_detect_restart(make_netns: NetnsPool, rundir_root: str,
                                                     daemons: list[OvsDaemons]) -> None:
    ns = make_netns("d")
    ovs = OvsDaemons(os.path.join(rundir_root, "d"), netns=ns)
    daemons.append(ovs)
    ovs.start()
    ovs.wait_ready()
    db_pid, vs_pid = ovs.pid("ovsdb-server"), ovs.pid("ovs-vswitchd")
    assert db_pid and vs_pid
    first = ovs.vswitchd_identity()
    ovs.start()  # already running: nothing new
    assert ovs.pid("ovs-vswitchd") == vs_pid and ovs.vswitchd_identity() == first
    # The daemon runs inside the host namespace: its bridge's internal port appears there.
    with Ovsdb(ovs.db_remote) as db:
        db.apply([BridgeSpec("br-t")], [])
    assert "br-t" in sh("ip", "-n", ns, "-br", "link")
    ovs.stop_daemon("ovs-vswitchd")
    assert ovs.pid("ovs-vswitchd") is None and not alive(vs_pid)
    ovs.start_vswitchd()
    ovs.wait_ready()
    assert ovs.vswitchd_identity() not in (None, first)
    ovs.stop()
    assert ovs.pid("ovsdb-server") is None and not alive(db_pid)


def test_rundir_too_long_is_refused() -> None:
    with pytest.raises(Exception, match="too long"):
        OvsDaemons("/tmp/" + "x" * 100)


def test_system_datapath_without_kernel_module_says_use_netdev(rundir_root: str, daemons: list[OvsDaemons]) -> None:
    require(not os.path.exists("/sys/module/openvswitch"), "this kernel has the openvswitch module")
    ovs = OvsDaemons(os.path.join(rundir_root, "s"))
    daemons.append(ovs)
    ovs.start()
    ovs.wait_ready()
    with Ovsdb(ovs.db_remote) as db, pytest.raises(OvsDatapathError, match="datapath_type = netdev"):
        db.apply([BridgeSpec("br-sys", datapath_type="system")], [])


def test_ovsdb_unreachable_retries_then_says_so(rundir_root: str) -> None:
    t = time.monotonic()
    with pytest.raises(OvsdbUnreachable, match="unreachable after"):
        Ovsdb(f"unix:{rundir_root}/nothing.sock", connect_timeout=1.0)
    assert time.monotonic() - t >= 1.0


def test_ovsdb_ports_ownership_and_operator_bridges(rundir_root: str, daemons: list[OvsDaemons]) -> None:
    ovs = OvsDaemons(os.path.join(rundir_root, "o"))
    daemons.append(ovs)
    ovs.start()
    ovs.wait_ready()
    with Ovsdb(ovs.db_remote) as db:
        with pytest.raises(OvsdbError, match="bridge_mappings names bridge.*br-ex"):
            db.apply([BridgeSpec("br-ex", own=False)], [])
        sh("ovs-vsctl", f"--db={ovs.db_remote}", "add-br", "br-ex", "--", "set", "bridge", "br-ex",
           "datapath_type=netdev")
        ports = [PortSpec.make("br-int", "int-br-ex", "patch", {"peer": "phy-br-ex"}),
                 PortSpec.make("br-ex", "phy-br-ex", "patch", {"peer": "int-br-ex"}),
                 PortSpec.make("br-int", "vm1", "internal", tag=5, own=False,
                               iface_external_ids={"iface-id": "p1", "attached-mac": "fa:16:3e:00:00:01"})]
        db.apply([BridgeSpec("br-int"), BridgeSpec("br-ex", own=False), BridgeSpec("br-old")], ports)
        seen = db.bridges()
        assert seen["br-int"]["own"] and not seen["br-ex"]["own"]
        assert seen["br-int"]["fail_mode"] == "secure" and seen["br-int"]["datapath_type"] == "netdev"
        assert "OpenFlow14" in seen["br-int"]["protocols"]
        got = db.ports()
        assert got["phy-br-ex"].own and got["phy-br-ex"].ofport and got["phy-br-ex"].ofport > 0
        assert got["vm1"].tag == 5 and not got["vm1"].own
        assert got["vm1"].iface_external_ids == {"iface-id": "p1", "attached-mac": "fa:16:3e:00:00:01"}
        # Sweep: an own bridge (br-old) and own ports not wanted go; br-ex (protected) and vm1 (Nova's) stay,
        # even when br-ex carries kaon's mark by mistake.
        sh("ovs-vsctl", f"--db={ovs.db_remote}", "br-set-external-id", "br-ex", "kaon-owner", "agent")
        db.apply([BridgeSpec("br-int")], [], sweep=True, protected=["br-ex"])
        seen = db.bridges()
        assert "br-old" not in seen and "br-ex" in seen
        assert set(db.ports()) == {"br-int", "br-ex", "vm1"}


def test_ovsdb_server_restart_is_retried_and_a_long_outage_is_reported(rundir_root: str,
                                                                      daemons: list[OvsDaemons]) -> None:
    ovs = OvsDaemons(os.path.join(rundir_root, "r"))
    daemons.append(ovs)
    ovs.start()
    ovs.wait_ready()
    with Ovsdb(ovs.db_remote, timeout=1, retry_timeout=15) as db:
        db.apply([BridgeSpec("br-a")], [])
        ovs.stop_daemon("ovsdb-server")
        # ovsdb-server comes back while apply() is retrying: the transaction lands once, nothing is lost.
        threading.Timer(2.0, ovs.start).start()
        db.apply([BridgeSpec("br-a"), BridgeSpec("br-b")], [])
        assert {"br-a", "br-b"} <= set(db.bridges())
    with Ovsdb(ovs.db_remote, timeout=1, retry_timeout=2) as db:
        ovs.stop_daemon("ovsdb-server")
        with pytest.raises(OvsdbUnreachable, match="did not complete the transaction after"):
            db.apply([BridgeSpec("br-c")], [])
