"""``kaon agent`` as the Open vSwitch agent, given bad input (issue 11, item 9), end to end: the real
command against a private OVS in a throwaway namespace (root; daemons started and stopped by pid).

Each case: what the agent says in its log (and whether it exits), and what ``kaon doctor`` on the same
openvswitch_agent.ini says, with the fix. A bridge of bridge_mappings that does not exist, a local_ip
that is not on the host and datapath_type = system on a kernel without the openvswitch module stop the
agent at start (as Neutron's agent stops); an ovsdb-server that does not answer yet is waited for,
said, and the agent carries on once it is started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.doctor import host_checks
from tests.fixtures import require

pytestmark = pytest.mark.needs_root


@pytest.fixture
def ns(make_netns: Any) -> str:
    require(os.geteuid() == 0, "needs root (network namespaces)")
    require(shutil.which("ovs-vswitchd") is not None, "needs openvswitch-switch (scripts/bootstrap.sh)")
    name: str = make_netns("ovsbad")
    subprocess.run(["ip", "-n", name, "addr", "add", "10.78.0.1/24", "dev", "lo"], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    return name


@pytest.fixture
def ovs(ns: str) -> Iterator[OvsDaemons]:
    rundir = tempfile.mkdtemp(prefix="kbad-", dir="/tmp")  # short: unix socket paths stay under 107 bytes
    daemons = OvsDaemons(rundir, netns=ns)
    try:
        yield daemons
    finally:
        daemons.stop()
        shutil.rmtree(rundir, ignore_errors=True)


def ini(tmp: Path, ns: str, ovs: OvsDaemons, **options: str) -> Path:
    ovs_section = {"local_ip": "10.78.0.1", "datapath_type": "netdev", "ovsdb_connection": ovs.db_remote, **options}
    path = tmp / "openvswitch_agent.ini"
    path.write_text(
        f"[DEFAULT]\nhost = bad1\nstate_path = {tmp / 'state'}\n"
        f"[agent]\nnamespace = {ns}\ntunnel_types = vxlan\nreport_interval = 1\n"
        "[securitygroup]\nfirewall_driver = noop\n"
        "[ovs]\n" + "".join(f"{k} = {v}\n" for k, v in ovs_section.items()))
    return path


def agent_exits(conf: Path) -> tuple[int, str]:
    res = subprocess.run([sys.executable, "-m", "kaon", "agent", "--config-file", str(conf)],
                         capture_output=True, text=True, timeout=60)
    return res.returncode, res.stderr


def doctor(conf: Path) -> tuple[int, list[str]]:
    res = subprocess.run([sys.executable, "-m", "kaon", "doctor", "--json", "--config-file", str(conf)],
                         capture_output=True, text=True, timeout=60)
    report = json.loads(res.stdout)
    return res.returncode, [f"{f['check']}: {f['subject']}: {f['evidence']} — {f['fix']}" for f in report["findings"]]


def test_a_mapped_bridge_that_does_not_exist(tmp_path: Path, ns: str, ovs: OvsDaemons) -> None:
    ovs.start()
    ovs.wait_ready()
    conf = ini(tmp_path, ns, ovs, bridge_mappings="physnet1:br-nothere")
    code, log = agent_exits(conf)
    assert code == 1
    assert (f"kaon agent cannot run: [ovs] bridge_mappings names bridge(s) br-nothere that do not exist in OVS "
            f"({ovs.db_remote}); create them (ovs-vsctl add-br) or fix bridge_mappings") in log
    code, found = doctor(conf)
    assert code == 1 and found == [
        "ovs_bridges: OVS bridge br-nothere: is named in [ovs] bridge_mappings but does not exist: the Open vSwitch "
        "agent refuses to start — ovs-vsctl add-br br-nothere and add the physical interface to it, or fix "
        "bridge_mappings"], found


def test_a_local_ip_that_is_not_on_the_host(tmp_path: Path, ns: str, ovs: OvsDaemons) -> None:
    ovs.start()
    ovs.wait_ready()
    conf = ini(tmp_path, ns, ovs, local_ip="10.78.0.9")
    code, log = agent_exits(conf)
    why = f"10.78.0.9 is not an address of any interface of network namespace {ns} (VXLAN devices bound to it " \
          "could never send)"
    assert code == 1 and f"kaon agent cannot run: [ovs] local_ip: {why}" in log, log
    code, found = doctor(conf)
    assert code == 1 and found == [f"local_ip: [ovs] local_ip: {why} — set local_ip to this host's address on the "
                                   "overlay network (ip -br addr shows them)"], found


def test_system_datapath_without_the_module_says_use_netdev(tmp_path: Path, ns: str, ovs: OvsDaemons) -> None:
    if host_checks.ovs_kernel_module_loaded():
        pytest.skip("this kernel has the openvswitch module: datapath_type = system works here")
    ovs.start()
    ovs.wait_ready()
    conf = ini(tmp_path, ns, ovs, datapath_type="system")
    code, log = agent_exits(conf)
    # ovs-vsctl add-br "succeeds"; the agent reads the bridge back, finds no datapath and says what to use.
    assert code == 1 and "kaon agent cannot run: bridge br-int (datapath_type=system) has no datapath: " \
                         "datapath_type=system needs the kernel's openvswitch module, which this kernel does not " \
                         "have: set datapath_type = netdev (the userspace datapath)" in log, log
    code, found = doctor(conf)
    assert code == 1 and len(found) == 1 and found[0].startswith(
        "ovsdb: [ovs] datapath_type: = system, but this kernel has no openvswitch module"), found
    assert "without a datapath now: br-int" in found[0] and "set datapath_type = netdev" in found[0]


def test_ovsdb_server_not_there_yet_is_waited_for_and_said(tmp_path: Path, ns: str, ovs: OvsDaemons) -> None:
    conf = ini(tmp_path, ns, ovs)
    ovs.rundir.mkdir(parents=True, exist_ok=True)
    code, found = doctor(conf)
    assert code == 1 and len(found) == 1 and found[0].startswith(f"ovsdb: ovsdb-server at {ovs.db_remote}: does "
                                                                 "not answer: "), found
    log = tmp_path / "agent.log"
    with log.open("w") as out:
        agent = subprocess.Popen([sys.executable, "-m", "kaon", "agent", "--config-file", str(conf)],
                                 stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 40
        while "cannot start yet" not in log.read_text() and time.monotonic() < deadline:
            assert agent.poll() is None, log.read_text()
            time.sleep(0.5)
        text = log.read_text()
        assert (f"kaon agent cannot start yet: ovsdb-server at {ovs.db_remote} unreachable after" in text
                and "retrying until it answers" in text), text
        assert agent.poll() is None  # still there, waiting
        # Said once per attempt series (a warning, then the error), not at every reconnect attempt.
        said = [line for line in text.splitlines() if "unreachable" in line]
        assert len(said) <= 2 * text.count("cannot start yet") + 1, text
        ovs.start()
        ovs.wait_ready()
        # It carries on: its first act is the integration bridge, as Neutron's agent's.
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            res = subprocess.run(["ovs-vsctl", f"--db={ovs.db_remote}", "br-exists", "br-int"], env=ovs.env())
            if res.returncode == 0:
                break
            assert agent.poll() is None, log.read_text()
            time.sleep(0.5)
        else:
            pytest.fail("the agent did not carry on once ovsdb-server answered:\n" + log.read_text())
        assert doctor(conf) == (0, [])
    finally:
        agent.send_signal(signal.SIGTERM)  # our own agent, by its pid
        try:
            agent.wait(timeout=20)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
