"""Port lists written by the database (kaon.core.l2.port_json) are the ports the
dict path (kaon.core.l2.ports.Ports.list, also behind show) renders: same keys,
values and types, for admins and members, with and without ``fields``, with
filters, sorting and pages, on SQLite and PostgreSQL. Both are generated from
one attribute table (kaon.core.l2.port_render): every model attribute is in it,
every dialect writes each, and every path gives each with the same value."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import update

from kaon.api.listing import parse
from kaon.core.access import policy
from kaon.core.context import Context
from kaon.core.l2 import port_json, port_render
from kaon.db.core_tables import ports as ports_table
from kaon.db.engine import read_txn
from kaon.model.port import PORT
from tests.api import core_support
from tests.api.core_support import Api

core_api = core_support.core_api
project = core_support.project


@pytest.fixture
def varied(core_api: Api, project: str) -> dict[str, Any]:
    """Ports with every kind of value: two addresses (v4 + v6), tags, two
    groups, address pairs, DHCP options, a binding profile, failure reasons
    (binding's own, and one set directly), port security off, admin state
    down, an empty name."""
    admin = core_api.admin(project)
    net = admin.network(name="pj")
    v4 = admin.subnet(net["id"], "10.41.0.0/24")
    v6 = admin.subnet(net["id"], "2001:db8:41::/64", ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    g1, g2 = (admin.post("/v2.0/security-groups", json={"security_group": {"name": n}}).json()["security_group"]
              for n in ("g1", "g2"))
    full = admin.port(net["id"], name="full", device_id="vm-1", device_owner="compute:nova",
                      security_groups=[g2["id"], g1["id"]],
                      allowed_address_pairs=[{"ip_address": "10.41.0.200"}],
                      extra_dhcp_opts=[{"opt_name": "mtu", "opt_value": "1400"}],
                      **{"binding:profile": {"local_link_information": [{"port_id": "x"}]},
                         "binding:host_id": "nowhere"})
    for tag in ("zeta", "alpha"):
        assert admin.put(f"/v2.0/ports/{full['id']}/tags/{tag}").status_code == 201
    bare = admin.port(net["id"], name="", port_security_enabled=False, admin_state_up=False,
                      security_groups=[], fixed_ips=[{"subnet_id": v4["id"]}])
    with core_api.engine.begin() as conn:  # a failure reason, as binding leaves one
        conn.execute(update(ports_table).where(ports_table.c.id == bare["id"])
                     .values(binding_failure="host nowhere has no live agent"))
    return {"net": net, "ports": [full["id"], bare["id"]], "v4": v4, "v6": v6}


def dict_path(api: Api, ctx: Context, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    services = api.app.app.state.services
    q = parse(PORT, params, {"fixed_ips", "ip_address", "subnet_id"}, True)
    with read_txn(api.engine) as conn:
        items, _ = services.ports.list(ctx, conn, q)
    hidden = policy.current().hidden(ctx, PORT)
    keys = port_json.keys_for(hidden, q.fields)
    return [{k: i[k] for k in keys} for i in items]


@pytest.mark.parametrize("roles", ["admin", "member"])
@pytest.mark.parametrize("params", [
    [],
    [("fields", "id"), ("fields", "fixed_ips"), ("fields", "tags"), ("fields", "id"), ("fields", "nonsense")],
    [("fields", "binding:profile"), ("fields", "binding:failure_reason"), ("fields", "admin_state_up")],
    [("sort_key", "name"), ("sort_dir", "desc")],
    [("limit", "1")],
    [("tags", "alpha")],
    [("fixed_ips", "ip_address=10.41.0.3")],
])
def test_database_json_equals_the_dict_path(core_api: Api, project: str, varied: dict[str, Any],
                                            roles: str, params: list[tuple[str, str]]) -> None:
    caller = core_api.admin(project) if roles == "admin" else core_api.member(project)
    params = [("network_id", varied["net"]["id"]), *params]
    r = caller.get("/v2.0/ports", params=params)
    assert r.status_code == 200, r.text
    got = r.json()["ports"]
    ctx = Context(user_id="u", project_id=project,
                  roles=frozenset({"admin", "member", "reader"} if roles == "admin" else {"member", "reader"}))
    want = dict_path(core_api, ctx, params)
    assert got == want
    assert [list(g) for g in got] == [list(w) for w in want]  # the same keys, in the same order
    if not any(k == "fields" for k, _ in params):
        assert len(got) >= 1
        assert got[0]["ip_allocation"] == "immediate"
        hidden = {"binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details",
                  "binding:vnic_type", "binding:failure_reason"}
        assert (hidden <= set(got[0])) == (roles == "admin")


def test_database_json_values(core_api: Api, project: str, varied: dict[str, Any]) -> None:
    """The values themselves (not only agreement with the dict path)."""
    admin = core_api.admin(project)
    by_id = {p["id"]: p for p in admin.list("ports", [("network_id", varied["net"]["id"])])}
    full, bare = (by_id[i] for i in varied["ports"])
    assert full == admin.show("ports", full["id"])
    assert bare == admin.show("ports", bare["id"])
    assert full["tags"] == ["alpha", "zeta"]
    assert full["security_groups"] == sorted(full["security_groups"]) and len(full["security_groups"]) == 2
    assert [ip["subnet_id"] for ip in full["fixed_ips"]] == [varied["v4"]["id"], varied["v6"]["id"]]
    assert full["binding:profile"] == {"local_link_information": [{"port_id": "x"}]}
    assert full["extra_dhcp_opts"][0]["opt_value"] == "1400"
    assert full["created_at"].endswith("Z") and "T" in full["created_at"] and len(full["created_at"]) == 20
    assert full["binding:vif_type"] == "binding_failed" and "no live" in full["binding:failure_reason"]
    assert bare["binding:failure_reason"] == "host nowhere has no live agent"
    assert bare["admin_state_up"] is False and bare["port_security_enabled"] is False
    assert full["admin_state_up"] is True and bare["name"] == "" and bare["tags"] == []


@pytest.mark.parametrize("roles", ["admin", "member"])
@pytest.mark.parametrize("fields", [[], ["fixed_ips", "id", "fixed_ips", "binding:profile", "nonsense"]])
def test_database_json_show_equals_the_dict_path(core_api: Api, project: str, varied: dict[str, Any],
                                                 roles: str, fields: list[str]) -> None:
    caller = core_api.admin(project) if roles == "admin" else core_api.member(project)
    ctx = Context(user_id="u", project_id=project,
                  roles=frozenset({"admin", "member", "reader"} if roles == "admin" else {"member", "reader"}))
    services = core_api.app.app.state.services
    keys = port_json.keys_for(policy.current().hidden(ctx, PORT), fields)
    for port_id in varied["ports"]:
        r = caller.get(f"/v2.0/ports/{port_id}", params=[("fields", f) for f in fields])
        assert r.status_code == 200, r.text
        with read_txn(core_api.engine) as conn:
            item = services.ports.get(ctx, conn, port_id)
        want = {k: item[k] for k in keys}
        assert r.json()["port"] == want
        assert list(r.json()["port"]) == list(want)


def test_database_json_show_is_not_found_for_others(core_api: Api, project: str, varied: dict[str, Any]) -> None:
    other = core_api.member(f"{project}-other")
    r = other.get(f"/v2.0/ports/{varied['ports'][0]}")
    assert r.status_code == 404 and r.json()["NeutronError"]["type"] == "PortNotFound"


@pytest.mark.parametrize("roles", ["admin", "member"])
def test_bulk_create_and_update_answers_are_what_show_shows(core_api: Api, project: str, varied: dict[str, Any],
                                                            roles: str) -> None:
    """Create (one and bulk) and update answer with the database's JSON of what they wrote."""
    caller = core_api.admin(project) if roles == "admin" else core_api.member(project)
    net = varied["net"]["id"]
    r = caller.post("/v2.0/ports", json={"ports": [{"network_id": net, "name": f"b{i}"} for i in range(3)]})
    assert r.status_code == 201, r.text
    made = r.json()["ports"]
    assert [p["name"] for p in made] == ["b0", "b1", "b2"]
    for port in made:
        assert port == caller.show("ports", port["id"])
    one = caller.port(net, name="one")
    assert one == caller.show("ports", one["id"])
    changed = caller.update("ports", one["id"], name="renamed")
    assert changed == caller.show("ports", one["id"])
    assert changed["name"] == "renamed" and changed["revision_number"] == one["revision_number"] + 1
    assert ("binding:vif_type" in changed) == (roles == "admin")


# --- one table, every path -------------------------------------------------------------------


def test_the_attribute_table_is_the_models() -> None:
    """Every attribute of the port model is rendered, and nothing else: an
    attribute added to kaon.model.port and not to kaon.core.l2.port_render fails here."""
    assert {a.name for a in PORT.attrs} == set(port_render.BY_KEY)


@pytest.mark.parametrize("dialect", sorted(port_json.DIALECTS))
def test_every_dialect_writes_every_attribute(dialect: str) -> None:
    """Each database's JSON has an expression for every attribute (a new kind
    without a template for one dialect fails here, before any database)."""
    text = str(port_json.column(dialect, tuple(port_render.BY_KEY)))
    for key in port_render.BY_KEY:
        assert f"'{key}', {port_json.expression(dialect, key)}" in text


def test_every_path_renders_every_attribute_alike(core_api: Api, project: str, varied: dict[str, Any]) -> None:
    """The Python list, the Python show, and the database's list, show and
    bulk read-back give every attribute of the model, with equal values."""
    services = core_api.app.app.state.services
    ctx = Context.admin(project)
    every = tuple(a.name for a in PORT.attrs)
    keys = port_json.keys_for((), ())
    assert set(keys) == set(every)
    q = parse(PORT, [("network_id", varied["net"]["id"])], {"fixed_ips", "ip_address", "subnet_id"}, True)
    with read_txn(core_api.engine) as conn:
        in_db = port_json.supported(conn.dialect.name)  # else the API takes the Python path: nothing to compare
        listed = {p["id"]: p for p in services.ports.list(ctx, conn, q)[0]}
        if in_db:
            texts, ids, _ = services.ports.list_json(ctx, conn, q, keys)
            db_listed = {i: orjson.loads(t) for i, t in zip(ids, texts, strict=True)}
            db_many = [orjson.loads(t) for t in services.ports.many_json(conn, varied["ports"], keys)]
        else:
            assert services.ports.list_json(ctx, conn, q, keys) is None
        for n, port_id in enumerate(varied["ports"]):
            paths = {"python list": listed[port_id], "python show": services.ports.get(ctx, conn, port_id)}
            if in_db:
                paths.update({
                    "database list": db_listed[port_id],
                    "database show": orjson.loads(services.ports.show_json(ctx, conn, port_id, keys)),
                    "database bulk read-back": db_many[n],
                })
            for path, item in paths.items():
                assert set(item) == set(every), (path, set(every) ^ set(item))
            for key in every:
                values = {path: item[key] for path, item in paths.items()}
                assert len({orjson.dumps(v) for v in values.values()}) == 1, (key, values)
