"""What differs between SQLite, PostgreSQL and MariaDB and must not show
through the API: string comparison (case, trailing spaces, accents) in
filters, sorts and unique constraints; NULL's place in a sort; timestamps'
sub-second precision; values too long for a column. Each test runs on all
three (``core_api``); the expected answers are the same for each."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from sqlalchemy import exc, insert, select

from kaon.core.context import Context
from kaon.core.l2 import port_json
from kaon.db.core_tables import networks
from kaon.db.engine import read_txn
from tests.api import core_support
from tests.api.core_support import Api, neutron_error

core_api = core_support.core_api
project = core_support.project

SPELLINGS = ["Web", "web", "web ", "wéb", "WEB"]


def test_filters_and_sorts_compare_strings_exactly(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    for name in SPELLINGS:
        me.network(name=name)
    for name in SPELLINGS:
        assert [n["name"] for n in me.list("networks", {"project_id": project, "name": name})] == [name]
    # Binary order: upper case before lower case, a trailing space after the end, é after every ASCII letter.
    listed = me.list("networks", [("project_id", project), ("sort_key", "name"), ("sort_dir", "asc")])
    assert [n["name"] for n in listed] == ["WEB", "Web", "web", "web ", "wéb"]


def test_tags_differing_only_in_case_or_spaces_are_distinct(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    r = me.put(f"/v2.0/networks/{net['id']}/tags", json={"tags": ["A", "a", "a "]})
    assert r.status_code == 200, r.text
    assert sorted(me.show("networks", net["id"])["tags"]) == ["A", "a", "a "]
    tagged = me.list("networks", {"project_id": project, "tags": "a"})
    assert [n["id"] for n in tagged] == [net["id"]]


def test_security_group_names_differing_in_case_are_different_groups(core_api: Api, project: str) -> None:
    """Neutron allows duplicate names anyway; the default group is found by
    its exact name."""
    me = core_api.member(project)
    me.post("/v2.0/security-groups", json={"security_group": {"name": "Default"}})
    r = me.get("/v2.0/security-groups", {"project_id": project, "name": "default"})
    groups = r.json()["security_groups"]
    assert len(groups) == 1 and groups[0]["description"] == "Default security group"


def test_nulls_sort_first_ascending_and_pages_agree(core_api: Api, project: str) -> None:
    """A subnet without a gateway has gateway_ip null: the smallest value on
    every database, so pages follow one order."""
    me = core_api.member(project)
    net = me.network()
    made = [me.subnet(net["id"], cidr=f"10.9.{i}.0/24", gateway_ip=None if i % 2 else f"10.9.{i}.1")
            for i in range(4)]
    base = [("network_id", net["id"]), ("sort_key", "gateway_ip"), ("sort_dir", "asc")]
    listed = me.list("subnets", base)
    assert [s["gateway_ip"] for s in listed] == [None, None, "10.9.0.1", "10.9.2.1"]
    nulls = sorted(s["id"] for s in made if s["gateway_ip"] is None)
    assert [s["id"] for s in listed[:2]] == nulls
    first = me.list("subnets", [*base, ("limit", "1")])
    rest = me.list("subnets", [*base, ("limit", "3"), ("marker", first[0]["id"])])
    assert [s["id"] for s in first + rest] == [s["id"] for s in listed]
    desc = me.list("subnets", [("network_id", net["id"]), ("sort_key", "gateway_ip"), ("sort_dir", "desc")])
    assert [s["gateway_ip"] for s in desc] == ["10.9.2.1", "10.9.0.1", None, None]


def test_timestamps_keep_microseconds(core_api: Api, project: str) -> None:
    """Shown to the second, stored finer (MySQL's plain DATETIME would drop
    them): ``changed_since`` and the store agree with what was written."""
    me = core_api.member(project)
    net = me.network()
    rows = core_api.rows("networks", id=net["id"])
    stamp = rows[0].created_at
    assert isinstance(stamp, dt.datetime)
    with core_api.engine.connect() as conn:
        micro = conn.execute(select(networks.c.created_at).where(networks.c.id == net["id"])).scalar_one()
    # Ten networks made in a row: their stored stamps are distinct and ordered.
    more = [me.network(name=f"t{i}") for i in range(10)]
    stamps = [core_api.rows("networks", id=n["id"])[0].created_at for n in more]
    assert stamps == sorted(stamps) and len(set(stamps)) == 10
    assert any(s.microsecond for s in [micro, *stamps])
    since = more[5]["created_at"]
    changed = me.list("networks", {"project_id": project, "changed_since": since})
    assert {n["id"] for n in more[5:]} <= {n["id"] for n in changed}


def test_a_value_too_long_for_its_column_is_an_error_never_cut(core_api: Api, project: str) -> None:
    """The validators refuse it first (400, nothing written); below them, the
    database itself refuses rather than truncates (MySQL does truncate unless
    its sql_mode is strict: kaon sets TRADITIONAL). SQLite has no lengths."""
    me = core_api.member(project)
    r = me.post("/v2.0/networks", json={"network": {"name": "x" * 256}})
    neutron_error(r, 400, "InvalidInput")
    assert core_api.count("networks", project_id=project) == 0
    if core_api.engine.dialect.name == "sqlite":
        return
    now = dt.datetime(2026, 1, 1)
    with pytest.raises(exc.DataError), core_api.engine.begin() as conn:
        conn.execute(insert(networks).values(id="too-long", project_id=project, name="x" * 256, description="",
                                             created_at=now, updated_at=now, revision_number=0))
    assert core_api.count("networks", project_id=project) == 0


def test_a_mariadb_server_behind_a_mysql_url_is_known_as_mariadb(core_api: Api, project: str) -> None:
    """The install guide's ``mysql+pymysql://`` URL: kaon tells MariaDB from
    MySQL after connecting, and port JSON comes from the database there too."""
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    port = me.port(net["id"])
    engine = core_api.engine
    if engine.url.get_backend_name() != "mysql":
        return
    assert engine.dialect.name == "mariadb"
    assert port_json.supported(engine.dialect.name)
    with engine.connect() as conn:
        text = conn.execute(port_json.show_statement(engine.dialect.name, port_json.keys_for((), ()), True),
                            {"port_id": port["id"]}).scalar_one()
    assert orjson.loads(text) == core_api.admin(project).show("ports", port["id"])


def test_addresses_are_listed_in_allocation_order_not_by_subnet_id(core_api: Api, project: str) -> None:
    """A port's fixed_ips come in the order they were allocated (the subnets'
    order), on every database and on both render paths. On InnoDB an index
    would otherwise list them by subnet id: the two subnets below are made
    (again) until the IPv6 one's id sorts before the IPv4 one's. Both, not just
    the second: an IPv4 id near 0 would take thousands of IPv6 attempts."""
    admin = core_api.admin(project)
    net = admin.network()
    for _ in range(64):  # half the pairs qualify: 2**-64 that none does
        v4 = admin.subnet(net["id"], "10.42.0.0/24")
        v6 = admin.subnet(net["id"], "2001:db8:42::/64", ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
        if v6["id"] < v4["id"]:
            break
        admin.remove("subnets", v6["id"])
        admin.remove("subnets", v4["id"])
    assert v6["id"] < v4["id"]
    port = admin.port(net["id"])
    want = [v4["id"], v6["id"]]
    assert [ip["subnet_id"] for ip in port["fixed_ips"]] == want
    assert [ip["subnet_id"] for ip in admin.show("ports", port["id"])["fixed_ips"]] == want
    listed = admin.list("ports", {"network_id": net["id"]})
    assert [ip["subnet_id"] for ip in listed[0]["fixed_ips"]] == want
    services = core_api.app.app.state.services
    with read_txn(core_api.engine) as conn:  # the dict path, which services use
        item = services.ports.get(Context.admin(project), conn, port["id"])
    assert [ip["subnet_id"] for ip in item["fixed_ips"]] == want
