"""Routers API (router, ext-gw-mode, extraroute, extraroute-atomic):
shapes, gateway, interfaces, extra routes, errors and policy, on SQLite and
PostgreSQL, against an in-process server."""

from __future__ import annotations

import ipaddress

import pytest

from tests.api.l3_env import Env, l3_env

EXT_POOL = (ipaddress.ip_address("192.168.100.10"), ipaddress.ip_address("192.168.100.90"))


@pytest.fixture
def env(db_url, tmp_path) -> Env:
    return l3_env(db_url, tmp_path)


def in_pool(ip: str) -> bool:
    return EXT_POOL[0] <= ipaddress.ip_address(ip) <= EXT_POOL[1]


# -- plain CRUD ---------------------------------------------------------
def test_router_crud_and_shape(env: Env) -> None:
    router = env.router(env.demo, gateway=False, name="r1", description="d")
    assert router["status"] == "ACTIVE"
    assert router["admin_state_up"] is True
    assert router["external_gateway_info"] is None
    assert router["routes"] == []
    assert router["project_id"] == router["tenant_id"] == "demo"
    assert router["revision_number"] == 0 and router["tags"] == []
    assert {"created_at", "updated_at", "description"} <= set(router)
    shown = env.demo.get(f"/routers/{router['id']}")["router"]
    assert shown == router
    assert [r["id"] for r in env.demo.get("/routers")["routers"]] == [router["id"]]
    updated = env.demo.put(f"/routers/{router['id']}", {"router": {"name": "r2", "admin_state_up": False}})["router"]
    assert updated["name"] == "r2" and updated["admin_state_up"] is False
    assert updated["revision_number"] == 1
    env.demo.delete(f"/routers/{router['id']}")
    env.demo.error("GET", f"/routers/{router['id']}", None, 404, "RouterNotFound")


def test_router_list_filters_sort_page_and_fields(env: Env) -> None:
    for name in ("b", "a", "c"):
        env.router(env.demo, gateway=False, name=name)
    names = [r["name"] for r in env.demo.get("/routers?sort_key=name&sort_dir=asc")["routers"]]
    assert names == ["a", "b", "c"]
    assert [r["name"] for r in env.demo.get("/routers?name=b")["routers"]] == ["b"]
    page = env.demo.get("/routers?sort_key=name&sort_dir=desc&limit=2")
    assert [r["name"] for r in page["routers"]] == ["c", "b"]
    assert any(link["rel"] == "next" for link in page["routers_links"])
    only = env.demo.get("/routers?fields=id&fields=name")["routers"][0]
    assert set(only) == {"id", "name"}
    env.demo.error("GET", "/routers?bogus=1", None, 400)


def test_bulk_create_and_project_for_admin(env: Env) -> None:
    made = env.admin.post("/routers", {"routers": [{"name": "x", "project_id": "demo"}, {"name": "y"}]})["routers"]
    assert [r["project_id"] for r in made] == ["demo", "admin"]
    env.demo.error("POST", "/routers", {"router": {"project_id": "alt"}}, 400)


# -- gateway ------------------------------------------------------------
def test_gateway_set_on_create(env: Env) -> None:
    router = env.router(env.demo)
    gw = router["external_gateway_info"]
    assert gw["network_id"] == env.seed["ext"]["id"]
    assert gw["enable_snat"] is True
    [fixed] = gw["external_fixed_ips"]
    assert fixed["subnet_id"] == env.seed["ext_sub"]["id"] and in_pool(fixed["ip_address"])
    [port] = env.ports_of(router["id"])
    assert port["device_owner"] == "network:router_gateway"
    assert port["project_id"] == "" and port["tenant_id"] == ""
    assert port["network_id"] == env.seed["ext"]["id"]
    assert port["fixed_ips"] == [fixed]
    # The gateway port belongs to nobody: the project does not see it.
    assert env.demo.get(f"/ports?device_id={router['id']}")["ports"] == []


def test_gateway_admin_only_attributes(env: Env) -> None:
    ext = env.seed["ext"]["id"]
    for key, value in (("enable_snat", False), ("external_fixed_ips", [{"ip_address": "192.168.100.50"}])):
        err = env.demo.error("POST", "/routers", {"router": {"external_gateway_info": {
            "network_id": ext, key: value}}}, 403, "PolicyNotAuthorized")
        assert f"external_gateway_info:{key}" in err["message"]
    router = env.router(env.demo)
    env.demo.error("PUT", f"/routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": ext, "enable_snat": False}}}, 403, "PolicyNotAuthorized")

    made = env.admin.post("/routers", {"router": {"project_id": "demo", "external_gateway_info": {
        "network_id": ext, "enable_snat": False,
        "external_fixed_ips": [{"ip_address": "192.168.100.50"}]}}})["router"]
    gw = made["external_gateway_info"]
    assert gw["enable_snat"] is False
    assert [f["ip_address"] for f in gw["external_fixed_ips"]] == ["192.168.100.50"]
    # Re-address the gateway in place: same port, new address.
    [before] = env.ports_of(made["id"])
    changed = env.admin.put(f"/routers/{made['id']}", {"router": {"external_gateway_info": {
        "network_id": ext, "enable_snat": True,
        "external_fixed_ips": [{"subnet_id": env.seed["ext_sub"]["id"], "ip_address": "192.168.100.51"}]}}})
    gw = changed["router"]["external_gateway_info"]
    assert gw["enable_snat"] is True
    assert [f["ip_address"] for f in gw["external_fixed_ips"]] == ["192.168.100.51"]
    [after] = env.ports_of(made["id"])
    assert after["id"] == before["id"]
    # The external subnet's own gateway address is refused.
    err = env.admin.error("PUT", f"/routers/{made['id']}", {"router": {"external_gateway_info": {
        "network_id": ext, "external_fixed_ips": [{"ip_address": "192.168.100.1"}]}}}, 400, "BadRequest")
    assert "same as the gateway IP" in err["message"]
    # An address someone holds already.
    env.admin.error("POST", "/routers", {"router": {"external_gateway_info": {
        "network_id": ext, "external_fixed_ips": [{"ip_address": "192.168.100.51"}]}}}, 409, "IpAddressInUse")


def test_gateway_requires_external_network(env: Env) -> None:
    private = env.seed["private"]["id"]
    err = env.demo.error("POST", "/routers", {"router": {"external_gateway_info": {"network_id": private}}},
                         400, "BadRequest")
    assert err["message"] == f"Bad router request: Network {private} is not an external network."
    env.demo.error("POST", "/routers", {"router": {"external_gateway_info": {
        "network_id": "00000000-0000-0000-0000-000000000000"}}}, 404, "NetworkNotFound")
    env.demo.error("POST", "/routers", {"router": {"external_gateway_info": {"enable_snat": True}}}, 400)
    assert env.demo.get("/routers")["routers"] == []  # nothing half-made


def test_gateway_clear_and_set_again(env: Env) -> None:
    router = env.router(env.demo)
    [gw_port] = env.ports_of(router["id"])
    cleared = env.demo.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {}}})["router"]
    assert cleared["external_gateway_info"] is None
    assert env.ports_of(router["id"]) == []
    env.admin.error("GET", f"/ports/{gw_port['id']}", None, 404, "PortNotFound")
    again = env.demo.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": env.seed["ext"]["id"]}}})["router"]
    assert again["external_gateway_info"]["network_id"] == env.seed["ext"]["id"]
    cleared = env.demo.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": None}})["router"]
    assert cleared["external_gateway_info"] is None


def test_enable_snat_by_default_option(db_url, tmp_path) -> None:
    env = l3_env(db_url, tmp_path, enable_snat_by_default=False)
    assert env.router(env.demo)["external_gateway_info"]["enable_snat"] is False


def test_external_network_in_use_by_gateway(env: Env) -> None:
    ext = env.seed["ext"]["id"]
    router = env.router(env.demo)
    env.admin.error("PUT", f"/networks/{ext}", {"network": {"router:external": False}}, 409, "ExternalNetworkInUse")
    env.admin.error("DELETE", f"/networks/{ext}", None, 409, "NetworkInUse")
    env.demo.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": None}})
    assert env.admin.put(f"/networks/{ext}", {"network": {"router:external": False}})["network"][
        "router:external"] is False


# -- interfaces -----------------------------------------------------------
def test_add_interface_by_subnet(env: Env) -> None:
    router = env.router(env.demo)
    sub = env.seed["private_sub"]
    info = env.add_interface(env.demo, router["id"], subnet_id=sub["id"])
    assert set(info) == {"id", "port_id", "subnet_id", "subnet_ids", "network_id", "tenant_id", "project_id"}
    assert info["id"] == router["id"]
    assert info["subnet_id"] == sub["id"] and info["subnet_ids"] == [sub["id"]]
    assert info["network_id"] == env.seed["private"]["id"]
    assert info["project_id"] == info["tenant_id"] == "demo"
    port = env.demo.get(f"/ports/{info['port_id']}")["port"]
    assert port["device_owner"] == "network:router_interface"
    assert port["device_id"] == router["id"]
    assert port["project_id"] == "demo"
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.1"}]
    assert env.demo.get(f"/routers/{router['id']}")["router"]["revision_number"] == 1


def test_add_interface_errors(env: Env) -> None:
    router = env.router(env.demo, gateway=False)
    rid = router["id"]
    sub = env.seed["private_sub"]
    env.add_interface(env.demo, rid, subnet_id=sub["id"])
    err = env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {"subnet_id": sub["id"]}, 400, "BadRequest")
    assert f"Router already has a port on subnet {sub['id']}" in err["message"]
    _, overlapping = env.network(env.demo, "10.0.0.0/25", name="overlap")
    err = env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {"subnet_id": overlapping["id"]},
                         400, "BadRequest")
    assert "overlaps with cidr 10.0.0.0/24" in err["message"]
    _, no_gw = env.network(env.demo, "10.9.0.0/24", name="nogw", gateway_ip=None)
    err = env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {"subnet_id": no_gw["id"]}, 400)
    assert "must have a gateway IP" in err["message"]
    net2, sub2 = env.network(env.demo, "10.2.0.0/24", name="n2")
    port = env.port(env.demo, net2["id"])
    err = env.demo.error("PUT", f"/routers/{rid}/add_router_interface",
                         {"subnet_id": sub2["id"], "port_id": port["id"]}, 400, "BadRequest")
    assert "Cannot specify both subnet-id and port-id" in err["message"]
    err = env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {}, 400, "BadRequest")
    assert "Either subnet_id or port_id must be specified" in err["message"]
    env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {"subnet_id": "nope"}, 400, "BadRequest")
    env.demo.error("PUT", f"/routers/{rid}/add_router_interface",
                   {"subnet_id": "00000000-0000-0000-0000-000000000000"}, 404, "SubnetNotFound")
    # A subnet of another project (on a network the caller can see) is refused.
    shared = env.admin.post("/networks", {"network": {"name": "shared", "shared": True}})["network"]
    shared_sub = env.admin.post("/subnets", {"subnet": {"network_id": shared["id"], "cidr": "10.5.0.0/24",
                                                        "ip_version": 4}})["subnet"]
    err = env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {"subnet_id": shared_sub["id"]}, 400)
    assert "not owned by project" in err["message"]


def test_add_interface_by_port(env: Env) -> None:
    router = env.router(env.demo, gateway=False)
    rid = router["id"]
    net2, sub2 = env.network(env.demo, "10.2.0.0/24", name="n2")
    port = env.port(env.demo, net2["id"], fixed_ips=[{"subnet_id": sub2["id"], "ip_address": "10.2.0.1"}])
    info = env.add_interface(env.demo, rid, port_id=port["id"])
    assert info["port_id"] == port["id"] and info["subnet_ids"] == [sub2["id"]]
    adopted = env.demo.get(f"/ports/{port['id']}")["port"]
    assert adopted["device_owner"] == "network:router_interface"
    assert adopted["device_id"] == rid
    # A port with a device already: PortInUse.
    busy = env.port(env.demo, env.seed["private"]["id"], device_id="vm-1")
    env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {"port_id": busy["id"]}, 409, "PortInUse")
    # A port without addresses.
    net3, _ = env.network(env.demo, "10.3.0.0/24", name="n3")
    bare = env.port(env.demo, net3["id"], fixed_ips=[])
    err = env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {"port_id": bare["id"]}, 400)
    assert "at least one fixed IP" in err["message"]
    # A second port on a subnet the router is on already.
    again = env.port(env.demo, net2["id"])
    env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {"port_id": again["id"]}, 400, "BadRequest")
    # Somebody else's port is not even visible.
    alt_net, _ = env.network(env.alt, "10.7.0.0/24", name="alt")
    alt_port = env.port(env.alt, alt_net["id"])
    env.demo.error("PUT", f"/routers/{rid}/add_router_interface", {"port_id": alt_port["id"]}, 404, "PortNotFound")


def test_remove_interface(env: Env) -> None:
    router = env.router(env.demo)
    rid = router["id"]
    sub = env.seed["private_sub"]
    info = env.add_interface(env.demo, rid, subnet_id=sub["id"])
    env.demo.error("PUT", f"/routers/{rid}/remove_router_interface",
                   {"port_id": "00000000-0000-0000-0000-000000000000"}, 404, "RouterInterfaceNotFound")
    net2, sub2 = env.network(env.demo, "10.2.0.0/24", name="n2")
    env.demo.error("PUT", f"/routers/{rid}/remove_router_interface",
                   {"port_id": info["port_id"], "subnet_id": sub2["id"]}, 400, "SubnetMismatchForPort")
    env.demo.error("PUT", f"/routers/{rid}/remove_router_interface",
                   {"subnet_id": sub2["id"]}, 404, "RouterInterfaceNotFoundForSubnet")
    out = env.remove_interface(env.demo, rid, subnet_id=sub["id"])
    assert out["port_id"] == info["port_id"] and out["subnet_id"] == sub["id"]
    env.demo.error("GET", f"/ports/{info['port_id']}", None, 404, "PortNotFound")
    env.demo.error("PUT", f"/routers/{rid}/remove_router_interface",
                   {"subnet_id": sub["id"]}, 404, "RouterInterfaceNotFoundForSubnet")
    # By port, for an adopted port: the port goes too (as in Neutron).
    port = env.port(env.demo, net2["id"], fixed_ips=[{"subnet_id": sub2["id"], "ip_address": "10.2.0.1"}])
    env.add_interface(env.demo, rid, port_id=port["id"])
    out = env.remove_interface(env.demo, rid, port_id=port["id"])
    assert out["subnet_ids"] == [sub2["id"]]
    env.demo.error("GET", f"/ports/{port['id']}", None, 404)


def test_router_ports_are_protected(env: Env) -> None:
    router = env.router(env.demo)
    info = env.add_interface(env.demo, router["id"], subnet_id=env.seed["private_sub"]["id"])
    env.demo.error("DELETE", f"/ports/{info['port_id']}", None, 409, "ServicePortInUse")
    [gw] = [p for p in env.ports_of(router["id"]) if p["device_owner"] == "network:router_gateway"]
    env.admin.error("DELETE", f"/ports/{gw['id']}", None, 409, "ServicePortInUse")
    env.demo.error("DELETE", f"/subnets/{env.seed['private_sub']['id']}", None, 409, "SubnetInUse")
    env.demo.error("DELETE", f"/networks/{env.seed['private']['id']}", None, 409, "NetworkInUse")


def test_delete_router_in_use_then_clean(env: Env) -> None:
    router = env.router(env.demo)
    rid = router["id"]
    sub = env.seed["private_sub"]
    env.add_interface(env.demo, rid, subnet_id=sub["id"])
    err = env.demo.error("DELETE", f"/routers/{rid}", None, 409, "RouterInUse")
    assert err["message"] == f"Router {rid} still has ports"
    env.remove_interface(env.demo, rid, subnet_id=sub["id"])
    env.demo.delete(f"/routers/{rid}")
    assert env.ports_of(rid) == []  # the gateway port went with it
    env.demo.delete(f"/subnets/{sub['id']}")
    env.demo.delete(f"/networks/{env.seed['private']['id']}")


def test_ipv6_prefixes_share_one_port(env: Env) -> None:
    router = env.router(env.demo, gateway=False)
    net = env.seed["private"]
    subs = [env.demo.post("/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 6,
                                                  "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"}})["subnet"]
            for cidr in ("2001:db8:1::/64", "2001:db8:2::/64")]
    first = env.add_interface(env.demo, router["id"], subnet_id=subs[0]["id"])
    second = env.add_interface(env.demo, router["id"], subnet_id=subs[1]["id"])
    assert first["port_id"] == second["port_id"]
    port = env.demo.get(f"/ports/{first['port_id']}")["port"]
    assert sorted(f["ip_address"] for f in port["fixed_ips"]) == ["2001:db8:1::1", "2001:db8:2::1"]
    env.remove_interface(env.demo, router["id"], subnet_id=subs[0]["id"])
    port = env.demo.get(f"/ports/{first['port_id']}")["port"]
    assert [f["ip_address"] for f in port["fixed_ips"]] == ["2001:db8:2::1"]
    env.remove_interface(env.demo, router["id"], subnet_id=subs[1]["id"])
    env.demo.error("GET", f"/ports/{first['port_id']}", None, 404)


# -- extra routes -------------------------------------------------------
def test_extra_routes(env: Env) -> None:
    router = env.router(env.demo)
    rid = router["id"]
    sub = env.seed["private_sub"]
    env.add_interface(env.demo, rid, subnet_id=sub["id"])
    routes = [{"destination": "172.16.0.0/24", "nexthop": "10.0.0.5"},
              {"destination": "172.17.0.0/24", "nexthop": "192.168.100.20"}]
    got = env.demo.put(f"/routers/{rid}", {"router": {"routes": routes}})["router"]["routes"]
    assert sorted(got, key=lambda r: r["destination"]) == routes
    err = env.demo.error("PUT", f"/routers/{rid}", {"router": {"routes": [
        {"destination": "172.18.0.0/24", "nexthop": "172.31.0.1"}]}}, 400, "InvalidRoutes")
    assert "the nexthop is not connected with router" in err["message"]
    err = env.demo.error("PUT", f"/routers/{rid}", {"router": {"routes": [
        {"destination": "172.18.0.0/24", "nexthop": "10.0.0.1"}]}}, 400, "InvalidRoutes")
    assert "the nexthop is used by router" in err["message"]
    env.demo.error("PUT", f"/routers/{rid}", {"router": {"routes": [{"destination": "x", "nexthop": "10.0.0.5"}]}},
                   400, "InvalidInput")
    env.demo.error("POST", "/routers", {"router": {"routes": routes}}, 400)  # PUT only
    # The interface a nexthop depends on cannot go.
    env.demo.error("PUT", f"/routers/{rid}/remove_router_interface", {"subnet_id": sub["id"]},
                   409, "RouterInterfaceInUseByRoute")
    assert env.demo.put(f"/routers/{rid}", {"router": {"routes": None}})["router"]["routes"] == []
    env.remove_interface(env.demo, rid, subnet_id=sub["id"])


def test_extraroute_atomic(env: Env) -> None:
    router = env.router(env.demo, gateway=False)
    rid = router["id"]
    env.add_interface(env.demo, rid, subnet_id=env.seed["private_sub"]["id"])
    a = {"destination": "172.16.0.0/24", "nexthop": "10.0.0.5"}
    b = {"destination": "172.16.0.0/24", "nexthop": "10.0.0.6"}
    c = {"destination": "172.20.0.0/16", "nexthop": "10.0.0.7"}
    out = env.demo.put(f"/routers/{rid}/add_extraroutes", {"router": {"routes": [a, b]}})["router"]
    assert sorted(out["routes"], key=lambda r: r["nexthop"]) == [a, b]
    out = env.demo.put(f"/routers/{rid}/add_extraroutes", {"router": {"routes": [a, c]}})["router"]
    assert len(out["routes"]) == 3
    out = env.demo.put(f"/routers/{rid}/remove_extraroutes", {"router": {"routes": [a, {
        "destination": "10.99.0.0/16", "nexthop": "10.0.0.9"}]}})["router"]
    assert sorted(out["routes"], key=lambda r: r["nexthop"]) == [b, c]
    env.demo.error("PUT", f"/routers/{rid}/add_extraroutes", {"router": {"routes": [
        {"destination": "172.30.0.0/16", "nexthop": "172.31.0.1"}]}}, 400, "InvalidRoutes")
    env.demo.error("PUT", f"/routers/{rid}/add_extraroutes", {"routes": [a]}, 400)
    assert len(env.demo.get(f"/routers/{rid}")["router"]["routes"]) == 2


def test_router_route_quota(db_url, tmp_path) -> None:
    env = l3_env(db_url, tmp_path, **{"quotas.quota_router_route": 2})
    router = env.router(env.demo, gateway=False)
    rid = router["id"]
    env.add_interface(env.demo, rid, subnet_id=env.seed["private_sub"]["id"])
    routes = [{"destination": f"172.16.{i}.0/24", "nexthop": "10.0.0.5"} for i in range(3)]
    env.demo.put(f"/routers/{rid}", {"router": {"routes": routes[:2]}})
    env.demo.error("PUT", f"/routers/{rid}", {"router": {"routes": routes}}, 409, "OverQuota")
    env.demo.error("PUT", f"/routers/{rid}/add_extraroutes", {"router": {"routes": routes[2:]}}, 409, "OverQuota")


# -- policy, quota, tags, extensions --------------------------------------
def test_router_visibility_and_policy(env: Env) -> None:
    router = env.router(env.demo)
    rid = router["id"]
    assert env.alt.get("/routers")["routers"] == []
    env.alt.error("GET", f"/routers/{rid}", None, 404, "RouterNotFound")
    env.alt.error("PUT", f"/routers/{rid}", {"router": {"name": "x"}}, 404, "RouterNotFound")
    env.alt.error("DELETE", f"/routers/{rid}", None, 404, "RouterNotFound")
    env.alt.error("PUT", f"/routers/{rid}/add_router_interface", {"subnet_id": env.seed["private_sub"]["id"]},
                  404, "RouterNotFound")
    env.alt.error("PUT", f"/routers/{rid}/add_extraroutes", {"router": {"routes": []}}, 404, "RouterNotFound")
    assert [r["id"] for r in env.admin.get("/routers")["routers"]] == [rid]
    assert env.admin.get(f"/routers/{rid}")["router"]["project_id"] == "demo"
    # A reader of the project may look but not touch.
    assert env.reader.get(f"/routers/{rid}")["router"]["id"] == rid
    env.reader.error("PUT", f"/routers/{rid}", {"router": {"name": "x"}}, 403, "PolicyNotAuthorized")
    env.reader.error("POST", "/routers", {"router": {"name": "x"}}, 403, "PolicyNotAuthorized")
    env.reader.error("PUT", f"/routers/{rid}/add_router_interface", {"subnet_id": env.seed["private_sub"]["id"]},
                     403, "PolicyNotAuthorized")
    env.reader.error("DELETE", f"/routers/{rid}", None, 403, "PolicyNotAuthorized")
    # Admin acts on anybody's router.
    env.admin.put(f"/routers/{rid}", {"router": {"name": "by-admin"}})
    env.admin.delete(f"/routers/{rid}")


def test_router_quota(env: Env) -> None:
    env.admin.put("/quotas/demo", {"quota": {"router": 1}})
    env.router(env.demo, gateway=False)
    env.demo.error("POST", "/routers", {"router": {"name": "two"}}, 409, "OverQuota")
    details = env.demo.get("/quotas/demo/details")["quota"]
    assert details["router"]["used"] == 1


def test_router_tags_and_revision(env: Env) -> None:
    router = env.router(env.demo, gateway=False)
    rid = router["id"]
    env.demo.put(f"/routers/{rid}/tags/blue", None, 201)
    assert env.demo.get(f"/routers/{rid}")["router"]["tags"] == ["blue"]
    assert [r["id"] for r in env.demo.get("/routers?tags=blue")["routers"]] == [rid]
    assert env.demo.get("/routers?not-tags=blue")["routers"] == []
    r = env.demo.client.put(f"/v2.0/routers/{rid}", json={"router": {"name": "z"}},
                            headers={"X-Project-Id": "demo", "X-Roles": "member", "If-Match": "revision_number=0"})
    assert r.status_code == 412


def test_extensions_listed(env: Env) -> None:
    aliases = {e["alias"] for e in env.demo.get("/extensions")["extensions"]}
    assert {"router", "ext-gw-mode", "extraroute", "extraroute-atomic", "fip-port-details"} <= aliases
    assert env.demo.get("/extensions/extraroute-atomic")["extension"]["name"] == "Atomically add/remove extra routes"
    resources = {r["collection"] for r in env.demo.get("")["resources"]}
    assert {"routers", "floatingips"} <= resources


def test_gateway_ip_pinned_by_router_interface(env: Env) -> None:
    """Neutron's GatewayIpInUse: once a router interface holds the gateway
    address, the subnet's gateway_ip can neither change nor be removed."""
    net, sub = env.network(env.demo, "10.7.0.0/24", name="gw-pin",
                           allocation_pools=[{"start": "10.7.0.100", "end": "10.7.0.200"}])
    moved = env.demo.put(f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": "10.7.0.2"}})["subnet"]
    assert moved["gateway_ip"] == "10.7.0.2"
    router = env.router(env.demo)
    env.add_interface(env.demo, router["id"], subnet_id=sub["id"])
    for gateway in ("10.7.0.3", None):
        env.demo.error("PUT", f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": gateway}}, 409, "GatewayIpInUse")
    assert env.demo.get(f"/subnets/{sub['id']}")["subnet"]["gateway_ip"] == "10.7.0.2"


# -- l3-ha ----------------------------------------------------------------
def test_ha_attribute_admin_only_and_false(env: Env) -> None:
    """l3-ha as Neutron's L3 router plugin has it: ``ha`` is read and set by
    admins only (get/create/update_router:ha); kaon routers are single-node,
    so it reads false and asking for an HA router is a 400, with nothing made."""
    assert "l3-ha" in {e["alias"] for e in env.demo.get("/extensions")["extensions"]}
    router = env.router(env.demo, gateway=False)
    assert "ha" not in router
    assert "ha" not in env.demo.get(f"/routers/{router['id']}")["router"]
    assert all("ha" not in r for r in env.demo.get("/routers")["routers"])
    assert env.admin.get(f"/routers/{router['id']}")["router"]["ha"] is False
    assert [r["ha"] for r in env.admin.get("/routers")["routers"]] == [False]
    assert env.admin.get(f"/routers/{router['id']}?fields=ha")["router"] == {"ha": False}
    made = env.router(env.admin, gateway=False, ha=False, name="plain")
    assert made["ha"] is False
    assert env.admin.put(f"/routers/{made['id']}", {"router": {"ha": "false"}})["router"]["ha"] is False

    env.demo.error("POST", "/routers", {"router": {"name": "x", "ha": True}}, 403, "PolicyNotAuthorized")
    env.demo.error("PUT", f"/routers/{router['id']}", {"router": {"ha": True}}, 403, "PolicyNotAuthorized")
    err = env.admin.error("POST", "/routers", {"router": {"name": "ha-one", "ha": True}}, 400,
                          "HARouterNotSupported")
    assert "keepalived" in err["message"]
    env.admin.error("PUT", f"/routers/{made['id']}", {"router": {"ha": True, "name": "renamed"}}, 400,
                    "HARouterNotSupported")
    assert env.admin.get(f"/routers/{made['id']}")["router"]["name"] == "plain"
    assert [r["name"] for r in env.admin.get("/routers?name=ha-one")["routers"]] == []
    env.admin.error("POST", "/routers", {"router": {"ha": "maybe"}}, 400, "InvalidInput")
    # Neutron's ha attribute is not a filter (no is_filter in its definition).
    env.admin.error("GET", "/routers?ha=false", None, 400)
