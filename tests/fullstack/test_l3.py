"""Routers on the wire (issue 5, L3 agent): seeds 001 and 004 without DHCP
or metadata, on a lab of two hosts whose h1 also runs the l3 role.

* seed 001: a VM on h2 reaches the outside through SNAT (the outside sees
  the router's gateway address), then through its floating IP, which the
  outside reaches; router ports become ACTIVE;
* seed 004: two routers, two networks both 192.168.101.0/24, a VM at .3 on
  each: both reach the outside, each floating IP reaches the right VM;
* kill -9 and restart h1's agent: NAT still works, nothing duplicated (the
  router namespace, and h1's L2 wiring: OVS flows and br-int ports, or Linux
  bridge links); a deleted router's namespace is swept.

Every scenario runs on Linux bridge hosts and on Open vSwitch hosts (issue 11:
``interface_driver = openvswitch``, qr-/qg- ports on br-int, the external
network through br-ex).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kaon.dataplane import nft
from tests.fullstack.stack import LB, OVS, Stack, stack, wait_for

pytestmark = [pytest.mark.needs_root]

OUTSIDE = "192.168.100.1"


@pytest.fixture(scope="module", params=[LB, OVS])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("l3"), hosts=2, mechanism=request.param) as s:
        wait_for("the L3 agent on h1", lambda: any(
            a["alive"] for a in s.api("GET", "/v2.0/agents", agent_type="L3 agent")["agents"]))
        s.open_default_groups()  # the outside pings and connects to the VMs' floating IPs
        yield s


def subnet(s: Stack, net_id: str, cidr: str, **attrs: Any) -> dict[str, Any]:
    body = {"network_id": net_id, "cidr": cidr, "ip_version": 4, "enable_dhcp": False, **attrs}
    return s.api("POST", "/v2.0/subnets", {"subnet": body})["subnet"]


@pytest.fixture(scope="module")
def ext(lab: Stack) -> dict[str, Any]:
    net = lab.api("POST", "/v2.0/networks", {"network": {
        "name": "ext-net", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "provider"}})["network"]
    subnet(lab, net["id"], "192.168.100.0/24", gateway_ip=OUTSIDE,
           allocation_pools=[{"start": "192.168.100.10", "end": "192.168.100.90"}])
    return net


def router(s: Stack, name: str, ext_id: str, subnet_id: str) -> dict[str, Any]:
    r = s.api("POST", "/v2.0/routers", {"router": {"name": name,
                                                   "external_gateway_info": {"network_id": ext_id}}})["router"]
    s.api("PUT", f"/v2.0/routers/{r['id']}/add_router_interface", {"subnet_id": subnet_id})
    return s.api("GET", f"/v2.0/routers/{r['id']}")["router"]


def private(s: Stack, name: str, cidr: str) -> tuple[dict[str, Any], dict[str, Any]]:
    net = s.api("POST", "/v2.0/networks", {"network": {"name": name}})["network"]
    return net, subnet(s, net["id"], cidr)


def fip(s: Stack, ext_id: str, port_id: str) -> str:
    body = {"floatingip": {"floating_network_id": ext_id, "port_id": port_id}}
    return str(s.api("POST", "/v2.0/floatingips", body)["floatingip"]["floating_ip_address"])


def router_ns(s: Stack, router_id: str) -> str:
    return f"{s.lab.prefix}qrouter-{router_id}"


def in_ns(ns: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout)


class Listener:
    """``socat`` in a namespace answering each TCP connection with a text; stopped by pid."""

    def __init__(self, ns: str, port: int, reply: str) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "socat", f"TCP-LISTEN:{port},fork,reuseaddr",
                                      f"SYSTEM:{reply}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)

    def close(self) -> None:
        self.proc.kill()  # fork children exit when their connection ends
        self.proc.wait()


def ask(ns: str, address: str, port: int) -> str:
    r = in_ns(ns, "socat", "-T", "3", "-", f"TCP:{address}:{port},connect-timeout=3")
    return r.stdout.strip()


def vm_ns(s: Stack, name: str) -> str:
    return s.lab.names.vm(name)


def wait_ping(s: Stack, vm: str, address: str, timeout: float = 20) -> None:
    wait_for(f"{vm} pings {address}", lambda: s.ping(vm, address), timeout, interval=0.2)


def test_seed_001_snat_floating_ip_and_active_router_ports(lab: Stack, ext: dict[str, Any]) -> None:
    net, sub = private(lab, "private-net", "10.0.0.0/24")
    r1 = router(lab, "router1", ext["id"], sub["id"])
    gw_ip = r1["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    vm = lab.vm("s1", "h2", net["id"], ip_address="10.0.0.10")
    router_ports = lab.api("GET", "/v2.0/ports", device_id=r1["id"])["ports"]
    assert {p["device_owner"] for p in router_ports} == {"network:router_interface", "network:router_gateway"}
    for p in router_ports:
        assert p["binding:host_id"] == "h1"
        lab.wait_active(p["id"])
    start = time.monotonic()
    wait_ping(lab, "s1", OUTSIDE)
    print(f"router reachable in {time.monotonic() - start:.2f} s after the VM was ACTIVE")
    out = Listener(lab.lab.names.outside, 9000, "'echo $SOCAT_PEERADDR'")
    try:
        assert ask(vm_ns(lab, "s1"), OUTSIDE, 9000) == gw_ip  # SNAT to the gateway address
        address = fip(lab, ext["id"], vm["port_id"])
        start = time.monotonic()
        wait_for("the outside reaches the floating IP",
                 lambda: lab.lab.outside_exec(["ping", "-c", "1", "-W", "1", address], capture=True).returncode == 0,
                 timeout=20, interval=0.1)
        print(f"floating IP reachable {time.monotonic() - start:.2f} s after its creation")
        # The router answers a ping to the address as soon as qg- carries it, a moment before
        # the NAT table that makes it the VM's is in: wait for the VM to leave as it.
        wait_for("the VM leaves as its floating IP", lambda: ask(vm_ns(lab, "s1"), OUTSIDE, 9000) == address,
                 timeout=10, interval=0.1)
        # Hairpin: a VM on the same network reaches s1 through s1's floating IP.
        lab.vm("s2", "h2", net["id"], ip_address="10.0.0.11")
        wait_ping(lab, "s2", address)
    finally:
        out.close()
    ns = router_ns(lab, r1["id"])
    assert "net.ipv4.ip_forward = 1" in in_ns(ns, "sysctl", "net.ipv4.ip_forward").stdout


def test_seed_004_overlapping_networks_behind_two_routers(lab: Stack, ext: dict[str, Any]) -> None:
    vms = {}
    for name in ("a", "b"):
        net, sub = private(lab, f"overlap-{name}", "192.168.101.0/24")
        router(lab, f"r-{name}", ext["id"], sub["id"])
        vms[name] = lab.vm(f"o{name}", "h2", net["id"], ip_address="192.168.101.3")
    for name in vms:
        wait_ping(lab, f"o{name}", OUTSIDE)
    fips = {name: fip(lab, ext["id"], vm["port_id"]) for name, vm in vms.items()}
    listeners = [Listener(vm_ns(lab, f"o{name}"), 8080, f"'echo vm-{name}'") for name in vms]
    try:
        for name, address in fips.items():
            wait_for(f"{address} answers as vm-{name}",
                     lambda a=address, n=name: ask(lab.lab.names.outside, a, 8080) == f"vm-{n}", timeout=20,
                     interval=0.2)
    finally:
        for listener in listeners:
            listener.close()


def agent_pid(s: Stack, host: str) -> int:
    state = s.lab.state()
    assert state is not None
    return int(state["hosts"][host]["agent"]["pid"])


def test_agent_kill_restart_keeps_nat_and_sweeps_a_deleted_router(lab: Stack, ext: dict[str, Any]) -> None:
    net, sub = private(lab, "restart-net", "10.30.0.0/24")
    r = router(lab, "restart-r", ext["id"], sub["id"])
    vm = lab.vm("k1", "h2", net["id"], ip_address="10.30.0.10")
    address = fip(lab, ext["id"], vm["port_id"])
    wait_ping(lab, "k1", OUTSIDE)
    ns = router_ns(lab, r["id"])
    lab.wait_converged()
    # h1's L2 side (OVS: kaon's flows and br-int's tagged ports; Linux bridge: links and their bridges).
    l2_before = lab.l2_snapshot("h1")
    os.kill(agent_pid(lab, "h1"), signal.SIGKILL)
    wait_for("h1's agent gone", lambda: subprocess.run(["kill", "-0", str(agent_pid(lab, "h1"))],
                                                       capture_output=True).returncode != 0, timeout=10)
    lab.lab.start_agents()
    lab.wait_agents(["h1"])
    lab.wait_converged(timeout=30)
    assert lab.ping("k1", OUTSIDE, count=2)
    assert lab.lab.outside_exec(["ping", "-c", "1", "-W", "2", address], capture=True).returncode == 0
    assert lab.l2_snapshot("h1") == l2_before, "the restarted agent changed or duplicated h1's L2 wiring"
    tables = in_ns(ns, "ip", "-o", "link").stdout  # one veth end per port, no second one
    assert sum(1 for line in tables.splitlines() if ": qg-" in line) == 1
    addrs = in_ns(ns, "ip", "-o", "-4", "addr", "show").stdout
    assert addrs.count(f" {address}/32 ") == 1 and addrs.count(" 10.30.0.1/24 ") == 1
    assert nft.run(ns, "list tables").split() == ["table", "ip", "kaon-nat"]  # one table, ours
    assert nft.list_table(ns, "ip", "kaon-nat").count("dnat to 10.30.0.10") == 2  # prerouting + output
    # The router goes: its namespace, recorded by the agent, is swept.
    fips = lab.api("GET", "/v2.0/floatingips", router_id=r["id"])["floatingips"]
    for f in fips:
        lab.api("DELETE", f"/v2.0/floatingips/{f['id']}")
    lab.api("PUT", f"/v2.0/routers/{r['id']}/remove_router_interface", {"subnet_id": sub["id"]})
    lab.api("DELETE", f"/v2.0/routers/{r['id']}")
    wait_for(f"{ns} swept", lambda: ns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                               text=True).stdout, timeout=20)


def test_a_nat_rule_deleted_by_hand_comes_back_within_the_resync_interval(lab: Stack, ext: dict[str, Any]) -> None:
    net, sub = private(lab, "drift-net", "10.50.0.0/24")
    r = router(lab, "drift-r", ext["id"], sub["id"])
    lab.vm("n1", "h2", net["id"], ip_address="10.50.0.10")
    wait_ping(lab, "n1", OUTSIDE)
    ns = router_ns(lab, r["id"])
    listing = nft.run(ns, "list table ip kaon-nat", nft.OUTPUT_JSON | nft.OUTPUT_HANDLE)
    snat = [i["rule"] for i in json.loads(listing)["nftables"] if "rule" in i and "snat" in json.dumps(i["rule"])]
    assert snat, listing
    nft.run(ns, f"delete rule ip kaon-nat {snat[0]['chain']} handle {snat[0]['handle']}")
    assert "snat" not in nft.list_table(ns, "ip", "kaon-nat")
    # The agent's periodic resync (5 s in this stack) reads the table back and writes it again.
    wait_for("the SNAT rule is back", lambda: "snat" in nft.list_table(ns, "ip", "kaon-nat"), timeout=20,
             interval=0.5)
    wait_ping(lab, "n1", OUTSIDE)


def test_an_admin_down_router_is_plugged_but_does_not_forward(lab: Stack, ext: dict[str, Any]) -> None:
    """Its ports go ACTIVE (as Neutron's, and tempest waits for that); traffic waits for admin up."""
    net, sub = private(lab, "down-net", "10.40.0.0/24")
    r = router(lab, "down-router", ext["id"], sub["id"])
    lab.vm("d1", "h2", net["id"], ip_address="10.40.0.10")
    wait_ping(lab, "d1", OUTSIDE)
    lab.api("PUT", f"/v2.0/routers/{r['id']}", {"router": {"admin_state_up": False}})
    lab.wait_converged()
    for p in lab.api("GET", "/v2.0/ports", device_id=r["id"])["ports"]:
        assert lab.wait_active(p["id"])["status"] == "ACTIVE"
    assert not lab.ping("d1", OUTSIDE, count=2)
    lab.api("PUT", f"/v2.0/routers/{r['id']}", {"router": {"admin_state_up": True}})
    wait_ping(lab, "d1", OUTSIDE)
