"""DHCP and L3 agent scheduling: automatic (on subnet/port create, when an
agent registers), by hand through /v2.0/agents/{id}/dhcp-networks and
l3-routers with Neutron's errors, failover from dead DHCP agents, and the
availability zones agents name."""

from __future__ import annotations

from typing import Any

import pytest

from kaon.core.agents.scheduling import dhcp_device_id
from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, ago, report, sweep
from tests.api.core_support import Api, Caller, neutron_error

make_api, project = core_support.make_api, core_support.project


@pytest.fixture
def api(make_api: Any) -> Api:
    return make_api(**AGENT_CONF)


def hosting(admin: Caller, net_id: str) -> list[str]:
    r = admin.get(f"/v2.0/networks/{net_id}/dhcp-agents")
    assert r.status_code == 200, r.text
    return sorted(a["host"] for a in r.json()["agents"])


def hosted(admin: Caller, agent_id: str) -> list[str]:
    r = admin.get(f"/v2.0/agents/{agent_id}/dhcp-networks")
    assert r.status_code == 200, r.text
    return sorted(n["id"] for n in r.json()["networks"])


def add(admin: Caller, agent_id: str, net_id: str) -> Any:
    return admin.post(f"/v2.0/agents/{agent_id}/dhcp-networks", json={"network_id": net_id})


# -- automatic DHCP scheduling -----------------------------------------------
def test_a_dhcp_subnet_schedules_its_network(api: Api) -> None:
    agent = report(api, "dhcp", "net1").agent_id
    admin = api.admin()
    net = admin.network()
    assert hosting(admin, net["id"]) == []  # no subnet yet
    admin.subnet(net["id"])
    assert hosting(admin, net["id"]) == ["net1"]
    body = admin.get(f"/v2.0/agents/{agent}/dhcp-networks").json()
    assert [n["id"] for n in body["networks"]] == [net["id"]]
    assert body["networks"][0]["name"] == net["name"]  # whole network objects, as Neutron returns
    agents = admin.get(f"/v2.0/networks/{net['id']}/dhcp-agents").json()["agents"]
    assert agents[0]["agent_type"] == "DHCP agent" and agents[0]["alive"] is True


def test_no_dhcp_no_scheduling_until_enabled(api: Api) -> None:
    report(api, "dhcp", "net1")
    admin = api.admin()
    net, sub = admin.net_with_subnet(enable_dhcp=False)
    assert hosting(admin, net["id"]) == []
    admin.port(net["id"])
    assert hosting(admin, net["id"]) == []
    admin.update("subnets", sub["id"], enable_dhcp=True)
    assert hosting(admin, net["id"]) == ["net1"]


def test_a_port_schedules_a_network_left_unhosted(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet()  # no DHCP agent yet: stays unhosted
    agent = report(api, "dhcp", "net1")
    assert agent.scheduled_networks == [net["id"]]  # ...until an agent registers
    assert admin.delete(f"/v2.0/agents/{agent.agent_id}/dhcp-networks/{net['id']}").status_code == 204
    admin.port(net["id"])  # Neutron schedules on port create too
    assert hosting(admin, net["id"]) == ["net1"]


def test_least_loaded_agents_and_dhcp_agents_per_network(make_api: Any) -> None:
    api = make_api(DEFAULT={"dhcp_agents_per_network": 2}, **AGENT_CONF)
    for host in ("a", "b", "c"):
        report(api, "dhcp", host)
    admin = api.admin()
    first = admin.net_with_subnet()[0]["id"]
    second = admin.net_with_subnet()[0]["id"]
    assert hosting(admin, first) == ["a", "b"]
    assert hosting(admin, second) == ["a", "c"] or hosting(admin, second) == ["b", "c"]
    loads = sorted(len(hosted(admin, a["id"])) for a in admin.list("agents"))
    assert loads == [1, 1, 2]


def test_dead_or_disabled_agents_get_nothing(api: Api) -> None:
    report(api, "dhcp", "dead", now=ago(200))
    disabled = report(api, "dhcp", "off").agent_id
    admin = api.admin()
    admin.update("agents", disabled, admin_state_up=False)
    net = admin.net_with_subnet()[0]["id"]
    assert hosting(admin, net) == []
    live = report(api, "dhcp", "live")
    assert live.scheduled_networks == [net]


def test_a_reenabled_agent_picks_up_unhosted_networks(api: Api) -> None:
    agent = report(api, "dhcp", "net1").agent_id
    admin = api.admin()
    admin.update("agents", agent, admin_state_up=False)
    net = admin.net_with_subnet()[0]["id"]
    assert hosting(admin, net) == []
    admin.update("agents", agent, admin_state_up=True)
    assert hosting(admin, net) == ["net1"]


def test_network_auto_schedule_off(make_api: Any) -> None:
    api = make_api(DEFAULT={"network_auto_schedule": False}, **AGENT_CONF)
    agent = report(api, "dhcp", "net1").agent_id
    admin = api.admin()
    net = admin.net_with_subnet()[0]["id"]
    assert hosting(admin, net) == []
    assert report(api, "dhcp", "net1", start=True).scheduled_networks == []
    assert add(admin, agent, net).status_code == 201
    assert hosting(admin, net) == ["net1"]


# -- by hand -----------------------------------------------------------------
def test_add_list_remove_by_hand(api: Api) -> None:
    a = report(api, "dhcp", "a").agent_id
    b = report(api, "dhcp", "b").agent_id
    admin = api.admin()
    net = admin.net_with_subnet()[0]["id"]
    (on, off) = (a, b) if hosting(admin, net) == ["a"] else (b, a)
    r = add(admin, off, net)
    assert r.status_code == 201 and r.json() is None
    assert hosting(admin, net) == ["a", "b"]  # by hand, past dhcp_agents_per_network
    neutron_error(add(admin, off, net), 409, "NetworkHostedByDHCPAgent",
                  contains=f"The network {net} has been already hosted by the DHCP Agent {off}.")
    assert admin.delete(f"/v2.0/agents/{on}/dhcp-networks/{net}").status_code == 204
    assert hosted(admin, on) == [] and hosted(admin, off) == [net]
    neutron_error(admin.delete(f"/v2.0/agents/{on}/dhcp-networks/{net}"), 409, "NetworkNotHostedByDhcpAgent",
                  contains=f"The network {net} is not hosted by the DHCP Agent {on}.")


def test_by_hand_errors(api: Api, project: str) -> None:
    dhcp = report(api, "dhcp", "ctl").agent_id
    l2 = report(api, "ovs", "ctl").agent_id
    admin = api.admin()
    net = admin.network()["id"]
    missing = "00000000-0000-0000-0000-000000000000"
    neutron_error(add(admin, l2, net), 404, "InvalidDHCPAgent",
                  contains=f"Agent {l2} is not a valid DHCP Agent or has been disabled.")
    admin.update("agents", dhcp, admin_state_up=False)
    neutron_error(add(admin, dhcp, net), 404, "InvalidDHCPAgent")
    admin.update("agents", dhcp, admin_state_up=True)
    neutron_error(add(admin, missing, net), 404, "AgentNotFound")
    neutron_error(add(admin, dhcp, missing), 404, "NetworkNotFound")
    neutron_error(admin.post(f"/v2.0/agents/{dhcp}/dhcp-networks", json={}), 400,
                  contains="Required attribute 'network_id' not specified")
    neutron_error(admin.get(f"/v2.0/agents/{missing}/dhcp-networks"), 404, "AgentNotFound")
    neutron_error(admin.get(f"/v2.0/networks/{missing}/dhcp-agents"), 404, "NetworkNotFound")
    member = api.member(project)
    neutron_error(member.get(f"/v2.0/agents/{dhcp}/dhcp-networks"), 403, "PolicyNotAuthorized")
    neutron_error(add(member, dhcp, net), 403, "PolicyNotAuthorized")
    neutron_error(member.get(f"/v2.0/networks/{net}/dhcp-agents"), 403, "PolicyNotAuthorized")
    neutron_error(member.delete(f"/v2.0/agents/{dhcp}/dhcp-networks/{net}"), 403, "PolicyNotAuthorized")


def test_removing_a_network_reserves_the_agents_dhcp_port(api: Api) -> None:
    agent = report(api, "dhcp", "net1.example.com").agent_id
    admin = api.admin()
    net = admin.net_with_subnet()[0]["id"]
    device = dhcp_device_id(net, "net1")  # the short host name, as Neutron
    assert device == dhcp_device_id(net, "net1.example.com")
    port = admin.port(net, device_owner="network:dhcp", device_id=device)
    assert admin.delete(f"/v2.0/agents/{agent}/dhcp-networks/{net}").status_code == 204
    assert admin.show("ports", port["id"])["device_id"] == "reserved_dhcp_port"


def test_deleting_an_agent_or_network_drops_its_bindings(api: Api) -> None:
    agent = report(api, "dhcp", "net1").agent_id
    admin = api.admin()
    net = admin.net_with_subnet()[0]["id"]
    other = admin.net_with_subnet()[0]["id"]
    admin.remove("networks", other)
    assert hosted(admin, agent) == [net]
    admin.remove("agents", agent)
    assert hosting(admin, net) == []


# -- failover ----------------------------------------------------------------
def test_networks_of_a_dead_dhcp_agent_move(api: Api) -> None:
    report(api, "dhcp", "a")
    admin = api.admin()
    net = admin.net_with_subnet()[0]["id"]
    report(api, "dhcp", "b")
    assert hosting(admin, net) == ["a"]
    report(api, "dhcp", "a", now=ago(100))  # dead, but not yet for 2 x agent_down_time
    assert sweep(api) == []
    report(api, "dhcp", "a", now=ago(200))
    result = report(api, "dhcp", "b")  # every heartbeat runs the sweep
    assert [n for n, _ in result.rescheduled] == [net]
    assert hosting(admin, net) == ["b"]


def test_failover_waits_for_a_live_agent_and_spares_disabled_ones(api: Api) -> None:
    a = report(api, "dhcp", "a").agent_id
    admin = api.admin()
    net = admin.net_with_subnet()[0]["id"]
    report(api, "dhcp", "a", now=ago(200))
    assert sweep(api) == []  # nobody to move to: keep it where it is
    assert hosting(admin, net) == ["a"]
    admin.update("agents", a, admin_state_up=False)
    report(api, "dhcp", "b")
    assert sweep(api) == [] and hosting(admin, net) == ["a"]


def test_failover_can_be_turned_off(make_api: Any) -> None:
    api = make_api(DEFAULT={"allow_automatic_dhcp_failover": False}, **AGENT_CONF)
    report(api, "dhcp", "a")
    admin = api.admin()
    net = admin.net_with_subnet()[0]["id"]
    report(api, "dhcp", "a", now=ago(200))
    assert report(api, "dhcp", "b").rescheduled == []
    assert hosting(admin, net) == ["a"]


# -- availability zones ------------------------------------------------------
def test_availability_zones_from_agents(api: Api, project: str) -> None:
    report(api, "dhcp", "a", zone="az1")
    off = report(api, "dhcp", "b", zone="az2").agent_id
    report(api, "l3", "a", zone="az1")
    report(api, "ovs", "a", zone="az9")  # only DHCP and L3 agents name zones
    admin = api.admin()
    admin.update("agents", off, admin_state_up=False)
    zones = api.member(project).list("availability_zones")
    assert zones == [{"name": "az1", "resource": "network", "state": "available"},
                     {"name": "az1", "resource": "router", "state": "available"},
                     {"name": "az2", "resource": "network", "state": "unavailable"}]
    assert admin.list("availability_zones", {"resource": "router"}) == [zones[1]]
    assert admin.list("availability_zones", [("state", "unavailable"), ("fields", "name")]) == [{"name": "az2"}]
    neutron_error(admin.get("/v2.0/availability_zones", params={"bogus": "x"}), 400)


def test_network_availability_zones_and_hints(api: Api, project: str) -> None:
    report(api, "dhcp", "a", zone="az1")
    report(api, "dhcp", "b", zone="az2")
    report(api, "l3", "c", zone="az3")
    member = api.member(project)
    net = member.network(availability_zone_hints=["az2"])
    assert net["availability_zones"] == []
    member.subnet(net["id"])
    shown = member.show("networks", net["id"])
    assert shown["availability_zone_hints"] == ["az2"] and shown["availability_zones"] == ["az2"]
    assert hosting(api.admin(), net["id"]) == ["b"]
    neutron_error(member.post("/v2.0/networks", json={"network": {"availability_zone_hints": ["az3"]}}),
                  404, "AvailabilityZoneNotFound", contains="AvailabilityZone az3 could not be found.")


def test_hints_keep_a_network_off_other_zones(api: Api) -> None:
    report(api, "dhcp", "a", zone="az1")
    admin = api.admin()
    net = admin.network(availability_zone_hints=["az1"])["id"]
    admin.subnet(net)
    report(api, "dhcp", "a", now=ago(300), zone="az1")
    moved = report(api, "dhcp", "b", zone="az2").rescheduled
    assert moved != [] and hosting(admin, net) == []  # off the dead agent, and to no other zone


# -- L3 ----------------------------------------------------------------------
def routers_of(admin: Caller, agent_id: str) -> list[str]:
    r = admin.get(f"/v2.0/agents/{agent_id}/l3-routers")
    assert r.status_code == 200, r.text
    return sorted(x["id"] for x in r.json()["routers"])


def test_l3_add_list_remove(api: Api, project: str) -> None:
    a = report(api, "l3", "net1").agent_id
    b = report(api, "l3", "net2").agent_id
    admin = api.admin()
    router = admin.create("routers", name="r1")["id"]
    for agent in (a, b):
        admin.delete(f"/v2.0/agents/{agent}/l3-routers/{router}")  # whatever auto-scheduling did
    r = admin.post(f"/v2.0/agents/{a}/l3-routers", json={"router_id": router})
    assert r.status_code == 201, r.text
    assert admin.post(f"/v2.0/agents/{a}/l3-routers", json={"router_id": router}).status_code == 201  # no-op
    body = admin.get(f"/v2.0/agents/{a}/l3-routers").json()
    assert [x["id"] for x in body["routers"]] == [router] and body["routers"][0]["name"] == "r1"
    agents = admin.get(f"/v2.0/routers/{router}/l3-agents").json()["agents"]
    assert [x["id"] for x in agents] == [a] and agents[0]["agent_type"] == "L3 agent"
    neutron_error(admin.post(f"/v2.0/agents/{b}/l3-routers", json={"router_id": router}), 409,
                  "RouterHostedByL3Agent", contains=f"The router {router} has been already hosted by the L3 Agent {a}.")
    assert admin.delete(f"/v2.0/agents/{a}/l3-routers/{router}").status_code == 204
    neutron_error(admin.delete(f"/v2.0/agents/{a}/l3-routers/{router}"), 409, "RouterNotHostedByL3Agent")
    dhcp = report(api, "dhcp", "net1").agent_id
    neutron_error(admin.post(f"/v2.0/agents/{dhcp}/l3-routers", json={"router_id": router}), 404,
                  "InvalidL3Agent", contains=f"Agent {dhcp} is not a L3 Agent or has been disabled")
    missing = "00000000-0000-0000-0000-000000000000"
    neutron_error(admin.post(f"/v2.0/agents/{a}/l3-routers", json={"router_id": missing}), 404, "RouterNotFound")
    neutron_error(admin.get(f"/v2.0/routers/{missing}/l3-agents"), 404, "RouterNotFound")
    neutron_error(api.member(project).get(f"/v2.0/agents/{a}/l3-routers"), 403, "PolicyNotAuthorized")


def test_an_l3_agent_picks_up_unhosted_routers_and_router_delete_unbinds(api: Api) -> None:
    admin = api.admin()
    router = admin.create("routers", name="r")["id"]
    result = report(api, "l3", "net1", agent_mode="legacy")
    assert result.scheduled_routers == [router]
    assert routers_of(admin, result.agent_id) == [router]
    dvr = report(api, "l3", "compute", agent_mode="dvr")
    assert dvr.scheduled_routers == []
    admin.remove("routers", router)
    assert routers_of(admin, result.agent_id) == []


def test_a_new_router_goes_to_the_least_loaded_l3_agent(api: Api, project: str) -> None:
    a = report(api, "l3", "net1", zone="az1").agent_id
    b = report(api, "l3", "net2", zone="az2").agent_id
    report(api, "l3", "net3", zone="az1", now=ago(200))  # dead: never chosen
    admin = api.admin()
    first = admin.create("routers", name="r1")
    second = admin.create("routers", name="r2")
    assert sorted([*routers_of(admin, a), *routers_of(admin, b)]) == sorted([first["id"], second["id"]])
    assert len(routers_of(admin, a)) == len(routers_of(admin, b)) == 1
    shown = api.member(project).create("routers", name="mine", availability_zone_hints=["az2"])
    assert shown["availability_zone_hints"] == ["az2"] and shown["availability_zones"] == ["az2"]
    assert shown["id"] in routers_of(admin, b)
    neutron_error(admin.post("/v2.0/routers", json={"router": {"availability_zone_hints": ["nowhere"]}}),
                  404, "AvailabilityZoneNotFound")
    neutron_error(admin.put(f"/v2.0/routers/{shown['id']}", json={"router": {"availability_zone_hints": []}}),
                  400)


def test_router_auto_schedule_off(make_api: Any) -> None:
    api = make_api(DEFAULT={"router_auto_schedule": False}, **AGENT_CONF)
    agent = report(api, "l3", "net1").agent_id
    admin = api.admin()
    router = admin.create("routers", name="r")
    assert router["availability_zones"] == [] and routers_of(admin, agent) == []
    assert report(api, "l3", "net1", start=True).scheduled_routers == []
