"""An all-Open-vSwitch cloud whose network node is an OVS host (issue 11, items 5 and 6).

Two OVS hosts (``stack(..., mechanism="openvswitch")``): h1 runs the DHCP and
L3 roles with ``interface_driver = openvswitch``, h2 is compute. ``kaon lab
seed 001`` (the command, as a user runs it) on it, and what seed 001 promises, on the wire:

* h1's DHCP and router ports are ports of br-int with Neutron's external ids
  (iface-id, attached-mac, iface-status) and their network's local VLAN as
  tag, and the API reports them ACTIVE (the OVS agent treats them as VM ports);
* the VM on h2 got its address by DHCP from h1's qdhcp- namespace over the
  tunnel, pings the outside through the router's SNAT (qg- on br-int, out
  through br-ex), is reached from the outside on its floating IP (tcp 22
  open, tcp 23 not: the VM's security group still filters; the router ports
  are not filtered), and reads its metadata through the router;
* h1's agent killed (-9) and restarted loses no SNATed ping and changes no port on br-int;
* removing the seed removes the DHCP and router ports from br-int, not only
  their namespaces (an OVS port outlives its kernel device).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.lab.agents import agent_alive
from tests.fixtures import free_port
from tests.fixtures.server import REPO_ROOT
from tests.fullstack.stack import Stack, stack, wait_for
from tests.fullstack.test_lab_seeds import passes, tcp_reaches, try_commands
from tests.fullstack.test_metadata import read

pytestmark = pytest.mark.needs_root

OUTSIDE = "192.168.100.1"


@pytest.fixture
def ovs_cloud(tmp_path: Path) -> Iterator[Stack]:
    conf = {"DEFAULT": {"enable_isolated_metadata": "true", "metadata_proxy_shared_secret": "seeds",
                        "nova_metadata_host": "127.0.0.1", "nova_metadata_port": str(free_port())},
            "metadata": {"serve": "true"}}
    with stack(tmp_path, hosts=2, extra_conf=conf, mechanism="openvswitch") as s:
        yield s


def lab_seed(s: Stack, *args: str) -> list[str]:
    """``kaon lab seed ARGS`` as a user runs it against this lab; its output lines."""
    cmd = [sys.executable, "-m", "kaon", "lab", "seed", *args, "--prefix", s.lab.prefix,
           "--state-dir", str(s.lab.state_dir), "--config-file", str(s.server.conf_path),
           "--os-network-url", s.server.url]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


def vsctl(s: Stack, host: str, *args: str) -> str:
    """ovs-vsctl against ``host``'s private OVS."""
    rundir = s.lab.state()["hosts"][host]["ovs"]["rundir"]  # type: ignore[index]
    return s.host(host, "ovs-vsctl", f"--db={OvsDaemons(rundir).db_remote}", *args)


def br_int_ports(s: Stack, host: str) -> dict[str, dict[str, str]]:
    """``host``'s br-int ports: name -> {"tag": its tag or "", and the Interface external ids}."""
    def rows(table: str, columns: str) -> list[list[Any]]:
        return json.loads(vsctl(s, host, "--format=json", f"--columns={columns}", "list", table))["data"]

    on_bridge = set(vsctl(s, host, "list-ports", "br-int").split())
    tags = {name: str(tag) if isinstance(tag, int) else "" for name, tag in rows("Port", "name,tag")}
    return {name: {"tag": tags.get(name, ""), **dict(ids[1])} for name, ids in rows("Interface", "name,external_ids")
            if name in on_bridge}


def test_seed_001_with_an_ovs_network_node(ovs_cloud: Stack) -> None:
    s = ovs_cloud
    for agent_type in ("DHCP agent", "L3 agent"):
        agents = wait_for(f"the {agent_type}", lambda t=agent_type: s.api(  # type: ignore[misc]
            "GET", "/v2.0/agents", agent_type=t)["agents"], timeout=15)
        assert [a["host"] for a in agents] == ["h1"], agents
    l3 = s.api("GET", "/v2.0/agents", agent_type="L3 agent")["agents"][0]
    assert l3["configurations"]["interface_driver"] == "openvswitch"
    assert s.mechanism("h1") == s.mechanism("h2") == "openvswitch"

    lines = lab_seed(s, "001")
    vm = s.lab.vm("test-instance")
    assert vm["host"] == "h2"
    port = s.port(vm["port_id"])
    assert vm["ips"] == [port["fixed_ips"][0]["ip_address"] + "/24"]  # by DHCP, from h1

    # The DHCP and router ports: on h1's br-int as Neutron's OVSInterfaceDriver plugs them, ACTIVE.
    infra = [p for p in s.api("GET", "/v2.0/ports")["ports"] if p["device_owner"].startswith("network:")
             and p["device_owner"] != "network:floatingip"]
    assert {p["device_owner"] for p in infra} == {"network:dhcp", "network:router_interface",
                                                 "network:router_gateway"}, infra
    for p in infra:
        wait_for(f"{p['device_owner']} ACTIVE", lambda p=p: s.port(p["id"])["status"] == "ACTIVE")  # type: ignore[misc]
    on_br_int = br_int_ports(s, "h1")
    by_id = {ids.get("iface-id"): (name, ids) for name, ids in on_br_int.items()}
    tags: dict[str, set[str]] = {}
    for p in infra:
        name, ids = by_id[p["id"]]
        assert name == "tap" + p["id"][:11]
        assert ids["attached-mac"] == p["mac_address"] and ids["iface-status"] == "active"
        assert ids["tag"].isdigit() and 0 < int(ids["tag"]) < 4095, ids
        tags.setdefault(p["network_id"], set()).add(ids["tag"])
    assert all(len(t) == 1 for t in tags.values())  # one local VLAN per network
    dhcp = next(p for p in infra if p["device_owner"] == "network:dhcp")
    offload = subprocess.run(["ip", "netns", "exec", f"{s.lab.prefix}qdhcp-{dhcp['network_id']}", "ethtool", "-k",
                              "ns-" + dhcp["id"][:11]], capture_output=True, text=True, check=True).stdout
    assert "tx-checksumming: off" in offload  # the userspace datapath would forward unfilled checksums
    assert len({t for ts in tags.values() for t in ts}) == len(tags)  # a VLAN of its own for each

    # SNAT to the outside, the floating IP from the outside, metadata through the router.
    assert s.ping("test-instance", OUTSIDE, count=3)
    fip = s.api("GET", "/v2.0/floatingips", port_id=vm["port_id"])["floatingips"][0]["floating_ip_address"]
    assert fip in lines[0]
    assert tcp_reaches(s, "test-instance", fip, 22)
    assert not tcp_reaches(s, "test-instance", fip, 23, timeout=3)  # the VM's group still filters
    assert read(s, "test-instance", "instance-id") == port["device_id"]
    assert read(s, "test-instance", "public-ipv4") == fip

    # h1's agent killed (-9) and started again: SNAT keeps flowing meanwhile, and the restarted agent
    # adopts the roles' ports as they are (same ports, same tags; no second plug).
    pinger = subprocess.Popen(["ip", "netns", "exec", vm["namespace"], "ping", "-n", "-q", "-i", "0.05", "-c", "120",
                               OUTSIDE], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        record = s.lab.state()["hosts"]["h1"]["agent"]  # type: ignore[index]
        os.kill(record["pid"], signal.SIGKILL)
        wait_for("h1's agent dead", lambda: not agent_alive(record))  # else start_agents sees it still running
        s.lab.start_agents()
        wait_for("a new agent on h1", lambda: s.lab.state()["hosts"]["h1"]["agent"]["pid"] != record["pid"])  # type: ignore[index]
        s.wait_agents(["h1"])
        s.wait_converged()
        out, _ = pinger.communicate(timeout=30)
    finally:
        if pinger.poll() is None:
            pinger.kill()
            pinger.wait()
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m and m.group(1) == m.group(2), out
    assert br_int_ports(s, "h1") == on_br_int
    assert all(s.port(p["id"])["status"] == "ACTIVE" for p in infra)

    # Removed: namespaces and the br-int ports the roles plugged.
    assert lab_seed(s, "001", "--delete")[0].startswith("seed 001: removed ")
    infra_taps = {"tap" + p["id"][:11] for p in infra}
    wait_for("the roles' ports off br-int", lambda: not infra_taps & set(br_int_ports(s, "h1")), timeout=30)



def test_seeds_002_and_004_with_an_ovs_network_node(ovs_cloud: Stack) -> None:
    """Seed 002's flat variant (a shared flat provider network through br-default, DHCP and metadata
    from the qdhcp- namespace on h1's br-int; its VLAN form is in test_lab_seeds) and seed 004
    (192.168.101.0/24 twice, behind two routers on h1): every command they print as "try" works as
    printed, on OVS hosts only."""
    s = ovs_cloud
    wait_for("the DHCP agent", lambda: s.api("GET", "/v2.0/agents", agent_type="DHCP agent")["agents"], timeout=15)
    printed = {"002": lab_seed(s, "002", "--flat"), "004": lab_seed(s, "004")}
    for lines in printed.values():
        commands = try_commands(lines)
        assert commands, lines
        for command in commands:
            passes(command)
    assert s.lab.vm("provider-instance")["ips"][0].startswith("10.10.100.1")  # from the pool, by DHCP
    assert [s.lab.vm(v)["ips"] for v in ("vm01", "vm02")] == [["192.168.101.3/24"]] * 2
    fips = [line.split("floating IP ")[1] for line in printed["004"][:2]]
    assert len(set(fips)) == 2
    for vm, fip in zip(("vm01", "vm02"), fips, strict=True):
        assert tcp_reaches(s, vm, fip, 22)  # each floating IP reaches its own VM
