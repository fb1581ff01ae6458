"""Inputs that gave 500 (issue 13, defect 4) answer 400 in Neutron's format,
and nothing is written; an unhandled error keeps the connection. On SQLite
and PostgreSQL (several of these only failed on PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.api import core_support
from tests.api.core_support import Api, neutron_error

core_api, project = core_support.core_api, core_support.project

COLLECTIONS = ("networks", "subnets", "ports", "routers", "floatingips", "security-groups",
               "security-group-rules", "default-security-group-rules", "rbac-policies", "subnetpools",
               "address-scopes", "agents")


@pytest.mark.parametrize("pool", [{"start": 5, "end": "10.0.0.9"}, {"start": ["x"], "end": None},
                                  {"start": {"a": 1}, "end": "10.0.0.9"}])
def test_allocation_pool_start_not_a_string(core_api: Api, project: str, pool: dict) -> None:
    me = core_api.member(project)
    net = me.network()
    r = me.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24",
                                                  "ip_version": 4, "allocation_pools": [pool]}})
    neutron_error(r, 400, "InvalidAllocationPool")
    assert core_api.count("subnets", network_id=net["id"]) == 0
    sub = me.subnet(net["id"])
    r = me.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"allocation_pools": [pool]}})
    neutron_error(r, 400, "InvalidAllocationPool")
    assert me.show("subnets", sub["id"])["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]


@pytest.mark.parametrize("quota", [2**63, 1e308, 2**31, 1.5, -1, True, "x"])
def test_subnetpool_default_quota_out_of_range(core_api: Api, project: str, quota) -> None:
    me = core_api.member(project)
    body = {"name": "sp", "prefixes": ["10.9.0.0/16"], "default_prefixlen": 24, "default_quota": quota}
    err = neutron_error(me.post("/v2.0/subnetpools", json={"subnetpool": body}), 400, "InvalidInput")
    assert "default_quota" in err["message"]
    pool = me.create("subnetpools", **{**body, "default_quota": 2**31 - 1})
    assert pool["default_quota"] == 2**31 - 1
    r = me.put(f"/v2.0/subnetpools/{pool['id']}", json={"subnetpool": {"default_quota": quota}})
    neutron_error(r, 400, "InvalidInput")
    assert me.show("subnetpools", pool["id"])["default_quota"] == 2**31 - 1


def test_huge_limit_on_every_collection(core_api: Api, project: str) -> None:
    me = core_api.admin(project)
    me.network(name="limit-probe")
    for collection in COLLECTIONS:
        r = me.get(f"/v2.0/{collection}", params={"limit": str(2**63 - 1)})
        assert r.status_code == 200, (collection, r.text)
    names = [n["name"] for n in me.list("networks", {"limit": str(2**63 - 1), "name": "limit-probe"})]
    assert names == ["limit-probe"]


@pytest.mark.parametrize("query", [{"mtu": "99999999999999999999"}, {"mtu": "2147483648"},
                                   {"revision_number": "abc"}, {"created_at": "bad"},
                                   {"provider:segmentation_id": str(2**64)}])
def test_filter_values_the_database_cannot_compare(core_api: Api, project: str, query: dict) -> None:
    neutron_error(core_api.admin(project).get("/v2.0/networks", params=query), 400)


def test_nul_characters_anywhere(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network(name="plain")
    for path in ("/v2.0/routers/%00", "/v2.0/networks/%00", f"/v2.0/networks/{net['id']}%00",
                 "/v2.0/networks?name=%00", "/v2.0/networks?limit=1&marker=%00"):
        neutron_error(me.get(path), 400, "HTTPBadRequest", "NUL character")
    neutron_error(me.post("/v2.0/networks", json={"network": {"name": "a\u0000b"}}), 400, "HTTPBadRequest")
    neutron_error(me.post("/v2.0/security-groups", json={"security_group": {"name": "x", "description": "\u0000"}}),
                  400, "HTTPBadRequest")
    neutron_error(me.put(f"/v2.0/networks/{net['id']}", json={"network": {"\u0000": 1}}), 400)
    neutron_error(me.put(f"/v2.0/networks/{net['id']}/tags/a%00b"), 400)
    assert core_api.footprint(project)["networks"] == 1
    assert me.show("networks", net["id"])["name"] == "plain"
    # An escaped backslash before "u0000" is no NUL: stored as written.
    made = me.post("/v2.0/networks", content=b'{"network": {"name": "a\\\\u0000"}}',
                   headers={"Content-Type": "application/json"})
    assert made.status_code == 201 and made.json()["network"]["name"] == "a\\u0000"


def test_quota_for_a_project_id_too_long(core_api: Api) -> None:
    admin = core_api.admin()
    r = admin.put("/v2.0/quotas/" + "x" * 256, json={"quota": {"network": 5}})
    neutron_error(r, 400, "InvalidInput", "maximum length of 255")
    assert core_api.count("quotas", project_id="x" * 256) == 0
    assert admin.put("/v2.0/quotas/" + "y" * 255, json={"quota": {"network": 5}}).status_code == 200


def test_unhandled_error_is_a_500_that_keeps_the_connection(core_api: Api, project: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The TestClient re-raises whatever the app lets escape; uvicorn closes
    the connection in that case. The 500 must be answered, not raised."""
    services = core_api.app.app.state.services

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    assert not hasattr(services.networks, "list_json")  # the list goes through list()
    monkeypatch.setattr(services.networks, "list", broken)
    r = core_api.member(project).get("/v2.0/networks")
    neutron_error(r, 500, "HTTPInternalServerError")


def test_database_data_error_is_a_400(core_api: Api, project: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A value the validators miss and the database refuses is the client's error, not a 500."""
    from sqlalchemy.exc import DataError

    services = core_api.app.app.state.services

    def refused(*args, **kwargs):
        raise DataError("SELECT 1", {}, ValueError("integer out of range"))

    monkeypatch.setattr(services.networks, "list", refused)
    neutron_error(core_api.member(project).get("/v2.0/networks"), 400, "InvalidInput", "cannot be stored")
