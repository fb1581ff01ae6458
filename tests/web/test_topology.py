"""The page's view (kaon.web.topology) read in-process: hosts with their
agents and generations, instances grouped from their ports, and what a
member is not shown."""

from __future__ import annotations

from typing import Any

import pytest

from kaon.core.context import Context
from kaon.web.topology import read_topology
from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, ago, report, services
from tests.api.core_support import Api

make_api = core_support.make_api
ADMIN_ONLY = {"binding:host_id", "binding:vif_type", "binding:vif_details", "binding:profile",
              "binding:failure_reason"}


@pytest.fixture
def api(make_api: Any) -> Api:
    return make_api(**AGENT_CONF)


def lb_agent(api: Api, host: str, **kw: Any) -> None:
    report(api, "lb", host, tunnel_types=["vxlan"], tunneling_ip="10.9.0.1", l2_population=True,
           interface_mappings={"provider": "eth1"}, **kw)


def test_hosts_agents_generations_and_instances(api: Api) -> None:
    lb_agent(api, "h1")
    lb_agent(api, "h2", now=ago(3600))  # reported an hour ago: dead
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.0.0.0/24")
    other, _ = admin.net_with_subnet("10.1.0.0/24")
    vm = {"device_owner": "compute:nova", "device_id": "server-1", "binding:host_id": "h1"}
    a = admin.port(net["id"], **vm)
    b = admin.port(other["id"], **vm)
    services(api).compiler.compile_now()

    view = read_topology(services(api), Context.admin())
    hosts = {h["name"]: h for h in view["hosts"]}
    assert [(x["agent_type"], x["alive"]) for x in hosts["h1"]["agents"]] == [("Linux bridge agent", True)]
    assert [x["alive"] for x in hosts["h2"]["agents"]] == [False]
    assert hosts["h1"]["generation"] >= 1 and hosts["h1"]["applied_generation"] == 0
    assert hosts["h1"]["converged"] is False and hosts["h1"]["ports"] == 2
    server = next(v for v in view["vms"] if v["id"] == "server-1")
    assert sorted(server["ports"]) == sorted([a["id"], b["id"]]) and server["hosts"] == ["h1"]
    assert server["binding_failed"] is False

    # A heartbeat moves no revision: the page is not redrawn for it.
    lb_agent(api, "h1")
    assert read_topology(services(api), Context.admin())["revision"] == view["revision"]
    admin.network(name="one-more")
    assert read_topology(services(api), Context.admin())["revision"] != view["revision"]


def test_a_member_sees_no_hosts_agents_or_binding_details(api: Api) -> None:
    lb_agent(api, "h1")
    member = api.member("p-member")
    net = member.network(name="mine")
    member.port(net["id"], device_owner="compute:nova", device_id="server-2")
    services(api).compiler.compile_now()
    view = read_topology(services(api), Context(user_id="u", project_id="p-member", roles=frozenset({"member"})))
    assert [n["name"] for n in view["networks"]] == ["mine"]
    assert view["hosts"] == [] and view["findings"] == []
    assert [v["id"] for v in view["vms"]] == ["server-2"] and view["vms"][0]["hosts"] == []
    assert view["ports"] and all(ADMIN_ONLY.isdisjoint(p) for p in view["ports"])
    assert view["ports"][0]["binding:vnic_type"] == "normal"  # this one members do see, as in Neutron


def test_doctor_findings_stand_beside_the_port_they_name(api: Api) -> None:
    """A port bound to a host with no agent: the doctor's binding_failed finding
    carries the port's id as its subject (so the page puts it in that port's
    row) for admins, and nothing for members."""
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.2.0.0/24")
    port = admin.port(net["id"], device_owner="compute:nova", device_id="server-3", **{"binding:host_id": "nohost"})
    assert port["binding:vif_type"] == "binding_failed"
    from kaon.web import findings

    findings._cache.clear()
    view = read_topology(services(api), Context.admin())
    mine = [f for f in view["findings"] if f["subject"] == port["id"]]
    assert len(mine) == 1 and mine[0]["severity"] in ("error", "warning")
    assert "nohost" in mine[0]["message"] and " — " in mine[0]["message"]
    member = Context(user_id="u", project_id="p-other", roles=frozenset({"member"}))
    assert read_topology(services(api), member)["findings"] == []
