"""Input converters (kaon.model.validators), the declarative checks built on
them (kaon.model.attrs) and query-string parsing (kaon.api.listing)."""

from __future__ import annotations

import datetime as dt

import pytest

from kaon import errors
from kaon.api import listing
from kaon.model import attrs
from kaon.model import validators as v
from kaon.model.network import NETWORK
from kaon.model.port import PORT
from kaon.model.subnet import SUBNET


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("true", True), ("False", False), ("TRUE", True), ("1", True), ("0", False),
    (1, True), (0, False), ("yes", True), ("off", False),
])
def test_boolean(value, expected) -> None:
    assert v.boolean(value) is expected


@pytest.mark.parametrize("value", ["maybe", "", None, 2, [], "2"])
def test_boolean_refuses(value) -> None:
    with pytest.raises(v.InvalidValue, match="cannot be converted to boolean"):
        v.boolean(value)


def test_strings() -> None:
    assert v.string(3)("abc") == "abc"
    with pytest.raises(v.InvalidValue, match="exceeds maximum length of 3"):
        v.string(3)("abcd")
    with pytest.raises(v.InvalidValue, match="is not a valid string"):
        v.string()(5)
    assert v.string_or_none(3)(None) is None
    assert v.string(None)("x" * 1000)


def test_uuids() -> None:
    u = "3F2504E0-4F89-41D3-9A0C-0305E82C3301"
    assert v.uuid_str(u) == u.lower()
    for bad in ("nope", "", None, 5, "3f2504e0-4f89-41d3-9a0c"):
        with pytest.raises(v.InvalidValue, match="is not a valid UUID"):
            v.uuid_str(bad)
    assert v.uuid_or_none(None) is None
    assert v.uuid_list([u]) == [u.lower()]
    with pytest.raises(v.InvalidValue, match="Duplicate"):
        v.uuid_list([u, u.lower()])
    with pytest.raises(v.InvalidValue, match="is not a list"):
        v.uuid_list(u)


def test_integers() -> None:
    assert v.int_in(68, 65535)("1500") == 1500
    for bad, reason in ((67, "is not in range 68 through 65535"), ("x", "is not an integer"),
                        (True, "is not an integer"), (None, "is not an integer")):
        with pytest.raises(v.InvalidValue, match=reason):
            v.int_in(68, 65535)(bad)
    assert v.non_negative_int("7") == 7
    with pytest.raises(v.InvalidValue):
        v.non_negative_int(-1)


@pytest.mark.parametrize("value, expected", [
    ("10.0.0.1", "10.0.0.1"), ("2001:DB8::1", "2001:db8::1"), ("2001:db8:0:0:0:0:0:1", "2001:db8::1"),
    ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
])
def test_ip_address(value: str, expected: str) -> None:
    assert v.ip_address(value) == expected


@pytest.mark.parametrize("value", ["10.0.0", "10.0.0.256", "010.0.0.1", " 10.0.0.1", "10.0.0.1/24", "", None, 10,
                                   "1", "0x0a000001", "fe80::1%eth0"])
def test_ip_address_refuses(value) -> None:
    with pytest.raises(v.InvalidValue, match="is not a valid IP address"):
        v.ip_address(value)


@pytest.mark.parametrize("value, expected", [
    ("10.0.0.0/24", "10.0.0.0/24"), ("10.0.0.77/24", "10.0.0.0/24"), ("2001:DB8::5/64", "2001:db8::/64"),
    ("0.0.0.0/0", "0.0.0.0/0"), ("10.1.2.3/32", "10.1.2.3/32"),
])
def test_subnet_cidr(value: str, expected: str) -> None:
    assert v.subnet_cidr(value) == expected


@pytest.mark.parametrize("value", ["10.0.0/24", "10.0.0.0", "10.0.0.0/33", "banana/8", "10.0.0.0/024", "", None,
                                   " 10.0.0.0/24", "2001:db8::/129"])
def test_subnet_cidr_refuses(value) -> None:
    with pytest.raises(v.InvalidValue, match="is not a valid IP subnet"):
        v.subnet_cidr(value)


def test_route_cidr_must_be_canonical() -> None:
    assert v.cidr("172.16.0.0/12") == "172.16.0.0/12"
    with pytest.raises(v.InvalidValue, match="'172.16.0.0/12' is recommended"):
        v.cidr("172.16.5.0/12")
    assert v.ip_or_cidr("10.0.0.0/24") == "10.0.0.0/24"
    assert v.ip_or_cidr("10.0.0.9") == "10.0.0.9"


@pytest.mark.parametrize("value, expected", [
    ("FA:16:3E:00:00:01", "fa:16:3e:00:00:01"), ("fa-16-3e-00-00-01", "fa:16:3e:00:00:01"),
    ("01:00:5e:00:00:01", "01:00:5e:00:00:01"),  # multicast: neutron-lib accepts it
])
def test_mac_address(value: str, expected: str) -> None:
    assert v.mac_address(value) == expected


@pytest.mark.parametrize("value", ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "FF:FF:FF:FF:FF:FF", "fa:16:3e:00:00",
                                   "fa:16:3e:00:00:0g", "", None, "fa163e000001x"])
def test_mac_address_refuses(value) -> None:
    with pytest.raises(v.InvalidValue, match="is not a valid MAC address"):
        v.mac_address(value)


def test_lists_one_of_and_dicts() -> None:
    assert v.list_of(v.string(3))(["a", "b"]) == ["a", "b"]
    with pytest.raises(v.InvalidValue, match="Duplicate"):
        v.list_of(v.string(3))(["a", "a"])
    with pytest.raises(v.InvalidValue, match="exceeds maximum length"):
        v.list_of(v.string(3))(["abcd"])
    assert v.one_of(4, 6)(6) == 6
    with pytest.raises(v.InvalidValue):
        v.one_of(4, 6)(5)
    assert v.dict_value(None) == {}
    with pytest.raises(v.InvalidValue, match="is not a dictionary"):
        v.dict_value([])


# --- declarative checks ----------------------------------------------------------------
def test_check_post_fills_defaults_and_converts() -> None:
    out = attrs.check_post(NETWORK, {"name": "n", "admin_state_up": "false"})
    assert out["name"] == "n" and out["admin_state_up"] is False
    assert out["shared"] is False and out["port_security_enabled"] is True and out["description"] == ""
    assert "mtu" not in out and "provider:network_type" not in out


@pytest.mark.parametrize("item, error, fragment", [
    ({"colour": "red", "bogus": 1}, errors.BadRequest, "Unrecognized attribute(s) 'bogus, colour'"),
    ({"status": "UP"}, errors.BadRequest, "Attribute 'status' not allowed in POST"),
    ({"name": 3}, errors.InvalidInput, "Invalid input for name. Reason: '3' is not a valid string."),
])
def test_check_post_refuses(item: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as exc:
        attrs.check_post(NETWORK, item)
    assert fragment in exc.value.msg


def test_check_post_required_attributes() -> None:
    with pytest.raises(errors.BadRequest, match="Required attribute 'network_id' not specified"):
        attrs.check_post(PORT, {})
    with pytest.raises(errors.BadRequest, match="Required attribute 'ip_version' not specified"):
        attrs.check_post(SUBNET, {"network_id": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"})


def test_check_put() -> None:
    assert attrs.check_put(NETWORK, {"network": {"name": "x"}}) == {"name": "x"}
    with pytest.raises(errors.BadRequest, match="Cannot update read-only attribute"):
        attrs.check_put(SUBNET, {"subnet": {"cidr": "10.0.0.0/24"}})
    with pytest.raises(errors.BadRequest, match="Unable to find 'network' in request body"):
        attrs.check_put(NETWORK, {"networks": {}})
    # Who may set it is policy's business (tests/unit/test_policy.py), not the body check's.
    assert attrs.check_put(PORT, {"port": {"binding:host_id": "h"}}) == {"binding:host_id": "h"}


def test_unwrap() -> None:
    assert attrs.unwrap(NETWORK, {"network": {"name": "a"}}) == [{"name": "a"}]
    assert attrs.unwrap(NETWORK, {"networks": [{"name": "a"}, {"name": "b"}]}) == [{"name": "a"}, {"name": "b"}]
    for body in ({}, [], {"networks": []}, {"networks": {}}, {"network": "x"}, {"nets": {}}):
        with pytest.raises(errors.BadRequest):
            attrs.unwrap(NETWORK, body)



# --- query strings ---------------------------------------------------------------------------
def test_parse_query() -> None:
    q = listing.parse(NETWORK, [("name", "a"), ("name", "b"), ("admin_state_up", "False"), ("fields", "id"),
                                ("sort_key", "name"), ("sort_dir", "desc"), ("limit", "2"), ("marker", "m"),
                                ("page_reverse", "TRUE"), ("tags", "x,y"), ("tags", "z"), ("tenant_id", "p")])
    assert q.filters == {"name": ["a", "b"], "admin_state_up": [False], "project_id": ["p"]}
    assert q.fields == ["id"] and q.sorts == [("name", False)]
    assert (q.limit, q.marker, q.page_reverse) == (2, "m", True)
    assert q.tag_filters == {"tags": ["x", "y", "z"]}
    assert listing.parse(NETWORK, [("limit", "0")]).limit is None
    assert listing.parse(NETWORK, [("page_reverse", "yes")]).page_reverse is False
    assert listing.parse(NETWORK, [("sort_key", "tenant_id"), ("sort_dir", "asc")]).sorts == [("project_id", True)]
    since = listing.parse(NETWORK, [("changed_since", "2026-01-02T03:04:05+01:00")]).filters["changed_since"]
    assert since == [dt.datetime(2026, 1, 2, 2, 4, 5)]


@pytest.mark.parametrize("items, fragment", [
    ([("colour", "red"), ("size", "1")], "['colour', 'size'] is invalid attribute for filtering"),
    ([("limit", "-1")], "Bad limit request: Limit must be an integer 0 or greater and not '-1'."),
    ([("sort_key", "name")], "The number of sort_keys and sort_dirs must be same"),
    ([("sort_key", "tags"), ("sort_dir", "asc")], "['tags'] is invalid attribute for sort_keys"),
    ([("sort_key", "name"), ("sort_dir", "sideways")], "['sideways'] is invalid value for sort_dirs"),
    ([("tenant_id", "a"), ("project_id", "a")], "Both tenant_id and project_id passed as filters."),
    ([("mtu", "big")], "Invalid input for mtu"),
    ([("changed_since", "then")], "changed_since"),
])
def test_parse_query_refuses(items: list, fragment: str) -> None:
    with pytest.raises(errors.BadRequest) as exc:
        listing.parse(NETWORK, items)
    assert fragment in exc.value.msg


def test_parse_query_without_validation() -> None:
    assert listing.parse(NETWORK, [("colour", "red")], validate=False).filters == {}
