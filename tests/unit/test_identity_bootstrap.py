"""Bootstrap idempotence, stored passwords, client files."""

from __future__ import annotations

import stat
from pathlib import Path

import orjson
import pytest
import yaml  # type: ignore[import-untyped]
from sqlalchemy import Engine, func, select

from kaon.db import identity_tables as t
from kaon.db.engine import make_engine, read_txn
from kaon.db.meta import metadata
from kaon.identity import bootstrap, ensure_passwords, write_client_files
from kaon.identity.passwords import verify_password


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    metadata.create_all(engine, tables=list(t.TABLES))
    return engine


def counts(engine: Engine) -> dict[str, int]:
    with read_txn(engine) as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in t.TABLES
        }


def names(engine: Engine, table) -> set[str]:  # type: ignore[no-untyped-def]
    with read_txn(engine) as conn:
        return set(conn.execute(select(table.c.name)).scalars())


def test_bootstrap_creates_the_node_accounts(engine: Engine) -> None:
    ids = bootstrap(engine, "adminpw", "demopw")
    assert set(ids) == {"admin", "demo", "demo_reader", "alt_demo"}
    assert names(engine, t.domains) == {"Default"}
    assert names(engine, t.roles) == {"admin", "manager", "member", "reader", "service"}
    assert names(engine, t.projects) == {"admin", "demo", "alt_demo"}
    with read_txn(engine) as conn:
        domain = conn.execute(select(t.domains)).one()
        rows = conn.execute(
            select(t.users.c.name, t.projects.c.name, t.roles.c.name)
            .join(t.assignments, t.assignments.c.user_id == t.users.c.id)
            .join(t.roles, t.roles.c.id == t.assignments.c.role_id)
            .join(t.projects, t.projects.c.id == t.assignments.c.target_id)
        ).all()
        hashes = dict(conn.execute(select(t.users.c.name, t.users.c.password_hash)).all())
    assert domain.id == "default"
    assert sorted(map(tuple, rows)) == [
        ("admin", "admin", "admin"),
        ("alt_demo", "alt_demo", "member"),
        ("demo", "demo", "member"),
        ("demo_reader", "demo", "reader"),
    ]
    assert verify_password("adminpw", hashes["admin"])
    assert verify_password("demopw", hashes["alt_demo"])


def test_bootstrap_is_idempotent(engine: Engine) -> None:
    first = bootstrap(engine, "adminpw", "demopw")
    before = counts(engine)
    assert bootstrap(engine, "adminpw", "demopw") == first
    assert counts(engine) == before


def test_bootstrap_resets_a_changed_password(engine: Engine) -> None:
    bootstrap(engine, "adminpw", "demopw")
    bootstrap(engine, "newpw", "demopw", reader_password="readerpw")
    with read_txn(engine) as conn:
        hashes = dict(conn.execute(select(t.users.c.name, t.users.c.password_hash)).all())
    assert verify_password("newpw", hashes["admin"])
    assert verify_password("readerpw", hashes["demo_reader"])


def test_passwords_generated_once_and_kept(tmp_path: Path) -> None:
    first = ensure_passwords(tmp_path)
    assert set(first) == {"admin", "demo", "alt_demo", "demo_reader"}
    assert len(set(first.values())) == 4 and all(len(p) >= 16 for p in first.values())
    path = tmp_path / "passwords.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert orjson.loads(path.read_bytes()) == first
    assert ensure_passwords(tmp_path) == first
    again = ensure_passwords(tmp_path, admin_password="given")
    assert again == {**first, "admin": "given"}
    assert ensure_passwords(tmp_path) == again


def test_client_files(tmp_path: Path) -> None:
    passwords = {"admin": "a pw'", "demo": "d", "alt_demo": "x", "demo_reader": "r"}
    written = write_client_files(tmp_path, "http://127.0.0.1:9696/identity", passwords)
    assert set(written) == {"clouds.yaml", "admin-openrc", "demo-openrc"}
    for path in written.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    clouds = yaml.safe_load(written["clouds.yaml"].read_text())["clouds"]
    assert set(clouds) == {"kaon-admin", "kaon-demo", "kaon-alt-demo"}
    admin = clouds["kaon-admin"]
    assert admin["auth"] == {
        "auth_url": "http://127.0.0.1:9696/identity/v3",
        "username": "admin",
        "password": "a pw'",
        "project_name": "admin",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
    }
    assert admin["identity_api_version"] == 3
    assert admin["region_name"] == "RegionOne"
    assert clouds["kaon-alt-demo"]["auth"]["username"] == "alt_demo"
    assert clouds["kaon-alt-demo"]["auth"]["project_name"] == "alt_demo"
    rc = written["admin-openrc"].read_text()
    assert "export OS_AUTH_URL=http://127.0.0.1:9696/identity/v3\n" in rc
    assert "export OS_PASSWORD='a pw'\"'\"''\n" in rc
    assert "export OS_PROJECT_NAME=admin\n" in rc
    assert "export OS_USERNAME=demo\n" in written["demo-openrc"].read_text()
