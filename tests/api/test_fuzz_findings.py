"""Regression tests for what the fuzz tier (tests/fuzz, docs/design/fuzz.md)
found: each answered 5xx before its fix. Both databases."""

from __future__ import annotations

import uuid

from tests.api.core_support import core_api  # noqa: F401  (fixture)

RULES = "/v2.0/default-security-group-rules"


def test_put_on_a_default_security_group_rule_is_405_not_501(core_api):  # noqa: F811
    admin = core_api.admin("fuzz-" + uuid.uuid4().hex[:8])
    member = core_api.member("fuzz-" + uuid.uuid4().hex[:8])
    r = admin.post(RULES, json={"default_security_group_rule": {
        "direction": "ingress", "ethertype": "IPv6", "protocol": "tcp", "port_range_min": 2201,
        "port_range_max": 2201}})
    assert r.status_code == 201, r.text
    rule = r.json()["default_security_group_rule"]
    r = admin.put(f"{RULES}/{rule['id']}", json={"default_security_group_rule": {}})
    assert r.status_code == 405, r.text
    assert r.json()["NeutronError"]["type"] == "HTTPMethodNotAllowed"
    # A member is stopped by the policy first (update_default_security_group_rule: admin), as in Neutron.
    r = member.put(f"{RULES}/{rule['id']}", json={"default_security_group_rule": {}})
    assert r.status_code == 403, r.text
    # An unknown rule is still its 404, and the rule is unchanged.
    r = admin.put(f"{RULES}/{uuid.uuid4()}", json={"default_security_group_rule": {}})
    assert r.status_code == 404, r.text
    assert admin.get(f"{RULES}/{rule['id']}").json()["default_security_group_rule"] == rule
    assert admin.delete(f"{RULES}/{rule['id']}").status_code == 204


def test_bulk_create_with_a_non_object_item_is_400(core_api):  # noqa: F811
    member = core_api.member("fuzz-" + uuid.uuid4().hex[:8])
    for body in ({"routers": [{"router": [{"x": True}, {}]}, {"router": []}]},
                 {"networks": [{"network": "name"}]}, {"ports": [{"port": None}]}):
        collection = next(iter(body))
        r = member.post(f"/v2.0/{collection}", json=body)
        assert r.status_code == 400, r.text
        assert "Unable to find" in r.json()["NeutronError"]["message"]
    assert member.list("networks") == [] and member.list("routers") == []


def test_security_group_rule_timestamp_and_revision_filters_are_checked(core_api):  # noqa: F811
    member = core_api.member("fuzz-" + uuid.uuid4().hex[:8])
    r = member.post("/v2.0/security-groups", json={"security_group": {"name": "g"}})
    assert r.status_code == 201, r.text
    group = r.json()["security_group"]
    for query in ({"created_at": "bad"}, {"updated_at": "F\u00c0"}, {"revision_number": "abc"},
                  {"created_at": "-2.1596113488339994e+29"}):
        r = member.get("/v2.0/security-group-rules", params=query)
        assert r.status_code == 400, (query, r.text)
        assert r.json()["NeutronError"]["type"] == "InvalidInput"
    # Good values still filter.
    rule = group["security_group_rules"][0]
    r = member.get("/v2.0/security-group-rules", params={
        "created_at": rule["created_at"], "revision_number": rule["revision_number"],
        "security_group_id": group["id"]})
    assert r.status_code == 200, r.text
    assert rule["id"] in {found["id"] for found in r.json()["security_group_rules"]}
