"""Tags (standard-attr-tag) and tag filters, quotas (quotas, quota_details)
and network IP availability."""

from __future__ import annotations

import pytest

from tests.api import core_support
from tests.api.core_support import Api, neutron_error

core_api, make_api = core_support.core_api, core_support.make_api
project, other_project = core_support.project, core_support.other_project

DEFAULT_QUOTAS = {"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
                  "security_group": 10, "security_group_rule": 100, "rbac_policy": 10}


# --- tags -------------------------------------------------------------------------------
@pytest.mark.parametrize("collection", ["networks", "subnets", "ports"])
def test_tag_api(core_api: Api, project: str, collection: str) -> None:
    me = core_api.member(project)
    net, sub = me.net_with_subnet()
    rid = {"networks": net["id"], "subnets": sub["id"], "ports": me.port(net["id"])["id"] if collection == "ports"
           else None}[collection]
    base = f"/v2.0/{collection}/{rid}/tags"
    rev = me.show(collection, rid)["revision_number"]
    assert me.get(base).json() == {"tags": []}
    r = me.put(base, json={"tags": ["red", "blue"]})
    assert r.status_code == 200 and r.json() == {"tags": ["blue", "red"]}
    assert me.show(collection, rid)["tags"] == ["blue", "red"]
    assert me.show(collection, rid)["revision_number"] == rev + 1
    assert me.get(f"{base}/red").status_code == 204
    neutron_error(me.get(f"{base}/green"), 404, "TagNotFound")
    r = me.put(f"{base}/green")
    assert r.status_code == 201
    assert me.put(f"{base}/green").status_code == 201  # already there: still 201
    assert me.get(base).json() == {"tags": ["blue", "green", "red"]}
    assert me.delete(f"{base}/blue").status_code == 204
    neutron_error(me.delete(f"{base}/blue"), 404, "TagNotFound")
    assert me.get(base).json() == {"tags": ["green", "red"]}
    assert me.put(base, json={"tags": ["only"]}).json() == {"tags": ["only"]}
    assert me.delete(base).status_code == 204
    assert me.get(base).json() == {"tags": []}
    assert me.show(collection, rid)["revision_number"] > rev + 1


def test_tag_errors_and_policy(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    base = f"/v2.0/networks/{net['id']}/tags"
    me.put(base, json={"tags": ["keep"]})
    for body in ({"tags": "red"}, {"tag": ["red"]}, {"tags": ["a", "a"]}, {"tags": ["x" * 256]},
                 {"tags": [7]}, {"tags": ["a,b"]}, {"tags": [f"t{i}" for i in range(51)]}):
        neutron_error(me.put(base, json=body), 400, "InvalidInput")
    neutron_error(me.put(f"{base}/{'x' * 256}"), 400)
    assert me.get(base).json() == {"tags": ["keep"]}
    # Tags of what the caller cannot see: 404; of what it may only read: 403.
    them = core_api.member(other_project)
    neutron_error(them.get(base), 404, "NetworkNotFound")
    neutron_error(them.put(f"{base}/x"), 404, "NetworkNotFound")
    reader = core_api.reader(project)
    assert reader.get(base).json() == {"tags": ["keep"]}
    neutron_error(reader.put(f"{base}/x"), 403)
    neutron_error(reader.delete(base), 403)
    shared = core_api.admin(other_project).network(shared=True)
    neutron_error(me.put(f"/v2.0/networks/{shared['id']}/tags/x"), 403)
    neutron_error(me.get("/v2.0/networks/9d5f0f0a-1111-4222-8333-444455556666/tags"), 404, "NetworkNotFound")
    assert me.get(base).json() == {"tags": ["keep"]}


def test_tag_filters(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    tagged = {}
    for name, tags in (("a", ["red", "blue"]), ("b", ["red"]), ("c", ["blue", "green"]), ("d", [])):
        net = me.network(name=name)
        me.put(f"/v2.0/networks/{net['id']}/tags", json={"tags": tags})
        tagged[name] = net

    def found(*params: tuple[str, str]) -> list[str]:
        return sorted(n["name"] for n in me.list("networks", [("project_id", project), *params]))

    assert found(("tags", "red")) == ["a", "b"]
    assert found(("tags", "red,blue")) == ["a"]
    assert found(("tags", "red"), ("tags", "blue")) == ["a"]
    assert found(("tags-any", "red,green")) == ["a", "b", "c"]
    assert found(("not-tags", "red,blue")) == ["b", "c", "d"]
    assert found(("not-tags-any", "red,green")) == ["d"]
    assert found(("tags", "blue"), ("not-tags", "green")) == ["a"]
    assert found(("tags", "purple")) == []
    assert found(("tags-any", "blue"), ("name", "c")) == ["c"]


def test_tags_go_with_their_resource(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, sub = me.net_with_subnet()
    port = me.port(net["id"])
    for collection, rid in (("ports", port["id"]), ("subnets", sub["id"])):
        me.put(f"/v2.0/{collection}/{rid}/tags/t")
        me.remove(collection, rid)
        assert core_api.count("tags", resource_id=rid) == 0


# --- quotas ----------------------------------------------------------------------------------
def test_quota_reads(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    quota = me.get(f"/v2.0/quotas/{project}").json()["quota"]
    assert {k: quota[k] for k in DEFAULT_QUOTAS} == DEFAULT_QUOTAS
    default = me.get(f"/v2.0/quotas/{project}/default").json()["quota"]
    assert {k: default[k] for k in DEFAULT_QUOTAS} == DEFAULT_QUOTAS
    assert me.get("/v2.0/quotas/project").json() == {"project": {"project_id": project}}
    assert me.get("/v2.0/quotas/tenant").json() == {"tenant": {"tenant_id": project}}
    net, _ = me.net_with_subnet()
    me.port(net["id"])
    me.port(net["id"])
    details = me.get(f"/v2.0/quotas/{project}/details").json()["quota"]
    assert details["network"] == {"limit": 100, "used": 1, "reserved": 0}
    assert details["subnet"] == {"limit": 100, "used": 1, "reserved": 0}
    assert details["port"]["used"] == 2 and details["port"]["limit"] == 500
    # Another project's quotas are for admins.
    for suffix in ("", "/default", "/details"):
        neutron_error(me.get(f"/v2.0/quotas/{other_project}{suffix}"), 403)
    neutron_error(me.get("/v2.0/quotas"), 403)
    admin = core_api.admin()
    assert admin.get(f"/v2.0/quotas/{project}/details").json()["quota"]["network"]["used"] == 1


def test_quota_update_and_reset(core_api: Api, project: str) -> None:
    admin = core_api.admin()
    me = core_api.member(project)
    neutron_error(me.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 1000}}), 403)
    neutron_error(me.delete(f"/v2.0/quotas/{project}"), 403)
    r = admin.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 3, "port": "7", "subnet": -1}})
    assert r.status_code == 200, r.text
    quota = r.json()["quota"]
    assert (quota["network"], quota["port"], quota["subnet"], quota["router"]) == (3, 7, -1, 10)
    assert me.get(f"/v2.0/quotas/{project}").json()["quota"]["network"] == 3
    listed = {q["project_id"]: q for q in admin.get("/v2.0/quotas").json()["quotas"]}
    assert listed[project]["network"] == 3 and listed[project]["tenant_id"] == project
    # 2**31 is past Neutron's range (-1 through DB_INTEGER_MAX_VALUE): tempest
    # NegativeSecGroupQuotaTest.test_sg_quota_incorrect_values.
    for body in ({"quota": {"network": -2}}, {"quota": {"network": "lots"}}, {"quota": {"network": True}},
                 {"quota": {"security_group": 2147483648}}, {"quota": {"security_group": "value"}},
                 {"quota": {"warp_drives": 1}}, {"quotas": {"network": 1}}):
        neutron_error(admin.put(f"/v2.0/quotas/{project}", json=body), 400)
    assert me.get(f"/v2.0/quotas/{project}").json()["quota"]["network"] == 3
    # openstackclient's --force and --check-limit.
    me.network()
    me.network()
    assert admin.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 5, "force": True}}).status_code == 200
    r = admin.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 1, "check_limit": True}})
    neutron_error(r, 400, contains="must be greater than or equal to already used 2")
    assert admin.delete(f"/v2.0/quotas/{project}").status_code == 204
    assert me.get(f"/v2.0/quotas/{project}").json()["quota"]["network"] == 100
    assert project not in {q["project_id"] for q in admin.get("/v2.0/quotas").json()["quotas"]}


@pytest.mark.parametrize("resource, make", [
    ("network", lambda me, net: me.post("/v2.0/networks", json={"network": {}})),
    ("subnet", lambda me, net: me.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"],
                                                                          "cidr": "10.9.0.0/24", "ip_version": 4}})),
    ("port", lambda me, net: me.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})),
])
def test_over_quota(core_api: Api, project: str, resource: str, make) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    me.port(net["id"])
    core_api.admin().put(f"/v2.0/quotas/{project}", json={"quota": {resource: 1}})
    before = core_api.footprint(project)
    err = neutron_error(make(me, net), 409, "OverQuota")
    assert err["message"].startswith("Quota exceeded for resources:") and resource in err["message"]
    assert core_api.footprint(project) == before
    # Admins creating for the project are held to its quota too; other projects are not.
    r = core_api.admin().post("/v2.0/networks", json={"network": {"project_id": project}})
    assert r.status_code == (409 if resource == "network" else 201)
    core_api.admin().put(f"/v2.0/quotas/{project}", json={"quota": {resource: -1}})
    assert make(me, net).status_code == 201


def test_quota_defaults_from_config(make_api, project: str) -> None:
    api: Api = make_api(quotas={"quota_network": 2, "quota_port": 0})
    me = api.member(project)
    quota = me.get(f"/v2.0/quotas/{project}").json()["quota"]
    assert quota["network"] == 2 and quota["port"] == 0
    net = me.network()
    me.subnet(net["id"])
    neutron_error(me.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}), 409, "OverQuota")
    me.network()
    neutron_error(me.post("/v2.0/networks", json={"network": {}}), 409, "OverQuota")
    assert api.count("networks") == 2 and api.count("ports") == 0


# --- network IP availability -------------------------------------------------------------------
def test_ip_availability(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network(name="avail")
    v4 = me.subnet(net["id"], "10.0.0.0/24", name="four")          # 253 in the pool
    v6 = me.subnet(net["id"], "2001:db8:e::/120", name="six")      # ::2 - ::ff: 254
    me.port(net["id"])                                             # one of each
    me.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.1"}])     # the gateway, outside the pool
    admin = core_api.admin()
    r = admin.get(f"/v2.0/network-ip-availabilities/{net['id']}")
    assert r.status_code == 200, r.text
    got = r.json()["network_ip_availability"]
    assert got["network_id"] == net["id"] and got["network_name"] == "avail"
    assert got["project_id"] == got["tenant_id"] == project
    assert (got["total_ips"], got["used_ips"]) == (253 + 254, 3)
    per = {s["subnet_id"]: s for s in got["subnet_ip_availability"]}
    assert per[v4["id"]] == {"subnet_id": v4["id"], "subnet_name": "four", "cidr": "10.0.0.0/24", "ip_version": 4,
                             "total_ips": 253, "used_ips": 2}
    assert (per[v6["id"]]["total_ips"], per[v6["id"]]["used_ips"]) == (254, 1)
    listed = admin.get("/v2.0/network-ip-availabilities", params={"network_id": net["id"]}).json()
    assert listed["network_ip_availabilities"] == [got]
    only6 = admin.get("/v2.0/network-ip-availabilities", params={"network_id": net["id"], "ip_version": "6"})
    assert [s["subnet_id"] for s in only6.json()["network_ip_availabilities"][0]["subnet_ip_availability"]] \
        == [v6["id"]]
    by_project = admin.get("/v2.0/network-ip-availabilities", params={"project_id": project}).json()
    assert [n["network_id"] for n in by_project["network_ip_availabilities"]] == [net["id"]]
    # Admin only: Neutron filters the list item by item (empty), hides the item (404).
    r = me.get("/v2.0/network-ip-availabilities")
    assert r.status_code == 200 and r.json() == {"network_ip_availabilities": []}, r.text
    assert me.get(f"/v2.0/network-ip-availabilities/{net['id']}").status_code in (403, 404)
    neutron_error(admin.get("/v2.0/network-ip-availabilities/3f0c5b8e-1d2a-4e6f-9b7c-0a1d2e3f4a5b"), 404)


def test_ip_availability_of_huge_ipv6_subnets(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    me.subnet(net["id"], "2001:db8:f::/48", enable_dhcp=False)
    me.subnet(net["id"], "2001:db9::/64")
    r = core_api.admin().get(f"/v2.0/network-ip-availabilities/{net['id']}")
    assert r.status_code == 200, r.text
    assert r.json()["network_ip_availability"]["total_ips"] == (2**80 - 2) + (2**64 - 2)
