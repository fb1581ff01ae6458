"""/v2.0/address-scopes (address-scope, rbac-address-scope): shape,
visibility and sharing, pools joining scopes (IP version, overlap, owners),
in-use, and networks' ipv4_address_scope/ipv6_address_scope."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api import core_support
from tests.api.core_support import Api, Caller, neutron_error

core_api = core_support.core_api
project, other_project = core_support.project, core_support.other_project

AS = "/v2.0/address-scopes"
SP = "/v2.0/subnetpools"


def post_scope(who: Caller, **attrs: Any) -> Any:
    attrs.setdefault("name", "scope")
    attrs.setdefault("ip_version", 4)
    return who.post(AS, json={"address_scope": attrs})


def make_scope(who: Caller, **attrs: Any) -> dict[str, Any]:
    r = post_scope(who, **attrs)
    assert r.status_code == 201, r.text
    return r.json()["address_scope"]


def show_scope(who: Caller, scope_id: str) -> dict[str, Any]:
    r = who.get(f"{AS}/{scope_id}")
    assert r.status_code == 200, r.text
    return r.json()["address_scope"]


def list_scopes(who: Caller, **params: Any) -> list[dict[str, Any]]:
    r = who.get(AS, params=params)
    assert r.status_code == 200, r.text
    return r.json()["address_scopes"]


def put_scope(who: Caller, scope_id: str, **attrs: Any) -> Any:
    return who.put(f"{AS}/{scope_id}", json={"address_scope": attrs})


def post_pool(who: Caller, **attrs: Any) -> Any:
    attrs.setdefault("name", "pool")
    attrs.setdefault("prefixes", ["10.11.12.0/24"])
    attrs.setdefault("min_prefixlen", 29)
    return who.post(SP, json={"subnetpool": attrs})


def make_pool(who: Caller, **attrs: Any) -> dict[str, Any]:
    r = post_pool(who, **attrs)
    assert r.status_code == 201, r.text
    return r.json()["subnetpool"]


def put_pool(who: Caller, pool_id: str, **attrs: Any) -> Any:
    return who.put(f"{SP}/{pool_id}", json={"subnetpool": attrs})


def pool_subnet(who: Caller, net_id: str, pool_id: str, version: int = 4) -> Any:
    return who.post("/v2.0/subnets", json={"subnet": {"network_id": net_id, "ip_version": version,
                                                      "subnetpool_id": pool_id}})


# -- the resource -------------------------------------------------------------------
def test_create_show_list_update_delete(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    scope = make_scope(me, name="blue", ip_version="6")
    assert scope == {"id": scope["id"], "name": "blue", "tenant_id": project, "project_id": project,
                     "shared": False, "ip_version": 6}
    assert show_scope(me, scope["id"]) == scope
    assert [s["id"] for s in list_scopes(me, project_id=project)] == [scope["id"]]
    assert [s["id"] for s in list_scopes(me, project_id=project, ip_version=4)] == []
    r = put_scope(me, scope["id"], name="new_name")
    assert r.status_code == 200 and r.json()["address_scope"]["name"] == "new_name"
    assert me.get(f"{AS}/{scope['id']}", params={"fields": "name"}).json() == {"address_scope": {"name": "new_name"}}
    assert me.delete(f"{AS}/{scope['id']}").status_code == 204
    neutron_error(me.get(f"{AS}/{scope['id']}"), 404, "AddressScopeNotFound",
                  f"Address scope {scope['id']} could not be found.")


@pytest.mark.parametrize("attrs, status, fragment", [
    ({"ip_version": 5}, 400, "Invalid input for ip_version"),
    ({"ip_version": None}, 400, "Invalid input for ip_version"),
    ({"name": "x" * 256}, 400, "Invalid input for name"),
    ({"description": "d"}, 400, "Unrecognized attribute(s) 'description'"),
    ({"shared": True}, 403, "disallowed by policy"),
])
def test_invalid_scopes(core_api: Api, project: str, attrs: dict, status: int, fragment: str) -> None:
    me = core_api.member(project)
    neutron_error(post_scope(me, **attrs), status, contains=fragment)
    neutron_error(me.post(AS, json={"address_scope": {"name": "x"}}), 400, contains="Required attribute 'ip_version'")
    assert list_scopes(me, project_id=project) == []


def test_visibility_and_sharing(core_api: Api, project: str, other_project: str) -> None:
    me, them, admin = core_api.member(project), core_api.member(other_project), core_api.admin()
    mine = make_scope(me)
    neutron_error(them.get(f"{AS}/{mine['id']}"), 404, "AddressScopeNotFound")
    neutron_error(put_scope(them, mine["id"], name="x"), 404)
    neutron_error(them.delete(f"{AS}/{mine['id']}"), 404)
    # Only admins share, and sharing is for good.
    for shared in (True, False):
        neutron_error(put_scope(me, mine["id"], name="x", shared=shared), 403, "PolicyNotAuthorized")
    r = put_scope(admin, mine["id"], name="new_name", shared=True)
    assert r.status_code == 200 and r.json()["address_scope"]["shared"] is True
    assert show_scope(them, mine["id"])["shared"] is True
    assert mine["id"] in {s["id"] for s in list_scopes(them, shared=True)}
    assert mine["id"] not in {s["id"] for s in list_scopes(them, shared=False)}
    neutron_error(put_scope(them, mine["id"], name="x"), 403, "PolicyNotAuthorized")
    neutron_error(put_scope(admin, mine["id"], name="x", shared=False), 400, "AddressScopeUpdateError",
                  f"Unable to update address scope {mine['id']} : Shared address scope can't be unshared.")
    assert show_scope(me, mine["id"])["name"] == "new_name"


def test_rbac_grant_to_one_project(core_api: Api, project: str, other_project: str) -> None:
    admin, me = core_api.admin(), core_api.member(project)
    scope = make_scope(admin, project_id=f"adm-{uuid.uuid4().hex}")
    neutron_error(me.get(f"{AS}/{scope['id']}"), 404)
    r = admin.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "address_scope", "object_id": scope["id"], "action": "access_as_shared",
        "target_tenant": project}})
    assert r.status_code == 201, r.text
    policy = r.json()["rbac_policy"]
    assert show_scope(me, scope["id"])["shared"] is True
    assert core_api.member(other_project).get(f"{AS}/{scope['id']}").status_code == 404
    # The project's pool in the scope depends on the grant.
    pool = make_pool(me, address_scope_id=scope["id"], prefixes=["10.0.0.0/8"], min_prefixlen=8, default_prefixlen=24)
    neutron_error(admin.delete(f"/v2.0/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse")
    # Only the owner (or an admin) grants.
    r = me.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "address_scope", "object_id": scope["id"], "action": "access_as_shared",
        "target_tenant": other_project}})
    neutron_error(r, 400, "InvalidInput")
    me.remove("subnetpools", pool["id"])
    assert admin.delete(f"/v2.0/rbac-policies/{policy['id']}").status_code == 204


# -- pools in scopes ------------------------------------------------------------------
def test_pool_joins_and_leaves_scopes(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    scope, another = make_scope(me), make_scope(me)
    pool = make_pool(me, address_scope_id=scope["id"])
    assert pool["address_scope_id"] == scope["id"]
    r = put_pool(me, pool["id"], address_scope_id=another["id"])
    assert r.status_code == 200 and r.json()["subnetpool"]["address_scope_id"] == another["id"]
    r = put_pool(me, pool["id"], address_scope_id=None)
    assert r.status_code == 200 and r.json()["subnetpool"]["address_scope_id"] is None
    r = put_pool(me, pool["id"], address_scope_id=scope["id"])
    assert r.json()["subnetpool"]["address_scope_id"] == scope["id"]
    assert [p["id"] for p in me.list("subnetpools", {"address_scope_id": scope["id"]})] == [pool["id"]]


def test_pool_scope_errors(core_api: Api, project: str, other_project: str) -> None:
    me, admin = core_api.member(project), core_api.admin()
    v6 = make_scope(me, ip_version=6)
    foreign = make_scope(core_api.member(other_project))
    neutron_error(post_pool(me, address_scope_id=v6["id"]), 400,
                  "IllegalSubnetPoolIpVersionAssociationToAddressScope", "because subnetpool ip_version is not 6")
    neutron_error(post_pool(me, address_scope_id=str(uuid.uuid4())), 404, "AddressScopeNotFound")
    neutron_error(post_pool(me, address_scope_id=foreign["id"]), 404, "AddressScopeNotFound")
    pool = make_pool(me)
    neutron_error(put_pool(me, pool["id"], address_scope_id=v6["id"]), 400,
                  "IllegalSubnetPoolIpVersionAssociationToAddressScope")
    neutron_error(put_pool(me, pool["id"], address_scope_id=foreign["id"]), 404, "AddressScopeNotFound")
    # An admin may put any pool in any scope of its version.
    assert put_pool(admin, pool["id"], address_scope_id=foreign["id"]).status_code == 200


@pytest.mark.parametrize("first, second", [
    (["10.11.12.0/24"], ["10.11.12.13/24"]),
    (["20.0.0.0/18", "30.0.0.0/18"], ["40.0.0.0/18", "50.0.0.0/18", "30.0.0.0/12"]),
])
def test_pools_of_a_scope_must_not_overlap(core_api: Api, project: str, first: list, second: list) -> None:
    me = core_api.member(project)
    scope = make_scope(me)
    make_pool(me, address_scope_id=scope["id"], prefixes=first)
    neutron_error(post_pool(me, address_scope_id=scope["id"], prefixes=second), 409, "AddressScopePrefixConflict",
                  "Failed to associate address scope: subnetpools within an address scope must have unique "
                  "prefixes.")
    # Outside the scope the same prefixes are fine.
    assert make_pool(me, prefixes=second)["address_scope_id"] is None


@pytest.mark.parametrize("pool_1, pool_2, pool_1_updated", [
    (["20.0.0.0/18"], ["20.10.0.0/24"], ["20.0.0.0/12"]),
    (["20.0.0.0/18", "30.0.0.0/18"], ["20.10.0.0/24", "40.0.0.0/18", "50.0.0.0/18"],
     ["20.0.0.0/18", "30.0.0.0/18", "50.0.0.0/12"]),
])
def test_growing_a_pool_into_another_of_its_scope(core_api: Api, project: str, pool_1: list, pool_2: list,
                                                  pool_1_updated: list) -> None:
    me = core_api.member(project)
    scope = make_scope(me)
    first = make_pool(me, address_scope_id=scope["id"], prefixes=pool_1)
    make_pool(me, address_scope_id=scope["id"], prefixes=pool_2)
    neutron_error(put_pool(me, first["id"], prefixes=pool_1_updated), 409, "AddressScopePrefixConflict")
    r = me.put(f"{SP}/{first['id']}/add_prefixes", json={"prefixes": pool_1_updated})
    neutron_error(r, 409, "AddressScopePrefixConflict")
    assert me.show("subnetpools", first["id"])["prefixes"] == pool_1


def test_pool_in_a_shared_scope_is_changed_by_its_owner_or_admin(core_api: Api, project: str) -> None:
    me, admin = core_api.member(project), core_api.admin()
    scope = make_scope(admin, shared=True)
    pool = make_pool(me, prefixes=["20.0.0.0/18", "30.0.0.0/18"])
    assert put_pool(admin, pool["id"], address_scope_id=scope["id"]).status_code == 200
    assert me.show("subnetpools", pool["id"])["address_scope_id"] == scope["id"]
    wanted = ["20.0.0.0/18", "30.0.0.0/18", "40.0.0.0/18"]
    neutron_error(put_pool(me, pool["id"], prefixes=wanted), 400, "IllegalSubnetPoolUpdate",
                  f"subnetpool {pool['id']} cannot be updated when associated with shared address scope "
                  f"{scope['id']}")
    assert put_pool(admin, pool["id"], prefixes=wanted).json()["subnetpool"]["prefixes"] == wanted


def test_scope_in_use(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    scope = make_scope(me)
    pool = make_pool(me, address_scope_id=scope["id"])
    neutron_error(me.delete(f"{AS}/{scope['id']}"), 409, "AddressScopeInUse",
                  f"Unable to complete operation on address scope {scope['id']}. There are one or more subnet "
                  "pools in use on the address scope.")
    me.remove("subnetpools", pool["id"])
    assert me.delete(f"{AS}/{scope['id']}").status_code == 204


# -- networks -----------------------------------------------------------------------
def test_network_address_scopes(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    scope4, scope6 = make_scope(me), make_scope(me, ip_version=6)
    pool4 = make_pool(me, address_scope_id=scope4["id"], prefixes=["10.8.0.0/16"], min_prefixlen=24)
    pool6 = make_pool(me, address_scope_id=scope6["id"], prefixes=["2001:db8:8::/48"], min_prefixlen=64)
    net = me.network()
    assert (net["ipv4_address_scope"], net["ipv6_address_scope"]) == (None, None)
    r4 = pool_subnet(me, net["id"], pool4["id"])
    assert r4.status_code == 201, r4.text
    shown = me.show("networks", net["id"])
    assert (shown["ipv4_address_scope"], shown["ipv6_address_scope"]) == (scope4["id"], None)
    assert pool_subnet(me, net["id"], pool6["id"], 6).status_code == 201
    listed = [n for n in me.list("networks", {"id": net["id"]})][0]
    assert (listed["ipv4_address_scope"], listed["ipv6_address_scope"]) == (scope4["id"], scope6["id"])
    me.remove("subnets", r4.json()["subnet"]["id"])
    assert me.show("networks", net["id"])["ipv4_address_scope"] is None


def test_network_scope_affinity(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    scope, other_scope = make_scope(me), make_scope(me)
    pool_a = make_pool(me, address_scope_id=scope["id"], prefixes=["10.1.0.0/16"], min_prefixlen=24)
    pool_b = make_pool(me, address_scope_id=scope["id"], prefixes=["10.2.0.0/16"], min_prefixlen=24)
    pool_c = make_pool(me, address_scope_id=other_scope["id"], prefixes=["10.3.0.0/16"], min_prefixlen=24)
    unscoped = make_pool(me, prefixes=["10.4.0.0/16"], min_prefixlen=24)
    net = me.network()
    assert pool_subnet(me, net["id"], pool_a["id"]).status_code == 201
    # Two pools of one scope may share a network ...
    assert pool_subnet(me, net["id"], pool_b["id"]).status_code == 201
    # ... pools of another scope, or of none, may not.
    for pool in (pool_c, unscoped):
        neutron_error(pool_subnet(me, net["id"], pool["id"]), 400, "NetworkAddressScopeAffinityError",
                      "Subnets of the same address family hosted on the same network must all participate in "
                      "the same address scope.")
    # Moving pool_a to another scope would split the network between scopes.
    neutron_error(put_pool(me, pool_a["id"], address_scope_id=other_scope["id"]), 400,
                  "NetworkAddressScopeAffinityError")
    # Renaming a pool on such a network is fine.
    assert put_pool(me, pool_a["id"], name="renamed").status_code == 200


def test_extension_is_listed(core_api: Api, project: str) -> None:
    r = core_api.member(project).get("/v2.0/extensions/address-scope")
    assert r.status_code == 200 and r.json()["extension"]["name"] == "Address scope"
