"""Identity admin API: projects, users, roles, domains, grants, role assignments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kaon.identity import passwords
from kaon.identity.testing import Node, make_node, password_body

V3 = "/identity/v3"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "N", 2**8)


class Api:
    """A client acting with one user's token."""

    def __init__(self, node: Node, user: str, project: str) -> None:
        self.client = node.client()
        r = self.client.post(f"{V3}/auth/tokens", json=password_body(user, node.passwords[user], project))
        assert r.status_code == 201, r.text
        self.token = r.headers["x-subject-token"]
        self.user_id = r.json()["token"]["user"]["id"]
        self.project_id = r.json()["token"]["project"]["id"]

    def __call__(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        kwargs: dict[str, Any] = {"headers": {"X-Auth-Token": self.token}}
        if body is not None:
            kwargs["json"] = body
        r = self.client.request(method, V3 + path, **kwargs)
        if status is not None:
            assert r.status_code == status, r.text
        return r


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return make_node(tmp_path / "state")


@pytest.fixture
def any_node(tmp_path: Path, db_url: str) -> Node:
    """A provisioned identity service, on SQLite and on PostgreSQL: for the
    tests that exercise constraints, cascades and savepoints."""
    return make_node(tmp_path / "state", db_url=db_url)


@pytest.fixture
def admin(node: Node) -> Api:
    return Api(node, "admin", "admin")


@pytest.fixture
def demo(node: Node) -> Api:
    return Api(node, "demo", "demo")


def role_id(admin: Api, name: str) -> str:
    return admin("GET", f"/roles?name={name}", status=200).json()["roles"][0]["id"]


def token_for(node: Node, user: str, password: str, project_id: str) -> Any:
    body = password_body(user, password, project_id, by_id=False)
    body["auth"]["scope"] = {"project": {"id": project_id}}
    return node.client().post(f"{V3}/auth/tokens", json=body)


def test_project_crud(any_node: Node) -> None:
    admin = Api(any_node, "admin", "admin")
    body = {"project": {"name": "p1", "description": "first", "domain_id": "default", "color": "red"}}
    p = admin("POST", "/projects", body, 201).json()["project"]
    assert p["name"] == "p1" and p["domain_id"] == "default" and p["enabled"] is True
    assert p["description"] == "first" and p["color"] == "red" and p["is_domain"] is False
    assert p["links"]["self"] == f"http://testserver/identity/v3/projects/{p['id']}"
    assert admin("GET", f"/projects/{p['id']}", status=200).json()["project"] == p
    listed = admin("GET", "/projects", status=200).json()
    assert {"admin", "demo", "alt_demo", "p1"} <= {x["name"] for x in listed["projects"]}
    assert listed["links"]["next"] is None
    assert [x["id"] for x in admin("GET", "/projects?name=p1", status=200).json()["projects"]] == [p["id"]]
    assert admin("GET", "/projects?domain_id=nope", status=200).json()["projects"] == []
    r = admin("POST", "/projects", {"project": {"name": "p1"}}, 409).json()
    assert r["error"]["title"] == "Conflict" and "Duplicate entry" in r["error"]["message"]
    upd = admin("PATCH", f"/projects/{p['id']}", {"project": {"description": "x", "enabled": False}}, 200)
    assert upd.json()["project"]["description"] == "x" and upd.json()["project"]["enabled"] is False
    admin("DELETE", f"/projects/{p['id']}", status=204)
    r = admin("GET", f"/projects/{p['id']}", status=404).json()
    assert r["error"] == {"code": 404, "title": "Not Found", "message": f"Could not find project: {p['id']}."}
    admin("DELETE", f"/projects/{p['id']}", status=404)


def test_bad_bodies_are_400(admin: Api) -> None:
    admin("POST", "/projects", {"name": "x"}, 400)
    admin("POST", "/projects", {"project": {}}, 400)
    admin("POST", "/projects", {"project": {"name": 5}}, 400)
    admin("POST", "/projects", {"project": {"name": "x", "enabled": "yes"}}, 400)
    admin("POST", "/projects", {"project": {"name": "x", "domain_id": "nope"}}, 404)
    admin("POST", "/users", {"user": {"name": "x", "password": 5}}, 400)


def test_user_crud_and_login(any_node: Node) -> None:
    node, admin = any_node, Api(any_node, "admin", "admin")
    project = admin("POST", "/projects", {"project": {"name": "p2"}}, 201).json()["project"]
    body = {"user": {"name": "u1", "password": "pw1", "default_project_id": project["id"], "email": "u@x"}}
    user = admin("POST", "/users", body, 201).json()["user"]
    assert "password" not in user and user["email"] == "u@x" and user["domain_id"] == "default"
    assert user["default_project_id"] == project["id"]
    admin("POST", "/users", {"user": {"name": "u1", "password": "z"}}, 409)
    assert token_for(node, "u1", "pw1", project["id"]).status_code == 401  # no role yet
    admin("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{role_id(admin, 'member')}", status=204)
    r = token_for(node, "u1", "pw1", project["id"])
    assert r.status_code == 201
    token = r.headers["x-subject-token"]
    # The user reads itself and its projects, but is no admin.
    me = {"X-Auth-Token": token}
    c = node.client()
    assert c.get(f"{V3}/users/{user['id']}", headers=me).status_code == 200
    assert c.get(f"{V3}/projects/{project['id']}", headers=me).status_code == 200
    assert [p["id"] for p in c.get(f"{V3}/users/{user['id']}/projects", headers=me).json()["projects"]] == [
        project["id"]
    ]
    assert c.get(f"{V3}/users", headers=me).status_code == 403
    # A password change revokes the user's tokens.
    admin("PATCH", f"/users/{user['id']}", {"user": {"password": "pw2"}}, 200)
    assert c.get(f"{V3}/users/{user['id']}", headers=me).status_code == 401
    assert token_for(node, "u1", "pw1", project["id"]).status_code == 401
    assert token_for(node, "u1", "pw2", project["id"]).status_code == 201
    # Disabling refuses new tokens.
    admin("PATCH", f"/users/{user['id']}", {"user": {"enabled": False}}, 200)
    assert token_for(node, "u1", "pw2", project["id"]).status_code == 401
    admin("DELETE", f"/users/{user['id']}", status=204)
    admin("GET", f"/users/{user['id']}", status=404)
    assert [u["name"] for u in admin("GET", "/users?name=demo", status=200).json()["users"]] == ["demo"]


def test_self_service_password_change(node: Node, admin: Api) -> None:
    user = admin("POST", "/users", {"user": {"name": "u3", "password": "old"}}, 201).json()["user"]
    c = node.client()
    url = f"{V3}/users/{user['id']}/password"
    assert c.post(url, json={"user": {"original_password": "bad", "password": "new"}}).status_code == 401
    assert c.post(url, json={"user": {"original_password": "old", "password": "new"}}).status_code == 204
    unscoped = password_body("u3", "new")
    assert c.post(f"{V3}/auth/tokens", json=unscoped).status_code == 201


def test_roles(admin: Api) -> None:
    names = {r["name"] for r in admin("GET", "/roles", status=200).json()["roles"]}
    assert names == {"admin", "manager", "member", "reader", "service"}
    role = admin("POST", "/roles", {"role": {"name": "auditor"}}, 201).json()["role"]
    assert role["domain_id"] is None and role["links"]["self"].endswith(f"/v3/roles/{role['id']}")
    admin("POST", "/roles", {"role": {"name": "auditor"}}, 409)
    assert (
        admin("PATCH", f"/roles/{role['id']}", {"role": {"description": "d"}}, 200).json()["role"][
            "description"
        ]
        == "d"
    )
    admin("DELETE", f"/roles/{role['id']}", status=204)
    inferences = admin("GET", "/role_inferences", status=200).json()["role_inferences"]
    pairs = {(i["prior_role"]["name"], j["name"]) for i in inferences for j in i["implies"]}
    assert pairs == {("admin", "member"), ("manager", "member"), ("member", "reader")}


def test_domains(any_node: Node) -> None:
    node, admin = any_node, Api(any_node, "admin", "admin")
    assert admin("GET", "/domains?name=Default", status=200).json()["domains"][0]["id"] == "default"
    d = admin("POST", "/domains", {"domain": {"name": "d2", "description": "two"}}, 201).json()["domain"]
    p = admin("POST", "/projects", {"project": {"name": "dp", "domain_id": d["id"]}}, 201).json()["project"]
    u = admin("POST", "/users", {"user": {"name": "du", "domain_id": d["id"], "password": "pw"}}, 201).json()[
        "user"
    ]
    admin("PUT", f"/projects/{p['id']}/users/{u['id']}/roles/{role_id(admin, 'member')}", status=204)
    r = node.client().post(f"{V3}/auth/tokens", json=password_body("du", "pw", "dp", domain={"name": "d2"}))
    assert r.status_code == 201
    token = r.headers["x-subject-token"]
    r = admin("DELETE", f"/domains/{d['id']}", status=403).json()
    assert r["error"]["message"] == "Cannot delete a domain that is enabled, please disable it first."
    admin("PATCH", f"/domains/{d['id']}", {"domain": {"enabled": False}}, 200)
    # Disabling the domain revokes its users' tokens.
    assert node.client().get(f"{V3}/auth/projects", headers={"X-Auth-Token": token}).status_code == 401
    admin("DELETE", f"/domains/{d['id']}", status=204)
    admin("GET", f"/projects/{p['id']}", status=404)
    admin("GET", f"/users/{u['id']}", status=404)
    admin("DELETE", "/domains/default", status=403)
    admin("PATCH", "/domains/default", {"domain": {"enabled": False}}, 403)


def test_grants_and_role_assignments(any_node: Node) -> None:
    node, admin = any_node, Api(any_node, "admin", "admin")
    p = admin("POST", "/projects", {"project": {"name": "gp"}}, 201).json()["project"]
    u = admin("POST", "/users", {"user": {"name": "gu", "password": "pw"}}, 201).json()["user"]
    member = role_id(admin, "member")
    grant = f"/projects/{p['id']}/users/{u['id']}/roles/{member}"
    admin("HEAD", grant, status=404)
    admin("PUT", grant, status=204)
    admin("PUT", grant, status=204)  # idempotent
    admin("HEAD", grant, status=204)
    admin("GET", grant, status=204)
    roles = admin("GET", f"/projects/{p['id']}/users/{u['id']}/roles", status=200).json()["roles"]
    assert [r["name"] for r in roles] == ["member"]
    admin("PUT", f"/projects/{p['id']}/users/{u['id']}/roles/nope", status=404)
    admin("PUT", f"/projects/nope/users/{u['id']}/roles/{member}", status=404)

    listing = admin("GET", f"/role_assignments?user.id={u['id']}", status=200).json()["role_assignments"]
    assert listing == [
        {
            "role": {"id": member},
            "user": {"id": u["id"]},
            "scope": {"project": {"id": p["id"]}},
            "links": {"assignment": f"http://testserver/identity/v3{grant}"},
        }
    ]
    named = admin("GET", f"/role_assignments?scope.project.id={p['id']}&include_names", status=200).json()
    (a,) = named["role_assignments"]
    assert a["role"]["name"] == "member" and a["user"]["name"] == "gu"
    assert a["scope"]["project"] == {
        "id": p["id"],
        "name": "gp",
        "domain": {"id": "default", "name": "Default"},
    }
    effective = admin(
        "GET", f"/role_assignments?user.id={u['id']}&effective&include_names", status=200
    ).json()
    assert sorted(x["role"]["name"] for x in effective["role_assignments"]) == ["member", "reader"]
    by_role = admin("GET", f"/role_assignments?role.id={role_id(admin, 'admin')}", status=200).json()
    assert {x["user"]["id"] for x in by_role["role_assignments"]} == {admin.user_id}

    token = token_for(node, "gu", "pw", p["id"]).headers["x-subject-token"]
    admin("DELETE", grant, status=204)
    admin("DELETE", grant, status=404)
    # The removed role leaves the user's tokens.
    assert node.client().get(f"{V3}/auth/projects", headers={"X-Auth-Token": token}).status_code == 401
    assert token_for(node, "gu", "pw", p["id"]).status_code == 401


def test_deleting_a_project_revokes_its_tokens(node: Node, admin: Api, demo: Api) -> None:
    admin("DELETE", f"/projects/{demo.project_id}", status=204)
    assert demo("GET", "/auth/projects").status_code == 401


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("GET", "/projects", None),
        ("POST", "/projects", {"project": {"name": "x"}}),
        ("GET", "/users", None),
        ("POST", "/users", {"user": {"name": "x"}}),
        ("GET", "/roles", None),
        ("POST", "/roles", {"role": {"name": "x"}}),
        ("GET", "/domains?name=Default", None),
        ("POST", "/domains", {"domain": {"name": "x"}}),
        ("GET", "/role_assignments", None),
        ("PATCH", "/projects/x", {"project": {"name": "y"}}),
        ("DELETE", "/users/x", None),
        ("PUT", "/projects/x/users/y/roles/z", None),
        ("GET", "/projects/other", None),
        ("GET", "/users/other", None),
    ],
)
def test_non_admin_is_403(demo: Api, method: str, path: str, body: Any) -> None:
    r = demo(method, path, body, 403)
    err = r.json()["error"]
    assert err["code"] == 403 and err["title"] == "Forbidden"
    assert err["message"].startswith("You are not authorized to perform the requested action: identity:")


def test_unknown_paths_answer_keystone_json(admin: Api) -> None:
    r = admin("GET", "/nothing-here", status=404)
    assert r.json()["error"]["code"] == 404
    r = admin("PUT", "/projects", status=405)
    assert r.json()["error"]["title"] == "Method Not Allowed"


def test_no_token_is_401(node: Node) -> None:
    r = node.client().get(f"{V3}/projects")
    assert r.status_code == 401 and "www-authenticate" in r.headers


def test_tempest_dynamic_credentials_flow(node: Node, admin: Api) -> None:
    """Section C of the tempest README, call by call."""
    domain = admin("GET", "/domains?name=Default", status=200).json()["domains"][0]
    project = admin(
        "POST",
        "/projects",
        {
            "project": {
                "name": "tempest-Rbac-123",
                "description": "tempest-Rbac-123-desc",
                "domain_id": domain["id"],
            }
        },
        201,
    ).json()["project"]
    user = admin(
        "POST",
        "/users",
        {"user": {"name": "tempest-Rbac-user", "password": "pw", "domain_id": domain["id"]}},
        201,
    ).json()["user"]
    roles = {r["name"].lower(): r["id"] for r in admin("GET", "/roles", status=200).json()["roles"]}
    admin("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{roles['member']}", status=204)
    body = password_body(user["id"], "pw", project["id"], by_id=True, domain={"id": "default"})
    r = node.client().post(f"{V3}/auth/tokens", json=body)
    assert r.status_code == 201
    assert r.json()["token"]["project"]["name"] == "tempest-Rbac-123"
    admin("DELETE", f"/users/{user['id']}", status=204)
    admin("DELETE", f"/projects/{project['id']}", status=204)
