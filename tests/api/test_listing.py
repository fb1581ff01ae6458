"""What every collection shares: filters, fields, sorting, pagination and
its links, bulk create, If-Match and revisions, timestamps, request-body
errors, 404 bodies, and the version, resource and extension documents."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.api import core_support
from tests.api.core_support import Api, Caller, neutron_error

core_api, make_api = core_support.core_api, core_support.make_api
project, other_project = core_support.project, core_support.other_project


def names(items: list[dict]) -> list[str]:
    return [i["name"] for i in items]


def nets(me: Caller, *params: tuple[str, str]) -> list[dict]:
    return me.list("networks", [("project_id", me.project), *params])


@pytest.fixture
def five(core_api: Api, project: str) -> list[dict]:
    """Five networks of ``project``: n0..n4, odd ones administratively down."""
    me = core_api.member(project)
    return [me.network(name=f"n{i}", admin_state_up=i % 2 == 0, description="odd" if i % 2 else "even")
            for i in range(5)]


# --- filters ------------------------------------------------------------------------
def test_filters_and_across_keys_or_within_a_key(core_api: Api, project: str, five: list[dict]) -> None:
    me = core_api.member(project)
    assert sorted(names(nets(me, ("name", "n1"), ("name", "n2")))) == ["n1", "n2"]
    assert names(nets(me, ("name", "n1"), ("name", "n2"), ("admin_state_up", "false"))) == ["n1"]
    assert sorted(names(nets(me, ("admin_state_up", "False")))) == ["n1", "n3"]
    assert sorted(names(nets(me, ("admin_state_up", "true")))) == ["n0", "n2", "n4"]
    assert names(nets(me, ("id", five[3]["id"]))) == ["n3"]
    assert nets(me, ("name", "nope")) == []
    assert sorted(names(nets(me, ("description", "odd")))) == ["n1", "n3"]
    # tenant_id is project_id; both at once is refused.
    assert len(me.list("networks", {"tenant_id": project})) == 5
    r = me.get("/v2.0/networks", params=[("tenant_id", project), ("project_id", project)])
    neutron_error(r, 400, "TenantIdProjectIdFilterConflict")


def test_invalid_filters(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    err = neutron_error(me.get("/v2.0/networks", params={"colour": "red"}), 400)
    assert err["message"] == "['colour'] is invalid attribute for filtering"
    neutron_error(me.get("/v2.0/networks", params={"admin_state_up": "maybe"}), 400, "InvalidInput")
    neutron_error(me.get("/v2.0/subnets", params={"allocation_pools": "x"}), 400)
    neutron_error(me.get("/v2.0/ports", params={"fixed_ips": "mac=1"}), 400)


def test_filter_validation_can_be_turned_off(make_api, project: str) -> None:
    api: Api = make_api(DEFAULT={"filter_validation": False})
    me = api.member(project)
    me.network(name="a")
    assert names(me.list("networks", {"colour": "red", "name": "a"})) == ["a"]


def test_empty_string_filter(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    bare = me.port(net["id"])
    vm = me.port(net["id"], device_id="vm-1", device_owner="compute:nova")
    found = {p["id"] for p in me.list("ports", [("network_id", net["id"]), ("device_id", "")])}
    assert found == {bare["id"]}
    found = {p["id"] for p in me.list("ports", [("network_id", net["id"]), ("device_owner", "compute:nova")])}
    assert found == {vm["id"]}


def test_port_address_filters(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    a = me.subnet(net["id"], "10.0.0.0/24")
    b = me.subnet(net["id"], "10.0.1.0/24")
    p1 = me.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.11"}])
    p2 = me.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.12"}, {"ip_address": "10.0.1.12"}])
    p3 = me.port(net["id"], fixed_ips=[{"ip_address": "10.0.1.13"}])

    def ids(*params: tuple[str, str]) -> set[str]:
        return {p["id"] for p in me.list("ports", [("network_id", net["id"]), *params])}

    assert ids(("fixed_ips", "ip_address=10.0.0.11")) == {p1["id"]}
    assert ids(("fixed_ips", "ip_address=10.0.0.11"), ("fixed_ips", "ip_address=10.0.1.13")) == {p1["id"], p3["id"]}
    assert ids(("fixed_ips", "subnet_id=" + b["id"])) == {p2["id"], p3["id"]}
    assert ids(("fixed_ips", "subnet_id=" + a["id"]), ("fixed_ips", "ip_address=10.0.1.12")) == {p2["id"]}
    assert ids(("fixed_ips", "ip_address_substr=0.1.1")) == {p2["id"], p3["id"]}
    assert ids(("fixed_ips", "ip_address_substr=.0.0.1")) == {p1["id"], p2["id"]}
    assert ids(("fixed_ips", "ip_address_substr=%")) == set()
    assert ids(("mac_address", p3["mac_address"])) == {p3["id"]}


def test_network_special_filters(core_api: Api, project: str) -> None:
    admin = core_api.admin(project)
    shared = admin.network(name="s", shared=True)
    ext = admin.network(name="e", **{"router:external": True})
    vlan = admin.network(name="v", **{"provider:network_type": "vlan", "provider:physical_network": "physnet2",
                                      "provider:segmentation_id": 2345})
    sub = admin.subnet(vlan["id"])
    mine = [("project_id", project)]
    assert names(admin.list("networks", [*mine, ("shared", "true")])) == ["s"]
    assert names(admin.list("networks", [*mine, ("router:external", "true")])) == ["e"]
    assert sorted(names(admin.list("networks", [*mine, ("router:external", "false")]))) == ["s", "v"]
    assert names(admin.list("networks", [*mine, ("provider:segmentation_id", "2345")])) == ["v"]
    assert names(admin.list("networks", [*mine, ("provider:physical_network", "physnet2")])) == ["v"]
    assert names(admin.list("networks", [*mine, ("subnets", sub["id"])])) == ["v"]
    assert {shared["id"], ext["id"]} <= {n["id"] for n in admin.list("networks", [*mine, ("mtu", "1450")])}


def test_changed_since(core_api: Api, project: str, five: list[dict]) -> None:
    me = core_api.member(project)
    assert len(nets(me, ("changed_since", "2000-01-01T00:00:00Z"))) == 5
    assert nets(me, ("changed_since", "2999-01-01T00:00:00")) == []
    neutron_error(me.get("/v2.0/networks", params={"changed_since": "yesterday"}), 400)


def test_standard_attribute_filters(core_api: Api, project: str, five: list[dict]) -> None:
    me = core_api.member(project)
    me.update("networks", five[0]["id"], name="n0")
    assert names(nets(me, ("revision_number", "1"))) == ["n0"]
    assert len(nets(me, ("revision_number", "0"))) == 4
    stamp = five[1]["created_at"]
    assert five[1]["id"] in [n["id"] for n in nets(me, ("created_at", stamp))]
    for key, value in (("revision_number", "x"), ("revision_number", "-1"), ("created_at", "noon"),
                       ("updated_at", "2026-13-01T00:00:00Z"), ("ip_version", "four"), ("mtu", "1e3")):
        collection = "subnets" if key == "ip_version" else "networks"
        neutron_error(me.get(f"/v2.0/{collection}", params={key: value}), 400, "InvalidInput")


# --- fields -----------------------------------------------------------------------------
def test_fields(core_api: Api, project: str, five: list[dict]) -> None:
    me = core_api.member(project)
    got = nets(me, ("fields", "id"), ("fields", "name"))
    assert all(set(n) == {"id", "name"} for n in got) and len(got) == 5
    r = me.get(f"/v2.0/networks/{five[0]['id']}", params=[("fields", "name"), ("fields", "mtu")])
    assert r.json() == {"network": {"name": "n0", "mtu": 1450}}
    # Attributes the caller may not read stay hidden even when asked for.
    r = me.get(f"/v2.0/networks/{five[0]['id']}", params=[("fields", "provider:network_type")])
    assert r.json() == {"network": {}}


# --- sorting ----------------------------------------------------------------------------
def test_sorting(core_api: Api, project: str, five: list[dict]) -> None:
    me = core_api.member(project)
    assert names(nets(me, ("sort_key", "name"), ("sort_dir", "desc"))) == ["n4", "n3", "n2", "n1", "n0"]
    assert names(nets(me, ("sort_key", "name"), ("sort_dir", "asc"))) == ["n0", "n1", "n2", "n3", "n4"]
    got = names(nets(me, ("sort_key", "admin_state_up"), ("sort_dir", "asc"),
                     ("sort_key", "name"), ("sort_dir", "desc")))
    assert got == ["n3", "n1", "n4", "n2", "n0"]
    by_id = sorted(five, key=lambda n: n["id"])
    assert [n["id"] for n in nets(me, ("sort_key", "id"), ("sort_dir", "asc"))] == [n["id"] for n in by_id]


@pytest.mark.parametrize("params, fragment", [
    ([("sort_key", "colour"), ("sort_dir", "asc")], "['colour'] is invalid attribute for sort_keys"),
    ([("sort_key", "name"), ("sort_dir", "up")], "['up'] is invalid value for sort_dirs"),
    ([("sort_key", "name")], "The number of sort_keys and sort_dirs must be same"),
    ([("sort_key", "subnets"), ("sort_dir", "asc")], "is invalid attribute for sort_keys"),
])
def test_invalid_sorting(core_api: Api, project: str, params: list, fragment: str) -> None:
    neutron_error(core_api.member(project).get("/v2.0/networks", params=params), 400, contains=fragment)


def test_sorting_by_a_nullable_key_pages_the_same_on_every_engine(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    gateways = ["10.0.1.1", None, "10.0.3.1", None, "10.0.5.1"]
    for i, gw in enumerate(gateways):
        me.subnet(net["id"], f"10.0.{i + 1}.0/24", gateway_ip=gw, name=f"s{i}")
    base = [("network_id", net["id"]), ("sort_key", "gateway_ip"), ("sort_dir", "asc")]
    whole = names(me.list("subnets", base))
    assert set(whole[:2]) == {"s1", "s3"}
    assert whole[2:] == ["s0", "s2", "s4"]
    assert walk_forward(me, "subnets", base, 2) == whole
    assert walk_backward(me, "subnets", base, 2) == whole
    desc = [("network_id", net["id"]), ("sort_key", "gateway_ip"), ("sort_dir", "desc")]
    whole_desc = names(me.list("subnets", desc))
    assert whole_desc[:3] == ["s4", "s2", "s0"] and set(whole_desc[3:]) == {"s1", "s3"}
    assert walk_forward(me, "subnets", desc, 2) == whole_desc
    assert walk_backward(me, "subnets", desc, 2) == whole_desc


# --- pagination -------------------------------------------------------------------------
def page(me: Caller, collection: str, params: list[tuple[str, str]]) -> tuple[list[dict], dict[str, str]]:
    r = me.get(f"/v2.0/{collection}", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    return body[collection], {link["rel"]: link["href"] for link in body.get(f"{collection}_links", [])}


def follow(me: Caller, collection: str, href: str) -> tuple[list[dict], dict[str, str]]:
    parts = urlsplit(href)
    assert parts.path == f"/v2.0/{collection}"
    return page(me, collection, parse_qsl(parts.query, keep_blank_values=True))


def walk_forward(me: Caller, collection: str, params: list, limit: int) -> list[str]:
    items, links = page(me, collection, [*params, ("limit", str(limit))])
    seen = names(items)
    while "next" in links:
        items, links = follow(me, collection, links["next"])
        assert len(items) <= limit
        seen += names(items)
    return seen


def walk_backward(me: Caller, collection: str, params: list, limit: int) -> list[str]:
    items, links = page(me, collection, [*params, ("limit", str(limit)), ("page_reverse", "True")])
    seen = names(items)
    while "previous" in links:
        items, links = follow(me, collection, links["previous"])
        seen = names(items) + seen
    return seen


def test_pagination_links_are_neutrons(core_api: Api, project: str, five: list[dict]) -> None:
    me = core_api.member(project)
    base = [("project_id", project), ("sort_key", "name"), ("sort_dir", "asc")]
    items, links = page(me, "networks", [*base, ("limit", "2")])
    assert names(items) == ["n0", "n1"]
    # A full first page has both links; the previous one goes backwards from its first item.
    assert set(links) == {"next", "previous"}
    nxt = urlsplit(links["next"])
    assert nxt.scheme == "http" and nxt.path == "/v2.0/networks"
    assert parse_qsl(nxt.query) == [*base, ("limit", "2"), ("marker", items[-1]["id"])]
    assert parse_qsl(urlsplit(links["previous"]).query) == [*base, ("limit", "2"), ("marker", items[0]["id"]),
                                                           ("page_reverse", "True")]
    items, links = follow(me, "networks", links["next"])
    assert names(items) == ["n2", "n3"] and set(links) == {"next", "previous"}
    items, links = follow(me, "networks", links["next"])
    assert names(items) == ["n4"] and set(links) == {"previous"}  # short forward page: no next
    items, links = follow(me, "networks", links["previous"])
    assert names(items) == ["n2", "n3"]
    items, links = follow(me, "networks", links["previous"])
    assert names(items) == ["n0", "n1"]
    items, links = follow(me, "networks", links["previous"])
    assert items == [] and set(links) == {"next"}  # short reverse page: no previous


def test_exact_multiple_ends_with_an_empty_page(core_api: Api, project: str, five: list[dict]) -> None:
    me = core_api.member(project)
    base = [("project_id", project), ("sort_key", "name"), ("sort_dir", "asc")]
    items, links = page(me, "networks", [*base, ("limit", "5")])
    assert len(items) == 5 and "next" in links
    items, links = follow(me, "networks", links["next"])
    assert items == [] and "next" not in links and "previous" in links
    # From the empty page, "previous" walks back one item at a time (tempest does this).
    items, links = follow(me, "networks", links["previous"])
    assert names(items) == ["n0", "n1", "n2", "n3", "n4"]


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_walk_the_whole_collection(core_api: Api, project: str, five: list[dict], limit: int,
                                   direction: str) -> None:
    me = core_api.member(project)
    base = [("project_id", project), ("sort_key", "description"), ("sort_dir", direction),
            ("sort_key", "name"), ("sort_dir", direction)]
    whole = names(me.list("networks", base))
    assert sorted(whole) == ["n0", "n1", "n2", "n3", "n4"]
    assert walk_forward(me, "networks", base, limit) == whole
    assert walk_backward(me, "networks", base, limit) == whole


def test_marker_and_page_reverse(core_api: Api, project: str, five: list[dict]) -> None:
    me = core_api.member(project)
    base = [("project_id", project), ("sort_key", "name"), ("sort_dir", "asc")]
    ordered = me.list("networks", base)
    items, _ = page(me, "networks", [*base, ("limit", "2"), ("marker", ordered[2]["id"]), ("page_reverse", "true")])
    assert names(items) == ["n0", "n1"]
    items, _ = page(me, "networks", [*base, ("limit", "2"), ("marker", ordered[2]["id"])])
    assert names(items) == ["n3", "n4"]
    # Without sort keys the order is by id.
    by_id = sorted(five, key=lambda n: n["id"])
    items, _ = page(me, "networks", [("project_id", project), ("limit", "3")])
    assert [n["id"] for n in items] == [n["id"] for n in by_id[:3]]
    # limit=0 means no pagination, and no links.
    r = me.get("/v2.0/networks", params=[*base, ("limit", "0")])
    assert len(r.json()["networks"]) == 5 and "networks_links" not in r.json()


@pytest.mark.parametrize("limit", ["-1", "abc", "1.5"])
def test_bad_limit(core_api: Api, project: str, limit: str) -> None:
    err = neutron_error(core_api.member(project).get("/v2.0/networks", params={"limit": limit}), 400, "BadRequest")
    assert err["message"] == f"Bad limit request: Limit must be an integer 0 or greater and not '{limit}'."


def test_unknown_marker_is_404(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    r = me.get("/v2.0/networks", params={"limit": "2", "marker": "5f0b8c1e-8d9a-4b7e-a1c3-0e9f2d4b6a8c"})
    neutron_error(r, 404, "NetworkNotFound")
    theirs = core_api.member(other_project).network()
    neutron_error(me.get("/v2.0/networks", params={"limit": "2", "marker": theirs["id"]}), 404)


def test_ports_walk(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    for i in range(7):
        me.port(net["id"], name=f"p{i}")
    base = [("network_id", net["id"]), ("sort_key", "mac_address"), ("sort_dir", "desc")]
    whole = names(me.list("ports", base))
    assert len(whole) == 7
    assert walk_forward(me, "ports", base, 3) == whole
    assert walk_backward(me, "ports", base, 3) == whole


# --- bulk ---------------------------------------------------------------------------------
def test_bulk_create(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    r = me.post("/v2.0/networks", json={"networks": [{"name": "b1"}, {"name": "b2", "admin_state_up": False}]})
    assert r.status_code == 201, r.text
    created = r.json()["networks"]
    assert names(created) == ["b1", "b2"] and created[1]["admin_state_up"] is False
    net = created[0]
    me.subnet(net["id"])
    r = me.post("/v2.0/ports", json={"ports": [{"network_id": net["id"], "name": f"bp{i}"} for i in range(3)]})
    assert r.status_code == 201, r.text
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in r.json()["ports"]) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]


@pytest.mark.parametrize("bad", [
    {"network_id": "NET", "fixed_ips": [{"ip_address": "10.0.0.2"}]},  # in use by the first item
    {"network_id": "NET", "mac_address": "nope"},
    {"network_id": "NET", "colour": "red"},
    {"network_id": "2b9e0c4d-5a6f-4e8b-9c1d-3f7a8b0e2d4c"},
])
def test_bulk_create_is_atomic(core_api: Api, project: str, bad: dict) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    before = core_api.footprint(project)
    bad = {k: net["id"] if v == "NET" else v for k, v in bad.items()}
    body = {"ports": [{"network_id": net["id"], "fixed_ips": [{"ip_address": "10.0.0.2"}]},
                      {"network_id": net["id"]}, bad]}
    r = me.post("/v2.0/ports", json=body)
    assert r.status_code in (400, 404, 409), r.text
    assert core_api.footprint(project) == before
    # And the address the first item would have had is still free.
    assert me.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.2"}])["fixed_ips"][0]["ip_address"] == "10.0.0.2"


def test_bulk_networks_atomic_on_quota(make_api, project: str) -> None:
    api: Api = make_api(quotas={"quota_network": 2})
    me = api.member(project)
    r = me.post("/v2.0/networks", json={"networks": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})
    neutron_error(r, 409, "OverQuota")
    assert api.count("networks") == 0 and api.count("network_segments") == 0


# --- revisions, If-Match, timestamps -----------------------------------------------------
def test_revision_number_and_if_match(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network(name="r")
    rev = net["revision_number"]
    r = me.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "r2"}},
               headers={"If-Match": f"revision_number={rev + 5}"})
    err = neutron_error(r, 412, "RevisionNumberConstraintFailed")
    assert err["message"] == f"Constrained to {rev + 5}, but current revision is {rev}"
    assert me.show("networks", net["id"])["name"] == "r"
    r = me.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "r2"}},
               headers={"If-Match": f"revision_number={rev}"})
    assert r.status_code == 200 and r.json()["network"]["revision_number"] == rev + 1
    neutron_error(me.delete(f"/v2.0/networks/{net['id']}", headers={"If-Match": f"revision_number={rev}"}), 412)
    assert me.put(f"/v2.0/networks/{net['id']}/tags/t1").status_code == 201
    assert me.show("networks", net["id"])["revision_number"] == rev + 2
    r = me.delete(f"/v2.0/networks/{net['id']}", headers={"If-Match": f"revision_number={rev + 2}"})
    assert r.status_code == 204


def test_revision_bumps_on_every_resource(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, sub = me.net_with_subnet()
    port = me.port(net["id"])
    for collection, item in (("subnets", sub), ("ports", port)):
        before = me.show(collection, item["id"])
        after = me.update(collection, item["id"], name="renamed")
        assert after["revision_number"] == before["revision_number"] + 1
        r = me.put(f"/v2.0/{collection}/{item['id']}", json={collection[:-1]: {"name": "x"}},
                   headers={"If-Match": "revision_number=999"})
        neutron_error(r, 412, "RevisionNumberConstraintFailed")


def test_timestamps(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    created = dt.datetime.strptime(net["created_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(created - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(minutes=5)
    upd = me.update("networks", net["id"], name="later")
    assert upd["created_at"] == net["created_at"] and upd["updated_at"] >= net["updated_at"]


# --- request errors ------------------------------------------------------------------------
@pytest.mark.parametrize("raw, fragment", [
    (b"{not json", "Malformed request body"),
    (b"", "Resource body required"),
    (b"[]", ""),
    (b'{"net": {}}', "Unable to find 'network' in request body"),
    (b'{"network": []}', "Unable to find 'network' in request body"),
    (b'{"networks": []}', ""),
])
def test_malformed_bodies(core_api: Api, project: str, raw: bytes, fragment: str) -> None:
    me = core_api.member(project)
    err = neutron_error(me.post("/v2.0/networks", content=raw, headers={"Content-Type": "application/json"}), 400)
    assert fragment in err["message"]
    assert core_api.count("networks", project_id=project) == 0


def test_update_errors_write_nothing(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network(name="same")
    for body in ({"network": {"colour": "red"}}, {"network": {"id": net["id"]}}, {"network": {"name": 7}},
                 {"net": {}}):
        neutron_error(me.put(f"/v2.0/networks/{net['id']}", json=body), 400)
    neutron_error(me.put(f"/v2.0/networks/{net['id']}", content=b"{x"), 400, "MalformedRequestBody")
    shown = me.show("networks", net["id"])
    assert shown["name"] == "same" and shown["revision_number"] == net["revision_number"]


@pytest.mark.parametrize("collection, kind", [("networks", "NetworkNotFound"), ("subnets", "SubnetNotFound"),
                                              ("ports", "PortNotFound")])
def test_404_bodies(core_api: Api, project: str, collection: str, kind: str) -> None:
    me = core_api.member(project)
    missing = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
    for rid in (missing, "not-a-uuid"):
        err = neutron_error(me.get(f"/v2.0/{collection}/{rid}"), 404, kind)
        assert rid in err["message"] and err["detail"] == ""
        neutron_error(me.put(f"/v2.0/{collection}/{rid}", json={collection[:-1]: {"name": "x"}}), 404, kind)
        neutron_error(me.delete(f"/v2.0/{collection}/{rid}"), 404, kind)
    neutron_error(me.get("/v2.0/bananas"), 404)
    r = me.post(f"/v2.0/{collection}/{missing}", json={})
    assert r.status_code == 405


# --- documents --------------------------------------------------------------------------------
def test_versions_and_resources(core_api: Api) -> None:
    r = core_api.client.get("/")
    assert r.status_code == 200
    assert r.json() == {"versions": [{"id": "v2.0", "status": "CURRENT",
                                      "links": [{"href": "http://testserver/v2.0/", "rel": "self"}]}]}
    for path in ("/v2.0", "/v2.0/"):
        r = core_api.admin().get(path)
        assert r.status_code == 200
        resources = {res["collection"]: res for res in r.json()["resources"]}
        assert {"networks", "subnets", "ports"} <= set(resources)
        assert resources["networks"]["name"] == "network"
        assert resources["networks"]["links"] == [{"href": "http://testserver/v2.0/networks", "rel": "self"}]


def test_extensions(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    exts = me.get("/v2.0/extensions").json()["extensions"]
    aliases = {e["alias"] for e in exts}
    assert {"quotas", "quota_details", "network-ip-availability", "pagination", "sorting", "filter-validation",
            "standard-attr-tag", "standard-attr-revisions", "standard-attr-timestamp", "revision-if-match",
            "provider", "multi-provider", "external-net", "net-mtu", "net-mtu-writable", "allowed-address-pairs",
            "extra_dhcp_opt", "port-security", "project-id", "empty-string-filtering",
            "ip-substring-filtering"} <= aliases
    for ext in exts:
        assert set(ext) == {"alias", "name", "description", "updated", "links"}
    one = me.get("/v2.0/extensions/pagination")
    assert one.status_code == 200 and one.json()["extension"]["alias"] == "pagination"
    err = neutron_error(me.get("/v2.0/extensions/warp-drive"), 404)
    assert "warp-drive" in err["message"]
