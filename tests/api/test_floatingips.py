"""Floating IPs API (router's floatingips, fip-port-details): the seed
sequence end to end, association rules, errors and policy, on SQLite and
PostgreSQL, against an in-process server."""

from __future__ import annotations

import ipaddress

import pytest

from tests.api.l3_env import Env, l3_env

FIP_FIELDS = {"id", "tenant_id", "project_id", "description", "floating_ip_address", "floating_network_id",
              "router_id", "port_id", "fixed_ip_address", "status", "port_details", "tags", "created_at",
              "updated_at", "revision_number"}


@pytest.fixture
def env(db_url, tmp_path) -> Env:
    return l3_env(db_url, tmp_path)


@pytest.fixture
def topo(env: Env) -> dict:
    """Router with a gateway on ext-net and an interface on private-net, and a VM port."""
    router = env.router(env.demo)
    env.add_interface(env.demo, router["id"], subnet_id=env.seed["private_sub"]["id"])
    vm = env.port(env.demo, env.seed["private"]["id"], device_id="vm-1", device_owner="compute:nova")
    return {"router": router, "vm": vm}


def fip(env: Env, caller=None, status: int = 201, **fields) -> dict:
    caller = caller or env.demo
    body = {"floating_network_id": env.seed["ext"]["id"], **fields}
    return caller.post("/floatingips", {"floatingip": body}, status)["floatingip"]


def test_seed_sequence(env: Env) -> None:
    """ext-net + private-net, router with gateway and interface, a FIP made,
    associated, disassociated, and everything torn down in the right order."""
    ext, private_sub = env.seed["ext"], env.seed["private_sub"]
    router = env.router(env.demo, name="router1")
    rid = router["id"]
    env.add_interface(env.demo, rid, subnet_id=private_sub["id"])
    vm = env.port(env.demo, env.seed["private"]["id"], device_id="vm-1", device_owner="compute:nova")

    made = fip(env)
    assert set(made) == FIP_FIELDS
    assert made["status"] == "DOWN"
    assert made["port_id"] is made["router_id"] is made["fixed_ip_address"] is made["port_details"] is None
    assert made["floating_network_id"] == ext["id"] and made["project_id"] == "demo"
    addr = ipaddress.ip_address(made["floating_ip_address"])
    assert ipaddress.ip_address("192.168.100.10") <= addr <= ipaddress.ip_address("192.168.100.90")
    [fport] = env.ports_of(made["id"])
    assert fport["device_owner"] == "network:floatingip"
    assert fport["project_id"] == "" and fport["status"] == "N/A"
    assert fport["fixed_ips"][0]["ip_address"] == made["floating_ip_address"]

    assoc = env.demo.put(f"/floatingips/{made['id']}", {"floatingip": {"port_id": vm["id"]}})["floatingip"]
    assert assoc["port_id"] == vm["id"]
    assert assoc["router_id"] == rid
    assert assoc["fixed_ip_address"] == vm["fixed_ips"][0]["ip_address"]
    assert assoc["status"] == "ACTIVE"
    assert assoc["port_details"] == {
        "name": vm["name"], "network_id": vm["network_id"], "mac_address": vm["mac_address"],
        "admin_state_up": True, "status": vm["status"], "device_id": "vm-1", "device_owner": "compute:nova"}
    assert env.demo.get(f"/floatingips/{made['id']}")["floatingip"] == assoc

    # While associated: the interface, the gateway and the router stay.
    env.demo.error("PUT", f"/routers/{rid}/remove_router_interface", {"subnet_id": private_sub["id"]},
                   409, "RouterInterfaceInUseByFloatingIP")
    env.demo.error("PUT", f"/routers/{rid}", {"router": {"external_gateway_info": {}}},
                   409, "RouterExternalGatewayInUseByFloatingIp")
    env.demo.error("DELETE", f"/routers/{rid}", None, 409, "RouterInUse")
    env.admin.error("DELETE", f"/ports/{fport['id']}", None, 409, "ServicePortInUse")
    env.demo.error("DELETE", f"/ports/{fport['id']}", None, 404)  # not the project's port

    free = env.demo.put(f"/floatingips/{made['id']}", {"floatingip": {"port_id": None}})["floatingip"]
    assert free["port_id"] is free["router_id"] is free["fixed_ip_address"] is free["port_details"] is None
    assert free["status"] == "DOWN"

    env.remove_interface(env.demo, rid, subnet_id=private_sub["id"])
    env.demo.put(f"/routers/{rid}", {"router": {"external_gateway_info": {}}})
    env.demo.delete(f"/routers/{rid}")
    env.demo.delete(f"/floatingips/{made['id']}")
    env.admin.error("GET", f"/ports/{fport['id']}", None, 404)
    env.demo.error("GET", f"/floatingips/{made['id']}", None, 404, "FloatingIPNotFound")
    env.demo.delete(f"/ports/{vm['id']}")
    env.demo.delete(f"/networks/{env.seed['private']['id']}")
    env.admin.delete(f"/networks/{ext['id']}")


def test_create_associated_and_with_fixed_address(env: Env, topo: dict) -> None:
    vm = topo["vm"]
    made = fip(env, port_id=vm["id"], fixed_ip_address=vm["fixed_ips"][0]["ip_address"])
    assert made["router_id"] == topo["router"]["id"] and made["status"] == "ACTIVE"
    env.demo.put(f"/floatingips/{made['id']}", {"floatingip": {"port_id": None}})
    again = fip(env, port_id=vm["id"])
    assert again["fixed_ip_address"] == vm["fixed_ips"][0]["ip_address"]


def test_create_errors(env: Env, topo: dict) -> None:
    private = env.seed["private"]["id"]
    err = env.demo.error("POST", "/floatingips", {"floatingip": {"floating_network_id": private}}, 400, "BadRequest")
    assert err["message"] == f"Bad floatingip request: Network {private} is not a valid external network."
    env.demo.error("POST", "/floatingips", {"floatingip": {
        "floating_network_id": "00000000-0000-0000-0000-000000000000"}}, 404, "NetworkNotFound")
    env.demo.error("POST", "/floatingips", {"floatingip": {}}, 400)
    env.demo.error("POST", "/floatingips", {"floatingip": {"floating_network_id": env.seed["ext"]["id"],
                                                           "name": "x"}}, 400)
    err = env.demo.error("POST", "/floatingips", {"floatingip": {
        "floating_network_id": env.seed["ext"]["id"], "floating_ip_address": "192.168.100.77"}},
        403, "PolicyNotAuthorized")
    assert "floating_ip_address" in err["message"]
    env.reader.error("POST", "/floatingips", {"floatingip": {"floating_network_id": env.seed["ext"]["id"]}},
                     403, "PolicyNotAuthorized")
    # An external network without an IPv4 subnet.
    bare = env.admin.post("/networks", {"network": {"name": "ext2", "router:external": True}})["network"]
    err = env.demo.error("POST", "/floatingips", {"floatingip": {"floating_network_id": bare["id"]}}, 400)
    assert "does not contain any IPv4 subnet" in err["message"]


def test_admin_picks_address_and_subnet(env: Env) -> None:
    made = fip(env, env.admin, floating_ip_address="192.168.100.77", project_id="demo")
    assert made["floating_ip_address"] == "192.168.100.77" and made["project_id"] == "demo"
    env.admin.error("POST", "/floatingips", {"floatingip": {
        "floating_network_id": env.seed["ext"]["id"], "floating_ip_address": "192.168.100.77"}}, 409,
        "IpAddressInUse")
    env.admin.error("POST", "/floatingips", {"floatingip": {
        "floating_network_id": env.seed["ext"]["id"], "floating_ip_address": "10.0.0.9"}}, 400,
        "InvalidIpForNetwork")
    by_subnet = fip(env, subnet_id=env.seed["ext_sub"]["id"])
    assert by_subnet["floating_ip_address"].startswith("192.168.100.")
    env.demo.error("POST", "/floatingips", {"floatingip": {
        "floating_network_id": env.seed["ext"]["id"], "subnet_id": env.seed["private_sub"]["id"]}}, 400)


def test_association_errors(env: Env, topo: dict) -> None:
    vm = topo["vm"]
    made = fip(env)
    path = f"/floatingips/{made['id']}"
    # No router between the port's subnet and the external network.
    lonely_net, lonely_sub = env.network(env.demo, "10.8.0.0/24", name="lonely")
    lonely = env.port(env.demo, lonely_net["id"])
    err = env.demo.error("PUT", path, {"floatingip": {"port_id": lonely["id"]}}, 404,
                         "ExternalGatewayForFloatingIPNotFound")
    assert lonely_sub["id"] in err["message"] and env.seed["ext"]["id"] in err["message"]
    # An address the port does not have; an address without a port; IPv6.
    err = env.demo.error("PUT", path, {"floatingip": {"port_id": vm["id"], "fixed_ip_address": "10.0.0.200"}}, 400)
    assert "does not have fixed ip 10.0.0.200" in err["message"]
    env.demo.error("PUT", path, {"floatingip": {"fixed_ip_address": "10.0.0.3"}}, 400)
    env.demo.error("PUT", path, {"floatingip": {"port_id": vm["id"], "fixed_ip_address": "2001:db8::5"}}, 400)
    # A port that does not exist / that the caller cannot see.
    env.demo.error("PUT", path, {"floatingip": {"port_id": "00000000-0000-0000-0000-000000000000"}}, 404,
                   "PortNotFound")
    alt_net, _ = env.network(env.alt, "10.7.0.0/24", name="alt")
    env.demo.error("PUT", path, {"floatingip": {"port_id": env.port(env.alt, alt_net["id"])["id"]}}, 404,
                   "PortNotFound")
    # A port on the external network itself.
    ext_port = env.port(env.admin, env.seed["ext"]["id"], project_id="demo")
    err = env.demo.error("PUT", path, {"floatingip": {"port_id": ext_port["id"]}}, 400, "BadRequest")
    assert "external network" in err["message"]
    # A fixed address that has a floating IP already.
    env.demo.put(path, {"floatingip": {"port_id": vm["id"]}})
    other = fip(env)
    err = env.demo.error("PUT", f"/floatingips/{other['id']}", {"floatingip": {"port_id": vm["id"]}}, 409,
                         "FloatingIPPortAlreadyAssociated")
    assert vm["fixed_ips"][0]["ip_address"] in err["message"]
    env.demo.error("POST", "/floatingips", {"floatingip": {
        "floating_network_id": env.seed["ext"]["id"], "port_id": vm["id"]}}, 409, "FloatingIPPortAlreadyAssociated")
    # Updating only the description keeps the association.
    kept = env.demo.put(path, {"floatingip": {"description": "web"}})["floatingip"]
    assert kept["port_id"] == vm["id"] and kept["description"] == "web"


def test_port_with_two_addresses(env: Env, topo: dict) -> None:
    sub = env.seed["private_sub"]["id"]
    port = env.port(env.demo, env.seed["private"]["id"], fixed_ips=[
        {"subnet_id": sub, "ip_address": "10.0.0.50"}, {"subnet_id": sub, "ip_address": "10.0.0.51"}])
    err = env.demo.error("POST", "/floatingips", {"floatingip": {
        "floating_network_id": env.seed["ext"]["id"], "port_id": port["id"]}}, 400)
    assert "multiple fixed IPv4 addresses" in err["message"]
    made = fip(env, port_id=port["id"], fixed_ip_address="10.0.0.50")
    moved = env.demo.put(f"/floatingips/{made['id']}", {"floatingip": {
        "port_id": port["id"], "fixed_ip_address": "10.0.0.51"}})["floatingip"]
    assert moved["fixed_ip_address"] == "10.0.0.51"
    # Same port again without an address: the current one stays.
    same = env.demo.put(f"/floatingips/{made['id']}", {"floatingip": {"port_id": port["id"]}})["floatingip"]
    assert same["fixed_ip_address"] == "10.0.0.51"
    # A second floating IP may take the other address of the same port.
    second = fip(env, port_id=port["id"], fixed_ip_address="10.0.0.50")
    assert second["router_id"] == topo["router"]["id"]


def test_moves_between_routers(env: Env, topo: dict) -> None:
    made = fip(env, port_id=topo["vm"]["id"])
    router2 = env.router(env.demo, name="r2")
    net2, sub2 = env.network(env.demo, "10.2.0.0/24", name="n2")
    env.add_interface(env.demo, router2["id"], subnet_id=sub2["id"])
    port2 = env.port(env.demo, net2["id"])
    moved = env.demo.put(f"/floatingips/{made['id']}", {"floatingip": {"port_id": port2["id"]}})["floatingip"]
    assert moved["router_id"] == router2["id"] and moved["port_id"] == port2["id"]
    # The first router may now lose its interface.
    env.remove_interface(env.demo, topo["router"]["id"], subnet_id=env.seed["private_sub"]["id"])


def test_deleting_the_port_disassociates(env: Env, topo: dict) -> None:
    vm = topo["vm"]
    made = fip(env, port_id=vm["id"])
    env.demo.delete(f"/ports/{vm['id']}")
    shown = env.demo.get(f"/floatingips/{made['id']}")["floatingip"]
    assert shown["port_id"] is shown["fixed_ip_address"] is shown["router_id"] is shown["port_details"] is None
    assert shown["status"] == "DOWN"
    assert shown["revision_number"] > made["revision_number"]
    assert env.demo.get(f"/floatingips?port_id={vm['id']}")["floatingips"] == []


def test_external_network_delete_takes_unassociated_fips(env: Env) -> None:
    made = fip(env)
    [fport] = env.ports_of(made["id"])
    env.admin.delete(f"/networks/{env.seed['ext']['id']}")
    env.demo.error("GET", f"/floatingips/{made['id']}", None, 404)
    env.admin.error("GET", f"/ports/{fport['id']}", None, 404)


def test_external_network_delete_refused_while_associated(env: Env, topo: dict) -> None:
    fip(env, port_id=topo["vm"]["id"])
    env.admin.error("DELETE", f"/networks/{env.seed['ext']['id']}", None, 409, "NetworkInUse")


def test_visibility_and_policy(env: Env, topo: dict) -> None:
    made = fip(env)
    path = f"/floatingips/{made['id']}"
    assert env.alt.get("/floatingips")["floatingips"] == []
    env.alt.error("GET", path, None, 404, "FloatingIPNotFound")
    env.alt.error("PUT", path, {"floatingip": {"description": "x"}}, 404, "FloatingIPNotFound")
    env.alt.error("DELETE", path, None, 404, "FloatingIPNotFound")
    assert [f["id"] for f in env.admin.get("/floatingips")["floatingips"]] == [made["id"]]
    assert env.reader.get(path)["floatingip"]["id"] == made["id"]
    env.reader.error("PUT", path, {"floatingip": {"description": "x"}}, 403, "PolicyNotAuthorized")
    env.reader.error("DELETE", path, None, 403, "PolicyNotAuthorized")
    # An admin may associate with a port of another project.
    alt_fip = fip(env, env.alt)
    err = env.alt.error("PUT", f"/floatingips/{alt_fip['id']}", {"floatingip": {"port_id": topo["vm"]["id"]}},
                        404, "PortNotFound")
    assert err
    done = env.admin.put(f"/floatingips/{alt_fip['id']}", {"floatingip": {"port_id": topo["vm"]["id"]}})
    assert done["floatingip"]["router_id"] == topo["router"]["id"]
    env.admin.delete(path)


def test_filters_sorting_tags(env: Env, topo: dict) -> None:
    a = fip(env, port_id=topo["vm"]["id"], description="a")
    b = fip(env, description="b")
    assert [f["id"] for f in env.demo.get(f"/floatingips?port_id={topo['vm']['id']}")["floatingips"]] == [a["id"]]
    assert [f["id"] for f in env.demo.get(f"/floatingips?router_id={topo['router']['id']}")["floatingips"]] == [a["id"]]
    assert [f["id"] for f in env.demo.get("/floatingips?status=DOWN")["floatingips"]] == [b["id"]]
    listed = env.demo.get(f"/floatingips?floating_network_id={env.seed['ext']['id']}&sort_key=description"
                          "&sort_dir=desc")["floatingips"]
    assert [f["id"] for f in listed] == [b["id"], a["id"]]
    env.demo.put(f"/floatingips/{b['id']}/tags/spare", None, 201)
    assert [f["id"] for f in env.demo.get("/floatingips?tags=spare")["floatingips"]] == [b["id"]]
    env.demo.error("GET", "/floatingips?subnet_id=x", None, 400)


def test_floatingip_quota(env: Env) -> None:
    env.admin.put("/quotas/demo", {"quota": {"floatingip": 1}})
    fip(env)
    env.demo.error("POST", "/floatingips", {"floatingip": {"floating_network_id": env.seed["ext"]["id"]}},
                   409, "OverQuota")
    assert env.demo.get("/quotas/demo/details")["quota"]["floatingip"]["used"] == 1


def test_pool_exhaustion(env: Env) -> None:
    tiny = env.admin.post("/networks", {"network": {"name": "tiny", "router:external": True}})["network"]
    env.admin.post("/subnets", {"subnet": {"network_id": tiny["id"], "cidr": "192.168.200.0/24", "ip_version": 4,
                                           "allocation_pools": [{"start": "192.168.200.10",
                                                                 "end": "192.168.200.10"}]}})
    env.demo.post("/floatingips", {"floatingip": {"floating_network_id": tiny["id"]}})
    env.demo.error("POST", "/floatingips", {"floatingip": {"floating_network_id": tiny["id"]}}, 409,
                   "IpAddressGenerationFailure")
    assert len(env.demo.get(f"/floatingips?floating_network_id={tiny['id']}")["floatingips"]) == 1


def test_blank_update_disassociates_but_description_update_does_not(env: Env, topo: dict) -> None:
    """An empty PUT body is the original API's "disassociate" (Neutron keeps
    it; neutron-tempest-plugin test_blank_update_clears_association)."""
    vm = topo["vm"]
    made = fip(env, port_id=vm["id"], description="d1")
    kept = env.demo.put(f"/floatingips/{made['id']}", {"floatingip": {"description": "d2"}})["floatingip"]
    assert kept["port_id"] == vm["id"] and kept["description"] == "d2"
    cleared = env.demo.put(f"/floatingips/{made['id']}", {"floatingip": {}})["floatingip"]
    assert cleared["port_id"] is None and cleared["fixed_ip_address"] is None
    assert cleared["status"] == "DOWN" and cleared["description"] == "d2"


def test_external_grant_to_one_project_allows_its_floating_ips(env: Env) -> None:
    """access_as_external to one project: that project may allocate; others
    get 404 (neutron-tempest-plugin test_policy_allows_project_to_allocate_floatingip)."""
    net = env.admin.post("/networks", {"network": {"name": "ext-one"}})["network"]
    env.admin.post("/subnets", {"subnet": {"network_id": net["id"], "cidr": "198.18.7.0/24", "ip_version": 4,
                                           "enable_dhcp": False}})
    env.admin.post("/rbac-policies", {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                                      "action": "access_as_external", "target_tenant": "admin"}})
    env.demo.error("POST", "/floatingips", {"floatingip": {"floating_network_id": net["id"]}}, 404,
                   "NetworkNotFound")
    env.admin.post("/rbac-policies", {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                                      "action": "access_as_external", "target_tenant": "demo"}})
    assert env.demo.post("/floatingips", {"floatingip": {"floating_network_id": net["id"]}})["floatingip"]
