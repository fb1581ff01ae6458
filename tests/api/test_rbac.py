"""/v2.0/rbac-policies: networks (access_as_shared, access_as_external)
and security groups (access_as_shared); what the policies mean for
``shared``/``router:external`` and visibility; who may grant; in-use,
duplicates, quota; visibility of the policies themselves."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import core_support
from tests.api.core_support import Api, Caller, neutron_error

core_api = core_support.core_api
project, other_project = core_support.project, core_support.other_project

RBAC = "/v2.0/rbac-policies"
FIELDS = {"id", "project_id", "tenant_id", "object_type", "object_id", "action", "target_tenant"}


def post_policy(who: Caller, object_id: str, target: str, action: str = "access_as_shared",
                object_type: str = "network", **extra: Any) -> Any:
    return who.post(RBAC, json={"rbac_policy": {"object_type": object_type, "object_id": object_id,
                                                "action": action, "target_tenant": target, **extra}})


def grant(who: Caller, object_id: str, target: str, action: str = "access_as_shared",
          object_type: str = "network") -> dict[str, Any]:
    r = post_policy(who, object_id, target, action, object_type)
    assert r.status_code == 201, r.text
    return r.json()["rbac_policy"]


def policies(who: Caller, **params: Any) -> list[dict[str, Any]]:
    r = who.get(RBAC, params=params)
    assert r.status_code == 200, r.text
    return r.json()["rbac_policies"]


def make_sg(who: Caller, name: str = "sg") -> dict[str, Any]:
    r = who.post("/v2.0/security-groups", json={"security_group": {"name": name}})
    assert r.status_code == 201, r.text
    return r.json()["security_group"]


@pytest.fixture
def third_project() -> str:
    import uuid

    return f"r-{uuid.uuid4().hex}"


# -- networks ---------------------------------------------------------------------
def test_owner_shares_a_network_with_one_project(core_api: Api, project: str, other_project: str,
                                                 third_project: str) -> None:
    me, them, third = core_api.member(project), core_api.member(other_project), core_api.member(third_project)
    net = me.network()
    neutron_error(them.get(f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")
    pol = grant(me, net["id"], other_project)
    assert set(pol) == FIELDS
    assert (pol["project_id"], pol["tenant_id"], pol["object_type"], pol["object_id"], pol["action"],
            pol["target_tenant"]) == (project, project, "network", net["id"], "access_as_shared", other_project)
    assert them.show("networks", net["id"])["shared"] is True  # shared with them
    assert me.show("networks", net["id"])["shared"] is False  # not with everybody
    neutron_error(third.get(f"/v2.0/networks/{net['id']}"), 404)
    # The target may put ports on it; the policy is the owner's, not the target's.
    port = them.port(net["id"])
    assert port["project_id"] == other_project
    assert pol in policies(me)
    assert pol["id"] not in {p["id"] for p in policies(them)}
    neutron_error(them.get(f"{RBAC}/{pol['id']}"), 404, "RbacPolicyNotFound")
    neutron_error(them.delete(f"{RBAC}/{pol['id']}"), 404, "RbacPolicyNotFound")
    assert me.get(f"{RBAC}/{pol['id']}").json()["rbac_policy"] == pol
    assert core_api.admin().get(f"{RBAC}/{pol['id']}").json()["rbac_policy"] == pol


def test_wildcard_policy_is_the_shared_flag(core_api: Api, project: str, other_project: str) -> None:
    admin, me, them = core_api.admin(), core_api.member(project), core_api.member(other_project)
    net = me.network()
    rev = me.show("networks", net["id"])["revision_number"]
    pol = grant(admin, net["id"], "*")
    shown = me.show("networks", net["id"])
    assert shown["shared"] is True and shown["revision_number"] > rev
    assert them.show("networks", net["id"])["shared"] is True
    assert net["id"] in {n["id"] for n in them.list("networks", {"shared": "true"})}
    assert admin.delete(f"{RBAC}/{pol['id']}").status_code == 204
    assert me.show("networks", net["id"])["shared"] is False
    neutron_error(them.get(f"/v2.0/networks/{net['id']}"), 404)
    # And the other way: shared=True at creation is a '*' policy of the owner.
    shared = admin.network(shared=True)
    rows = [p for p in policies(admin, object_id=shared["id"])]
    assert [(p["target_tenant"], p["action"], p["project_id"]) for p in rows] == [
        ("*", "access_as_shared", admin.project)]
    assert admin.delete(f"{RBAC}/{rows[0]['id']}").status_code == 204
    assert admin.show("networks", shared["id"])["shared"] is False
    upd = admin.update("networks", shared["id"], shared=True)
    assert upd["shared"] is True and len(policies(admin, object_id=shared["id"])) == 1


def test_external_policy_is_the_external_flag(core_api: Api, project: str, other_project: str) -> None:
    admin, them = core_api.admin(), core_api.member(other_project)
    net = admin.network()
    pol = grant(admin, net["id"], "*", action="access_as_external")
    assert admin.show("networks", net["id"])["router:external"] is True
    assert them.show("networks", net["id"])["router:external"] is True
    assert admin.delete(f"{RBAC}/{pol['id']}").status_code == 204
    assert admin.show("networks", net["id"])["router:external"] is False


def test_default_external_network_keeps_its_wildcard_grant(core_api: Api, project: str) -> None:
    """Neutron refuses to remove the wildcard access_as_external policy of
    the default external network (tempest: wildcard_policy_delete_blocked_on_default_ext)."""
    admin = core_api.admin()
    net = admin.network(**{"router:external": True, "is_default": True})
    pol = policies(admin, object_id=net["id"], action="access_as_external", target_tenant="*")[0]
    neutron_error(admin.delete(f"{RBAC}/{pol['id']}"), 409, "RbacPolicyInUse")
    assert admin.show("networks", net["id"])["router:external"] is True


def test_who_may_grant(core_api: Api, project: str, other_project: str) -> None:
    admin, me, them = core_api.admin(), core_api.member(project), core_api.member(other_project)
    net = me.network()
    # Only an admin may share with everybody, on create and on update.
    neutron_error(post_policy(me, net["id"], "*"), 403, "PolicyNotAuthorized")
    neutron_error(post_policy(me, net["id"], "*", action="access_as_external"), 403, "PolicyNotAuthorized")
    pol = grant(me, net["id"], other_project)
    neutron_error(me.put(f"{RBAC}/{pol['id']}", json={"rbac_policy": {"target_tenant": "*"}}), 403,
                  "PolicyNotAuthorized")
    # A project the network is shared with may not pass it on; nor may strangers.
    neutron_error(post_policy(them, net["id"], them.project), 400, "InvalidInput",
                  "Only admins can manipulate policies on networks they do not own")
    admin_net = admin.network()
    neutron_error(post_policy(me, admin_net["id"], project), 400, "InvalidInput", "could not be found")
    neutron_error(post_policy(me, "4f0b3a4e-0000-4000-8000-00000000000a", project), 400, "InvalidInput")
    # A member names only its own project as the policy's owner.
    neutron_error(post_policy(me, net["id"], "x", project_id=other_project), 400,
                  contains="requires admin privileges")
    # An admin may do all of it.
    assert grant(admin, admin_net["id"], project)["project_id"] == admin.project
    assert grant(admin, net["id"], "*")["project_id"] == admin.project


@pytest.mark.parametrize("body, type_, fragment", [
    ({"object_type": "security_group", "action": "access_as_external"}, "InvalidActionForType",
     "Invalid action 'access_as_external' for object type 'security_group'"),
    ({"action": "access_as_owner"}, "InvalidActionForType", "Valid actions"),
    ({"object_type": "qos_policy"}, "InvalidInput", "'qos_policy' is not a valid RBAC object type"),
    ({"target_tenant": None}, "InvalidInput", None),
    ({"target_tenant": "1234" * 100}, "InvalidInput", "exceeds maximum length of 255"),
    ({"object_id": "not-a-uuid"}, "InvalidInput", "is not a valid UUID"),
    ({"object_id": None}, "InvalidInput", None),
    ({"bogus": 1}, "HTTPBadRequest", "Unrecognized attribute(s) 'bogus'"),
])
def test_invalid_policies(core_api: Api, project: str, body: dict, type_: str, fragment: str | None) -> None:
    admin = core_api.admin()
    net = admin.network()
    sg = make_sg(admin)
    full = {"object_type": "network", "object_id": net["id"], "action": "access_as_shared",
            "target_tenant": project}
    full.update(body)
    if full["object_type"] == "security_group" and body.get("object_id") is None and "object_id" not in body:
        full["object_id"] = sg["id"]
    neutron_error(admin.post(RBAC, json={"rbac_policy": full}), 400, type_, fragment)
    assert policies(admin, object_id=net["id"]) == []


def test_missing_attributes(core_api: Api, project: str) -> None:
    admin = core_api.admin()
    for missing in ("object_type", "object_id", "action", "target_tenant"):
        body = {"object_type": "network", "object_id": admin.network()["id"], "action": "access_as_shared",
                "target_tenant": project}
        del body[missing]
        neutron_error(admin.post(RBAC, json={"rbac_policy": body}), 400,
                      contains=f"Required attribute '{missing}' not specified")


def test_duplicate_policy(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    grant(me, net["id"], other_project)
    neutron_error(post_policy(me, net["id"], other_project), 409, "DuplicateRbacPolicy",
                  "An RBAC policy already exists with those values.")
    # Same target, other action: a different policy.
    admin = core_api.admin()
    grant(admin, net["id"], other_project, action="access_as_external")
    pol = grant(me, net["id"], "someone-else")
    neutron_error(me.put(f"{RBAC}/{pol['id']}", json={"rbac_policy": {"target_tenant": other_project}}), 409,
                  "DuplicateRbacPolicy")


def test_ports_of_the_target_keep_the_policy(core_api: Api, project: str, other_project: str,
                                             third_project: str) -> None:
    admin, me, them = core_api.admin(), core_api.member(project), core_api.member(other_project)
    net = me.network()
    pol = grant(me, net["id"], other_project)
    port = them.port(net["id"])
    neutron_error(me.delete(f"{RBAC}/{pol['id']}"), 409, "RbacPolicyInUse",
                  f"RBAC policy on object {net['id']} cannot be removed because other objects depend on it.")
    neutron_error(me.put(f"{RBAC}/{pol['id']}", json={"rbac_policy": {"target_tenant": third_project}}), 409,
                  "RbacPolicyInUse")
    # A wildcard grant covers them: then the specific one may go.
    star = grant(admin, net["id"], "*")
    assert me.delete(f"{RBAC}/{pol['id']}").status_code == 204
    neutron_error(admin.delete(f"{RBAC}/{star['id']}"), 409, "RbacPolicyInUse")
    # Network owners may delete other projects' ports on their network.
    me.remove("ports", port["id"])
    assert admin.delete(f"{RBAC}/{star['id']}").status_code == 204
    assert policies(admin, object_id=net["id"]) == []


def test_wildcard_removal_with_ports_covered_elsewhere(core_api: Api, project: str, other_project: str) -> None:
    admin, them = core_api.admin(), core_api.member(other_project)
    net = admin.network()
    star = grant(admin, net["id"], "*")
    them.port(net["id"])
    neutron_error(admin.delete(f"{RBAC}/{star['id']}"), 409, "RbacPolicyInUse")
    grant(admin, net["id"], other_project)
    assert admin.delete(f"{RBAC}/{star['id']}").status_code == 204
    assert them.show("networks", net["id"])["shared"] is True  # through their own grant
    assert admin.show("networks", net["id"])["shared"] is False


def test_self_share_policies_never_block(core_api: Api, project: str, other_project: str,
                                         third_project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    self_share = grant(me, net["id"], project)
    me.port(net["id"])
    upd = me.put(f"{RBAC}/{self_share['id']}", json={"rbac_policy": {"target_tenant": other_project}})
    assert upd.status_code == 200, upd.text
    moved = upd.json()["rbac_policy"]
    assert moved["target_tenant"] == other_project
    assert {k: v for k, v in moved.items() if k != "target_tenant"} == \
        {k: v for k, v in self_share.items() if k != "target_tenant"}
    other = grant(me, net["id"], project)
    assert me.delete(f"{RBAC}/{other['id']}").status_code == 204
    unused = me.put(f"{RBAC}/{moved['id']}", json={"rbac_policy": {"target_tenant": third_project}})
    assert unused.status_code == 200 and unused.json()["rbac_policy"]["target_tenant"] == third_project


def test_rbac_policy_quota(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    core_api.admin().put(f"/v2.0/quotas/{project}", json={"quota": {"rbac_policy": 3}})
    net = me.network()
    for i in range(3):
        grant(me, net["id"], f"target-{i}")
    neutron_error(post_policy(me, net["id"], "target-3"), 409, "OverQuota", "rbac_policy")
    details = me.get(f"/v2.0/quotas/{project}/details").json()["quota"]
    assert details["rbac_policy"]["used"] == 3


def test_list_filters_fields_sorting_paging(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    net, sg = me.network(), make_sg(me)
    made = [grant(me, net["id"], f"t-{i}") for i in range(3)]
    made.append(grant(me, sg["id"], other_project, object_type="security_group"))
    mine = policies(me)
    assert sorted(p["id"] for p in mine) == sorted(p["id"] for p in made)
    assert [p["object_type"] for p in policies(me, object_type="security_group")] == ["security_group"]
    assert len(policies(me, object_type="network")) == 3
    assert [p["id"] for p in policies(me, id=made[1]["id"])] == [made[1]["id"]]
    assert [p["target_tenant"] for p in policies(me, target_tenant="t-2")] == ["t-2"]
    for fields in (("id",), ("id", "action"), ("object_type", "object_id"), ("project_id", "target_tenant")):
        rows = policies(me, fields=list(fields))
        assert all(set(r) == set(fields) for r in rows)
    desc = [p["target_tenant"] for p in policies(me, sort_key="target_tenant", sort_dir="desc")]
    assert desc == sorted(desc, reverse=True)
    neutron_error(me.get(RBAC, params={"colour": "red"}), 400, contains="invalid attribute for filtering")
    first = me.get(RBAC, params={"limit": 2, "sort_key": "target_tenant", "sort_dir": "asc"}).json()
    assert len(first["rbac_policies"]) == 2 and first["rbac_policies_links"][0]["rel"] == "next"
    second = me.get(RBAC, params={"limit": 2, "sort_key": "target_tenant", "sort_dir": "asc",
                                  "marker": first["rbac_policies"][-1]["id"]}).json()
    seen = [p["target_tenant"] for p in first["rbac_policies"] + second["rbac_policies"]]
    assert seen == sorted(p["target_tenant"] for p in made)
    neutron_error(me.get(f"{RBAC}/4f0b3a4e-0000-4000-8000-00000000000b"), 404, "RbacPolicyNotFound",
                  "RBAC policy of type unknown with ID 4f0b3a4e-0000-4000-8000-00000000000b not found")


def test_policies_go_with_their_object(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    net, sg = me.network(), make_sg(me)
    grant(me, net["id"], other_project)
    grant(me, sg["id"], other_project, object_type="security_group")
    me.remove("networks", net["id"])
    assert me.delete(f"/v2.0/security-groups/{sg['id']}").status_code == 204
    assert policies(me) == []


# -- security groups ----------------------------------------------------------------------
def test_security_group_sharing(core_api: Api, project: str, other_project: str, third_project: str) -> None:
    admin, me, them = core_api.admin(), core_api.member(project), core_api.member(other_project)
    sg = make_sg(admin, "admin-sg")
    neutron_error(me.get(f"/v2.0/security-groups/{sg['id']}"), 404)
    pol = grant(admin, sg["id"], project, object_type="security_group")
    assert pol["object_type"] == "security_group"
    rev = admin.get(f"/v2.0/security-groups/{sg['id']}").json()["security_group"]["revision_number"]
    assert rev > sg["revision_number"]
    assert me.get(f"/v2.0/security-groups/{sg['id']}").json()["security_group"]["shared"] is True
    neutron_error(them.get(f"/v2.0/security-groups/{sg['id']}"), 404)
    assert pol["id"] not in {p["id"] for p in policies(me)}
    # The target may not pass it on.
    neutron_error(post_policy(me, sg["id"], other_project, object_type="security_group"), 400, "InvalidInput",
                  "Only admins can manipulate policies on objects they do not own")
    # A port in the shared group keeps the policy.
    port = me.port(me.network()["id"], security_groups=[sg["id"]])
    neutron_error(admin.delete(f"{RBAC}/{pol['id']}"), 409, "RbacPolicyInUse")
    neutron_error(admin.put(f"{RBAC}/{pol['id']}", json={"rbac_policy": {"target_tenant": third_project}}), 409,
                  "RbacPolicyInUse")
    me.remove("ports", port["id"])
    upd = admin.put(f"{RBAC}/{pol['id']}", json={"rbac_policy": {"target_tenant": other_project}})
    assert upd.status_code == 200 and upd.json()["rbac_policy"]["target_tenant"] == other_project
    neutron_error(me.get(f"/v2.0/security-groups/{sg['id']}"), 404)
    assert them.get(f"/v2.0/security-groups/{sg['id']}").json()["security_group"]["shared"] is True
    assert admin.delete(f"{RBAC}/{pol['id']}").status_code == 204
    neutron_error(them.get(f"/v2.0/security-groups/{sg['id']}"), 404)


def test_member_shares_own_group_with_wildcard_refused(core_api: Api, project: str, other_project: str) -> None:
    me = core_api.member(project)
    sg = make_sg(me)
    neutron_error(post_policy(me, sg["id"], "*", object_type="security_group"), 403, "PolicyNotAuthorized")
    pol = grant(me, sg["id"], other_project, object_type="security_group")
    assert pol["project_id"] == project
    star = grant(core_api.admin(), sg["id"], "*", object_type="security_group")
    assert core_api.member("anyone-" + project).get(
        f"/v2.0/security-groups/{sg['id']}").json()["security_group"]["shared"] is True
    assert core_api.admin().delete(f"{RBAC}/{star['id']}").status_code == 204


# -- external networks and routers ----------------------------------------------------------
def test_router_gateway_keeps_the_external_policy(core_api: Api, project: str, other_project: str) -> None:
    admin, them = core_api.admin(), core_api.member(other_project)
    net = admin.network()
    admin.subnet(net["id"], "198.51.100.0/24")
    pol = grant(admin, net["id"], other_project, action="access_as_external")
    r = them.post("/v2.0/routers", json={"router": {"external_gateway_info": {"network_id": net["id"]}}})
    if r.status_code == 404:
        pytest.skip("routers are not served")
    assert r.status_code == 201, r.text
    router = r.json()["router"]
    neutron_error(admin.delete(f"{RBAC}/{pol['id']}"), 409, "RbacPolicyInUse")
    assert them.delete(f"/v2.0/routers/{router['id']}").status_code == 204
    assert admin.delete(f"{RBAC}/{pol['id']}").status_code == 204
