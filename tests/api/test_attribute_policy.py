"""Attribute policies as Neutron applies them: on create only for values
other than the attribute's default (``_is_attribute_explicitly_set``), so a
member's ``shared: false`` is no business of ``create_X:shared``; on update
for every attribute named."""

from __future__ import annotations

import pytest

from tests.api import core_support
from tests.api.core_support import Api, neutron_error

core_api = core_support.core_api
project = core_support.project


@pytest.mark.parametrize("collection, extra", [
    ("networks", {}),
    ("subnetpools", {"prefixes": ["10.80.0.0/16"], "min_prefixlen": 24}),
    ("address-scopes", {"ip_version": 4}),
])
def test_member_may_send_the_default_of_an_admin_attribute(core_api: Api, project: str, collection: str,
                                                           extra: dict) -> None:
    me = core_api.member(project)
    name = collection[:-1].replace("-", "_")
    r = me.post(f"/v2.0/{collection}", json={name: {"name": "explicit-default", "shared": False, **extra}})
    assert r.status_code == 201, r.text
    assert r.json()[name]["shared"] is False
    # The value that is not the default is the admin's to give.
    r = me.post(f"/v2.0/{collection}", json={name: {"name": "shared", "shared": True, **extra}})
    neutron_error(r, 403, "PolicyNotAuthorized", f"(rule:create_{name}:shared) is disallowed by policy")


def test_member_sends_every_default_of_a_network(core_api: Api, project: str) -> None:
    """What openstacksdk and Terraform send on create: every admin-only
    attribute at its default."""
    me = core_api.member(project)
    net = me.network(name="all-defaults", shared=False, **{"router:external": False}, is_default=False)
    assert net["shared"] is False and net["router:external"] is False


def test_update_checks_an_attribute_even_at_its_current_value(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    r = me.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": False}})
    neutron_error(r, 403, "PolicyNotAuthorized", "(rule:update_network:shared) is disallowed by policy")
