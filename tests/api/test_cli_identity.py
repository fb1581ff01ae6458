"""The embedded identity service through the real ``openstack`` CLI.

A live ``python -m kaon server`` with ``auth_strategy = kaon`` per database
(SQLite, PostgreSQL) for the module: tokens for the bootstrap accounts,
the admin's project/user/role commands, a new user's own ``clouds.yaml``,
project isolation on the Networking API, and a wrong password.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures import (
    KaonServer,
    OpenStackCLI,
    create_pg_database,
    drop_pg_database,
    find_openstack,
    require,
    start_kaon_server,
)

pytestmark = pytest.mark.needs_cli

ADMIN = "kaon-admin"
DEMO = "kaon-demo"
ALT = "kaon-alt-demo"


@dataclass
class Node:
    server: KaonServer
    cli: OpenStackCLI
    workdir: Path

    def clouds(self) -> dict[str, Any]:
        return yaml.safe_load(self.server.clouds_yaml.read_text())["clouds"]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="pg", marks=pytest.mark.needs_postgres),
    ],
)
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    binary = find_openstack()
    require(binary, "python-openstackclient not installed (run scripts/bootstrap.sh)")
    workdir: Path = tmp_path_factory.mktemp(f"cli-identity-{request.param}")
    db_url = None
    if request.param == "postgresql":
        db_url = create_pg_database(request.getfixturevalue("postgres_server"), prefix="cli_identity")
    try:
        with start_kaon_server(workdir / "srv", db_url, auth_strategy="kaon") as srv:
            yield Node(srv, OpenStackCLI(srv.clouds_yaml, cloud=ADMIN, binary=binary), workdir)
    finally:
        if db_url is not None:
            try:
                drop_pg_database(db_url)
            except Exception:  # the cluster may be gone already
                pass


def _expires(value: str) -> datetime:
    # OSC prints e.g. 2026-11-21T18:07:12+0000
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")


def test_clouds_yaml_has_the_three_clouds(node: Node) -> None:
    clouds = node.clouds()
    assert set(clouds) >= {ADMIN, DEMO, ALT}
    for name, (user, project) in {ADMIN: ("admin", "admin"), DEMO: ("demo", "demo"),
                                  ALT: ("alt_demo", "alt_demo")}.items():  # fmt: skip
        auth = clouds[name]["auth"]
        assert auth["username"] == user and auth["project_name"] == project
        assert auth["auth_url"] == f"{node.server.url}/identity/v3"
        assert auth["password"]
    assert node.server.clouds_yaml.stat().st_mode & 0o077 == 0  # it holds passwords


def test_token_issue_for_admin_and_demo(node: Node) -> None:
    admin = node.cli.json("token", "issue", cloud=ADMIN)
    demo = node.cli.json("token", "issue", cloud=DEMO)
    for tok in (admin, demo):
        assert tok["id"] and tok["project_id"] and tok["user_id"]
        assert _expires(tok["expires"]) > datetime.now(UTC)
    assert admin["id"] != demo["id"]
    assert admin["project_id"] != demo["project_id"]
    assert admin["user_id"] != demo["user_id"]


def test_admin_lists_projects_and_users(node: Node) -> None:
    projects = {p["Name"]: p["ID"] for p in node.cli.json("project", "list", cloud=ADMIN)}
    assert {"admin", "demo", "alt_demo"} <= set(projects)
    users = {u["Name"] for u in node.cli.json("user", "list", cloud=ADMIN)}
    assert {"admin", "demo", "alt_demo", "demo_reader"} <= users
    # Not for a member, though.
    res = node.cli.fails("user", "list", cloud=DEMO)
    assert "403" in res.stderr and "identity:list_users" in res.stderr, res


def test_new_project_user_and_member_role_give_a_working_cloud(node: Node) -> None:
    project = node.cli.json(
        "project", "create", "--description", "made by the CLI test", "cli-project", cloud=ADMIN
    )
    assert project["name"] == "cli-project" and project["enabled"] is True
    assert project["domain_id"] == "default"
    user = node.cli.json(
        "user", "create", "--password", "s3cret-pw", "--project", "cli-project", "cli-user", cloud=ADMIN
    )
    assert user["name"] == "cli-user"
    assert user["default_project_id"] == project["id"]
    assert "password" not in user

    clouds = node.clouds()
    auth = dict(clouds[DEMO]["auth"], username="cli-user", password="s3cret-pw", project_name="cli-project")
    path = node.workdir / "cli-user-clouds.yaml"
    path.write_text(yaml.safe_dump({"clouds": {"cli-user": dict(clouds[DEMO], auth=auth)}}))
    mine = OpenStackCLI(path, cloud="cli-user", binary=node.cli.binary)

    # No role on the project yet: no project-scoped token.
    res = mine.fails("token", "issue")
    assert "401" in res.stderr or "authenticat" in res.stderr.lower(), res

    node.cli.ok("role", "add", "--user", "cli-user", "--project", "cli-project", "member", cloud=ADMIN)
    rows = node.cli.json(
        "role", "assignment", "list", "--user", "cli-user", "--project", "cli-project", "--names", cloud=ADMIN
    )
    assert [(r["Role"], r["User"], r["Project"]) for r in rows] == [
        ("member", "cli-user@Default", "cli-project@Default")
    ]

    tok = mine.json("token", "issue")
    assert tok["project_id"] == project["id"] and tok["user_id"] == user["id"]
    assert mine.json("network", "list") is not None
    net = mine.json("network", "create", "cli-user-net")
    assert net["project_id"] == project["id"]
    assert "cli-user-net" in {n["Name"] for n in mine.json("network", "list")}
    # ... and the demo project does not see it.
    assert "cli-user-net" not in {n["Name"] for n in node.cli.json("network", "list", cloud=DEMO)}


def test_demo_sees_no_admin_only_networks(node: Node) -> None:
    private = node.cli.json("network", "create", "admin-only-net", cloud=ADMIN)
    node.cli.json("network", "create", "--share", "admin-shared-net", cloud=ADMIN)
    demo_net = node.cli.json("network", "create", "demo-only-net", cloud=DEMO)

    as_admin = {n["Name"] for n in node.cli.json("network", "list", cloud=ADMIN)}
    assert {"admin-only-net", "admin-shared-net", "demo-only-net"} <= as_admin  # admin sees all
    as_demo = {n["Name"] for n in node.cli.json("network", "list", cloud=DEMO)}
    assert "admin-shared-net" in as_demo and "demo-only-net" in as_demo
    assert "admin-only-net" not in as_demo
    as_alt = {n["Name"] for n in node.cli.json("network", "list", cloud=ALT)}
    assert "admin-shared-net" in as_alt
    assert "admin-only-net" not in as_alt and "demo-only-net" not in as_alt

    res = node.cli.fails("network", "show", private["id"], cloud=DEMO)
    assert "No Network found" in res.stderr, res
    res = node.cli.fails("network", "delete", demo_net["id"], cloud=ALT)
    assert f"No Network found for {demo_net['id']}" in res.stderr, res


def test_wrong_password_is_an_auth_error(node: Node) -> None:
    res = node.cli.fails("--os-password", "not-the-password", "network", "list", cloud=DEMO)
    assert "requires authentication" in res.stderr and "401" in res.stderr, res
    assert "Traceback" not in res.stderr, res
    res = node.cli.fails("--os-username", "nobody-here", "token", "issue", cloud=DEMO)
    assert "401" in res.stderr, res
