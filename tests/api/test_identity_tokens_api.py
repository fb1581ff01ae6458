"""Identity HTTP API: discovery and /v3/auth/tokens (what tempest and clients need)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kaon.identity import passwords
from kaon.identity.testing import Node, SyncClient, make_node, password_body
from kaon.identity.tokens import TokenData, new_audit_id

V3 = "/identity/v3"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "N", 2**8)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return make_node(tmp_path / "state")


@pytest.fixture
def client(node: Node) -> SyncClient:
    return node.client()


def issue(client: SyncClient, body: dict[str, Any], status: int = 201) -> tuple[str, dict[str, Any]]:
    r = client.post(f"{V3}/auth/tokens", json=body)
    assert r.status_code == status, r.text
    return r.headers.get("x-subject-token", ""), r.json()


def login(node: Node, client: SyncClient, user: str, project: str | None) -> tuple[str, dict[str, Any]]:
    return issue(client, password_body(user, node.passwords[user], project))


def assert_401(r: Any) -> None:
    assert r.status_code == 401, r.text
    err = r.json()["error"]
    assert err["code"] == 401 and err["title"] == "Unauthorized" and err["message"]
    assert r.headers["www-authenticate"] == 'Keystone uri="http://127.0.0.1:9696/identity"'


def test_version_discovery_honours_the_mount(client: SyncClient) -> None:
    r = client.get("/identity/")
    assert r.status_code == 300
    (v3,) = r.json()["versions"]["values"]
    assert v3["status"] == "stable" and v3["id"].startswith("v3.")
    assert v3["links"] == [{"rel": "self", "href": "http://testserver/identity/v3/"}]
    r = client.get("/identity")  # no slash: served, not redirected
    assert r.status_code == 300 and r.json()["versions"]["values"][0]["links"] == v3["links"]
    for path in (V3, V3 + "/"):
        r = client.get(path)
        assert r.status_code == 200
        assert r.json()["version"]["links"][0]["href"] == "http://testserver/identity/v3/"


def test_token_by_names_has_the_shape_tempest_reads(node: Node, client: SyncClient) -> None:
    token, body = login(node, client, "demo", "demo")
    tok = body["token"]
    assert token.startswith("k1.")
    assert tok["methods"] == ["password"]
    assert tok["user"]["name"] == "demo"
    assert tok["user"]["domain"] == {"id": "default", "name": "Default"}
    assert tok["user"]["password_expires_at"] is None
    assert tok["project"]["name"] == "demo"
    assert tok["project"]["domain"] == {"id": "default", "name": "Default"}
    assert sorted(r["name"] for r in tok["roles"]) == ["member", "reader"]
    assert all(len(r["id"]) == 32 for r in tok["roles"])
    expires = datetime.strptime(tok["expires_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    issued = datetime.strptime(tok["issued_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert 3590 < (expires - issued).total_seconds() <= 3600  # Keystone's [token] expiration default
    services = {s["type"]: s for s in tok["catalog"]}
    assert set(services) == {"network", "identity"}
    for service in services.values():
        assert {e["interface"] for e in service["endpoints"]} == {"public", "internal", "admin"}
        for e in service["endpoints"]:
            assert set(e) == {"id", "interface", "region", "region_id", "url"}
            assert e["region"] == e["region_id"] == "RegionOne"
    assert {e["url"] for e in services["network"]["endpoints"]} == {"http://127.0.0.1:9696"}
    assert {e["url"] for e in services["identity"]["endpoints"]} == {"http://127.0.0.1:9696/identity"}


def test_token_by_ids_with_domain_name_or_id(node: Node, client: SyncClient) -> None:
    _, named = login(node, client, "alt_demo", "alt_demo")
    user_id, project_id = named["token"]["user"]["id"], named["token"]["project"]["id"]
    pw = node.passwords["alt_demo"]
    for domain in ({"name": "Default"}, {"id": "default"}):
        _, body = issue(client, password_body(user_id, pw, project_id, by_id=True, domain=domain))
        assert body["token"]["project"]["id"] == project_id
        assert body["token"]["user"]["name"] == "alt_demo"


def test_admin_token_roles_are_effective(node: Node, client: SyncClient) -> None:
    _, body = login(node, client, "admin", "admin")
    assert sorted(r["name"] for r in body["token"]["roles"]) == ["admin", "member", "reader"]
    _, body = login(node, client, "demo_reader", "demo")
    assert [r["name"] for r in body["token"]["roles"]] == ["reader"]


@pytest.mark.parametrize(
    "user,password,project",
    [
        ("demo", "wrong", "demo"),  # bad password
        ("nobody", "x", "demo"),  # unknown user
        ("demo", None, "alt_demo"),  # no role on the project
        ("demo", None, "no-such-project"),
    ],
)
def test_refused_authentication_is_401(
    node: Node, client: SyncClient, user: str, password: str | None, project: str
) -> None:
    body = password_body(user, password or node.passwords[user], project)
    assert_401(client.post(f"{V3}/auth/tokens", json=body))


def test_malformed_request_is_400(client: SyncClient) -> None:
    bodies: list[dict[str, Any]] = [
        {},
        {"auth": {}},
        {"auth": {"identity": {"methods": ["password"]}}},
        {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo"}}}}},
    ]
    for body in bodies:
        r = client.post(f"{V3}/auth/tokens", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["title"] == "Bad Request"
    r = client.post(f"{V3}/auth/tokens", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_unscoped_default_project_and_domain_scope(node: Node, client: SyncClient) -> None:
    pw = node.passwords["demo"]
    # No scope: the default project (bootstrap sets it) when the user has a role there.
    _, body = issue(client, password_body("demo", pw))
    assert body["token"]["project"]["name"] == "demo"
    unscoped = password_body("demo", pw)
    unscoped["auth"]["scope"] = "unscoped"
    token, body = issue(client, unscoped)
    assert "project" not in body["token"] and "catalog" not in body["token"] and "roles" not in body["token"]
    # The admin holds admin on the Default domain; demo holds nothing there.
    scope = {"domain": {"name": "Default"}}
    admin = password_body("admin", node.passwords["admin"])
    admin["auth"]["scope"] = scope
    _, body = issue(client, admin)
    assert body["token"]["domain"] == {"id": "default", "name": "Default"}
    assert "admin" in {r["name"] for r in body["token"]["roles"]}
    demo = password_body("demo", pw)
    demo["auth"]["scope"] = scope
    assert_401(client.post(f"{V3}/auth/tokens", json=demo))


def test_rescope_with_the_token_method(node: Node, client: SyncClient) -> None:
    unscoped = password_body("demo", node.passwords["demo"])
    unscoped["auth"]["scope"] = "unscoped"
    token, first = issue(client, unscoped)
    body: dict[str, Any] = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": token}},
            "scope": {"project": {"name": "demo", "domain": {"id": "default"}}},
        }
    }
    _, scoped = issue(client, body)
    assert scoped["token"]["project"]["name"] == "demo"
    assert scoped["token"]["expires_at"] <= first["token"]["expires_at"]
    body["auth"]["identity"]["token"]["id"] = "k1.bad.token"
    assert_401(client.post(f"{V3}/auth/tokens", json=body))


def test_validate_and_revoke(node: Node, client: SyncClient) -> None:
    admin, _ = login(node, client, "admin", "admin")
    demo, issued = login(node, client, "demo", "demo")
    alt, _ = login(node, client, "alt_demo", "alt_demo")
    check = {"X-Auth-Token": admin, "X-Subject-Token": demo}
    r = client.get(f"{V3}/auth/tokens", headers=check)
    assert r.status_code == 200
    assert r.headers["x-subject-token"] == demo
    assert r.json()["token"]["audit_ids"] == issued["token"]["audit_ids"]
    r = client.get(f"{V3}/auth/tokens?nocatalog", headers=check)
    assert "catalog" not in r.json()["token"]
    assert client.head(f"{V3}/auth/tokens", headers=check).status_code == 200
    # A token may check itself; another non-admin user may not.
    assert (
        client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": demo}).status_code
        == 200
    )
    r = client.get(f"{V3}/auth/tokens", headers={"X-Auth-Token": alt, "X-Subject-Token": demo})
    assert r.status_code == 403 and r.json()["error"]["title"] == "Forbidden"
    assert_401(client.get(f"{V3}/auth/tokens", headers={"X-Subject-Token": demo}))
    # Revoke: the token stops working, others do not.
    assert (
        client.delete(
            f"{V3}/auth/tokens", headers={"X-Auth-Token": demo, "X-Subject-Token": demo}
        ).status_code
        == 204
    )
    assert client.get(f"{V3}/auth/tokens", headers=check).status_code == 404
    assert client.head(f"{V3}/auth/tokens", headers=check).status_code == 404
    assert_401(client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": demo}))
    assert client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": alt}).status_code == 200


def test_expired_token_is_refused(node: Node, client: SyncClient) -> None:
    _, body = login(node, client, "demo", "demo")
    tok = body["token"]
    now = time.time()
    stale = node.validator.issue(
        TokenData(
            user=(tok["user"]["id"], "demo"),
            user_domain=("default", "Default"),
            issued_at=now - 7200,
            expires_at=now - 1,
            audit_id=new_audit_id(),
            project=(tok["project"]["id"], "demo"),
            project_domain=("default", "Default"),
            roles=(("x", "member"),),
        )
    )
    assert_401(client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": stale}))


def test_auth_projects_domains_catalog(node: Node, client: SyncClient) -> None:
    demo, _ = login(node, client, "demo", "demo")
    r = client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": demo})
    assert [p["name"] for p in r.json()["projects"]] == ["demo"]
    assert r.json()["links"]["self"].endswith("/identity/v3/auth/projects")
    assert client.get(f"{V3}/auth/domains", headers={"X-Auth-Token": demo}).json()["domains"] == []
    admin, _ = login(node, client, "admin", "admin")
    r = client.get(f"{V3}/auth/domains", headers={"X-Auth-Token": admin})
    assert [d["id"] for d in r.json()["domains"]] == ["default"]
    r = client.get(f"{V3}/auth/catalog", headers={"X-Auth-Token": demo})
    assert {s["type"] for s in r.json()["catalog"]} == {"network", "identity"}


def test_token_survives_a_restart_with_the_same_key(node: Node, tmp_path: Path) -> None:
    token, _ = login(node, node.client(), "demo", "demo")
    again = make_node(tmp_path / "state")  # same state dir: same key, same database
    r = again.client().get(f"{V3}/auth/projects", headers={"X-Auth-Token": token})
    assert r.status_code == 200
