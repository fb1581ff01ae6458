"""/v2.0/security-groups, /v2.0/security-group-rules and
/v2.0/default-security-group-rules: the default group made on first use
(exactly once), the template, rule validation and duplicates, quotas, two
projects' isolation, sharing through RBAC, and what ports get."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from kaon.core.security import default_sg
from kaon.db.engine import write_txn
from kaon.db.sg_tables import default_security_groups, security_groups
from tests.api import core_support
from tests.api.core_support import Api, Caller, neutron_error

core_api, make_api = core_support.core_api, core_support.make_api
project, other_project = core_support.project, core_support.other_project

SGS = "/v2.0/security-groups"
RULES = "/v2.0/security-group-rules"
TEMPLATE = "/v2.0/default-security-group-rules"


# -- helpers ------------------------------------------------------------------
def make_sg(who: Caller, **attrs: Any) -> dict[str, Any]:
    r = who.post(SGS, json={"security_group": attrs})
    assert r.status_code == 201, r.text
    return r.json()["security_group"]


def show_sg(who: Caller, sg_id: str) -> dict[str, Any]:
    r = who.get(f"{SGS}/{sg_id}")
    assert r.status_code == 200, r.text
    return r.json()["security_group"]


def list_sgs(who: Caller, **params: Any) -> list[dict[str, Any]]:
    r = who.get(SGS, params=params)
    assert r.status_code == 200, r.text
    return r.json()["security_groups"]


def list_rules(who: Caller, **params: Any) -> list[dict[str, Any]]:
    r = who.get(RULES, params=params)
    assert r.status_code == 200, r.text
    return r.json()["security_group_rules"]


def list_template(who: Caller, **params: Any) -> list[dict[str, Any]]:
    r = who.get(TEMPLATE, params=params)
    assert r.status_code == 200, r.text
    return r.json()["default_security_group_rules"]


def post_rule(who: Caller, sg_id: str, **attrs: Any) -> Any:
    attrs.setdefault("direction", "ingress")
    return who.post(RULES, json={"security_group_rule": {"security_group_id": sg_id, **attrs}})


def make_rule(who: Caller, sg_id: str, **attrs: Any) -> dict[str, Any]:
    r = post_rule(who, sg_id, **attrs)
    assert r.status_code == 201, r.text
    return r.json()["security_group_rule"]


def default_of(who: Caller) -> dict[str, Any]:
    groups = [g for g in list_sgs(who, name="default") if g["project_id"] == who.project]
    assert len(groups) == 1, groups
    return groups[0]


def shape(rule: dict[str, Any]) -> tuple[Any, ...]:
    return (rule["direction"], rule["ethertype"], rule["protocol"], rule["remote_group_id"],
            rule["remote_ip_prefix"], rule["port_range_min"], rule["port_range_max"])


def count_defaults(api: Api, project: str) -> tuple[int, int]:
    with api.engine.connect() as conn:
        marks = conn.execute(select(func.count()).select_from(default_security_groups)
                             .where(default_security_groups.c.project_id == project)).scalar_one()
        named = conn.execute(select(func.count()).select_from(security_groups).where(
            security_groups.c.project_id == project, security_groups.c.name == "default")).scalar_one()
    return int(marks), int(named)


# -- the default group -----------------------------------------------------------
def test_first_list_makes_the_default_group_with_neutrons_rules(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    assert count_defaults(core_api, project) == (0, 0)
    groups = list_sgs(me)
    assert [g["name"] for g in groups] == ["default"]
    sg = groups[0]
    assert sg["description"] == "Default security group"
    assert sg["project_id"] == sg["tenant_id"] == project
    assert sg["stateful"] is True and sg["shared"] is False and sg["tags"] == []
    assert sg["created_at"].endswith("Z") and isinstance(sg["revision_number"], int)
    assert sorted(shape(r) for r in sg["security_group_rules"]) == sorted([
        ("egress", "IPv4", None, None, None, None, None),
        ("egress", "IPv6", None, None, None, None, None),
        ("ingress", "IPv4", None, sg["id"], None, None, None),
        ("ingress", "IPv6", None, sg["id"], None, None, None),
    ])
    for rule in sg["security_group_rules"]:
        assert rule["belongs_to_default_sg"] is True and rule["project_id"] == project
        assert rule["normalized_cidr"] is None and rule["remote_address_group_id"] is None
    # Listing again, showing, listing rules: still the one group.
    assert list_sgs(me) == groups
    assert show_sg(me, sg["id"]) == sg
    assert len(list_rules(me)) == 4
    assert count_defaults(core_api, project) == (1, 1)


def test_first_port_makes_the_default_group_and_uses_it(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    port = me.port(net["id"])
    assert count_defaults(core_api, project) == (1, 1)
    assert port["security_groups"] == [default_of(me)["id"]]
    assert count_defaults(core_api, project) == (1, 1)


def test_first_rule_list_and_first_create_make_it_too(core_api: Api, project: str, other_project: str) -> None:
    assert list_rules(core_api.member(project)) != []
    assert count_defaults(core_api, project) == (1, 1)
    make_sg(core_api.member(other_project), name="web")
    assert count_defaults(core_api, other_project) == (1, 1)
    assert sorted(g["name"] for g in list_sgs(core_api.member(other_project))) == ["default", "web"]


def test_admin_listing_a_project_makes_its_default(core_api: Api, project: str) -> None:
    groups = list_sgs(core_api.admin(), tenant_id=project, name="default")
    assert len(groups) == 1 and groups[0]["project_id"] == project
    assert count_defaults(core_api, project) == (1, 1)


def test_a_member_listing_another_project_makes_nothing(core_api: Api, project: str, other_project: str) -> None:
    assert list_sgs(core_api.member(project), project_id=other_project) == []
    assert count_defaults(core_api, other_project) == (0, 0)


def test_default_group_is_made_exactly_once_under_concurrency(make_api: Any, project: str) -> None:
    api = make_api()
    engine = api.engine
    barrier = threading.Barrier(8)
    made: list[str] = []
    failures: list[BaseException] = []

    def ensure() -> None:
        try:
            barrier.wait()
            with write_txn(engine) as conn:
                made.append(default_sg.ensure(conn, project))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=ensure) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(set(made)) == 1
    assert count_defaults(api, project) == (1, 1)


def test_concurrent_first_requests_make_one_default(make_api: Any, project: str) -> None:
    api = make_api()
    me = api.member(project)
    net = me.network()
    barrier = threading.Barrier(6)
    codes: list[int] = []

    def first_use(i: int) -> None:
        barrier.wait()
        r = (me.get(SGS) if i % 2 else me.post("/v2.0/ports", json={"port": {"network_id": net["id"]}}))
        codes.append(r.status_code)

    threads = [threading.Thread(target=first_use, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200, 200, 200, 201, 201, 201]
    assert count_defaults(api, project) == (1, 1)
    default = default_of(me)
    assert {tuple(p["security_groups"]) for p in me.list("ports")} == {(default["id"],)}


def test_default_name_is_reserved(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    for name in ("default", "Default", "DEFAULT"):
        neutron_error(me.post(SGS, json={"security_group": {"name": name}}), 409,
                      "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
    sg = make_sg(me, name="web")
    neutron_error(me.put(f"{SGS}/{sg['id']}", json={"security_group": {"name": "default"}}), 409,
                  "SecurityGroupDefaultAlreadyExists")
    assert count_defaults(core_api, project) == (1, 1)


def test_default_group_cannot_be_renamed_or_removed_by_its_project(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    default = default_of(me)
    neutron_error(me.put(f"{SGS}/{default['id']}", json={"security_group": {"name": "mine"}}), 409,
                  "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
    upd = me.put(f"{SGS}/{default['id']}", json={"security_group": {"description": "ours"}})
    assert upd.status_code == 200 and upd.json()["security_group"]["description"] == "ours"
    neutron_error(me.delete(f"{SGS}/{default['id']}"), 409, "SecurityGroupCannotRemoveDefault",
                  "Insufficient rights for removing default security group.")
    # An admin may remove it; the project's next use makes a new one.
    assert core_api.admin().delete(f"{SGS}/{default['id']}").status_code == 204
    assert count_defaults(core_api, project) == (0, 0)
    again = default_of(me)
    assert again["id"] != default["id"]
    assert count_defaults(core_api, project) == (1, 1)


# -- the seed's sequence -------------------------------------------------------------
def test_seed_test_sg_with_three_tcp_rules(core_api: Api, project: str) -> None:
    """``openstack security group create test_sg --description ...`` then
    ``security group rule create --proto tcp --dst-port N --remote-ip 0.0.0.0/0 test_sg``
    for 22, 80 and 8888, as the CLI sends them."""
    me = core_api.member(project)
    sg = make_sg(me, name="test_sg", description="Test security group allowing port 8888")
    assert sg["name"] == "test_sg" and sg["description"] == "Test security group allowing port 8888"
    assert sorted(shape(r) for r in sg["security_group_rules"]) == [
        ("egress", "IPv4", None, None, None, None, None), ("egress", "IPv6", None, None, None, None, None)]
    assert all(r["belongs_to_default_sg"] is False for r in sg["security_group_rules"])
    # The CLI finds the group by name: a show by name is a 404, a filtered list finds it.
    neutron_error(me.get(f"{SGS}/test_sg"), 404, "SecurityGroupNotFound", "Security group test_sg does not exist")
    assert [g["id"] for g in list_sgs(me, name="test_sg")] == [sg["id"]]
    created = []
    for port in (22, 80, 8888):
        rule = make_rule(me, sg["id"], ethertype="IPv4", protocol="tcp", port_range_min=port,
                         port_range_max=port, remote_ip_prefix="0.0.0.0/0")
        assert shape(rule) == ("ingress", "IPv4", "tcp", None, "0.0.0.0/0", port, port)
        assert rule["normalized_cidr"] == "0.0.0.0/0" and rule["belongs_to_default_sg"] is False
        assert rule["security_group_id"] == sg["id"] and rule["project_id"] == project
        assert rule["description"] == "" and rule["revision_number"] == 0
        created.append(rule)
    shown = show_sg(me, sg["id"])
    assert len(shown["security_group_rules"]) == 5
    assert {r["id"] for r in created} <= {r["id"] for r in shown["security_group_rules"]}
    assert shown["revision_number"] == sg["revision_number"] + 3  # each rule bumps its group
    assert {r["port_range_min"] for r in list_rules(me, security_group_id=sg["id"], direction="ingress")} == {22, 80, 8888}
    # The group is usable on a port of the project's network.
    net = me.network()
    assert me.port(net["id"], security_groups=[sg["id"]])["security_groups"] == [sg["id"]]


def test_new_groups_get_only_the_egress_rules(core_api: Api, project: str) -> None:
    sg = make_sg(core_api.member(project), name="x", stateful=False)
    assert sg["stateful"] is False
    assert {(r["direction"], r["remote_group_id"]) for r in sg["security_group_rules"]} == {("egress", None)}


def test_update_and_delete(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    sg = make_sg(me, name="a", description="d")
    upd = me.put(f"{SGS}/{sg['id']}", json={"security_group": {"name": "b", "description": "e", "stateful": False}})
    assert upd.status_code == 200, upd.text
    body = upd.json()["security_group"]
    assert (body["name"], body["description"], body["stateful"]) == ("b", "e", False)
    assert body["revision_number"] == sg["revision_number"] + 1
    neutron_error(me.put(f"{SGS}/{sg['id']}", json={"security_group": {"shared": True}}), 400)
    neutron_error(me.put(f"{SGS}/{sg['id']}", json={"security_group": {"security_group_rules": []}}), 400)
    assert me.delete(f"{SGS}/{sg['id']}").status_code == 204
    neutron_error(me.get(f"{SGS}/{sg['id']}"), 404, "SecurityGroupNotFound")
    neutron_error(me.delete(f"{SGS}/{sg['id']}"), 404, "SecurityGroupNotFound")


def test_group_in_use_and_cascades(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    web, db = make_sg(me, name="web"), make_sg(me, name="db")
    from_web = make_rule(me, db["id"], protocol="tcp", port_range_min=5432, port_range_max=5432,
                         remote_group_id=web["id"])
    net = me.network()
    port = me.port(net["id"], security_groups=[web["id"]])
    neutron_error(me.delete(f"{SGS}/{web['id']}"), 409, "SecurityGroupInUse", f"Security Group {web['id']} in use.")
    # Changing statefulness of a group in use is refused too.
    neutron_error(me.put(f"{SGS}/{web['id']}", json={"security_group": {"stateful": False}}), 409,
                  "SecurityGroupInUse")
    me.remove("ports", port["id"])
    assert me.delete(f"{SGS}/{web['id']}").status_code == 204
    # Its own rules and rules elsewhere naming it as remote group are gone.
    neutron_error(me.get(f"{RULES}/{from_web['id']}"), 404, "SecurityGroupRuleNotFound")
    assert all(r["security_group_id"] != web["id"] for r in list_rules(me))


def test_bulk_create_groups(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    r = me.post(SGS, json={"security_groups": [{"name": "one"}, {"name": "two"}]})
    assert r.status_code == 201, r.text
    assert sorted(g["name"] for g in r.json()["security_groups"]) == ["one", "two"]


def test_tags_and_filters(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    sg = make_sg(me, name="tagged")
    assert me.put(f"{SGS}/{sg['id']}/tags/red").status_code == 201
    assert show_sg(me, sg["id"])["tags"] == ["red"]
    assert [g["id"] for g in list_sgs(me, tags="red")] == [sg["id"]]
    assert {g["name"] for g in list_sgs(me, shared=False)} >= {"default", "tagged"}
    assert list_sgs(me, shared=True) == []
    assert [g["name"] for g in list_sgs(me, stateful=True, name="tagged")] == ["tagged"]
    neutron_error(me.get(SGS, params={"bogus": "1"}), 400, contains="invalid attribute for filtering")
    names = [g["name"] for g in list_sgs(me, sort_key="name", sort_dir="desc")]
    assert names == sorted(names, reverse=True)
    page = me.get(SGS, params={"limit": 1})
    assert len(page.json()["security_groups"]) == 1 and page.json()["security_groups_links"][0]["rel"] == "next"
    default_rules = list_rules(me, belongs_to_default_sg="true")
    assert {r["security_group_id"] for r in default_rules} == {default_of(me)["id"]}
    assert all(r["belongs_to_default_sg"] is False
               for r in list_rules(me, belongs_to_default_sg="false"))


# -- rules -----------------------------------------------------------------------------
@pytest.mark.parametrize("attrs, status, type_, fragment", [
    ({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}, 400, "SecurityGroupInvalidPortRange",
     "port_range_min must be <= port_range_max"),
    ({"protocol": "udp", "port_range_min": 80}, 400, "SecurityGroupInvalidPortRange", None),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 10}, 400, "SecurityGroupInvalidPortValue",
     "Invalid value for port 0"),
    ({"protocol": "tcp", "port_range_min": 1, "port_range_max": 65536}, 400, "SecurityGroupInvalidPortValue",
     "Invalid value for port 65536"),
    ({"protocol": "tcp", "port_range_min": "x"}, 400, "SecurityGroupInvalidPortValue", None),
    ({"protocol": "icmp", "port_range_min": 256}, 400, "SecurityGroupInvalidIcmpValue",
     "Invalid value for ICMP type (port_range_min) 256. It must be 0 to 255."),
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": 300}, 400, "SecurityGroupInvalidIcmpValue",
     "code (port_range_max) 300"),
    ({"protocol": "icmp", "port_range_max": 0}, 400, "SecurityGroupMissingIcmpType", None),
    ({"port_range_min": 22, "port_range_max": 22}, 400, "SecurityGroupProtocolRequiredWithPorts", None),
    ({"protocol": "vrrp", "port_range_min": 1, "port_range_max": 1}, 400, "SecurityGroupInvalidProtocolForPort",
     "Ports cannot be specified for protocol 112"),
    ({"protocol": "foo"}, 400, "SecurityGroupRuleInvalidProtocol", "Security group rule protocol foo not supported"),
    ({"protocol": 256}, 400, "SecurityGroupRuleInvalidProtocol", None),
    ({"protocol": -1}, 400, "SecurityGroupRuleInvalidProtocol", None),
    ({"ethertype": "IPv5"}, 400, "SecurityGroupRuleInvalidEtherType", "ethertype 'IPv5' not supported"),
    ({"direction": "sideways"}, 400, "InvalidInput", "Invalid input for direction"),
    ({"remote_ip_prefix": "::/0"}, 400, "SecurityGroupRuleParameterConflict",
     "Conflicting value ethertype IPv4 for CIDR ::/0"),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}, 400, "SecurityGroupRuleParameterConflict", None),
    ({"remote_ip_prefix": "10.0.0.300/8"}, 400, "InvalidCIDR", "Invalid CIDR 10.0.0.300/8 given as IP prefix."),
    ({"protocol": "ipv6-icmp"}, 400, "SecurityGroupEthertypeConflictWithProtocol",
     "Invalid ethertype IPv4 for protocol ipv6-icmp."),
    ({"protocol": "58"}, 400, "SecurityGroupEthertypeConflictWithProtocol", None),
    ({"remote_address_group_id": "4f0b3a4e-0000-4000-8000-000000000001"}, 404, "AddressGroupNotFound", None),
    ({"remote_group_id": "4f0b3a4e-0000-4000-8000-000000000002"}, 404, "SecurityGroupNotFound", None),
    ({"bogus": 1}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'bogus'"),
    ({"normalized_cidr": "10.0.0.0/8"}, 400, "HTTPBadRequest", "not allowed in POST"),
])
def test_invalid_rules(core_api: Api, project: str, attrs: dict, status: int, type_: str,
                       fragment: str | None) -> None:
    me = core_api.member(project)
    sg = make_sg(me, name="v")
    before = len(show_sg(me, sg["id"])["security_group_rules"])
    neutron_error(post_rule(me, sg["id"], **attrs), status, type_, fragment)
    assert len(show_sg(me, sg["id"])["security_group_rules"]) == before


def test_remote_prefix_and_remote_group_are_exclusive(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    sg = make_sg(me, name="x")
    neutron_error(post_rule(me, sg["id"], remote_ip_prefix="10.0.0.0/8", remote_group_id=sg["id"]), 400,
                  "SecurityGroupRemoteGroupAndRemoteIpPrefix", "Only remote_ip_prefix or remote_group_id")
    neutron_error(post_rule(me, sg["id"], remote_group_id=sg["id"],
                            remote_address_group_id="4f0b3a4e-0000-4000-8000-000000000001"), 400,
                  "SecurityGroupRemoteGroupAndRemoteAddressGroup")
    neutron_error(post_rule(me, sg["id"], remote_ip_prefix="10.0.0.0/8",
                            remote_address_group_id="4f0b3a4e-0000-4000-8000-000000000001"), 400,
                  "SecurityGroupRemoteAddressGroupAndRemoteIpPrefix")


def test_rule_needs_a_group(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    neutron_error(me.post(RULES, json={"security_group_rule": {"direction": "ingress"}}), 400,
                  contains="Required attribute 'security_group_id' not specified")
    neutron_error(post_rule(me, "4f0b3a4e-0000-4000-8000-000000000003"), 404, "SecurityGroupNotFound")
    neutron_error(post_rule(me, "nope"), 404, "SecurityGroupNotFound", "Security group nope does not exist")
    sg = make_sg(me, name="x")
    neutron_error(me.post(RULES, json={"security_group_rule": {"security_group_id": sg["id"]}}), 400,
                  contains="Required attribute 'direction' not specified")


@pytest.mark.parametrize("attrs, expect", [
    ({"protocol": "TCP", "port_range_min": 1, "port_range_max": 65535}, {"protocol": "tcp"}),
    ({"protocol": "6", "port_range_min": 443, "port_range_max": 443}, {"protocol": "6"}),
    ({"protocol": 17}, {"protocol": "17"}),
    ({"protocol": "any"}, {"protocol": None}),
    ({"protocol": None, "direction": "egress", "remote_ip_prefix": "192.168.0.0/16"}, {"protocol": None}),
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": 0}, {"port_range_min": 8, "port_range_max": 0}),
    ({"protocol": "icmp", "ethertype": "IPv6"}, {"protocol": "ipv6-icmp", "ethertype": "IPv6"}),
    ({"protocol": "icmpv6", "ethertype": "ipv6"}, {"protocol": "ipv6-icmp", "ethertype": "IPv6"}),
    ({"protocol": "1", "ethertype": "IPv6"}, {"protocol": "58"}),
    ({"protocol": "ipv6-frag", "ethertype": "IPv6"}, {"protocol": "ipv6-frag"}),
    ({"remote_ip_prefix": "10.0.0.5"}, {"remote_ip_prefix": "10.0.0.5/32", "normalized_cidr": "10.0.0.5/32"}),
    ({"remote_ip_prefix": "10.0.0.5/24"}, {"remote_ip_prefix": "10.0.0.5/24", "normalized_cidr": "10.0.0.0/24"}),
    ({"ethertype": "IPv6", "remote_ip_prefix": "2001:db8::1/48"},
     {"remote_ip_prefix": "2001:db8::1/48", "normalized_cidr": "2001:db8::/48"}),
    ({"protocol": "udp", "description": "dns"}, {"description": "dns", "ethertype": "IPv4"}),
])
def test_rule_forms(core_api: Api, project: str, attrs: dict, expect: dict) -> None:
    me = core_api.member(project)
    sg = make_sg(me, name="forms")
    rule = make_rule(me, sg["id"], **attrs)
    for key, value in expect.items():
        assert rule[key] == value, (key, rule)
    assert me.get(f"{RULES}/{rule['id']}").json()["security_group_rule"] == rule


@pytest.mark.parametrize("first, second", [
    ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
     {"protocol": "6", "port_range_min": 22, "port_range_max": 22}),
    ({"protocol": "tcp"}, {"protocol": "tcp", "remote_ip_prefix": "0.0.0.0/0"}),
    ({"ethertype": "IPv6", "protocol": "icmp"}, {"ethertype": "IPv6", "protocol": "ipv6-icmp"}),
    ({"remote_ip_prefix": "10.0.0.0/8"}, {"remote_ip_prefix": "10.0.0.0/8", "description": "other"}),
])
def test_duplicate_rules(core_api: Api, project: str, first: dict, second: dict) -> None:
    me = core_api.member(project)
    sg = make_sg(me, name="dup")
    rule = make_rule(me, sg["id"], **first)
    neutron_error(post_rule(me, sg["id"], **second), 409, "SecurityGroupRuleExists",
                  f"Security group rule already exists. Rule id is {rule['id']}.")


def test_template_rules_count_as_duplicates(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    sg = make_sg(me, name="eg")
    egress = next(r for r in sg["security_group_rules"] if r["ethertype"] == "IPv4")
    neutron_error(post_rule(me, sg["id"], direction="egress"), 409, "SecurityGroupRuleExists", egress["id"])
    # The same rule in another group is fine.
    make_rule(me, make_sg(me, name="other")["id"], protocol="tcp")
    make_rule(me, sg["id"], protocol="tcp")


def test_rules_change_only_their_description(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    sg = make_sg(me, name="imm")
    rule = make_rule(me, sg["id"], protocol="tcp")
    neutron_error(me.put(f"{RULES}/{rule['id']}", json={"security_group_rule": {"protocol": "udp"}}), 400,
                  contains="Cannot update read-only attribute protocol")
    r = me.put(f"{RULES}/{rule['id']}", json={"security_group_rule": {"description": "ssh"}})
    assert r.status_code == 200, r.text
    assert r.json()["security_group_rule"]["description"] == "ssh"
    assert r.json()["security_group_rule"]["revision_number"] == 1
    assert me.delete(f"{RULES}/{rule['id']}").status_code == 204
    neutron_error(me.delete(f"{RULES}/{rule['id']}"), 404, "SecurityGroupRuleNotFound")
    assert len(show_sg(me, sg["id"])["security_group_rules"]) == 2


def test_rule_on_another_projects_group_and_admins_rules(core_api: Api, project: str, other_project: str) -> None:
    me, them, admin = core_api.member(project), core_api.member(other_project), core_api.admin()
    mine = make_sg(me, name="mine")
    # Another project may neither see nor extend it.
    neutron_error(post_rule(them, mine["id"], protocol="tcp"), 404, "SecurityGroupNotFound")
    # An admin may add a rule to it, on the admin's project: the owner sees that rule.
    by_admin = make_rule(admin, mine["id"], protocol="udp")
    assert by_admin["project_id"] == admin.project
    assert by_admin["id"] in {r["id"] for r in list_rules(me)}
    assert by_admin["id"] in {r["id"] for r in show_sg(me, mine["id"])["security_group_rules"]}
    # The admin's own group's rules are not the member's business.
    admin_sg = make_sg(admin, name="admins")
    admin_rule = make_rule(admin, admin_sg["id"], protocol="tcp")
    assert admin_rule["id"] not in {r["id"] for r in list_rules(me)}
    neutron_error(me.get(f"{RULES}/{admin_rule['id']}"), 404, "SecurityGroupRuleNotFound")
    neutron_error(me.delete(f"{RULES}/{admin_rule['id']}"), 404, "SecurityGroupRuleNotFound")
    # A member may name only itself as the rule's project.
    neutron_error(post_rule(me, mine["id"], protocol="tcp", project_id=other_project), 400,
                  contains="requires admin privileges")


def test_remote_group_must_be_visible(core_api: Api, project: str, other_project: str) -> None:
    me, them = core_api.member(project), core_api.member(other_project)
    theirs = make_sg(them, name="theirs")
    mine = make_sg(me, name="mine")
    neutron_error(post_rule(me, mine["id"], remote_group_id=theirs["id"]), 404, "SecurityGroupNotFound",
                  theirs["id"])
    rule = make_rule(me, mine["id"], remote_group_id=mine["id"], protocol="tcp")
    assert rule["remote_group_id"] == mine["id"] and rule["normalized_cidr"] is None


# -- two projects ------------------------------------------------------------------------
def test_two_projects_are_isolated(core_api: Api, project: str, other_project: str) -> None:
    me, them, admin = core_api.member(project), core_api.member(other_project), core_api.admin()
    mine = make_sg(me, name="same-name")
    theirs = make_sg(them, name="same-name")
    assert {g["id"] for g in list_sgs(me)} == {mine["id"], default_of(me)["id"]}
    assert {g["id"] for g in list_sgs(them)} == {theirs["id"], default_of(them)["id"]}
    assert default_of(me)["id"] != default_of(them)["id"]
    neutron_error(them.get(f"{SGS}/{mine['id']}"), 404, "SecurityGroupNotFound")
    neutron_error(them.put(f"{SGS}/{mine['id']}", json={"security_group": {"name": "x"}}), 404)
    neutron_error(them.delete(f"{SGS}/{mine['id']}"), 404, "SecurityGroupNotFound")
    rule = mine["security_group_rules"][0]
    neutron_error(them.get(f"{RULES}/{rule['id']}"), 404, "SecurityGroupRuleNotFound")
    assert rule["id"] not in {r["id"] for r in list_rules(them)}
    # Their network, my group: refused; admin sees both projects' groups.
    net = them.network()
    neutron_error(them.post("/v2.0/ports", json={"port": {"network_id": net["id"], "security_groups": [mine["id"]]}}),
                  404, "SecurityGroupNotFound", mine["id"])
    seen = {g["id"] for g in list_sgs(admin)}
    assert {mine["id"], theirs["id"]} <= seen
    assert show_sg(admin, mine["id"])["project_id"] == project


def test_readers_read_only(core_api: Api, project: str) -> None:
    me, reader = core_api.member(project), core_api.reader(project)
    sg = make_sg(me, name="r")
    assert show_sg(reader, sg["id"])["id"] == sg["id"]
    neutron_error(reader.post(SGS, json={"security_group": {"name": "no"}}), 403, "PolicyNotAuthorized")
    neutron_error(reader.delete(f"{SGS}/{sg['id']}"), 403, "PolicyNotAuthorized")
    neutron_error(post_rule(reader, sg["id"], protocol="tcp"), 403, "PolicyNotAuthorized")


def test_shared_group_through_rbac(core_api: Api, project: str, other_project: str) -> None:
    admin, me = core_api.admin(), core_api.member(project)
    sg = make_sg(admin, name="shared-one")
    neutron_error(me.get(f"{SGS}/{sg['id']}"), 404)
    r = admin.post("/v2.0/rbac-policies", json={"rbac_policy": {
        "object_type": "security_group", "object_id": sg["id"], "action": "access_as_shared",
        "target_tenant": project}})
    assert r.status_code == 201, r.text
    seen = show_sg(me, sg["id"])
    assert seen["shared"] is True and seen["project_id"] == admin.project
    assert show_sg(admin, sg["id"])["shared"] is False  # not shared with the admin's own project
    assert [g["id"] for g in list_sgs(me, shared=True)] == [sg["id"]]
    assert sg["id"] not in {g["id"] for g in list_sgs(me, shared=False)}
    neutron_error(core_api.member(other_project).get(f"{SGS}/{sg['id']}"), 404)
    # The target may use it on a port but not change it.
    net = me.network()
    port = me.port(net["id"], security_groups=[sg["id"]])
    assert port["security_groups"] == [sg["id"]]
    neutron_error(me.put(f"{SGS}/{sg['id']}", json={"security_group": {"name": "mine"}}), 403, "PolicyNotAuthorized")
    neutron_error(me.delete(f"{SGS}/{sg['id']}"), 403, "PolicyNotAuthorized")
    neutron_error(post_rule(me, sg["id"], protocol="tcp"), 403, "PolicyNotAuthorized")


# -- ports ------------------------------------------------------------------------------------
def test_port_groups_and_port_security(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    default = default_of(me)
    web = make_sg(me, name="web")
    assert me.port(net["id"])["security_groups"] == [default["id"]]
    assert me.port(net["id"], security_groups=None)["security_groups"] == [default["id"]]
    assert me.port(net["id"], security_groups=[])["security_groups"] == []
    assert me.port(net["id"], port_security_enabled=False)["security_groups"] == []
    assert sorted(me.port(net["id"], security_groups=[web["id"], default["id"]])["security_groups"]) == \
        sorted([web["id"], default["id"]])
    missing = "4f0b3a4e-0000-4000-8000-000000000009"
    neutron_error(me.post("/v2.0/ports", json={"port": {"network_id": net["id"], "security_groups": [missing]}}),
                  404, "SecurityGroupNotFound", missing)
    neutron_error(me.post("/v2.0/ports", json={"port": {
        "network_id": net["id"], "port_security_enabled": False, "security_groups": [web["id"]]}}),
        400, "PortSecurityAndIPRequiredForSecurityGroups")
    insecure = me.network(port_security_enabled=False)
    port = me.port(insecure["id"])
    assert port["port_security_enabled"] is False and port["security_groups"] == []
    # Filtering ports on their groups (port-security-groups-filtering).
    with_web = me.list("ports", {"security_groups": web["id"]})
    assert len(with_web) == 1


def test_trusted_ports_get_no_groups(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    default = default_of(me)
    dhcp = me.port(net["id"], device_owner="network:dhcp")
    assert dhcp["security_groups"] == []
    given = me.port(net["id"], device_owner="network:dhcp", security_groups=[default["id"]])
    assert given["security_groups"] == []
    assert me.port(net["id"], device_owner="compute:nova")["security_groups"] == [default["id"]]


def test_port_updates(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    default, web = default_of(me), make_sg(me, name="web")
    port = me.port(net["id"])
    path = f"/v2.0/ports/{port['id']}"
    assert me.update("ports", port["id"], security_groups=[web["id"]])["security_groups"] == [web["id"]]
    neutron_error(me.put(path, json={"port": {"port_security_enabled": False}}), 409,
                  "PortSecurityPortHasSecurityGroup")
    neutron_error(me.put(path, json={"port": {"port_security_enabled": False, "security_groups": [web["id"]]}}),
                  400, "PortSecurityAndIPRequiredForSecurityGroups")
    off = me.update("ports", port["id"], port_security_enabled=False, security_groups=[])
    assert off["port_security_enabled"] is False and off["security_groups"] == []
    neutron_error(me.put(path, json={"port": {"security_groups": [default["id"]]}}), 400,
                  "PortSecurityAndIPRequiredForSecurityGroups")
    on = me.update("ports", port["id"], port_security_enabled=True, security_groups=[default["id"]])
    assert on["security_groups"] == [default["id"]]
    assert me.update("ports", port["id"], security_groups=None)["security_groups"] == []
    theirs = make_sg(core_api.member(other_project), name="theirs")
    neutron_error(me.put(path, json={"port": {"security_groups": [theirs["id"]]}}), 404, "SecurityGroupNotFound")
    assert me.show("ports", port["id"])["security_groups"] == []


# -- quotas ---------------------------------------------------------------------------------
def test_security_group_and_rule_quotas(core_api: Api, project: str) -> None:
    admin, me = core_api.admin(), core_api.member(project)
    r = admin.put(f"/v2.0/quotas/{project}", json={"quota": {"security_group": 2, "security_group_rule": 8}})
    assert r.status_code == 200, r.text
    first = make_sg(me, name="one")  # the default group (4 rules) + this one (2 rules)
    neutron_error(me.post(SGS, json={"security_group": {"name": "two"}}), 409, "OverQuota", "security_group")
    make_rule(me, first["id"], protocol="tcp")
    make_rule(me, first["id"], protocol="udp")
    neutron_error(post_rule(me, first["id"], protocol="icmp"), 409, "OverQuota", "security_group_rule")
    details = me.get(f"/v2.0/quotas/{project}/details").json()["quota"]
    assert details["security_group"]["used"] == 2 and details["security_group_rule"]["used"] == 8
    # A new group's template rules count too.
    admin.put(f"/v2.0/quotas/{project}", json={"quota": {"security_group": 5}})
    neutron_error(me.post(SGS, json={"security_group": {"name": "three"}}), 409, "OverQuota", "security_group_rule")


# -- the default-rules template ----------------------------------------------------------------
def test_template_starts_as_neutrons_legacy_rules(core_api: Api, project: str) -> None:
    rules = list_template(core_api.member(project))
    got = sorted((r["direction"], r["ethertype"], r["remote_group_id"], r["used_in_default_sg"],
                  r["used_in_non_default_sg"], r["description"]) for r in rules)
    assert got == [
        ("egress", "IPv4", None, True, True, "Legacy default SG rule for egress traffic"),
        ("egress", "IPv6", None, True, True, "Legacy default SG rule for egress traffic"),
        ("ingress", "IPv4", "PARENT", True, False, "Legacy default SG rule for ingress traffic"),
        ("ingress", "IPv6", "PARENT", True, False, "Legacy default SG rule for ingress traffic"),
    ]
    assert set(rules[0]) == {"id", "description", "direction", "ethertype", "protocol", "port_range_min",
                             "port_range_max", "remote_ip_prefix", "remote_group_id", "remote_address_group_id",
                             "used_in_default_sg", "used_in_non_default_sg"}
    only_default = list_template(core_api.member(project), used_in_non_default_sg="false")
    assert {r["direction"] for r in only_default} == {"ingress"}


def test_template_lifecycle_and_effect(make_api: Any, project: str, other_project: str) -> None:
    api = make_api()
    admin, me = api.admin(), api.member(project)
    body = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
            "port_range_max": 22, "used_in_default_sg": False, "used_in_non_default_sg": True,
            "description": "ssh for everybody"}
    neutron_error(me.post(TEMPLATE, json={"default_security_group_rule": body}), 403, "PolicyNotAuthorized")
    r = admin.post(TEMPLATE, json={"default_security_group_rule": body})
    assert r.status_code == 201, r.text
    ssh = r.json()["default_security_group_rule"]
    assert {k: ssh[k] for k in body} == body and ssh["remote_group_id"] is None
    assert me.get(f"{TEMPLATE}/{ssh['id']}").json()["default_security_group_rule"] == ssh
    # Same rule, other flags: still a duplicate.
    for flags in ({"used_in_default_sg": True}, {"used_in_non_default_sg": False}):
        neutron_error(admin.post(TEMPLATE, json={"default_security_group_rule": {**body, **flags}}), 409,
                      "DefaultSecurityGroupRuleExists", ssh["id"])
    icmp = admin.post(TEMPLATE, json={"default_security_group_rule": {
        "direction": "ingress", "protocol": "icmp", "remote_group_id": "PARENT", "used_in_default_sg": True,
        "used_in_non_default_sg": False}}).json()["default_security_group_rule"]
    neutron_error(admin.post(TEMPLATE, json={"default_security_group_rule": {
        "direction": "ingress", "protocol": "tcp", "port_range_min": 9, "port_range_max": 1}}), 400,
        "SecurityGroupInvalidPortRange")
    neutron_error(admin.put(f"{TEMPLATE}/{ssh['id']}", json={"default_security_group_rule": {"description": "x"}}),
                  400)
    # New groups follow the template.
    default = default_of(me)
    assert ("ingress", "IPv4", "icmp", default["id"], None, None, None) in {
        shape(r) for r in default["security_group_rules"]}
    assert ("ingress", "IPv4", "tcp", None, None, 22, 22) not in {shape(r) for r in default["security_group_rules"]}
    custom = make_sg(me, name="custom")
    assert ("ingress", "IPv4", "tcp", None, None, 22, 22) in {shape(r) for r in custom["security_group_rules"]}
    assert len(custom["security_group_rules"]) == 3
    # Deleting template rules changes only groups made afterwards.
    neutron_error(me.delete(f"{TEMPLATE}/{ssh['id']}"), 403, "PolicyNotAuthorized")
    assert admin.delete(f"{TEMPLATE}/{ssh['id']}").status_code == 204
    assert admin.delete(f"{TEMPLATE}/{icmp['id']}").status_code == 204
    neutron_error(admin.get(f"{TEMPLATE}/{ssh['id']}"), 404, "DefaultSecurityGroupRuleNotFound")
    assert len(make_sg(me, name="later")["security_group_rules"]) == 2
    assert len(show_sg(me, custom["id"])["security_group_rules"]) == 3
    assert len(default_of(api.member(other_project))["security_group_rules"]) == 4


def test_extensions_are_advertised(core_api: Api, project: str) -> None:
    aliases = {e["alias"] for e in core_api.member(project).get("/v2.0/extensions").json()["extensions"]}
    assert {"security-group", "port-security", "stateful-security-group", "security-groups-default-rules",
            "security-groups-normalized-cidr", "security-groups-shared-filtering",
            "security-groups-rules-belongs-to-default-sg", "rbac-policies", "rbac-security-groups"} <= aliases


def test_same_default_rule_in_both_templates(core_api: Api) -> None:
    """tempest DefaultSecurityGroupRuleTest.test_create_same_default_security_group_rule_for_different_templates:
    one rule as two entries, one per template, differing in both flags."""
    admin = core_api.admin()
    body = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 4321,
            "port_range_max": 4321}
    for flags in ({"used_in_default_sg": True, "used_in_non_default_sg": False},
                  {"used_in_default_sg": False, "used_in_non_default_sg": True}):
        r = admin.post(TEMPLATE, json={"default_security_group_rule": {**body, **flags}})
        assert r.status_code == 201, r.text
    for flags in ({"used_in_default_sg": True, "used_in_non_default_sg": True},
                  {"used_in_default_sg": False, "used_in_non_default_sg": False}):
        neutron_error(admin.post(TEMPLATE, json={"default_security_group_rule": {**body, **flags}}), 409,
                      "DefaultSecurityGroupRuleExists")


def test_port_cannot_mix_stateful_and_stateless_groups(core_api: Api, project: str) -> None:
    """tempest NegativeStatelessSecGroupTest: on port create and on update."""
    me = core_api.member(project)
    net = me.network()
    stateful, stateless, other = (
        me.post(SGS, json={"security_group": {"name": name, "stateful": kind}}).json()["security_group"]
        for name, kind in (("full", True), ("less", False), ("less2", False)))
    both = [stateful["id"], stateless["id"]]
    r = me.post("/v2.0/ports", json={"port": {"network_id": net["id"], "security_groups": both}})
    neutron_error(r, 409, "SecurityGroupConflict", "stateful and stateless")
    assert core_api.count("ports", network_id=net["id"]) == 0
    for first in (stateful, stateless):
        port = me.port(net["id"], security_groups=[first["id"]])
        r = me.put(f"/v2.0/ports/{port['id']}", json={"port": {"security_groups": both}})
        neutron_error(r, 409, "SecurityGroupConflict")
        assert me.show("ports", port["id"])["security_groups"] == [first["id"]]
    # Groups of one kind still go together.
    assert me.port(net["id"], security_groups=[stateless["id"], other["id"]])["security_groups"]
