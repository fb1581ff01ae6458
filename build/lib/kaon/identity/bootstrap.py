"""First-start provisioning of the embedded identity service (idempotent).

Creates what an all-in-one node and tempest's pre-provisioned accounts
need: the ``Default`` domain, the default roles, and

=============  ==========  =========================================
user           project     roles
=============  ==========  =========================================
admin          admin       admin (and admin on the Default domain)
demo           demo        member
demo_reader    demo        reader
alt_demo       alt_demo    member
=============  ==========  =========================================

Running it again changes nothing, except that a password passed in
explicitly replaces the stored one (the way ``keystone-manage bootstrap``
resets the admin password).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, Engine, select

from kaon.db import identity_tables as t
from kaon.db.engine import write_txn
from kaon.identity import assignments, store
from kaon.identity.assignments import Grant
from kaon.identity.passwords import hash_password, verify_password
from kaon.identity.roles import DEFAULT_ROLES
from kaon.identity.store import DEFAULT_DOMAIN_ID, Row

# user -> (project, role)
ACCOUNTS: dict[str, tuple[str, str]] = {
    "admin": ("admin", "admin"),
    "demo": ("demo", "member"),
    "demo_reader": ("demo", "reader"),
    "alt_demo": ("alt_demo", "member"),
}


def bootstrap(
    engine: Engine,
    admin_password: str,
    demo_password: str,
    *,
    alt_demo_password: str | None = None,
    reader_password: str | None = None,
) -> dict[str, str]:
    """Provision the node; returns ``{user name: user id}``.

    ``alt_demo`` and ``demo_reader`` share ``demo_password`` unless given
    their own.
    """
    passwords = {
        "admin": admin_password,
        "demo": demo_password,
        "alt_demo": alt_demo_password or demo_password,
        "demo_reader": reader_password or demo_password,
    }
    with write_txn(engine) as conn:
        _ensure_domain(conn)
        roles = {name: _ensure_role(conn, name)["id"] for name in DEFAULT_ROLES}
        ids = {}
        for user_name, (project_name, role) in ACCOUNTS.items():
            project = _ensure_project(conn, project_name)
            user = _ensure_user(conn, user_name, project["id"], passwords[user_name])
            assignments.grant(conn, Grant(user["id"], "project", project["id"], roles[role]))
            ids[user_name] = user["id"]
        admin_on_domain = Grant(ids["admin"], "domain", DEFAULT_DOMAIN_ID, roles["admin"])
        assignments.grant(conn, admin_on_domain)
    return ids


def _ensure_domain(conn: Connection) -> None:
    if not store.domain_exists(conn, DEFAULT_DOMAIN_ID):
        store.create_domain(
            conn, {"name": "Default", "description": "The default domain"}, id_=DEFAULT_DOMAIN_ID
        )


def _ensure_role(conn: Connection, name: str) -> Row:
    return store.find_role(conn, name) or store.create_role(conn, {"name": name})


def _ensure_project(conn: Connection, name: str) -> Row:
    p = t.projects
    row = conn.execute(select(p).where(p.c.name == name, p.c.domain_id == DEFAULT_DOMAIN_ID)).first()
    if row is not None:
        return store.as_row(row)
    return store.create_project(conn, {"name": name, "description": f"Bootstrap project {name}"})


def _ensure_user(conn: Connection, name: str, project_id: str, password: str) -> Row:
    u = t.users
    row = conn.execute(select(u).where(u.c.name == name, u.c.domain_id == DEFAULT_DOMAIN_ID)).first()
    if row is None:
        attrs: Mapping[str, object] = {"name": name, "default_project_id": project_id}
        return store.create_user(conn, attrs, hash_password(password))
    user = store.as_row(row)
    if not verify_password(password, user["password_hash"]):
        store.update_user(conn, user["id"], {}, hash_password(password))
    return user
