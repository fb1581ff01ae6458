"""Hosts running the Open vSwitch agent (``kaon lab up --mechanism openvswitch``): a real server,
two lab hosts each with a private OVS (userspace datapath, started and stopped by pid) and a real
``kaon agent`` reading openvswitch_agent.ini's options; VMs plugged into br-int as os-vif does.

VXLAN, GRE and Geneve tenant networks and a VLAN provider network (seed 002's ranges) carry
traffic between hosts; the agents are "Open vSwitch agent" rows; ports show vif_type ovs; an agent
killed with -9 comes back to the same flows, and a restart during a ping flood loses nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kaon.dataplane.openflow import OpenFlow
from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.dataplane.ovs_model import KAON_COOKIE
from kaon.lab.agents import agent_alive
from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def ovs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("ovs"), hosts=2, mechanism="openvswitch") as s:
        yield s


def host_ovs(s: Stack, host: str) -> OvsDaemons:
    return OvsDaemons(s.lab.state()["hosts"][host]["ovs"]["rundir"])  # type: ignore[index]


def kaon_flows(s: Stack, host: str) -> list[str]:
    """kaon's flows on every bridge of the host (learned ones, cookie 0, come and go with traffic)."""
    d = host_ovs(s, host)
    of = OpenFlow(d.mgmt, d.env())
    return sorted(f"{br} {f.add_line()}" for br in ("br-int", "br-tun", "br-ex", "br-default")
                  for f in of.dump(br) if f.cookie == KAON_COOKIE)


def test_agents_are_open_vswitch_agent_rows_with_neutrons_configurations(ovs: Stack) -> None:
    rows = {a["host"]: a for a in ovs.agents()}
    assert set(rows) == {"h1", "h2"}
    for host, row in rows.items():
        assert row["agent_type"] == "Open vSwitch agent" and row["binary"] == "neutron-openvswitch-agent"
        conf = row["configurations"]
        assert conf["bridge_mappings"] == {"provider": "br-ex", "default": "br-default"}
        assert conf["tunnel_types"] == ["vxlan", "gre", "geneve"] and conf["datapath_type"] == "netdev"
        assert conf["integration_bridge"] == "br-int" and conf["tunnel_bridge"] == "br-tun"
        assert conf["tunneling_ip"] == ovs.lab.state()["hosts"][host]["local_ip"]  # type: ignore[index]
        assert conf["l2_population"] is True and conf["arp_responder"] is True


@pytest.mark.parametrize("kind", ["vxlan", "gre", "geneve"])
def test_tenant_networks_ping_across_hosts(ovs: Stack, kind: str) -> None:
    n = {"vxlan": 1, "gre": 2, "geneve": 3}[kind]
    net = ovs.network(f"t-{kind}", f"10.6{n}.0.0/24", enable_dhcp=False, **{"provider:network_type": kind})
    a = ovs.vm(f"{kind}-a", "h1", net["id"], ip_address=f"10.6{n}.0.11")
    ovs.vm(f"{kind}-b", "h2", net["id"], ip_address=f"10.6{n}.0.12")
    assert wait_for(f"ping over {kind}", lambda: ovs.ping(f"{kind}-a", f"10.6{n}.0.12"), timeout=15)
    port = ovs.port(a["port_id"])
    assert port["binding:vif_type"] == "ovs"
    assert port["binding:vif_details"] == {"port_filter": True, "ovs_hybrid_plug": False, "datapath_type": "netdev",
                                           "bridge_name": "br-int", "connectivity": "l2"}
    tunnels = ovs.host("h1", "ovs-vsctl", f"--db={host_ovs(ovs, 'h1').db_remote}", "list-ports", "br-tun")
    assert f"{kind}-0a63000" in tunnels  # Neutron's tunnel port name: type and the remote VTEP in hex


def test_vlan_provider_network_carries_8021q_tags_between_hosts(ovs: Stack) -> None:
    net = ovs.network("seed002-vlan", "10.70.0.0/24", enable_dhcp=False, shared=True, **{
        "provider:network_type": "vlan", "provider:physical_network": "default", "provider:segmentation_id": 101})
    ovs.vm("v1", "h1", net["id"], ip_address="10.70.0.11")
    ovs.vm("v2", "h2", net["id"], ip_address="10.70.0.12")
    provider = ovs.lab.names.provider
    cap = subprocess.Popen(["ip", "netns", "exec", provider, "tcpdump", "-e", "-nn", "-l", "-i", "p2-h1", "-c", "2",
                            "icmp"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.5)
        assert wait_for("ping over vlan 101", lambda: ovs.ping("v1", "10.70.0.12"), timeout=15)
        out, _ = cap.communicate(timeout=10)
    finally:
        if cap.poll() is None:
            cap.send_signal(signal.SIGTERM)
            cap.wait(5)
    lines = [line for line in out.splitlines() if "10.70.0." in line]
    assert lines and all("802.1Q" in line and "vlan 101," in line for line in lines), out


def test_kill9_of_the_agent_then_restart_keeps_ports_active_and_flows_unduplicated(ovs: Stack) -> None:
    net = ovs.network("restart", "10.71.0.0/24", enable_dhcp=False)
    vms = [ovs.vm(f"r{i}", "h1" if i % 2 else "h2", net["id"], ip_address=f"10.71.0.{10 + i}") for i in range(1, 5)]
    ovs.wait_converged()
    before = kaon_flows(ovs, "h1")
    rec: dict[str, Any] = ovs.lab.state()["hosts"]["h1"]["agent"]  # type: ignore[index]
    # A ping flood from h1's VM to h2's across the kill and the restart.
    flood = subprocess.Popen(["ip", "netns", "exec", ovs.lab.vm("r1")["namespace"], "ping", "-c", "150", "-i", "0.02",
                              "-W", "1", "10.71.0.12"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    os.kill(int(rec["pid"]), signal.SIGKILL)
    # Gone (and reaped) before the lab is asked to start what is not running.
    wait_for("the killed agent gone", lambda: not agent_alive(rec), timeout=10)
    ovs.lab.start_agents()
    assert ovs.lab.state()["hosts"]["h1"]["agent"]["pid"] != rec["pid"]  # type: ignore[index]
    out, _ = flood.communicate(timeout=60)
    assert " 0% packet loss" in out, out
    ovs.wait_agents(["h1"])
    for vm in vms:
        ovs.wait_active(vm["port_id"])
    ovs.wait_converged()
    after = kaon_flows(ovs, "h1")
    assert after == before and len(after) == len(set(after)), "the restarted agent changed or duplicated flows"
    # A port added after the restart is wired by the new agent.
    ovs.vm("r9", "h1", net["id"], ip_address="10.71.0.19")
    assert wait_for("ping from the new VM", lambda: ovs.ping("r9", "10.71.0.12"), timeout=15)


def test_tcp_between_vms_on_ovs_hosts(ovs: Stack) -> None:
    """TCP completes across hosts (veths into OVS's userspace datapath need checksum offload off)."""
    net = ovs.network("tcp", "10.73.0.0/24", enable_dhcp=False)
    ovs.vm("c1", "h1", net["id"], ip_address="10.73.0.11")
    server = ovs.vm("s2", "h2", net["id"], ip_address="10.73.0.12")
    assert wait_for("ping", lambda: ovs.ping("c1", "10.73.0.12"), timeout=15)
    listener = subprocess.Popen(["ip", "netns", "exec", server["namespace"], "socat", "TCP-LISTEN:8080,reuseaddr",
                                 "SYSTEM:echo kaon-over-ovs"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def fetch() -> str:
            r = ovs.lab.exec("c1", ["socat", "-T", "3", "-", "TCP:10.73.0.12:8080,connect-timeout=3"],
                             capture=True, timeout=10)
            return r.stdout
        assert "kaon-over-ovs" in wait_for("a TCP answer", fetch, timeout=15)
    finally:
        listener.terminate()
        listener.wait(5)


def test_security_groups_are_enforced_on_ovs_hosts(ovs: Stack) -> None:
    """The lab's OVS hosts run firewall_driver = openvswitch: a group without ingress rules keeps pings
    out until a rule lets them in (an API change reaching the agent's conntrack flows)."""
    net = ovs.network("sg", "10.74.0.0/24", enable_dhcp=False)
    closed = ovs.api("POST", "/v2.0/security-groups", {"security_group": {"name": "closed"}})["security_group"]
    ovs.vm("sg1", "h1", net["id"], ip_address="10.74.0.11")
    ovs.vm("sg2", "h2", net["id"], ip_address="10.74.0.12", security_groups=["closed"])
    ovs.wait_converged()
    assert not ovs.ping("sg1", "10.74.0.12", count=2), "a group without ingress rules let a ping in"
    assert any(f.table == 72 for f in ovs.ovs_flows("h2", "br-int")), "no conntrack rule table on br-int"
    ovs.api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": closed["id"], "direction": "ingress", "ethertype": "IPv4", "protocol": "icmp"}})
    assert wait_for("ping after the rule", lambda: ovs.ping("sg1", "10.74.0.12"), timeout=15)
