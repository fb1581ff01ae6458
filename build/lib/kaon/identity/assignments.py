"""Role assignments (grants) of users on projects and domains.

A grant is (user, target, role) with target a project or a domain. The
roles a token carries are the *effective* ones: the granted roles plus the
ones they imply (:mod:`kaon.identity.roles`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select

from kaon.db import identity_tables as t
from kaon.identity import roles as implication
from kaon.identity import store
from kaon.identity.errors import EntityNotFound
from kaon.identity.store import Row

TARGETS = {"project": (t.projects, "project"), "domain": (t.domains, "domain")}


@dataclass(frozen=True)
class Grant:
    user_id: str
    target_type: str
    target_id: str
    role_id: str


def _check(conn: Connection, g: Grant) -> None:
    table, entity = TARGETS[g.target_type]
    store.get(conn, table, entity, g.target_id)
    store.get(conn, t.users, "user", g.user_id)
    store.get(conn, t.roles, "role", g.role_id)


def _where(g: Grant) -> list[ColumnElement[bool]]:
    a = t.assignments
    return [
        a.c.user_id == g.user_id,
        a.c.target_type == g.target_type,
        a.c.target_id == g.target_id,
        a.c.role_id == g.role_id,
    ]


def has(conn: Connection, g: Grant) -> bool:
    _check(conn, g)
    count = conn.execute(select(func.count()).select_from(t.assignments).where(*_where(g))).scalar()
    return bool(count)


def grant(conn: Connection, g: Grant) -> None:
    """Add a grant; granting twice is not an error (Keystone answers 204 too)."""
    if not has(conn, g):
        conn.execute(insert(t.assignments).values(**g.__dict__))


def revoke(conn: Connection, g: Grant) -> None:
    if not has(conn, g):
        raise EntityNotFound(entity="role assignment", id=f"{g.role_id} for user {g.user_id}")
    conn.execute(delete(t.assignments).where(*_where(g)))


def roles_of(conn: Connection, user_id: str, target_type: str, target_id: str) -> list[Row]:
    """The roles granted directly to ``user_id`` on the target."""
    table, entity = TARGETS[target_type]
    store.get(conn, table, entity, target_id)
    store.get(conn, t.users, "user", user_id)
    a, r = t.assignments, t.roles
    query = (
        select(r)
        .join(a, a.c.role_id == r.c.id)
        .where(a.c.user_id == user_id, a.c.target_type == target_type, a.c.target_id == target_id)
        .order_by(r.c.name)
    )
    return [dict(row._mapping) for row in conn.execute(query)]


def effective_roles(
    conn: Connection, user_id: str, target_type: str, target_id: str
) -> list[tuple[str, str]]:
    """(id, name) of every role the user holds on the target, implied ones included."""
    direct = roles_of(conn, user_id, target_type, target_id)
    if not direct:
        return []
    names = implication.effective(row["name"] for row in direct)
    by_name = {row.name.lower(): row for row in conn.execute(select(t.roles))}
    found = {(by_name[n].id, by_name[n].name) for n in names if n in by_name}
    return sorted(found, key=lambda ref: ref[1])


def list_grants(
    conn: Connection,
    *,
    user_id: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    role_id: str | None = None,
) -> list[Grant]:
    a = t.assignments
    query = select(a).order_by(a.c.target_type, a.c.target_id, a.c.user_id, a.c.role_id)
    for column, value in (
        (a.c.user_id, user_id),
        (a.c.target_type, target_type),
        (a.c.target_id, target_id),
        (a.c.role_id, role_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return [Grant(r.user_id, r.target_type, r.target_id, r.role_id) for r in conn.execute(query)]


def expand(conn: Connection, grants: list[Grant]) -> list[Grant]:
    """Add the grants implied by each grant's role (``effective`` listings)."""
    roles = {row.id: row.name.lower() for row in conn.execute(select(t.roles))}
    by_name = {name: id_ for id_, name in roles.items()}
    out: dict[Grant, None] = {}
    for g in grants:
        out[g] = None
        for name in implication.effective([roles.get(g.role_id, "")]):
            if name in by_name:
                out[Grant(g.user_id, g.target_type, g.target_id, by_name[name])] = None
    return list(out)


def targets_of_user(conn: Connection, user_id: str, target_type: str, *, enabled_only: bool) -> list[Row]:
    """Projects (or domains) on which ``user_id`` holds any role."""
    table, _entity = TARGETS[target_type]
    a = t.assignments
    ids = select(a.c.target_id).where(a.c.user_id == user_id, a.c.target_type == target_type)
    query = select(table).where(table.c.id.in_(ids)).order_by(table.c.name)
    if enabled_only:
        query = query.where(table.c.enabled.is_(True))
    return [store.as_row(row) for row in conn.execute(query)]
