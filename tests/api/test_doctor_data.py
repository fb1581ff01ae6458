"""kaon doctor's checks of the stored state (kaon.doctor.data_checks): each
case is made to happen through the API and the agents' bus methods on a real
app and database, then the doctor must name it with its cause and fix — and
stay quiet once it is fixed."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.core.agents.agent_rpc import AgentRpc
from kaon.doctor import registry
from kaon.doctor.finding import Report
from kaon.ml2.binding import utcnow
from tests.api.agent_support import AGENT_CONF, report, services
from tests.api.core_support import Api, build_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    made = build_api(f"sqlite:///{tmp_path / 'kaon.sqlite'}", tmp_path, AGENT_CONF)
    yield made
    made.close()


def later(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


def doctor(api: Api, check: str, now: dt.datetime | None = None) -> Report:
    svc = services(api)
    out = registry.run(svc.cfg, engine=svc.engine, kinds=[registry.DATA], only=[check], now=now)
    assert not out.not_checked, out.not_checked
    return out


def lines(api: Api, check: str, now: dt.datetime | None = None) -> list[str]:
    return [f.line() for f in doctor(api, check, now).findings]


def lb(api: Api, host: str, now: dt.datetime | None = None) -> None:
    report(api, "lb", host, now=now, tunnel_types=["vxlan"], tunneling_ip="10.99.0.1",
           interface_mappings={"provider": "eth1"})


def rpc(api: Api) -> AgentRpc:
    svc = services(api)
    return AgentRpc(svc.engine, svc.agents, svc.compiler)


def vm(api: Api, net: str, host: str, **attrs: Any) -> dict[str, Any]:
    return api.admin().port(net, **{"binding:host_id": host, "device_owner": "compute:nova", **attrs})


def test_binding_failed_names_each_port_and_its_reason(api: Api) -> None:
    net, _ = api.admin().net_with_subnet("10.0.0.0/24")
    port = vm(api, net["id"], "ghost", name="web1")
    assert lines(api, "binding_failed") == [
        f"ghost: port web1 ({port['id']}): binding failed on host ghost: "
        f"{api.admin().show('ports', port['id'])['binding:failure_reason']} — fix what the reason names "
        f"(agent down, mapping missing), then openstack port set --host ghost {port['id']} to bind again"]
    lb(api, "ghost")  # the agent arrives: the port binds, the finding goes
    assert lines(api, "binding_failed") == []


def test_a_renamed_host_is_named_with_both_names(api: Api) -> None:
    lb(api, "compute1")
    net, _ = api.admin().net_with_subnet("10.0.0.0/24")
    port = vm(api, net["id"], "compute1")
    # A dead agent alone is not a rename (active_on_dead_host speaks of it).
    assert lines(api, "renamed_host", now=later(600)) == []
    lb(api, "compute1.example.org", now=later(580))  # the host came back under its FQDN
    found = doctor(api, "renamed_host", now=later(600)).findings
    assert len(found) == 1
    line = found[0].line()
    assert line.startswith("compute1: host compute1: its Linux bridge agent is dead")
    assert "1 port(s) are still bound to it, and a Linux bridge agent appeared on compute1.example.org" in line
    assert f"openstack port set --host compute1.example.org PORT for {port['id']}" in line
    assert "then openstack network agent delete " in line


def test_ports_active_on_a_host_whose_agent_is_dead(api: Api) -> None:
    lb(api, "h1")
    net, _ = api.admin().net_with_subnet("10.0.0.0/24")
    port = vm(api, net["id"], "h1")
    rpc(api)("update_devices", {"host": "h1", "up": [port["id"]]})
    assert lines(api, "active_on_dead_host") == []
    found = lines(api, "active_on_dead_host", now=later(600))
    assert len(found) == 1
    assert found[0].startswith(f"h1: host h1: 1 port(s) ACTIVE ({port['id']}) but its Linux bridge agent is dead")
    assert found[0].endswith("— start the agent on h1, or move the ports: openstack port set --host NEWHOST PORT")


def test_a_host_behind_its_latest_generation(api: Api) -> None:
    lb(api, "h1")
    net, _ = api.admin().net_with_subnet("10.0.0.0/24")
    vm(api, net["id"], "h1")
    services(api).compiler.compile_now()
    gen = rpc(api)("get_intent", {"host": "h1", "known_generation": None})["generation"]
    found = lines(api, "generation_lag", now=later(600))
    assert len(found) == 1
    assert found[0].startswith(f"h1: host h1: applied generation 0, latest is {gen} compiled 10 min ")
    assert found[0].endswith("ago; its agents are dead — read the agent's log on h1 (it logs each failing action) "
                             "and restart it if it is stuck: kaon agent --config-file …")
    lb(api, "h1", now=later(590))  # alive, and still not applying
    assert "ago; its agent is alive but has not applied it — " in lines(api, "generation_lag", now=later(600))[0]
    assert lines(api, "generation_lag") == []  # just compiled: not late yet
    rpc(api)("report_applied", {"host": "h1", "generation": gen})
    assert lines(api, "generation_lag", now=later(600)) == []


def test_metadata_has_no_path_on_a_network_without_a_router(api: Api) -> None:
    admin = api.admin()
    net, sub = admin.net_with_subnet("10.0.0.0/24")
    admin.update("networks", net["id"], name="isolated")
    vm(api, net["id"], "h1")
    assert lines(api, "isolated_metadata") == [
        f"network isolated ({net['id']}): 1 VM port(s) on 10.0.0.0/24 with no router and enable_isolated_metadata "
        "off: 169.254.169.254 has no path — set enable_isolated_metadata = true (dhcp_agent.ini / [DEFAULT]) or "
        "attach a subnet to a router: openstack router add subnet ROUTER SUBNET"]
    router = admin.create("routers", name="r")
    admin.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    assert lines(api, "isolated_metadata") == []


def test_isolated_metadata_on_makes_the_metadata_check_not_applicable(tmp_path: Path) -> None:
    conf = {**AGENT_CONF, "DEFAULT": {"enable_isolated_metadata": "true"}}
    api = build_api(f"sqlite:///{tmp_path / 'k.sqlite'}", tmp_path, conf)
    try:
        net, _ = api.admin().net_with_subnet("10.0.0.0/24")
        vm(api, net["id"], "h1")
        out = doctor(api, "isolated_metadata")
        assert out.findings == [] and [s.check for s in out.not_applicable] == ["isolated_metadata"]
    finally:
        api.close()


def _dhcp_port(api: Api, net_id: str) -> dict[str, Any]:
    found = api.admin().list("ports", {"network_id": net_id, "device_owner": "network:dhcp"})
    assert len(found) == 1, found
    return found[0]


def test_a_dhcp_port_whose_address_changed(api: Api) -> None:
    report(api, "dhcp", "net1")
    net, sub = api.admin().net_with_subnet("10.0.0.0/24")
    port = _dhcp_port(api, net["id"])
    assert port["fixed_ips"][0]["ip_address"] == "10.0.0.2"
    assert lines(api, "dhcp_port_address") == []
    api.admin().update("ports", port["id"], fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.0.0.7"}])
    assert lines(api, "dhcp_port_address") == [
        f"net1: DHCP port {port['id']} on 10.0.0.0/24: is at 10.0.0.7, not 10.0.0.2 (the pool's first address, "
        f"where kaon puts the DHCP server) — openstack port set {port['id']} --no-fixed-ip --fixed-ip "
        f"subnet={sub['id']},ip-address=10.0.0.2"]


def test_a_dhcp_port_claimed_by_a_host_that_does_not_serve_the_network(api: Api) -> None:
    report(api, "dhcp", "net1")
    net, _ = api.admin().net_with_subnet("10.0.0.0/24")
    assert lines(api, "dhcp_port_claims") == []
    stale = api.admin().port(net["id"], device_owner="network:dhcp", device_id=f"dhcpold-{net['id']}",
                             **{"binding:host_id": "net0"})
    assert lines(api, "dhcp_port_claims") == [
        f"net0: DHCP port {stale['id']}: claims network {net['id']} for host net0, whose DHCP agent does not serve "
        f"it (two DHCP servers, or none, answer) — openstack port delete {stale['id']} (kaon makes the port of the "
        "agent that serves the network); openstack network agent list --network NETWORK shows which"]


def test_two_dhcp_ports_of_one_network_on_one_host(api: Api) -> None:
    report(api, "dhcp", "net1")
    net, _ = api.admin().net_with_subnet("10.0.0.0/24")
    first = _dhcp_port(api, net["id"])
    second = api.admin().port(net["id"], device_owner="network:dhcp", device_id=f"dhcpdup-{net['id']}",
                              **{"binding:host_id": "net1"})
    assert lines(api, "dhcp_port_claims") == [
        f"net1: DHCP port {second['id']}: network {net['id']} has two DHCP ports on host net1 "
        f"({first['id']} and {second['id']}) — openstack port delete {second['id']}"]


def test_a_router_gateway_without_an_address(api: Api) -> None:
    admin = api.admin()
    ext = admin.network(**{"router:external": True})
    router = admin.create("routers", name="edge", external_gateway_info={"network_id": ext["id"]})
    gw_port = admin.list("ports", {"device_id": router["id"]})[0]
    assert lines(api, "router_gateway") == [
        f"router edge ({router['id']}): gateway port {gw_port['id']} on network {ext['id']} has no IP address — "
        f"add a subnet to network {ext['id']}, then openstack router unset --external-gateway and openstack "
        f"router set --external-gateway {ext['id']} ROUTER"]


def test_the_report_of_a_healthy_cloud_is_empty(api: Api) -> None:
    # Agents of this version: their clock, their (no) peers, their (no) dnsmasq.
    report(api, "lb", "h1", health={"time": time.time(), "tunnels": {}, "tunnel_mtu": {}, "mtu": []},
           tunnel_types=["vxlan"], tunneling_ip="10.99.0.1")
    report(api, "ovs", "h2", health={"time": time.time(), "tunnels": {}, "tunnel_mtu": {}, "mtu": [],
                                     "ovsdb": {"remote": "unix:/run/openvswitch/db.sock", "connected": True}},
           tunnel_types=["vxlan"], tunneling_ip="10.99.0.2")
    report(api, "dhcp", "h1", health={"time": time.time(), "dnsmasq": {}})
    admin = api.admin()
    net, sub = admin.net_with_subnet("10.0.0.0/24")
    router = admin.create("routers", name="r")
    admin.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    vm(api, net["id"], "h1")
    svc = services(api)
    out = registry.run(svc.cfg, engine=svc.engine, kinds=[registry.DATA])
    assert (out.findings, out.not_checked, out.exit_code) == ([], [], 0)
    assert len(out.passed) == sum(1 for c in registry.CHECKS if c.needs == registry.DATA)
