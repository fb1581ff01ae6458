"""DHCP on the wire (issue 5, DHCP agent): a lab of two hosts whose h1 also
runs the dhcp role, with ``enable_isolated_metadata = true``.

* a VM on h2 gets its port's address by DHCP across VXLAN, with its default
  route via the gateway and MTU 1450;
* the DHCP port holds the pool's first address whatever the port order;
* extra_dhcp_opts reach dnsmasq's files, and port changes reload dnsmasq
  (SIGHUP) without restarting it;
* seed 002: a shared flat provider network without a router; a VM of another
  project gets the 169.254.169.254/32 route via the DHCP port by DHCP;
* kill -9 and restart h1's agent: dnsmasq adopted (same pid, one per
  network), a VM renews the same address, a network deleted meanwhile has its
  namespace swept.

Every scenario runs on Linux bridge hosts and on Open vSwitch hosts (issue 11: the
network node's ports on br-int with ``interface_driver = openvswitch``, the provider
network through br-ex); one stack per mechanism for the module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fullstack.stack import LB, OVS, Stack, stack, wait_for

pytestmark = [pytest.mark.needs_root]


@pytest.fixture(scope="module", params=[LB, OVS])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    conf = {"DEFAULT": {"enable_isolated_metadata": "true"}}
    with stack(tmp_path_factory.mktemp("dhcp"), hosts=2, extra_conf=conf, mechanism=request.param) as s:
        wait_for("the DHCP agent on h1", lambda: any(
            a["alive"] for a in s.api("GET", "/v2.0/agents", agent_type="DHCP agent")["agents"]))
        yield s


def dhcp_port(s: Stack, net_id: str) -> dict[str, Any]:
    ports = s.api("GET", "/v2.0/ports", network_id=net_id, device_owner="network:dhcp")["ports"]
    assert len(ports) == 1, ports
    return dict(ports[0])


def qdhcp(s: Stack, net_id: str) -> str:
    return f"{s.lab.prefix}qdhcp-{net_id}"


def dnsmasq_pids(s: Stack, net_id: str) -> list[int]:
    r = subprocess.run(["ip", "netns", "pids", qdhcp(s, net_id)], capture_output=True, text=True)
    pids = [int(p) for p in r.stdout.split()]
    return [p for p in pids if _comm(p) == "dnsmasq"]


def _comm(pid: int) -> str | None:
    # The agent's own `ip -n` commands pass through the namespace too, and may be gone by now.
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except FileNotFoundError:
        return None


def dnsmasq_file(pid: int, option: str) -> Path:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return Path(next(a.split("=", 1)[1] for a in argv if a.startswith(f"--{option}=")))


def vm_exec(s: Stack, vm: str, *cmd: str) -> str:
    return str(s.lab.exec(vm, list(cmd), capture=True, check=True).stdout)


def fixed_ip(s: Stack, port_id: str) -> str:
    return str(s.port(port_id)["fixed_ips"][0]["ip_address"])


def test_a_vm_on_h2_gets_its_address_route_and_mtu_by_dhcp(lab: Stack) -> None:
    net = lab.network("dnet", "10.30.0.0/24")
    vm = lab.vm("d1", "h2", net["id"], dhcp=True)
    assert vm["addressing"] == "dhcp" and vm["ips"] == [f"{fixed_ip(lab, vm['port_id'])}/24"]
    routes = vm_exec(lab, "d1", "ip", "-4", "route")
    assert "default via 10.30.0.1" in routes
    assert "mtu 1450" in vm_exec(lab, "d1", "ip", "link", "show", "eth0")
    port = lab.wait_active(dhcp_port(lab, net["id"])["id"])
    assert port["fixed_ips"][0]["ip_address"] == "10.30.0.2" and port["binding:host_id"] == "h1"
    assert lab.ping("d1", "10.30.0.2")


def test_the_dhcp_port_is_the_pools_first_address_whatever_the_order(lab: Stack) -> None:
    a = lab.network("order-a", "10.31.0.0/24")
    lab.api("POST", "/v2.0/ports", {"port": {"network_id": a["id"], "name": "early"}})
    b = lab.api("POST", "/v2.0/networks", {"network": {"name": "order-b"}})["network"]
    lab.api("POST", "/v2.0/subnets", {"subnet": {"network_id": b["id"], "cidr": "10.32.0.0/24", "ip_version": 4,
                                                 "allocation_pools": [{"start": "10.32.0.50", "end": "10.32.0.99"}]}})
    lab.api("POST", "/v2.0/ports", {"port": {"network_id": b["id"], "name": "early"}})
    assert dhcp_port(lab, a["id"])["fixed_ips"][0]["ip_address"] == "10.31.0.2"
    assert dhcp_port(lab, b["id"])["fixed_ips"][0]["ip_address"] == "10.32.0.50"
    vm = lab.vm("o1", "h2", b["id"], dhcp=True)
    assert vm["ips"] == ["10.32.0.52/24"]  # .50 DHCP, .51 the early port


def test_extra_options_and_new_ports_reload_without_restart(lab: Stack) -> None:
    net = lab.network("opts", "10.33.0.0/24")
    vm = lab.vm("x1", "h2", net["id"], dhcp=True)
    [pid] = wait_for("dnsmasq", lambda: dnsmasq_pids(lab, net["id"]))
    opts = dnsmasq_file(pid, "dhcp-optsfile")
    lab.api("PUT", f"/v2.0/ports/{vm['port_id']}", {"port": {"extra_dhcp_opts": [
        {"opt_name": "domain-search", "opt_value": "example.org"}]}})
    wait_for("the extra option in dnsmasq's options", lambda: "option:domain-search,example.org" in opts.read_text())
    hosts = dnsmasq_file(pid, "dhcp-hostsfile").read_text()
    assert f"set:port-{vm['port_id']}" in hosts
    vm2 = lab.vm("x2", "h1", net["id"], dhcp=True)  # a new host entry: served after a reload
    assert vm2["ips"] == [f"{fixed_ip(lab, vm2['port_id'])}/24"]
    assert dnsmasq_pids(lab, net["id"]) == [pid]
    assert lab.lab.renew_dhcp("x1") == vm["ips"]


def test_seed_002_isolated_metadata_route_on_a_shared_provider_network(lab: Stack) -> None:
    net = lab.api("POST", "/v2.0/networks", {"network": {
        "name": "pub100", "shared": True, "provider:network_type": "flat",
        "provider:physical_network": "provider"}})["network"]
    lab.api("POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.34.0.0/24",
                                                 "ip_version": 4}})
    other = f"p-{uuid.uuid4().hex[:8]}"
    vm = lab.vm("m1", "h2", net["id"], dhcp=True, project_id=other)
    assert lab.port(vm["port_id"])["project_id"] == other
    server = dhcp_port(lab, net["id"])["fixed_ips"][0]["ip_address"]
    assert server == "10.34.0.2"
    routes = vm_exec(lab, "m1", "ip", "-4", "route")
    assert f"169.254.169.254 via {server}" in routes and "default via 10.34.0.1" in routes
    inside = subprocess.run(["ip", "-n", qdhcp(lab, net["id"]), "-4", "addr"], capture_output=True, text=True).stdout
    assert "169.254.169.254/32" in inside and f"{server}/24" in inside


def agent_pid(s: Stack, host: str) -> int:
    return int(s.lab.state()["hosts"][host]["agent"]["pid"])


def test_agent_restart_adopts_dnsmasq_and_sweeps_a_deleted_network(lab: Stack) -> None:
    keep = lab.network("keep", "10.35.0.0/24")
    gone = lab.network("gone", "10.36.0.0/24")
    vm = lab.vm("r1", "h2", keep["id"], dhcp=True)
    [pid] = wait_for("dnsmasq", lambda: dnsmasq_pids(lab, keep["id"]))
    wait_for("dnsmasq on the second network", lambda: dnsmasq_pids(lab, gone["id"]))
    lab.wait_converged()
    old = agent_pid(lab, "h1")
    os.kill(old, signal.SIGKILL)
    wait_for("h1's agent gone", lambda: not Path(f"/proc/{old}").exists() or
             Path(f"/proc/{old}/stat").read_text().split(")")[-1].split()[0] == "Z")
    lab.api("DELETE", f"/v2.0/networks/{gone['id']}")
    lab.lab.start_agents()
    lab.wait_agents(["h1", "h2"])
    lab.wait_converged(timeout=30)
    assert dnsmasq_pids(lab, keep["id"]) == [pid]  # adopted, not restarted nor duplicated
    wait_for("the deleted network's namespace swept",
             lambda: not Path(f"/run/netns/{qdhcp(lab, gone['id'])}").exists(), timeout=30)
    assert lab.lab.renew_dhcp("r1") == vm["ips"]
