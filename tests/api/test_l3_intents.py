"""Router ports follow their L3 agent (kaon.core.l3.l3_binding) and the ``routers``
section of the host intent (kaon.compiler.l3_section), through the API on
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, report
from tests.api.core_support import Api, Caller
from tests.api.test_intents import compile_now, intent, lb_agent, vm

make_api = core_support.make_api


@pytest.fixture
def api(make_api: Any) -> Api:
    api = make_api(**AGENT_CONF, ml2_type_flat={"flat_networks": "provider"})
    for host, ip in {"h1": "10.99.0.1", "h2": "10.99.0.2"}.items():
        lb_agent(api, host, ip)
    return api


def l3_agent(api: Api, host: str) -> str:
    return report(api, "l3", host, start=True, agent_mode="legacy").agent_id


def ext_net(admin: Caller) -> tuple[dict[str, Any], dict[str, Any]]:
    net = admin.create("networks", name="ext", **{"router:external": True, "provider:network_type": "flat",
                                                   "provider:physical_network": "provider"})
    sub = admin.subnet(net["id"], "192.168.100.0/24", enable_dhcp=False, gateway_ip="192.168.100.1",
                       allocation_pools=[{"start": "192.168.100.10", "end": "192.168.100.90"}])
    return net, sub


def router_with(admin: Caller, ext: str, subnet: str) -> dict[str, Any]:
    router = admin.create("routers", name="r1", external_gateway_info={"network_id": ext})
    r = admin.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet})
    assert r.status_code == 200, r.text
    return {**admin.show("routers", router["id"]), "interface_port": r.json()["port_id"]}


def router_ports(admin: Caller, router_id: str) -> list[dict[str, Any]]:
    return admin.list("ports", {"device_id": router_id})


def test_router_ports_are_bound_on_the_l3_agents_host_and_projected(api: Api) -> None:
    admin = api.admin()
    l3_agent(api, "h1")
    ext, _ = ext_net(admin)
    private, sub = admin.net_with_subnet("10.0.0.0/24")
    router = router_with(admin, ext["id"], sub["id"])
    ports = router_ports(admin, router["id"])
    assert len(ports) == 2
    assert {p["binding:host_id"] for p in ports} == {"h1"}
    assert {p["binding:vif_type"] for p in ports} == {"bridge"}
    target = vm(api, private["id"], "h2")
    fip = admin.create("floatingips", floating_network_id=ext["id"], port_id=target["id"])
    compile_now(api)
    mine = intent(api, "h1")
    assert {p["id"] for p in ports} <= set(mine["ports"])  # the L2 part plugs their taps
    part = mine["routers"][router["id"]]
    gw_port = next(p for p in ports if p["device_owner"] == "network:router_gateway")
    qr = router["interface_port"]
    assert part["interfaces"] == [{"port_id": qr, "device": "qr-" + qr[:11], "tap": "tap" + qr[:11],
                                   "mac": next(p["mac_address"] for p in ports if p["id"] == qr),
                                   "cidrs": ["10.0.0.1/24"], "mtu": 1450}]
    gw_ip = gw_port["fixed_ips"][0]["ip_address"]
    assert part["gateway"] == {"port_id": gw_port["id"], "device": "qg-" + gw_port["id"][:11],
                               "tap": "tap" + gw_port["id"][:11], "mac": gw_port["mac_address"],
                               "cidrs": [f"{gw_ip}/24"], "gateway_ip": "192.168.100.1", "mtu": 1500}
    assert part["enable_snat"] is True and part["routes"] == []
    assert part["floating_ips"] == [{"floating_ip": fip["floating_ip_address"],
                                     "fixed_ip": target["fixed_ips"][0]["ip_address"]}]
    assert "routers" not in intent(api, "h2")
    # Unassociated: gone from the intent.
    admin.update("floatingips", fip["id"], port_id=None)
    compile_now(api)
    assert intent(api, "h1")["routers"][router["id"]]["floating_ips"] == []


def test_ports_follow_the_router_when_it_moves_and_when_the_agent_arrives_late(api: Api) -> None:
    admin = api.admin()
    ext, _ = ext_net(admin)
    _, sub = admin.net_with_subnet("10.0.0.0/24")
    router = router_with(admin, ext["id"], sub["id"])  # no L3 agent yet: unscheduled
    assert {p["binding:host_id"] for p in router_ports(admin, router["id"])} == {""}
    a1 = l3_agent(api, "h1")  # auto-scheduling picks the router up, its ports follow
    ports = router_ports(admin, router["id"])
    assert {p["binding:host_id"] for p in ports} == {"h1"} and {p["binding:vif_type"] for p in ports} == {"bridge"}
    compile_now(api)
    assert router["id"] in intent(api, "h1")["routers"]
    a2 = l3_agent(api, "h2")
    assert admin.delete(f"/v2.0/agents/{a1}/l3-routers/{router['id']}").status_code == 204
    assert {p["binding:host_id"] for p in router_ports(admin, router["id"])} == {""}
    compile_now(api)
    assert "routers" not in intent(api, "h1") and not intent(api, "h1")["ports"]
    assert admin.post(f"/v2.0/agents/{a2}/l3-routers", json={"router_id": router["id"]}).status_code == 201
    ports = router_ports(admin, router["id"])
    assert {p["binding:host_id"] for p in ports} == {"h2"} and {p["binding:vif_type"] for p in ports} == {"bridge"}
    compile_now(api)
    assert list(intent(api, "h2")["routers"]) == [router["id"]]


def test_an_interface_added_by_port_is_bound_too_and_routes_are_projected(api: Api) -> None:
    admin = api.admin()
    l3_agent(api, "h1")
    router = admin.create("routers", name="r2")
    net, _ = admin.net_with_subnet("10.5.0.0/24")
    port = admin.port(net["id"], fixed_ips=[{"ip_address": "10.5.0.254"}])
    r = admin.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"port_id": port["id"]})
    assert r.status_code == 200, r.text
    shown = admin.show("ports", port["id"])
    assert shown["binding:host_id"] == "h1" and shown["binding:vif_type"] == "bridge"
    admin.update("routers", router["id"], routes=[{"destination": "172.16.0.0/16", "nexthop": "10.5.0.7"}])
    compile_now(api)
    part = intent(api, "h1")["routers"][router["id"]]
    assert part["gateway"] is None and part["interfaces"][0]["cidrs"] == ["10.5.0.254/24"]
    assert part["routes"] == [{"destination": "172.16.0.0/16", "nexthop": "10.5.0.7"}]


def test_ipv6_interfaces_are_advertised_and_routed_by_the_v6_gateway(api: Api) -> None:
    l3_agent(api, "h1")
    admin = api.admin()
    ext, _ = ext_net(admin)
    admin.subnet(ext["id"], "2001:db8:ff::/64", enable_dhcp=False, gateway_ip="2001:db8:ff::1")
    net = admin.create("networks", name="v6")
    sub = admin.subnet(net["id"], "2001:db8:1::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac",
                       dns_nameservers=["2001:db8::53"])
    router = router_with(admin, ext["id"], sub["id"])
    compile_now(api)
    part = intent(api, "h1")["routers"][router["id"]]
    [ra] = part["advertise"]
    qr = next(i for i in part["interfaces"] if i["port_id"] == router["interface_port"])
    assert ra == {"device": qr["device"], "cidr": "2001:db8:1::/64", "mtu": qr["mtu"], "ra_mode": "slaac",
                  "dns_nameservers": ["2001:db8::53"]}
    assert "2001:db8:1::1/64" in qr["cidrs"]
    assert part["gateway"]["gateway_ip"] == "192.168.100.1" and part["gateway"]["gateway_ip6"] == "2001:db8:ff::1"
