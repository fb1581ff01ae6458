"""``kaon up --mechanism openvswitch``: the all-in-one node's local agent on Open vSwitch; ``kaon down`` after it.

The local agent works in a namespace of the test's own (``[agent] namespace``),
so the private OVS kaon up starts runs there too, and nothing touches the
machine's own network. What is shown:

* with no OVS to use, kaon up starts a private ovsdb-server + ovs-vswitchd by
  pid (userspace datapath) under its state directory (a restarted kaon up
  uses the same daemons, without the flag: kept in kaon.conf), and its agent is
  ``openstack network agent list``'s "Open vSwitch agent" row; a port plugged
  as os-vif plugs it (br-int, ``external_ids:iface-id``) is bound ``ovs`` and
  goes ACTIVE on its network's local VLAN; ``kaon down`` stops exactly those
  pids and leaves no bridge and no device behind;
* a second node on OVS in the same namespace is refused with a line saying
  why; in a namespace of its own it runs beside the first;
* given an OVS it did not start (``[ovs] ovsdb_connection``), kaon up starts
  none, and ``kaon down`` removes the bridges kaon made and keeps the
  operator's (and the operator's daemons).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.lab import ovs_host
from kaon.lab.api_client import load_cloud, password_token
from tests.api.test_up import Up
from tests.fixtures import OpenStackCLI, free_port
from tests.fullstack.stack import require_root, wait_for
from tests.fullstack.test_up_lab_down import kaon

pytestmark = pytest.mark.needs_root


def _netns(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)


def _delete_netns(name: str) -> None:
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    for ns in [n for n in listed if n.startswith(f"{name}-")] + [name]:
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
            subprocess.run(["kill", pid], check=False)
        subprocess.run(["ip", "netns", "delete", ns], check=False)


@pytest.fixture
def namespaces() -> Iterator[list[str]]:
    """Namespaces made on demand (``namespaces.append`` is not enough: call ``make``); deleted at the end."""
    require_root()
    made: list[str] = []
    try:
        yield made
    finally:
        for name in made:
            _delete_netns(name)


def _new_ns(made: list[str], tag: str) -> str:
    name = f"kfo{tag}{uuid.uuid4().hex[:5]}"
    _netns(name)
    made.append(name)
    return name


def _links(ns: str) -> set[str]:
    out = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True, text=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _up(tmp_path: Path, name: str, ns: str, *args: str, extra: str = "") -> Up:
    conf = tmp_path / f"{name}.conf"
    conf.write_text(f"[DEFAULT]\nhost = {name}\n[agent]\nnamespace = {ns}\nnamespace_prefix = {ns}-\n{extra}")
    (tmp_path / name).mkdir()
    up = Up(tmp_path / name / "state", free_port(), tmp_path / f"{name}.log",
            ["--config-file", str(conf), *args])
    up.wait_ready(30)
    wait_for("the announcement", lambda: "Local agent" in up.output(), timeout=30)
    return up


def _api(up: Up) -> httpx.Client:
    token, _ = password_token(load_cloud("kaon-admin", [up.state / "clouds.yaml"]))
    return httpx.Client(base_url=up.url + "/v2.0", headers={"X-Auth-Token": token}, timeout=30)


def _stop_private_ovs(state: Path) -> None:
    """Teardown after a failure: the daemons a node recorded, by pid (kaon down does it when the test runs through)."""
    try:
        record = json.loads((state / "ovs.json").read_text())
    except (OSError, ValueError):
        return
    if record.get("kind") == "private":
        OvsDaemons(record["rundir"]).stop()


def test_kaon_up_on_a_private_ovs_binds_plugs_and_kaon_down_stops_it(tmp_path: Path,
                                                                      namespaces: list[str]) -> None:
    ns = _new_ns(namespaces, "a")
    before = _links(ns)
    up = _up(tmp_path, "aio", ns, "--mechanism", "openvswitch")
    up_args = ["--config-file", str(tmp_path / "aio.conf")]  # the flag's choice is kept in kaon.conf
    state = up.state
    try:
        out = up.output()
        assert f"Local agent    : Open vSwitch agent (roles: dhcp, l3) for host aio on namespace {ns}" in out, out
        assert "Open vSwitch   : a private OVS (ovsdb-server pid " in out and "datapath netdev" in out
        # The choice is kept in kaon.conf, the agent's options in openvswitch_agent.ini (this node's only).
        assert "mechanism_drivers = openvswitch,linuxbridge,l2population" in (state / "kaon.conf").read_text()
        assert "[ovs]" not in (state / "kaon.conf").read_text()
        assert "bridge_mappings = provider:br-ex" in (state / "openvswitch_agent.ini").read_text()
        record = json.loads((state / "ovs.json").read_text())
        assert record["kind"] == "private" and record["netns"] == ns
        pids = {d: pid for d, (pid, _ticks) in record["pids"].items()}
        assert set(pids) == {"ovsdb-server", "ovs-vswitchd"} and all(_alive(p) for p in pids.values())
        # The daemons run inside the agent's namespace: their bridges are devices there.
        assert os.stat(f"/proc/{pids['ovs-vswitchd']}/ns/net").st_ino == os.stat(f"/run/netns/{ns}").st_ino

        osc = OpenStackCLI(state / "clouds.yaml")
        wait_for("the Open vSwitch agent row", lambda: any(
            a["Agent Type"] == "Open vSwitch agent" and a["Host"] == "aio" and a["Alive"]
            for a in osc.json("network", "agent", "list")), timeout=30)
        rows = osc.json("network", "agent", "list", "--host", "aio")
        assert sorted(r["Agent Type"] for r in rows) == ["DHCP agent", "L3 agent", "Metadata agent",
                                                         "Open vSwitch agent"]
        assert {r["Binary"] for r in rows if r["Agent Type"] == "Open vSwitch agent"} == {"neutron-openvswitch-agent"}

        api = _api(up)
        net = api.post("/networks", json={"network": {"name": "ovs-aio"}}).json()["network"]
        assert api.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.42.0.0/24",
                                                     "ip_version": 4}}).status_code == 201
        port = api.post("/ports", json={"port": {"network_id": net["id"], "binding:host_id": "aio",
                                                 "device_owner": "compute:nova"}}).json()["port"]
        assert port["binding:vif_type"] == "ovs", port
        assert port["binding:vif_details"]["bridge_name"] == "br-int"
        assert port["binding:vif_details"]["datapath_type"] == "netdev"
        # As Nova's os-vif plugs it: a tap on br-int with the Neutron port's iface-id.
        tap = f"tap{port['id'][:11]}"
        subprocess.run(["ip", "-n", ns, "link", "add", tap, "type", "veth", "peer", "name", "vm0"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", tap, "up"], check=True)
        ovs = {"rundir": record["rundir"], "datapath_type": "netdev"}
        ovs_host.plug_vm(ovs, tap, port["id"], port["mac_address"], "vm-1")
        wait_for("port ACTIVE", lambda: api.get(f"/ports/{port['id']}").json()["port"]["status"] == "ACTIVE",
                 timeout=30)
        vsctl = ["ovs-vsctl", f"--db=unix:{record['rundir']}/db.sock"]
        tag = subprocess.run([*vsctl, "get", "Port", tap, "tag"], capture_output=True, text=True).stdout.strip()
        assert 1 <= int(tag) <= 4094
        # The DHCP role's port is on br-int too (interface_driver = openvswitch), on the same local VLAN.
        dhcp = wait_for("the DHCP port on br-int", lambda: [
            p for p in subprocess.run([*vsctl, "list-ports", "br-int"], capture_output=True, text=True).stdout.split()
            if p.startswith("tap") and p != tap])
        assert subprocess.run([*vsctl, "get", "Port", dhcp[0], "tag"], capture_output=True,
                              text=True).stdout.strip() == tag
        assert {"br-int", "br-tun", "br-ex"} <= _links(ns)
        assert "Traceback" not in up.output()

        # The private OVS outlives the node (as the Linux bridge agent's bridges do): a restarted
        # kaon up on the same directory uses the same daemons, and the port keeps its VLAN.
        up.stop()
        assert all(_alive(p) for p in pids.values())
        up = Up(state, up.port, tmp_path / "aio-again.log", up_args)
        up.wait_ready(30)
        wait_for("the announcement", lambda: "Local agent" in up.output(), timeout=30)
        assert f"ovsdb-server pid {pids['ovsdb-server']}, ovs-vswitchd pid {pids['ovs-vswitchd']}" in up.output()
        api = _api(up)
        wait_for("the agent alive again", lambda: any(
            a["alive"] for a in api.get("/agents", params={"agent_type": "Open vSwitch agent"}).json()["agents"]))
        assert api.get(f"/ports/{port['id']}").json()["port"]["status"] == "ACTIVE"
        assert subprocess.run([*vsctl, "get", "Port", tap, "tag"], capture_output=True, text=True).stdout.strip() == tag

        # A second node on OVS in the same namespace: refused, and says why.
        up2 = _up(tmp_path, "aio2", ns, "--mechanism", "openvswitch")
        try:
            assert ("not started: another Open vSwitch with the userspace datapath already runs in namespace "
                    f"{ns} (device ovs-netdev)") in up2.output()
            assert not (up2.state / "ovs.json").exists()
        finally:
            up2.stop()
        # ... in a namespace of its own, it runs beside the first, on its own OVS.
        ns3 = _new_ns(namespaces, "b")
        up3 = _up(tmp_path, "aio3", ns3, "--mechanism", "openvswitch")
        try:
            assert "Open vSwitch agent (roles: dhcp, l3) for host aio3" in up3.output(), up3.output()
            rec3 = json.loads((up3.state / "ovs.json").read_text())
            assert rec3["rundir"] != record["rundir"]
            wait_for("both agents alive", lambda: {a["host"] for a in _api(up3).get(
                "/agents", params={"agent_type": "Open vSwitch agent"}).json()["agents"] if a["alive"]} == {"aio3"}
                and any(a["alive"] for a in api.get("/agents", params={"host": "aio"}).json()["agents"]))
            up3.stop()
            down3 = kaon("down", "--state-dir", str(up3.state))
            assert down3.returncode == 0 and "removed the local agent's Open vSwitch" in down3.stdout
        finally:
            up3.stop()
            _stop_private_ovs(up3.state)

        down = kaon("down", "--state-dir", str(state))
        assert down.returncode == 0, down.stdout + down.stderr
        assert f"ovs-vswitchd (pid {pids['ovs-vswitchd']})" in down.stdout
        assert f"ovsdb-server (pid {pids['ovsdb-server']})" in down.stdout
        assert up.proc.wait(20) is not None
        assert not any(_alive(p) for p in pids.values())
        assert not Path(record["rundir"]).exists() and not (state / "ovs.json").exists()
        # No bridge, no ovs-netdev, no DHCP veth: the namespace holds what it held, and the VM's veth.
        assert _links(ns) == before | {tap, "vm0"}
    finally:
        up.stop()
        _stop_private_ovs(state)


def test_kaon_up_uses_the_ovs_it_is_given_and_kaon_down_keeps_the_operators_bridges(
        tmp_path: Path, namespaces: list[str]) -> None:
    ns = _new_ns(namespaces, "x")
    # The operator's OVS (as a system OVS would be): running, with br-ex and a bridge of its own.
    # A short rundir: unix socket paths are limited to 107 bytes.
    operator = OvsDaemons(tempfile.mkdtemp(prefix="kfo-op-"), netns=ns)
    operator.start()
    try:
        operator.wait_ready()
        vsctl = ["ovs-vsctl", f"--db={operator.db_remote}"]
        for bridge in ("br-ex", "br-keep"):
            subprocess.run([*vsctl, "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev"],
                           check=True, env=operator.env())
        pids = {d: operator.pid(d) for d in ("ovsdb-server", "ovs-vswitchd")}
        up = _up(tmp_path, "ext", ns, "--mechanism", "openvswitch",
                 extra=f"[ovs]\novsdb_connection = {operator.db_remote}\ndatapath_type = netdev\n"
                       "bridge_mappings = provider:br-ex,physnet2:br-p2\n")
        try:
            out = up.output()
            assert f"Open vSwitch   : OVS at {operator.db_remote}" in out, out
            assert "Open vSwitch agent (roles: dhcp, l3) for host ext" in out
            record = json.loads((up.state / "ovs.json").read_text())
            # No second OVS; the bridge_mappings bridge that was missing is made by kaon up, and recorded.
            assert record["kind"] == "external" and record["made"] == ["br-p2"]
            assert record["preexisting"] == ["br-ex", "br-keep"]
            assert {d: operator.pid(d) for d in pids} == pids
            wait_for("br-int and br-tun", lambda: {"br-int", "br-tun"} <= set(subprocess.run(
                [*vsctl, "list-br"], capture_output=True, text=True).stdout.split()))
            wait_for("the patch port on br-ex", lambda: "phy-br-ex" in subprocess.run(
                [*vsctl, "list-ports", "br-ex"], capture_output=True, text=True).stdout.split())
        finally:
            up.stop()
        down = kaon("down", "--state-dir", str(up.state))
        assert down.returncode == 0, down.stdout + down.stderr
        bridges = set(subprocess.run([*vsctl, "list-br"], capture_output=True, text=True).stdout.split())
        assert bridges == {"br-ex", "br-keep"}, down.stdout
        assert "phy-br-ex" not in subprocess.run([*vsctl, "list-ports", "br-ex"], capture_output=True,
                                                 text=True).stdout.split()
        flows = subprocess.run(["ovs-ofctl", "dump-flows", operator.mgmt("br-ex")], capture_output=True,
                               text=True, env=operator.env()).stdout
        assert "0x6b616f6e" not in flows
        assert {d: operator.pid(d) for d in pids} == pids  # the operator's daemons run on
    finally:
        operator.stop()
        shutil.rmtree(operator.rundir, ignore_errors=True)
