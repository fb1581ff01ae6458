"""What the metadata proxies get in the host intents: per source address the
instance (device_id) and project, in ``routers[r]["metadata"]`` (ports behind
the router's interfaces) and in ``dhcp[n]["metadata"]`` (ports on an isolated
network), through the API on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, report
from tests.api.core_support import Api, merged
from tests.api.test_intents import compile_now, intent, lb_agent
from tests.api.test_l3_intents import ext_net, router_with

make_api = core_support.make_api


def build(make_api: Any) -> Api:
    api = make_api(**merged(AGENT_CONF, {"DEFAULT": {"enable_isolated_metadata": "true"},
                                         "ml2_type_flat": {"flat_networks": "provider"}}))
    for host, ip in (("h1", "10.99.0.1"), ("h2", "10.99.0.2")):
        lb_agent(api, host, ip)
    report(api, "dhcp", "h1", start=True)
    report(api, "l3", "h1", start=True, agent_mode="legacy")
    return api


def vm(api: Api, net: str, device_id: str, project: str) -> dict[str, Any]:
    return api.admin().port(net, **{"binding:host_id": "h2", "device_owner": "compute:nova",
                                    "device_id": device_id, "project_id": project})


def test_the_router_knows_the_ports_behind_it(make_api: Any) -> None:
    api = build(make_api)
    admin = api.admin()
    ext, _ = ext_net(admin)
    net, sub = admin.net_with_subnet("10.0.0.0/24")
    router = router_with(admin, ext["id"], sub["id"])
    a = vm(api, net["id"], "instance-a", "proj-a")
    admin.port(net["id"], name="unowned")  # no device_id: nobody to ask for
    other, _ = admin.net_with_subnet("10.1.0.0/24")
    vm(api, other["id"], "instance-far", "proj-a")  # not behind the router
    compile_now(api)
    part = intent(api, "h1")["routers"][router["id"]]
    ip = a["fixed_ips"][0]["ip_address"]
    assert part["metadata"] == {ip: {"instance_id": "instance-a", "project_id": "proj-a"}}


def test_an_isolated_network_tells_its_dhcp_namespace_who_asks(make_api: Any) -> None:
    api = build(make_api)
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.2.0.0/24")
    a = vm(api, net["id"], "instance-b", "proj-b")
    compile_now(api)
    part = intent(api, "h1")["dhcp"][net["id"]]
    assert part["isolated_metadata"] is True
    # The DHCP port itself (network:dhcp) is not a source.
    assert part["metadata"] == {a["fixed_ips"][0]["ip_address"]: {"instance_id": "instance-b",
                                                                  "project_id": "proj-b"}}


def test_a_routed_network_has_no_dhcp_metadata(make_api: Any) -> None:
    api = build(make_api)
    admin = api.admin()
    ext, _ = ext_net(admin)
    net, sub = admin.net_with_subnet("10.3.0.0/24")
    router_with(admin, ext["id"], sub["id"])
    vm(api, net["id"], "instance-c", "proj-c")
    compile_now(api)
    part = intent(api, "h1")["dhcp"][net["id"]]
    assert part["isolated_metadata"] is False and "metadata" not in part
