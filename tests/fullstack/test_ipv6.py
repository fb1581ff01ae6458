"""IPv6 on the wire (issue 13, item 5): a lab of two hosts whose h1 runs the
dhcp and l3 roles; VMs on h2, across VXLAN, behind one router.

* ``slaac``: radvd in the qrouter- namespace advertises the prefix; the VM
  forms its EUI-64 address, which is the port's fixed IP;
* ``dhcpv6-stateful``: the advertisement's managed flag; dhclient -6 gets
  exactly the port's fixed IP from dnsmasq in qdhcp-, and no SLAAC address;
* the router forwards IPv6 between the two networks (no NAT): the VMs ping
  each other by their v6 addresses, and the router's namespace forwards v6;
* a security group without an IPv6 ICMP rule stops pings to a VM; adding an
  ``ethertype IPv6`` rule lets them through;
* ``dhcpv6-stateless``: SLAAC address, and dnsmasq answers the guest's
  Information-Request with the subnet's DNS server;
* an external network with a v6 subnet: the router's v6 default route goes
  via its gateway, and the outside reaches a VM's own v6 address (routed,
  no NAT) while the VM reaches the outside;
* radvd's life: kill -9 of h1's agent leaves it advertising and the new agent
  adopts it (same pid); an interface removed reloads it; the last v6
  interface removed stops it; the router deleted takes its namespace.

Every scenario runs on Linux bridge hosts and on Open vSwitch hosts (issue 11: the
network node's ports on br-int with ``interface_driver = openvswitch``, the provider
network through br-ex); one stack per mechanism for the module.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import netaddr
import pytest

from kaon.dataplane import nft
from tests.fullstack.stack import LB, OVS, Stack, stack, wait_for

pytestmark = [pytest.mark.needs_root]


@pytest.fixture(scope="module", params=[LB, OVS])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("ipv6"), hosts=2, mechanism=request.param) as s:
        for agent_type in ("DHCP agent", "L3 agent"):
            def alive(t: str = agent_type) -> bool:
                return any(a["alive"] for a in s.api("GET", "/v2.0/agents", agent_type=t)["agents"])
            wait_for(f"the {agent_type} on h1", alive)
        yield s


def v6_network(s: Stack, name: str, cidr: str, mode: str) -> tuple[dict[str, Any], dict[str, Any]]:
    net = s.api("POST", "/v2.0/networks", {"network": {"name": name}})["network"]
    sub = s.api("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": cidr, "ip_version": 6, "name": f"{name}-subnet",
        "ipv6_ra_mode": mode, "ipv6_address_mode": mode}})["subnet"]
    return net, sub


@pytest.fixture(scope="module")
def routed(lab: Stack) -> dict[str, Any]:
    """A router with a slaac network and a dhcpv6-stateful network behind it."""
    slaac_net, slaac_sub = v6_network(lab, "v6-slaac", "2001:db8:a::/64", "slaac")
    dhcp_net, dhcp_sub = v6_network(lab, "v6-dhcp", "2001:db8:b::/64", "dhcpv6-stateful")
    router = lab.api("POST", "/v2.0/routers", {"router": {"name": "r6"}})["router"]
    for sub in (slaac_sub, dhcp_sub):
        lab.api("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    return {"router": router, "slaac": (slaac_net, slaac_sub), "dhcp": (dhcp_net, dhcp_sub)}


def in_ns(ns: str, *cmd: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, check=True,
                          timeout=10).stdout


def vm_v6(s: Stack, vm: str) -> set[str]:
    out = s.lab.exec(vm, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global"], capture=True).stdout
    return {line.split()[3].split("/")[0] for line in out.splitlines()}


def fixed(s: Stack, record: dict[str, Any]) -> str:
    return str(s.port(record["port_id"])["fixed_ips"][0]["ip_address"])


def ping6(s: Stack, vm: str, address: str, count: int = 1) -> bool:
    r = s.lab.exec(vm, ["ping", "-6", "-c", str(count), "-W", "1", "-i", "0.2", address], capture=True)
    return r.returncode == 0


def test_slaac_vm_forms_its_eui64_address_from_the_routers_advertisement(lab: Stack, routed: dict[str, Any]) -> None:
    net, sub = routed["slaac"]
    vm = lab.vm("s1", "h2", net["id"], dhcp=True)
    ip = fixed(lab, vm)
    eui64 = netaddr.EUI(vm["mac"]).ipv6(netaddr.IPNetwork(sub["cidr"]).network)
    assert ip == str(eui64)  # Neutron's IPAM computed it; the kernel formed the same from the RA
    assert vm_v6(lab, "s1") == {ip}
    # The RA made the router the VM's default router (its link-local address) ...
    route = lab.lab.exec("s1", ["ip", "-6", "route", "show", "default"], capture=True).stdout
    assert "via fe80::" in route, route
    # ... and radvd in the router's namespace is what sent it.
    ns = f"{lab.lab.prefix}qrouter-{routed['router']['id']}"
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    assert any(Path(f"/proc/{p}/comm").read_text().strip() == "radvd" for p in pids if Path(f"/proc/{p}").exists())
    # Neighbour discovery of the gateway crosses VXLAN first; on a loaded machine a 2-ping window missed it.
    assert wait_for("s1 pings its gateway", lambda: ping6(lab, "s1", sub["gateway_ip"]), timeout=10)


def test_dhcpv6_stateful_vm_gets_exactly_its_fixed_ip(lab: Stack, routed: dict[str, Any]) -> None:
    net, _ = routed["dhcp"]
    vm = lab.vm("d1", "h2", net["id"], dhcp=True)
    # Only the leased address: the stateful prefix is advertised without the autonomous flag.
    assert vm_v6(lab, "d1") == {fixed(lab, vm)}
    qdhcp = f"{lab.lab.prefix}qdhcp-{net['id']}"
    pids = subprocess.run(["ip", "netns", "pids", qdhcp], capture_output=True, text=True).stdout.split()
    argv = [Path(f"/proc/{p}/cmdline").read_bytes().decode().split("\0") for p in pids
            if Path(f"/proc/{p}/comm").exists() and Path(f"/proc/{p}/comm").read_text().strip() == "dnsmasq"]
    assert len(argv) == 1 and any(a.startswith("--dhcp-range=set:subnet-") and ",static,64," in a for a in argv[0])


def test_router_forwards_ipv6_between_networks_without_nat(lab: Stack, routed: dict[str, Any]) -> None:
    s1 = fixed(lab, lab.lab.vm("s1"))
    d1 = fixed(lab, lab.lab.vm("d1"))
    ns = f"{lab.lab.prefix}qrouter-{routed['router']['id']}"
    assert in_ns(ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding").strip() == "1"
    # Both in the default group, which admits its members over IPv6 too.
    assert wait_for("s1 pings d1 over IPv6", lambda: ping6(lab, "s1", d1), timeout=15)
    assert ping6(lab, "d1", s1)
    nat = nft.run(ns, "list ruleset")
    assert "snat" in nat or "redirect" in nat  # the router's NAT table is there (IPv4) ...
    assert "2001:db8" not in nat and "ip6" not in nat  # ... and IPv6 is routed, not translated
    # An administratively down router stops forwarding IPv6 too, and starts again when up.
    rid = routed["router"]["id"]
    lab.api("PUT", f"/v2.0/routers/{rid}", {"router": {"admin_state_up": False}})
    wait_for("v6 forwarding off", lambda: in_ns(ns, "sysctl", "-n", "net.ipv6.conf.all.forwarding").strip() == "0")
    assert not ping6(lab, "s1", d1)
    lab.api("PUT", f"/v2.0/routers/{rid}", {"router": {"admin_state_up": True}})
    assert wait_for("s1 pings d1 again", lambda: ping6(lab, "s1", d1), timeout=15)


def test_ipv6_security_group_rule_allows_and_its_absence_denies(lab: Stack, routed: dict[str, Any]) -> None:
    net, _ = routed["slaac"]
    sg = lab.api("POST", "/v2.0/security-groups", {"security_group": {"name": "v6-closed"}})["security_group"]
    target = lab.vm("s2", "h2", net["id"], dhcp=True, security_groups=[sg["id"]])
    address = fixed(lab, target)
    assert not ping6(lab, "d1", address, count=2)  # no ingress rule: dropped
    rule = lab.api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv6", "protocol": "ipv6-icmp",
        "remote_ip_prefix": "2001:db8:b::/64"}})["security_group_rule"]
    assert wait_for("the IPv6 rule lets d1's ping in", lambda: ping6(lab, "d1", address), timeout=15)
    lab.api("DELETE", f"/v2.0/security-group-rules/{rule['id']}")
    wait_for("the rule's removal stops it again", lambda: not ping6(lab, "d1", address), timeout=15)


INFO_SCRIPT = """#!/bin/sh
[ -n "$new_dhcp6_name_servers" ] && echo "$new_dhcp6_name_servers" > "$0.dns"
exit 0
"""


def test_dhcpv6_stateless_slaac_address_and_dns_from_dnsmasq(lab: Stack, routed: dict[str, Any],
                                                              tmp_path: Path) -> None:
    net = lab.api("POST", "/v2.0/networks", {"network": {"name": "v6-stateless"}})["network"]
    sub = lab.api("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "2001:db8:c::/64", "ip_version": 6,
        "ipv6_ra_mode": "dhcpv6-stateless", "ipv6_address_mode": "dhcpv6-stateless",
        "dns_nameservers": ["2001:db8::53"]}})["subnet"]
    lab.api("PUT", f"/v2.0/routers/{routed['router']['id']}/add_router_interface", {"subnet_id": sub["id"]})
    vm = lab.vm("l1", "h2", net["id"], dhcp=True)
    assert vm_v6(lab, "l1") == {fixed(lab, vm)}  # the EUI-64 address, formed from the RA's prefix
    script = tmp_path / "info.sh"
    script.write_text(INFO_SCRIPT)
    script.chmod(0o755)
    # -S: an Information-Request, what the RA's other-config flag tells a guest to send.
    r = lab.lab.exec("l1", ["timeout", "20", "dhclient", "-6", "-S", "-1", "-d", "-sf", str(script),
                            "-lf", str(tmp_path / "leases"), "-pf", str(tmp_path / "pid"), "eth0"], capture=True)
    wait_for("dnsmasq's answer", lambda: Path(f"{script}.dns").exists(), timeout=5)
    assert Path(f"{script}.dns").read_text().split() == ["2001:db8::53"], r.stderr


def test_external_v6_gateway_routes_both_ways_without_nat(lab: Stack) -> None:
    outside_v6 = "2001:db8:ff::1"
    lab.lab.outside_exec(["ip", "-6", "addr", "replace", f"{outside_v6}/64", "dev", "eth0", "nodad"], check=True)
    ext = lab.api("POST", "/v2.0/networks", {"network": {
        "name": "ext6", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "provider"}})["network"]
    lab.api("POST", "/v2.0/subnets", {"subnet": {"network_id": ext["id"], "cidr": "2001:db8:ff::/64",
                                                 "ip_version": 6, "enable_dhcp": False, "gateway_ip": outside_v6}})
    net, sub = v6_network(lab, "v6-ext", "2001:db8:d::/64", "slaac")
    router = lab.api("POST", "/v2.0/routers", {"router": {"name": "r6ext",
                                                          "external_gateway_info": {"network_id": ext["id"]}}})["router"]
    lab.api("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    qg = lab.api("GET", "/v2.0/ports", device_id=router["id"], device_owner="network:router_gateway")["ports"][0]
    qg_v6 = qg["fixed_ips"][0]["ip_address"]
    sg = lab.api("POST", "/v2.0/security-groups", {"security_group": {"name": "v6-open"}})["security_group"]
    lab.api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv6", "protocol": "ipv6-icmp"}})
    vm = lab.vm("e1", "h2", net["id"], dhcp=True, security_groups=[sg["id"]])
    address = fixed(lab, vm)
    ns = f"{lab.lab.prefix}qrouter-{router['id']}"
    assert f"default via {outside_v6} dev qg-" in in_ns(ns, "ip", "-6", "route", "show", "default")
    # The outside knows the VM's prefix only through this route via the router's gateway
    # address: replies, and pings to the VM's own address, work only if nothing translates.
    lab.lab.outside_exec(["ip", "-6", "route", "replace", "2001:db8:d::/64", "via", qg_v6], check=True)
    assert wait_for("e1 reaches the outside over IPv6", lambda: ping6(lab, "e1", outside_v6), timeout=15)
    r = lab.lab.outside_exec(["ping", "-6", "-c", "2", "-W", "1", "-i", "0.2", address], capture=True)
    assert r.returncode == 0, r.stdout + r.stderr


def radvd_pid(s: Stack, router_id: str) -> int | None:
    """The router's radvd daemon: the radvd process in its namespace whose pid is the one in the pid
    file it was started with. radvd forks a privilege-separation helper, which for a moment outlives
    a stopped daemon (reparented): it has the same command line but not the pid file's pid."""
    ns = f"{s.lab.prefix}qrouter-{router_id}"
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    found = []
    for p in pids:
        try:
            if Path(f"/proc/{p}/comm").read_text().strip() != "radvd":
                continue
            argv = Path(f"/proc/{p}/cmdline").read_bytes().decode().split("\0")
            pid_file = next(a.split("=", 1)[1] for a in argv if a.startswith("--pidfile="))
            if int(Path(pid_file).read_text().strip()) == int(p):
                found.append(int(p))
        except (FileNotFoundError, StopIteration, ValueError):
            pass  # gone meanwhile, the agent's own short-lived commands, or a pid file being rewritten
    assert len(found) <= 1, found  # never a second one
    return found[0] if found else None


def radvd_conf(s: Stack, router_id: str) -> str:
    argv = Path(f"/proc/{radvd_pid(s, router_id)}/cmdline").read_bytes().decode().split("\0")
    return Path(next(a.split("=", 1)[1] for a in argv if a.startswith("--config="))).read_text()


def test_radvd_adopted_after_agent_kill_reloaded_and_stopped(lab: Stack, routed: dict[str, Any]) -> None:
    rid = routed["router"]["id"]
    before = radvd_pid(lab, rid)
    assert before is not None
    state = lab.lab.state()
    assert state is not None
    os.kill(int(state["hosts"]["h1"]["agent"]["pid"]), signal.SIGKILL)
    wait_for("h1's agent gone", lambda: subprocess.run(["kill", "-0", str(state["hosts"]["h1"]["agent"]["pid"])],
                                                       capture_output=True).returncode != 0, timeout=10)
    lab.lab.start_agents()
    lab.wait_agents(["h1"])
    lab.wait_converged(timeout=30)
    assert radvd_pid(lab, rid) == before  # adopted, not restarted nor duplicated
    _, dhcp_sub = routed["dhcp"]
    assert "AdvManagedFlag on;" in radvd_conf(lab, rid)
    lab.api("PUT", f"/v2.0/routers/{rid}/remove_router_interface", {"subnet_id": dhcp_sub["id"]})
    wait_for("the stateful subnet no longer advertised", lambda: "AdvManagedFlag" not in radvd_conf(lab, rid))
    assert radvd_pid(lab, rid) == before  # a SIGHUP, not a restart
    ports = lab.api("GET", "/v2.0/ports", device_id=rid)["ports"]
    for port in ports:
        for f in port["fixed_ips"]:
            lab.api("PUT", f"/v2.0/routers/{rid}/remove_router_interface", {"subnet_id": f["subnet_id"]})
    wait_for("radvd stopped with no v6 interface left", lambda: radvd_pid(lab, rid) is None)
    ns = f"{lab.lab.prefix}qrouter-{rid}"
    lab.api("DELETE", f"/v2.0/routers/{rid}")
    wait_for(f"{ns} swept", lambda: ns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                               text=True).stdout, timeout=20)
