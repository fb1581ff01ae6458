"""/v2.0/subnetpools (subnet_allocation, default-subnetpools,
subnetpool-prefix-ops, rbac-subnetpool): shapes and defaults, Neutron's
validation of prefixes and prefix lengths, updates, prefix operations,
visibility, and subnets allocated from pools (any prefix, a specific CIDR,
the default pool, quotas, affinity, exhaustion, concurrency)."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import netaddr
import pytest

from tests.api import core_support
from tests.api.core_support import Api, Caller, neutron_error

core_api, make_api = core_support.core_api, core_support.make_api
project, other_project = core_support.project, core_support.other_project

SP = "/v2.0/subnetpools"
POOL_KEYS = {"id", "name", "description", "tenant_id", "project_id", "tags", "created_at", "updated_at",
             "revision_number", "prefixes", "ip_version", "default_prefixlen", "min_prefixlen", "max_prefixlen",
             "default_quota", "address_scope_id", "is_default", "shared"}


def post_pool(who: Caller, **attrs: Any) -> Any:
    attrs.setdefault("name", "pool")
    attrs.setdefault("prefixes", ["10.11.12.0/24"])
    return who.post(SP, json={"subnetpool": attrs})


def make_pool(who: Caller, **attrs: Any) -> dict[str, Any]:
    r = post_pool(who, **attrs)
    assert r.status_code == 201, r.text
    return r.json()["subnetpool"]


def post_subnet(who: Caller, net_id: str, version: int = 4, **attrs: Any) -> Any:
    return who.post("/v2.0/subnets", json={"subnet": {"network_id": net_id, "ip_version": version, **attrs}})


def pool_subnet(who: Caller, net_id: str, pool_id: str, version: int = 4, **attrs: Any) -> dict[str, Any]:
    r = post_subnet(who, net_id, version, subnetpool_id=pool_id, **attrs)
    assert r.status_code == 201, r.text
    return r.json()["subnet"]


def prefix_op(who: Caller, pool_id: str, op: str, prefixes: Any) -> Any:
    return who.put(f"{SP}/{pool_id}/{op}", json={"prefixes": prefixes})


# -- shape and defaults -------------------------------------------------------------
def test_ipv4_pool_defaults(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, name="p4", prefixes=["10.11.12.13/24", "10.11.13.0/24"], description="d")
    assert set(pool) == POOL_KEYS
    # Host bits dropped, adjacent prefixes merged; prefix lengths are strings, as in Neutron.
    assert pool["prefixes"] == ["10.11.12.0/23"] and pool["ip_version"] == 4
    assert (pool["min_prefixlen"], pool["default_prefixlen"], pool["max_prefixlen"]) == ("8", "8", "32")
    assert pool["default_quota"] is None and pool["address_scope_id"] is None
    assert pool["is_default"] is False and pool["shared"] is False
    assert pool["project_id"] == pool["tenant_id"] == project
    assert (pool["name"], pool["description"], pool["tags"], pool["revision_number"]) == ("p4", "d", [], 0)
    assert me.show("subnetpools", pool["id"]) == pool
    assert pool["id"] in [p["id"] for p in me.list("subnetpools")]


def test_ipv6_pool_defaults(core_api: Api, project: str) -> None:
    pool = make_pool(core_api.member(project), prefixes=["2001:DB8:3::/48"])
    assert pool["prefixes"] == ["2001:db8:3::/48"] and pool["ip_version"] == 6
    assert (pool["min_prefixlen"], pool["default_prefixlen"], pool["max_prefixlen"]) == ("64", "64", "128")


def test_prefix_lengths_as_strings_or_integers(core_api: Api, project: str) -> None:
    pool = make_pool(core_api.member(project), min_prefixlen="24", default_prefixlen=26, max_prefixlen=28,
                     default_quota=64)
    assert (pool["min_prefixlen"], pool["default_prefixlen"], pool["max_prefixlen"]) == ("24", "26", "28")
    assert pool["default_quota"] == 64


@pytest.mark.parametrize("attrs, status, type_, fragment", [
    ({"prefixes": []}, 400, "EmptySubnetPoolPrefixList", "Empty subnet pool prefix list."),
    ({"prefixes": ["10.0.0.0/8", "2001:db8::/32"]}, 400, "PrefixVersionMismatch",
     "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."),
    ({"min_prefixlen": 30, "max_prefixlen": 28}, 400, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: min_prefixlen=30, max_prefixlen=28."),
    ({"max_prefixlen": 33}, 400, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: max_prefixlen=33, ip_version_max=32."),
    ({"min_prefixlen": 24, "default_prefixlen": 20}, 400, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: default_prefixlen=20, min_prefixlen=24."),
    ({"max_prefixlen": 28, "default_prefixlen": 29}, 400, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: default_prefixlen=29, max_prefixlen=28."),
    ({"min_prefixlen": -1}, 400, "InvalidInput", "Invalid input for min_prefixlen"),
    ({"default_quota": "lots"}, 400, "InvalidInput", "Invalid input for default_quota"),
    ({"prefixes": ["banana"]}, 400, "InvalidInput", "Invalid input for prefixes"),
    ({"prefixes": "10.0.0.0/8"}, 400, "InvalidInput", "Invalid input for prefixes"),
    ({"name": "  "}, 400, "InvalidInput", "Blank strings are not permitted"),
    ({"ip_version": 4}, 400, "HTTPBadRequest", "Attribute 'ip_version' not allowed in POST"),
    ({"address_scope_id": "foo-addr-scope"}, 400, "InvalidInput", "Invalid input for address_scope_id"),
])
def test_invalid_pools(core_api: Api, project: str, attrs: dict, status: int, type_: str, fragment: str) -> None:
    neutron_error(post_pool(core_api.member(project), **attrs), status, type_, fragment)
    assert core_api.member(project).list("subnetpools", {"project_id": project}) == []


def test_name_and_prefixes_are_required(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    for body in ({"prefixes": ["10.0.0.0/8"]}, {"name": "x"}):
        neutron_error(me.post(SP, json={"subnetpool": body}), 400, contains="Required attribute")


def test_shared_and_default_are_for_admins(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    neutron_error(post_pool(me, shared=True), 403, "PolicyNotAuthorized")
    neutron_error(post_pool(me, is_default=True), 403, "PolicyNotAuthorized")
    pool = make_pool(me)
    neutron_error(me.put(f"{SP}/{pool['id']}", json={"subnetpool": {"is_default": True}}), 403)
    # shared is POST-only, even for admins.
    neutron_error(core_api.admin().put(f"{SP}/{pool['id']}", json={"subnetpool": {"shared": True}}), 400,
                  contains="Cannot update read-only attribute shared")


# -- visibility ---------------------------------------------------------------------
def test_visibility_own_shared_admin(core_api: Api, project: str, other_project: str) -> None:
    me, them, admin = core_api.member(project), core_api.member(other_project), core_api.admin()
    mine = make_pool(me)
    private = make_pool(admin, name="admin-private", project_id=f"adm-{uuid.uuid4().hex}")
    shared = make_pool(admin, name="admin-shared", shared=True)
    neutron_error(them.get(f"{SP}/{mine['id']}"), 404, "SubnetPoolNotFound")
    neutron_error(me.get(f"{SP}/{private['id']}"), 404, "SubnetPoolNotFound")
    assert me.show("subnetpools", shared["id"])["shared"] is True
    seen = {p["id"] for p in me.list("subnetpools")}
    assert {mine["id"], shared["id"]} <= seen and private["id"] not in seen
    assert {p["id"] for p in me.list("subnetpools", {"shared": "false"})} >= {mine["id"]}
    assert shared["id"] not in {p["id"] for p in me.list("subnetpools", {"shared": "false"})}
    assert shared["id"] in {p["id"] for p in me.list("subnetpools", {"shared": "true"})}
    assert admin.show("subnetpools", mine["id"])["id"] == mine["id"]
    # Others may not change what is shared with them, nor see what is not.
    neutron_error(me.put(f"{SP}/{shared['id']}", json={"subnetpool": {"name": "x"}}), 403)
    neutron_error(me.delete(f"{SP}/{shared['id']}"), 403)
    neutron_error(them.put(f"{SP}/{mine['id']}", json={"subnetpool": {"name": "x"}}), 404)
    neutron_error(them.delete(f"{SP}/{mine['id']}"), 404)
    neutron_error(core_api.reader(project).delete(f"{SP}/{mine['id']}"), 403)


def test_filters_sorting_and_pagination(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    made = [make_pool(me, name=f"f{i}", prefixes=[f"10.{i}.0.0/16"], min_prefixlen=20 + i) for i in range(3)]
    v6 = make_pool(me, name="f6", prefixes=["2001:db8:77::/48"])
    mine = {"project_id": project}
    assert [p["id"] for p in me.list("subnetpools", {**mine, "ip_version": 6})] == [v6["id"]]
    assert [p["name"] for p in me.list("subnetpools", {**mine, "min_prefixlen": 21})] == ["f1"]
    names = [p["name"] for p in me.list("subnetpools", {**mine, "sort_key": "name", "sort_dir": "desc"})]
    assert names == ["f6", "f2", "f1", "f0"]
    r = me.get(SP, params={**mine, "limit": 2, "sort_key": "name", "sort_dir": "asc"})
    assert [p["name"] for p in r.json()["subnetpools"]] == ["f0", "f1"]
    assert r.json()["subnetpools_links"][0]["rel"] == "next"
    neutron_error(me.get(SP, params={"unknown_filter": "x"}), 400)
    assert made[0]["id"] in {p["id"] for p in me.list("subnetpools", {"name": "f0"})}


def test_tags(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me)
    r = me.put(f"{SP}/{pool['id']}/tags", json={"tags": ["red", "blue"]})
    assert r.status_code == 200, r.text
    shown = me.show("subnetpools", pool["id"])
    assert shown["tags"] == ["blue", "red"] and shown["revision_number"] == 1
    assert [p["id"] for p in me.list("subnetpools", {"tags": "red"})] == [pool["id"]]
    assert me.put(f"{SP}/{pool['id']}/tags/green").status_code == 201
    assert me.delete(f"{SP}/{pool['id']}/tags/red").status_code == 204
    assert me.show("subnetpools", pool["id"])["tags"] == ["blue", "green"]


# -- update -------------------------------------------------------------------------
def test_update_name_bounds_and_revision(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, min_prefixlen="29")
    new = me.update("subnetpools", pool["id"], name="renamed", min_prefixlen="28", max_prefixlen="30",
                    description="x", default_quota=10)
    assert (new["name"], new["min_prefixlen"], new["max_prefixlen"], new["default_prefixlen"]) == \
        ("renamed", "28", "30", "29")
    assert new["revision_number"] == 1 and new["default_quota"] == 10 and new["shared"] is False
    # The stored default (29) is checked against the new bounds.
    neutron_error(me.put(f"{SP}/{pool['id']}", json={"subnetpool": {"max_prefixlen": 28}}), 400,
                  "IllegalSubnetPoolPrefixBounds", "default_prefixlen=29, max_prefixlen=28")
    r = me.put(f"{SP}/{pool['id']}", json={"subnetpool": {"name": "y"}}, headers={"If-Match": "revision_number=0"})
    neutron_error(r, 412, "RevisionNumberConstraintFailed")


def test_update_prefixes_may_only_grow(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, min_prefixlen="29")
    appended = me.update("subnetpools", pool["id"], prefixes=["10.11.12.0/24", "10.11.15.0/24"])
    assert appended["prefixes"] == ["10.11.12.0/24", "10.11.15.0/24"]
    extended = me.update("subnetpools", pool["id"], prefixes=["10.11.0.0/16"])
    assert extended["prefixes"] == ["10.11.0.0/16"]
    neutron_error(me.put(f"{SP}/{pool['id']}", json={"subnetpool": {"prefixes": ["10.11.12.0/26"]}}), 400,
                  "IllegalSubnetPoolPrefixUpdate",
                  "Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes.")
    neutron_error(me.put(f"{SP}/{pool['id']}", json={"subnetpool": {"prefixes": ["10.11.0.0/16", "2001:db8::/64"]}}),
                  400, "PrefixVersionMismatch")
    assert me.show("subnetpools", pool["id"])["prefixes"] == ["10.11.0.0/16"]


def test_default_pool_one_per_ip_version(make_api: Any) -> None:
    api = make_api()
    admin = api.admin()
    first = make_pool(admin, is_default=True, shared=True)
    assert first["is_default"] is True
    neutron_error(post_pool(admin, is_default=True, prefixes=["10.20.0.0/16"]), 400, "InvalidInput",
                  "A default subnetpool for this IP family has already been set")
    make_pool(admin, is_default=True, prefixes=["2001:db8::/32"])
    other = make_pool(admin, prefixes=["10.30.0.0/16"])
    neutron_error(admin.put(f"{SP}/{other['id']}", json={"subnetpool": {"is_default": True}}), 400, "InvalidInput")
    admin.update("subnetpools", first["id"], is_default=False)
    assert admin.update("subnetpools", other["id"], is_default=True)["is_default"] is True
    assert [p["id"] for p in admin.list("subnetpools", {"is_default": "true", "ip_version": 4})] == [other["id"]]


# -- prefix operations ----------------------------------------------------------------
def test_add_and_remove_prefixes(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, prefixes=["192.168.1.0/24", "10.10.10.0/24"], min_prefixlen=16)
    r = prefix_op(me, pool["id"], "add_prefixes", ["192.168.2.0/24"])
    assert r.status_code == 200, r.text
    assert r.json() == {"prefixes": ["10.10.10.0/24", "192.168.1.0/24", "192.168.2.0/24"]}
    r = prefix_op(me, pool["id"], "remove_prefixes", ["192.168.2.0/24"])
    assert r.json() == {"prefixes": ["10.10.10.0/24", "192.168.1.0/24"]}
    # An overlapping prefix is merged in.
    assert prefix_op(me, pool["id"], "add_prefixes", ["10.10.0.0/16"]).json() == \
        {"prefixes": ["10.10.0.0/16", "192.168.1.0/24"]}
    # Removing what is not in the pool changes nothing; removing part of a prefix splits it.
    assert prefix_op(me, pool["id"], "remove_prefixes", ["172.16.0.0/12"]).json()["prefixes"] == \
        ["10.10.0.0/16", "192.168.1.0/24"]
    assert prefix_op(me, pool["id"], "remove_prefixes", ["10.10.128.0/17"]).json()["prefixes"] == \
        ["10.10.0.0/17", "192.168.1.0/24"]
    shown = me.show("subnetpools", pool["id"])
    assert shown["prefixes"] == ["10.10.0.0/17", "192.168.1.0/24"] and shown["revision_number"] == 4


def test_prefix_operation_errors(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, prefixes=["10.40.0.0/16"], min_prefixlen=24)
    sub = pool_subnet(me, me.network()["id"], pool["id"])
    neutron_error(prefix_op(me, pool["id"], "remove_prefixes", [sub["cidr"]]), 400,
                  "IllegalSubnetPoolPrefixUpdate", "One or more the prefixes to be removed is in use by a subnet")
    neutron_error(prefix_op(me, pool["id"], "remove_prefixes", ["10.40.0.0/16"]), 400,
                  "IllegalSubnetPoolPrefixUpdate")
    neutron_error(prefix_op(me, pool["id"], "add_prefixes", ["2001:db8::/48"]), 400, "PrefixVersionMismatch")
    for body in ({"prefixes": []}, {"prefixes": "10.0.0.0/8"}, {}, ["10.0.0.0/8"]):
        neutron_error(me.put(f"{SP}/{pool['id']}/add_prefixes", json=body), 400,
                      contains="Request body contains invalid data")
    neutron_error(prefix_op(me, pool["id"], "add_prefixes", ["nope"]), 400, "InvalidInput")
    neutron_error(prefix_op(core_api.member(other_project), pool["id"], "add_prefixes", ["10.41.0.0/16"]), 404,
                  "SubnetPoolNotFound")
    neutron_error(prefix_op(core_api.reader(project), pool["id"], "add_prefixes", ["10.41.0.0/16"]), 403)
    neutron_error(prefix_op(me, str(uuid.uuid4()), "remove_prefixes", ["10.41.0.0/16"]), 404)
    assert me.show("subnetpools", pool["id"])["prefixes"] == ["10.40.0.0/16"]


# -- delete -------------------------------------------------------------------------
def test_delete_in_use_then_free(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, prefixes=["10.50.0.0/16"], min_prefixlen=24)
    me.put(f"{SP}/{pool['id']}/tags", json={"tags": ["t"]})
    sub = pool_subnet(me, me.network()["id"], pool["id"])
    # Neutron's answer: SubnetPoolDeleteError, a 400.
    neutron_error(me.delete(f"{SP}/{pool['id']}"), 400, "SubnetPoolDeleteError",
                  "Unable to delete subnet pool: Subnet pool has existing allocations.")
    me.remove("subnets", sub["id"])
    me.remove("subnetpools", pool["id"])
    neutron_error(me.get(f"{SP}/{pool['id']}"), 404, "SubnetPoolNotFound",
                  f"Subnet pool {pool['id']} could not be found.")
    assert core_api.count("tags", resource_id=pool["id"]) == 0


def test_quota_on_pools(make_api: Any, project: str) -> None:
    api = make_api(quotas={"quota_subnetpool": "1"})
    me = api.member(project)
    make_pool(me)
    neutron_error(post_pool(me, prefixes=["10.60.0.0/16"]), 409, "OverQuota", "subnetpool")


# -- subnets from pools ---------------------------------------------------------------
def test_subnet_with_prefixlen_and_default_prefixlen(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, min_prefixlen="28", max_prefixlen="30", default_prefixlen="29")
    net = me.network()
    first = pool_subnet(me, net["id"], pool["id"], name="s1")
    assert first["cidr"] == "10.11.12.0/29" and first["subnetpool_id"] == pool["id"]
    assert first["gateway_ip"] == "10.11.12.1"
    assert first["allocation_pools"] == [{"start": "10.11.12.2", "end": "10.11.12.6"}]
    second = pool_subnet(me, net["id"], pool["id"], prefixlen=30)
    # Best fit: the smallest free block that holds a /30 (10.11.12.8/29), not a fresh /28.
    assert second["cidr"] == "10.11.12.8/30"
    third = pool_subnet(me, net["id"], pool["id"], prefixlen="28")
    assert third["cidr"] == "10.11.12.16/28"
    assert me.show("subnets", second["id"])["subnetpool_id"] == pool["id"]
    assert [s["id"] for s in me.list("subnets", {"subnetpool_id": pool["id"]})] == \
        sorted([first["id"], second["id"], third["id"]])


def test_subnet_with_specific_cidr(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, min_prefixlen="24", prefixes=["10.70.0.0/16"])
    net = me.network()
    sub = pool_subnet(me, net["id"], pool["id"], cidr="10.70.5.0/24",
                      allocation_pools=[{"start": "10.70.5.100", "end": "10.70.5.110"}], gateway_ip="10.70.5.254")
    assert (sub["cidr"], sub["gateway_ip"]) == ("10.70.5.0/24", "10.70.5.254")
    assert sub["allocation_pools"] == [{"start": "10.70.5.100", "end": "10.70.5.110"}]
    other_net = core_api.member(project).network()
    # Taken (wholly or partly) or outside the pool.
    for cidr in ("10.70.5.0/24", "10.70.5.128/25", "10.71.0.0/24"):
        neutron_error(post_subnet(me, other_net["id"], subnetpool_id=pool["id"], cidr=cidr), 409,
                      "SubnetAllocationError",
                      "Failed to allocate subnet: Cannot allocate requested subnet from the available set of "
                      "prefixes.")
    neutron_error(post_subnet(me, other_net["id"], subnetpool_id=pool["id"], cidr="10.70.4.0/23"), 400,
                  "MinPrefixSubnetAllocationError")
    assert core_api.count("subnets", network_id=other_net["id"]) == 0
    assert pool_subnet(me, other_net["id"], pool["id"], cidr="10.70.6.0/25")["cidr"] == "10.70.6.0/25"


@pytest.mark.parametrize("extra, status, type_, fragment", [
    ({"prefixlen": 31}, 400, "MaxPrefixSubnetAllocationError",
     "Unable to allocate subnet with prefix length 31, maximum allowed prefix is 30."),
    ({"prefixlen": 25}, 400, "MinPrefixSubnetAllocationError",
     "Unable to allocate subnet with prefix length 25, minimum allowed prefix is 26."),
    ({"cidr": "10.11.12.0/24"}, 400, "MinPrefixSubnetAllocationError", "minimum allowed prefix is 26"),
    ({"cidr": "10.11.12.0/26", "prefixlen": 26}, 400, "BadRequest",
     "Bad subnets request: cidr and prefixlen must not be supplied together."),
    ({"use_default_subnetpool": True}, 400, "BadRequest",
     "subnetpool_id and use_default_subnetpool cannot both be specified"),
    ({"ip_version": 6}, 400, "BadRequest", "Cannot allocate IPv6 subnet from IPv4 subnet pool"),
    ({"allocation_pools": [{"start": "10.11.12.5", "end": "10.11.12.9"}]}, 400, "BadRequest",
     "allocation_pools allowed only for specific subnet requests."),
    ({"cidr": "2001:db8::/64"}, 400, "InvalidInput", "does not match the ip_version '4'"),
    ({"subnetpool_id": str(uuid.uuid4())}, 404, "SubnetPoolNotFound", "could not be found"),
])
def test_invalid_pool_subnets(core_api: Api, project: str, extra: dict, status: int, type_: str,
                              fragment: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, min_prefixlen=26, max_prefixlen=30)
    net = me.network()
    body = {"subnetpool_id": pool["id"], **extra}
    version = body.pop("ip_version", 4)
    neutron_error(post_subnet(me, net["id"], version, **body), status, type_, fragment)
    assert core_api.count("subnets", network_id=net["id"]) == 0


def test_prefixlen_without_a_pool(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    neutron_error(post_subnet(me, net["id"], prefixlen=24), 400, "BadRequest",
                  "a subnetpool must be specified in the absence of a cidr")
    neutron_error(post_subnet(me, net["id"]), 400, contains="A cidr must be specified in the absence of a subnet pool")


def test_exhausted_pool(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pool = make_pool(me, prefixes=["10.80.0.0/28"], min_prefixlen=29, max_prefixlen=30)
    net = me.network()
    got = [pool_subnet(me, net["id"], pool["id"])["cidr"] for _ in range(2)]
    assert got == ["10.80.0.0/29", "10.80.0.8/29"]
    neutron_error(post_subnet(me, net["id"], subnetpool_id=pool["id"], prefixlen=30), 409,
                  "SubnetAllocationError",
                  "Failed to allocate subnet: Insufficient prefix space to allocate subnet size /30.")
    # A deleted subnet gives its prefix back.
    first = me.list("subnets", {"cidr": "10.80.0.0/29", "network_id": net["id"]})[0]
    me.remove("subnets", first["id"])
    assert pool_subnet(me, net["id"], pool["id"], prefixlen=30)["cidr"] == "10.80.0.0/30"
    # ... and added prefixes are used.
    prefix_op(me, pool["id"], "add_prefixes", ["10.80.1.0/29"])
    assert pool_subnet(me, net["id"], pool["id"])["cidr"] == "10.80.1.0/29"


def test_ipv6_subnet_from_pool_and_dual_stack(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    v6 = make_pool(me, prefixes=["2001:db8:3::/48"], min_prefixlen=48, max_prefixlen=64, default_prefixlen=64)
    v4 = make_pool(me, prefixes=["192.168.0.0/16"], min_prefixlen=21, max_prefixlen=32, default_prefixlen=24)
    net = me.network()
    s6 = pool_subnet(me, net["id"], v6["id"], 6, ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert s6["cidr"] == "2001:db8:3::/64" and s6["gateway_ip"] == "2001:db8:3::1"
    s4 = pool_subnet(me, net["id"], v4["id"])
    assert s4["cidr"] == "192.168.0.0/24" and s4["network_id"] == s6["network_id"]


def test_network_pool_affinity(core_api: Api, project: str) -> None:
    me, admin = core_api.member(project), core_api.admin()
    pool = make_pool(admin, prefixes=["192.168.0.0/16"], shared=True, min_prefixlen=24)
    other_pool = make_pool(me, prefixes=["172.16.0.0/16"], min_prefixlen=24)
    # A network with a plain subnet takes no pool subnet of that version ...
    net = me.network()
    me.subnet(net["id"], "10.10.10.0/24")
    neutron_error(post_subnet(me, net["id"], subnetpool_id=pool["id"]), 400, "NetworkSubnetPoolAffinityError",
                  "Subnets hosted on the same network must be allocated from the same subnet pool.")
    # ... and a network with a pool subnet takes no plain subnet, nor one from another pool.
    net2 = me.network()
    pool_subnet(me, net2["id"], pool["id"])
    neutron_error(post_subnet(me, net2["id"], cidr="10.10.20.0/24"), 400, "NetworkSubnetPoolAffinityError")
    neutron_error(post_subnet(me, net2["id"], subnetpool_id=other_pool["id"]), 400, "NetworkSubnetPoolAffinityError")
    assert pool_subnet(me, net2["id"], pool["id"])["cidr"] == "192.168.1.0/24"
    # Another IP version is another matter.
    assert me.subnet(net2["id"], "2001:db8:9::/64")["subnetpool_id"] is None


def test_pool_quota_per_project(core_api: Api, project: str, other_project: str) -> None:
    admin = core_api.admin()
    # default_quota counts /32s: 16 addresses each for project and other_project.
    pool = make_pool(admin, prefixes=["10.90.0.0/24"], min_prefixlen=28, max_prefixlen=29, shared=True,
                     default_quota=16)
    me, them = core_api.member(project), core_api.member(other_project)
    net = me.network()
    pool_subnet(me, net["id"], pool["id"], prefixlen=29)
    pool_subnet(me, net["id"], pool["id"], prefixlen=29)
    neutron_error(post_subnet(me, net["id"], subnetpool_id=pool["id"], prefixlen=29), 409,
                  "SubnetPoolQuotaExceeded", "Per-tenant subnet pool prefix quota exceeded.")
    assert pool_subnet(them, them.network()["id"], pool["id"], prefixlen=28)["cidr"] == "10.90.0.16/28"


def test_use_default_subnetpool(make_api: Any, project: str) -> None:
    api = make_api()
    me, admin = api.member(project), api.admin()
    net = me.network()
    neutron_error(post_subnet(me, net["id"], use_default_subnetpool=True), 400, "BadRequest",
                  "No default subnetpool found for IPv4")
    # A default pool the project cannot see is no default for it.
    make_pool(admin, prefixes=["10.100.0.0/16"], is_default=True, default_prefixlen=24)
    neutron_error(post_subnet(me, net["id"], use_default_subnetpool=True), 400, "BadRequest")
    v6 = make_pool(admin, prefixes=["2001:db8:100::/48"], is_default=True, shared=True, default_prefixlen=64)
    sub = me.create("subnets", network_id=net["id"], ip_version=6, use_default_subnetpool=True)
    assert sub["subnetpool_id"] == v6["id"] and sub["cidr"] == "2001:db8:100::/64"
    assert "use_default_subnetpool" not in sub and "prefixlen" not in sub


def test_shared_pool_through_rbac(core_api: Api, project: str, other_project: str) -> None:
    admin, me = core_api.admin(), core_api.member(project)
    pool = make_pool(admin, prefixes=["10.110.0.0/16"], min_prefixlen=24)
    net = me.network()
    neutron_error(post_subnet(me, net["id"], subnetpool_id=pool["id"]), 404, "SubnetPoolNotFound")
    r = admin.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "subnetpool", "object_id": pool["id"], "action": "access_as_shared",
        "target_tenant": project}})
    assert r.status_code == 201, r.text
    policy = r.json()["rbac_policy"]
    assert policy["object_type"] == "subnetpool"
    assert me.show("subnetpools", pool["id"])["shared"] is True
    assert core_api.member(other_project).get(f"{SP}/{pool['id']}").status_code == 404
    sub = pool_subnet(me, net["id"], pool["id"])
    # The project depends on the grant now.
    neutron_error(admin.delete(f"/v2.0/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse")
    # Sharing on is the owner's (or an admin's) business.
    r = me.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "subnetpool", "object_id": pool["id"], "action": "access_as_shared",
        "target_tenant": other_project}})
    neutron_error(r, 400, "InvalidInput")
    me.remove("subnets", sub["id"])
    assert admin.delete(f"/v2.0/rbac-policies/{policy['id']}").status_code == 204
    neutron_error(me.get(f"{SP}/{pool['id']}"), 404)


def test_extensions_are_listed(core_api: Api, project: str) -> None:
    r = core_api.member(project).get("/v2.0/extensions")
    aliases = {e["alias"] for e in r.json()["extensions"]}
    assert {"subnet_allocation", "default-subnetpools", "subnetpool-prefix-ops", "address-scope",
            "rbac-subnetpool", "rbac-address-scope"} <= aliases


# -- concurrency ------------------------------------------------------------------------
def test_concurrent_allocations_never_overlap(live_server: Any, db_url: str) -> None:
    """Twelve projects ask one shared pool for a /28 at once (separate
    projects, so no per-project quota lock serialises them): ten fit, each
    gets its own prefix, the other two are told the pool is full."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    srv = live_server(db_url=db_url)
    admin = {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"}
    with srv.client(headers=admin) as c:
        r = c.post(SP, json={"subnetpool": {"name": "conc", "prefixes": ["10.120.0.0/25", "10.120.0.128/27"],
                                            "min_prefixlen": 28, "shared": True}})
        assert r.status_code == 201, r.text
        pool_id = r.json()["subnetpool"]["id"]
    projects = [f"conc-{i}" for i in range(12)]
    nets = {}
    for p in projects:
        with srv.client(headers={"X-Project-Id": p, "X-Roles": "member,reader"}) as c:
            nets[p] = c.post("/v2.0/networks", json={"network": {"name": p}}).json()["network"]["id"]
    barrier = threading.Barrier(len(projects))

    def one(p: str) -> httpx.Response:
        with httpx.Client(base_url=srv.url, headers={"X-Project-Id": p, "X-Roles": "member,reader"},
                          timeout=120.0) as client:
            barrier.wait()
            return client.post("/v2.0/subnets", json={"subnet": {"network_id": nets[p], "ip_version": 4,
                                                                  "subnetpool_id": pool_id}})

    with ThreadPoolExecutor(len(projects)) as ex:
        results = list(ex.map(one, projects))
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 10, 409: 2}, [r.text for r in results]
    assert {r.json()["NeutronError"]["type"] for r in results if r.status_code == 409} == {"SubnetAllocationError"}
    cidrs = [netaddr.IPNetwork(r.json()["subnet"]["cidr"]) for r in results if r.status_code == 201]
    assert netaddr.IPSet(cidrs).size == 10 * 16  # no two subnets share an address


def test_rbac_share_pool_needs_target_access_to_address_scope(core_api: Api, project: str,
                                                             other_project: str) -> None:
    """tempest RbacSubnetPoolTest.test_cannot_share_if_no_access_to_address_scope:
    a pool in a scope shared with its owner only cannot be shared further."""
    admin, me = core_api.admin(), core_api.member(project)
    r = admin.post("/v2.0/address-scopes", json={"address_scope": {"name": "s", "ip_version": 4}})
    assert r.status_code == 201, r.text
    scope = r.json()["address_scope"]
    r = admin.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "address_scope", "object_id": scope["id"], "action": "access_as_shared",
        "target_tenant": project}})
    assert r.status_code == 201, r.text
    pool = make_pool(me, address_scope_id=scope["id"])
    body = {"rbac_policy": {"object_type": "subnetpool", "object_id": pool["id"],
                            "action": "access_as_shared", "target_tenant": other_project}}
    neutron_error(me.post("/v2.0/rbac-policies", json=body), 400)
    # Once the scope reaches the target too, the pool may be shared.
    r = admin.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "address_scope", "object_id": scope["id"], "action": "access_as_shared",
        "target_tenant": other_project}})
    assert r.status_code == 201, r.text
    assert me.post("/v2.0/rbac-policies", json=body).status_code == 201


def test_rbac_member_cannot_share_anothers_pool(core_api: Api, project: str, other_project: str) -> None:
    """tempest RbacSubnetPoolTest.test_regular_client_blocked_from_sharing_anothers_policy."""
    admin, me = core_api.admin(), core_api.member(project)
    pool = make_pool(admin)
    r = admin.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "subnetpool", "object_id": pool["id"], "action": "access_as_shared",
        "target_tenant": project}})
    assert r.status_code == 201, r.text
    neutron_error(me.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "subnetpool", "object_id": pool["id"], "action": "access_as_shared",
        "target_tenant": other_project}}), 400)
    r = me.get("/v2.0/rbac-policies")
    assert r.status_code == 200 and r.json()["rbac_policies"] == [], r.text
