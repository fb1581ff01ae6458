"""kaon.api.auth.AuthMiddleware with its three strategies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from kaon.api.auth import CONTEXT_KEY, AuthMiddleware
from kaon.core.context import Context
from kaon.identity import passwords
from kaon.identity.testing import Node, SyncClient, make_node, password_body
from kaon.identity.tokens import TokenData, new_audit_id
from tests.fixtures.net import free_port

IDENTITY_URI = "http://127.0.0.1:9696/identity"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "N", 2**8)


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """The network API stand-in: shows the context it was given."""
    ctx: Context | None = scope.get(CONTEXT_KEY)
    body: dict[str, Any] = {"context": None}
    if ctx is not None:
        body["context"] = {
            "user_id": ctx.user_id,
            "project_id": ctx.project_id,
            "roles": sorted(ctx.roles),
            "request_id": ctx.request_id,
            "user_name": ctx.user_name,
            "project_name": ctx.project_name,
        }
    await JSONResponse(body)(scope, receive, send)


def context(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    return r.json()["context"]


def assert_401(r: httpx.Response, uri: str) -> None:
    assert r.status_code == 401
    assert r.json() == {
        "error": {
            "code": 401,
            "title": "Unauthorized",
            "message": "The request you have made requires authentication.",
        }
    }
    assert r.headers["www-authenticate"] == f'Keystone uri="{uri}"'


def token(client: SyncClient, node: Node, user: str, project: str | None) -> tuple[str, dict[str, Any]]:
    r = client.post("/identity/v3/auth/tokens", json=password_body(user, node.passwords[user], project))
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"], r.json()["token"]


# -- noauth --------------------------------------------------------------


def test_noauth_defaults() -> None:
    c = SyncClient(AuthMiddleware(echo, "noauth"))
    ctx = context(c.get("/v2.0/networks"))
    assert ctx["project_id"] == "admin" and ctx["user_id"] == "kaon"
    assert ctx["roles"] == ["admin", "member", "reader"]
    assert ctx["request_id"].startswith("req-") and len(ctx["request_id"]) == 40


def test_noauth_headers() -> None:
    c = SyncClient(AuthMiddleware(echo, "noauth"))
    ctx = context(
        c.get("/v2.0/ports", headers={"X-Project-Id": "p1", "X-User-Id": "u1", "X-Roles": "member"})
    )
    assert (ctx["project_id"], ctx["user_id"], ctx["roles"]) == ("p1", "u1", ["member", "reader"])
    ctx = context(c.get("/v2.0/ports", headers={"X-Tenant-Id": "t1", "X-Roles": "reader, "}))
    assert (ctx["project_id"], ctx["roles"]) == ("t1", ["reader"])
    a, b = context(c.get("/")), context(c.get("/v2.0"))
    assert a is None  # the version list is public: no context
    assert b is not None


def test_unknown_strategy() -> None:
    with pytest.raises(ValueError):
        AuthMiddleware(echo, "ldap")
    with pytest.raises(TypeError):
        AuthMiddleware(echo, "kaon", None)


# -- kaon (embedded) -------------------------------------------------------


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return make_node(tmp_path / "state")


def embedded(node: Node) -> SyncClient:
    """The server's shape: identity mounted at /identity, network API at the root."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/identity"):
            await node.app(scope, receive, send)
        else:
            await echo(scope, receive, send)

    return SyncClient(AuthMiddleware(app, "kaon", node.validator, www_authenticate_uri=IDENTITY_URI))


def test_kaon_valid_token(node: Node) -> None:
    c = embedded(node)
    tok, body = token(c, node, "demo", "demo")
    ctx = context(c.get("/v2.0/networks", headers={"X-Auth-Token": tok}))
    assert ctx["user_id"] == body["user"]["id"] and ctx["project_id"] == body["project"]["id"]
    assert ctx["user_name"] == "demo" and ctx["project_name"] == "demo"
    assert ctx["roles"] == ["member", "reader"]
    admin, _ = token(c, node, "admin", "admin")
    assert context(c.get("/v2.0/networks", headers={"X-Auth-Token": admin}))["roles"] == [
        "admin",
        "member",
        "reader",
    ]


def test_kaon_refusals(node: Node) -> None:
    c = embedded(node)
    assert_401(c.get("/v2.0/networks"), IDENTITY_URI)
    assert_401(c.get("/v2.0/networks", headers={"X-Auth-Token": "nonsense"}), IDENTITY_URI)
    tok, _ = token(c, node, "demo", "demo")
    assert_401(c.get("/v2.0/networks", headers={"X-Auth-Token": tok[:-3] + "abc"}), IDENTITY_URI)
    # Unscoped tokens carry no project: useless to the network API.
    body = password_body("demo", node.passwords["demo"])
    body["auth"]["scope"] = "unscoped"
    unscoped = c.post("/identity/v3/auth/tokens", json=body).headers["x-subject-token"]
    assert_401(c.get("/v2.0/networks", headers={"X-Auth-Token": unscoped}), IDENTITY_URI)
    # Expired.
    now = time.time()
    stale = node.validator.issue(
        TokenData(
            user=("u", "demo"),
            user_domain=("default", "Default"),
            issued_at=now - 60,
            expires_at=now - 1,
            audit_id=new_audit_id(),
            project=("p", "demo"),
            project_domain=("default", "Default"),
            roles=(("r", "member"),),
        )
    )
    assert_401(c.get("/v2.0/networks", headers={"X-Auth-Token": stale}), IDENTITY_URI)
    # Revoked through the identity API.
    headers = {"X-Auth-Token": tok, "X-Subject-Token": tok}
    assert c.delete("/identity/v3/auth/tokens", headers=headers).status_code == 204
    assert_401(c.get("/v2.0/networks", headers={"X-Auth-Token": tok}), IDENTITY_URI)


def test_kaon_public_paths(node: Node) -> None:
    c = embedded(node)
    assert context(c.get("/")) is None
    assert c.get("/identity/").status_code == 300
    assert c.get("/identity/v3").status_code == 200
    assert c.post("/", json={}).status_code == 401  # only GET / is public


# -- keystone (external, through keystonemiddleware) ------------------------


@pytest.fixture
def external_keystone(tmp_path: Path) -> Iterator[Node]:
    """kaon's identity app playing an external Keystone, on a loopback port."""
    uvicorn = pytest.importorskip("uvicorn")
    port = free_port()
    node = make_node(tmp_path / "keystone", network_url=f"http://127.0.0.1:{port}")
    config = uvicorn.Config(node.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "identity server did not start"
        time.sleep(0.02)
    try:
        yield node
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_keystone_strategy_with_keystonemiddleware(external_keystone: Node) -> None:
    pytest.importorskip("keystonemiddleware")
    node = external_keystone
    identity = node.cfg.identity_root
    options = {
        "www_authenticate_uri": identity,
        "auth_url": identity,
        "auth_type": "password",
        "username": "admin",
        "password": node.passwords["admin"],
        "project_name": "admin",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "memcached_servers": "127.0.0.1:1",  # dropped: kaon turns memcache off
    }
    c = SyncClient(AuthMiddleware(echo, "keystone", options))
    with httpx.Client(base_url=node.cfg.network_root) as real:
        r = real.post("/identity/v3/auth/tokens", json=password_body("demo", node.passwords["demo"], "demo"))
        assert r.status_code == 201
        tok, body = r.headers["x-subject-token"], r.json()["token"]
    for _ in range(2):  # the second call is answered from keystonemiddleware's cache
        ctx = context(c.get("/v2.0/networks", headers={"X-Auth-Token": tok}))
        assert ctx["user_id"] == body["user"]["id"] and ctx["project_id"] == body["project"]["id"]
        assert ctx["user_name"] == "demo" and ctx["project_name"] == "demo"
        assert ctx["roles"] == ["member", "reader"]
        assert ctx["request_id"].startswith("req-")
    assert_401(c.get("/v2.0/networks", headers={"X-Auth-Token": "bad"}), identity)
    assert_401(c.get("/v2.0/networks"), identity)
    assert context(c.get("/")) is None
