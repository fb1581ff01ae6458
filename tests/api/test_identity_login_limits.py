"""Login limits of kaon's identity (issue 13, defect 6) and Keystone-compatible
name matching (issue 12, item 2):

- ``[security_compliance] lockout_failure_attempts`` / ``lockout_duration``:
  per user, Keystone's semantics; on by default in kaon;
- an unknown user costs a password hash, like a known one;
- ``[token] expiration`` sets the token lifetime (Keystone's default 3600 s);
- domain, project and user names match without regard to case (Keystone on
  MariaDB), with seed 003's ``[keystone_authtoken]`` block as written.
"""

from __future__ import annotations

import configparser
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from kaon.api.auth import AuthMiddleware
from kaon.config import ConfigError, load_config
from kaon.identity.config import options_from
from kaon.identity.lockout import LoginThrottle
from kaon.identity.testing import Node, SyncClient, make_node, password_body
from tests.api.test_identity_auth_middleware import context, echo, free_port
from tests.fixtures.net import wait_for_port

# Seed 003's block, verbatim (the install guide's neutron.conf).
SEED_003_AUTHTOKEN = """
[keystone_authtoken]
# ...
www_authenticate_uri = http://controller:5000
auth_url = http://controller:5000
memcached_servers = controller:11211
auth_type = password
project_domain_name = default
user_domain_name = default
project_name = service
username = neutron
password = NEUTRON_PASS
"""


@pytest.fixture
def node(db_url: str, tmp_path: Path) -> Node:
    """An identity node on SQLite and on PostgreSQL (``db_url`` is parametrized)."""
    return make_node(tmp_path / "id", db_url=db_url)


def login(node: Node, user: str, password: str, **kw) -> httpx.Response:
    return node.client().post("/identity/v3/auth/tokens", json=password_body(user, password, **kw))


# -- lockout ------------------------------------------------------------------
def test_lockout_after_failures_in_a_row(node: Node) -> None:
    attempts = node.cfg.lockout_failure_attempts
    assert attempts == 6
    right = node.passwords["demo"]
    for _ in range(attempts - 1):
        assert login(node, "demo", "wrong").status_code == 401
    assert login(node, "demo", right).status_code == 201  # a success resets the count
    for _ in range(attempts):
        assert login(node, "demo", "wrong").status_code == 401
    r = login(node, "demo", right)
    assert r.status_code == 401, "a locked user logged in"
    assert r.json()["error"]["message"] == "The request you have made requires authentication."
    # Per user: others are not affected.
    assert login(node, "admin", node.passwords["admin"]).status_code == 201


def test_lock_expires_after_the_duration() -> None:
    now = [1000.0]
    throttle = LoginThrottle(3, 60, clock=lambda: now[0])
    for _ in range(3):
        assert not throttle.locked("u")
        throttle.failed("u")
    assert throttle.locked("u") and not throttle.locked("v")
    now[0] += 59
    assert throttle.locked("u")
    now[0] += 2
    assert not throttle.locked("u")
    throttle.failed("u")  # the count starts again after the lock
    assert not throttle.locked("u")
    off = LoginThrottle(0, 60)
    for _ in range(100):
        off.failed("u")
    assert not off.locked("u")


def test_lockout_can_be_turned_off(tmp_path: Path) -> None:
    node = make_node(tmp_path / "id", lockout_failure_attempts=0)
    for _ in range(10):
        assert login(node, "demo", "wrong").status_code == 401
    assert login(node, "demo", node.passwords["demo"]).status_code == 201


def test_unknown_user_costs_a_hash(tmp_path: Path) -> None:
    node = make_node(tmp_path / "id", lockout_failure_attempts=0)

    def timed(user: str) -> float:
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            assert login(node, user, "wrong-password").status_code == 401
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    timed("admin")  # warm up (the dummy hash is made on first use)
    timed("nobody-at-all")
    known, unknown = timed("admin"), timed("nobody-at-all")
    assert unknown > 0.5 * known, (known, unknown)


# -- options ------------------------------------------------------------------
def test_keystone_option_names(tmp_path: Path) -> None:
    assert options_from(load_config([])) == {"token_ttl": 3600, "lockout_failure_attempts": 6,
                                             "lockout_duration": 1800}
    cfg = load_config([], {"token": {"expiration": "120"},
                           "security_compliance": {"lockout_failure_attempts": "0", "lockout_duration": "5"}})
    assert options_from(cfg) == {"token_ttl": 120, "lockout_failure_attempts": 0, "lockout_duration": 5}
    with pytest.raises(ConfigError, match="expiration"):
        options_from(load_config([], {"token": {"expiration": "0"}}))
    node = make_node(tmp_path / "id", **options_from(cfg))
    tok = login(node, "demo", node.passwords["demo"], project="demo").json()["token"]
    issued = datetime.fromisoformat(tok["issued_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(tok["expires_at"].replace("Z", "+00:00"))
    assert (expires - issued).total_seconds() == pytest.approx(120, abs=1)


# -- names ----------------------------------------------------------------------
def test_names_match_without_regard_to_case(node: Node) -> None:
    demo = node.passwords["demo"]
    for spelling in ("default", "DEFAULT", "Default"):
        r = login(node, "DEMO", demo, project="Demo", domain={"name": spelling})
        assert r.status_code == 201, r.text
        assert r.json()["token"]["project"]["name"] == "demo"
    c = node.client()
    admin_token = login(node, "admin", node.passwords["admin"], project="admin").headers["x-subject-token"]
    h = {"X-Auth-Token": admin_token}
    r = c.post("/identity/v3/projects", json={"project": {"name": "DEMO", "domain_id": "default"}}, headers=h)
    assert r.status_code == 409, r.text
    r = c.post("/identity/v3/users", json={"user": {"name": "Admin", "domain_id": "default"}}, headers=h)
    assert r.status_code == 409, r.text
    r = c.post("/identity/v3/domains", json={"domain": {"name": "dEfAuLt"}}, headers=h)
    assert r.status_code == 409, r.text
    names = [p["name"] for p in c.get("/identity/v3/projects?name=DEMO", headers=h).json()["projects"]]
    assert names == ["demo"]
    # Renaming into another's name in other case is a duplicate too.
    made = c.post("/identity/v3/projects", json={"project": {"name": "other", "domain_id": "default"}},
                  headers=h).json()["project"]
    r = c.patch(f"/identity/v3/projects/{made['id']}", json={"project": {"name": "Admin"}}, headers=h)
    assert r.status_code == 409, r.text


@pytest.fixture
def served_node(tmp_path: Path) -> Iterator[Node]:
    """kaon's identity on a loopback port (keystonemiddleware speaks HTTP)."""
    import uvicorn

    port = free_port()
    node = make_node(tmp_path / "keystone", network_url=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(node.app, host="127.0.0.1", port=port, log_level="warning",
                                          lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for_port(port, timeout=10)
    try:
        yield node
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_seed_003_keystone_authtoken_block(served_node: Node) -> None:
    pytest.importorskip("keystonemiddleware")
    node = served_node
    identity = node.cfg.identity_root
    c = node.client()
    admin_token = login(node, "admin", node.passwords["admin"], project="admin").headers["x-subject-token"]
    h = {"X-Auth-Token": admin_token}
    # The install guide's service project and neutron user, with the admin role.
    service = c.post("/identity/v3/projects", json={"project": {"name": "service", "domain_id": "default"}},
                     headers=h).json()["project"]
    neutron = c.post("/identity/v3/users", json={"user": {"name": "neutron", "domain_id": "default",
                                                          "password": "NEUTRON_PASS"}}, headers=h).json()["user"]
    roles = {r["name"]: r["id"] for r in c.get("/identity/v3/roles", headers=h).json()["roles"]}
    r = c.put(f"/identity/v3/projects/{service['id']}/users/{neutron['id']}/roles/{roles['admin']}", headers=h)
    assert r.status_code == 204, r.text
    block = configparser.ConfigParser(interpolation=None)
    block.read_string(SEED_003_AUTHTOKEN.replace("http://controller:5000", identity))
    options = dict(block["keystone_authtoken"])
    assert options["user_domain_name"] == options["project_domain_name"] == "default"
    mw = SyncClient(AuthMiddleware(echo, "keystone", options))
    tok = login(node, "demo", node.passwords["demo"], project="demo").headers["x-subject-token"]
    ctx = context(mw.get("/v2.0/networks", headers={"X-Auth-Token": tok}))
    assert ctx["user_name"] == "demo" and ctx["project_name"] == "demo"


def test_identity_crash_is_a_keystone_500(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """Answered, not raised (a raised error costs the client its connection)."""
    from kaon.identity import auth_routes

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(auth_routes, "authenticate", broken)
    r = login(node, "demo", node.passwords["demo"])
    assert r.status_code == 500
    assert r.json() == {"error": {"code": 500, "title": "Internal Server Error",
                                  "message": "An unexpected error occurred."}}
