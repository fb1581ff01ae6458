"""Domains, projects, users and roles in the database.

Names of domains, and of projects and users within a domain, match without
regard to case, as they do in Keystone on MySQL/MariaDB (its usual
database, whose default collation ignores case): install guides write
``user_domain_name = default`` for the domain named ``Default``. A name
that matches exactly wins over one that differs only in case, and a name
may not be taken twice in different cases (409, as MariaDB's unique key
would answer). Keystone on PostgreSQL is case-sensitive; kaon follows the
behaviour clients were written against.

Every function takes an open connection; the caller owns the transaction
(one per request). Rows come back as plain dicts. Deletions and disablings
return the revocation rules ``[(kind, value)]`` the caller applies once the
transaction has committed, so that no token outlives what it was issued for.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from sqlalchemy import Connection, Table, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kaon.db import identity_tables as t
from kaon.identity import schema
from kaon.identity.errors import DuplicateEntry, EntityNotFound, Forbidden, ValidationError

Row = dict[str, Any]
Revoke = list[tuple[str, str]]

DEFAULT_DOMAIN_ID = "default"

PROJECT_FIELDS = frozenset(
    {
        "id",
        "name",
        "domain_id",
        "description",
        "enabled",
        "parent_id",
        "is_domain",
        "tags",
        "options",
        "links",
    }
)
USER_FIELDS = frozenset(
    {
        "id",
        "name",
        "domain_id",
        "password",
        "enabled",
        "default_project_id",
        "description",
        "options",
        "federated",
        "links",
        "password_expires_at",
    }
)


def new_id() -> str:
    return uuid.uuid4().hex


def as_row(row: Any) -> Row:
    data = dict(row._mapping)
    if "extra" in data:
        data["extra"] = orjson.loads(data["extra"] or "{}")
    return data


def get(conn: Connection, table: Table, entity: str, id_: str) -> Row:
    row = conn.execute(select(table).where(table.c.id == id_)).first()
    if row is None:
        raise EntityNotFound(entity=entity, id=id_)
    return as_row(row)


def list_rows(conn: Connection, table: Table, filters: Mapping[str, object]) -> list[Row]:
    query = select(table).order_by(table.c.name)
    for key, value in filters.items():
        if value is None:
            continue
        if key == "name" and isinstance(value, str):
            query = query.where(func.lower(table.c.name) == value.lower())
        else:
            query = query.where(table.c[key] == value)
    return [as_row(r) for r in conn.execute(query)]


def find_named(conn: Connection, table: Table, name: object, *where: Any) -> Any:
    """The row named ``name`` (case ignored, an exact match preferred), or None;
    None too when several rows differ from ``name`` only in case."""
    if not isinstance(name, str):
        return None
    rows = conn.execute(select(table).where(func.lower(table.c.name) == name.lower(), *where)).all()
    exact = [r for r in rows if r.name == name]
    if exact:
        return exact[0]
    return rows[0] if len(rows) == 1 else None


def _name_taken(conn: Connection, table: Table, name: str, domain_id: str | None, exclude_id: str) -> bool:
    where = [func.lower(table.c.name) == name.lower(), table.c.id != exclude_id]
    if domain_id is not None and "domain_id" in table.c:
        where.append(table.c.domain_id == domain_id)
    return conn.execute(select(table.c.id).where(*where).limit(1)).first() is not None


def _insert(conn: Connection, table: Table, entity: str, values: Row, dup: str) -> Row:
    if "name" in values and _name_taken(conn, table, values["name"], values.get("domain_id"), values["id"]):
        raise DuplicateEntry(entity=entity, detail=dup)
    try:
        with conn.begin_nested():
            conn.execute(insert(table).values(**values))
    except IntegrityError as exc:
        raise DuplicateEntry(entity=entity, detail=dup) from exc
    return get(conn, table, entity, values["id"])


def _update(conn: Connection, table: Table, entity: str, id_: str, values: Row, dup: str) -> Row:
    current = get(conn, table, entity, id_)
    if "name" in values and _name_taken(conn, table, values["name"], current.get("domain_id"), id_):
        raise DuplicateEntry(entity=entity, detail=dup)
    if values:
        try:
            with conn.begin_nested():
                conn.execute(update(table).where(table.c.id == id_).values(**values))
        except IntegrityError as exc:
            raise DuplicateEntry(entity=entity, detail=dup) from exc
    return get(conn, table, entity, id_)


def _dup(name: str | None, domain_id: str | None = None) -> str:
    where = f" at domain ID {domain_id}" if domain_id else ""
    return f"Duplicate entry found with name {name}{where}"


def _common(attrs: Mapping[str, Any], *, creating: bool) -> Row:
    values: Row = {}
    name = schema.name(attrs, required=creating)
    if name is not None:
        values["name"] = name
    if "description" in attrs:
        values["description"] = schema.opt_str(attrs, "description") or ""
    enabled = schema.opt_bool(attrs, "enabled")
    if enabled is not None:
        values["enabled"] = enabled
    return values


# -- domains -------------------------------------------------------------


def find_domain(conn: Connection, ref: Mapping[str, Any]) -> Row:
    """A domain by ``{"id": ...}`` or ``{"name": ...}``."""
    if ref.get("id"):
        return get(conn, t.domains, "domain", str(ref["id"]))
    row = find_named(conn, t.domains, ref.get("name"))
    if row is None:
        raise EntityNotFound(entity="domain", id=str(ref.get("name")))
    return as_row(row)


def create_domain(conn: Connection, attrs: Mapping[str, Any], id_: str | None = None) -> Row:
    values = {"id": id_ or new_id(), "description": "", "enabled": True, **_common(attrs, creating=True)}
    return _insert(conn, t.domains, "domain", values, _dup(values["name"]))


def update_domain(conn: Connection, id_: str, attrs: Mapping[str, Any]) -> tuple[Row, Revoke]:
    values = _common(attrs, creating=False)
    if id_ == DEFAULT_DOMAIN_ID and values.get("enabled") is False:
        raise Forbidden(action="disable the default domain")
    row = _update(conn, t.domains, "domain", id_, values, _dup(values.get("name")))
    return row, (_domain_revocations(conn, id_) if values.get("enabled") is False else [])


def _domain_revocations(conn: Connection, domain_id: str) -> Revoke:
    users = conn.execute(select(t.users.c.id).where(t.users.c.domain_id == domain_id)).scalars()
    projects = conn.execute(select(t.projects.c.id).where(t.projects.c.domain_id == domain_id)).scalars()
    return [("user", u) for u in users] + [("project", p) for p in projects]


def delete_domain(conn: Connection, id_: str) -> Revoke:
    """Delete a disabled domain with its projects, users and assignments."""
    domain = get(conn, t.domains, "domain", id_)
    if id_ == DEFAULT_DOMAIN_ID:
        raise Forbidden(action="delete the default domain")
    if domain["enabled"]:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    revoke = _domain_revocations(conn, id_)
    project_ids = [value for kind, value in revoke if kind == "project"]
    user_ids = [value for kind, value in revoke if kind == "user"]
    a = t.assignments
    conn.execute(delete(a).where(a.c.target_type == "project", a.c.target_id.in_(project_ids)))
    conn.execute(delete(a).where(a.c.target_type == "domain", a.c.target_id == id_))
    conn.execute(delete(a).where(a.c.user_id.in_(user_ids)))
    conn.execute(delete(t.users).where(t.users.c.domain_id == id_))
    conn.execute(delete(t.projects).where(t.projects.c.domain_id == id_))
    conn.execute(delete(t.domains).where(t.domains.c.id == id_))
    return revoke


# -- projects ------------------------------------------------------------


def find_project(conn: Connection, ref: Mapping[str, Any]) -> Row:
    """A project by id, or by name within ``ref["domain"]`` (id or name)."""
    if ref.get("id"):
        return get(conn, t.projects, "project", str(ref["id"]))
    domain_ref = ref.get("domain")
    if not isinstance(domain_ref, Mapping):
        raise ValidationError(msg="Expecting to find domain in project.")
    domain = find_domain(conn, domain_ref)
    p = t.projects
    row = find_named(conn, p, ref.get("name"), p.c.domain_id == domain["id"])
    if row is None:
        raise EntityNotFound(entity="project", id=str(ref.get("name")))
    return as_row(row)


def _project_domain(conn: Connection, attrs: Mapping[str, Any], default: str) -> str:
    domain_id = schema.opt_str(attrs, "domain_id") or default
    parent_id = schema.opt_str(attrs, "parent_id")
    if parent_id and parent_id != domain_id:
        raise ValidationError(msg="kaon supports only top-level projects: parent_id must be the domain.")
    if attrs.get("is_domain"):
        raise ValidationError(msg="Projects acting as domains are not supported.")
    get(conn, t.domains, "domain", domain_id)
    return domain_id


def create_project(conn: Connection, attrs: Mapping[str, Any], id_: str | None = None) -> Row:
    values = {"id": id_ or new_id(), "description": "", "enabled": True, **_common(attrs, creating=True)}
    values["domain_id"] = _project_domain(conn, attrs, DEFAULT_DOMAIN_ID)
    values["extra"] = orjson.dumps(schema.extra(attrs, PROJECT_FIELDS)).decode()
    return _insert(conn, t.projects, "project", values, _dup(values["name"], values["domain_id"]))


def update_project(conn: Connection, id_: str, attrs: Mapping[str, Any]) -> tuple[Row, Revoke]:
    current = get(conn, t.projects, "project", id_)
    if attrs.get("domain_id") not in (None, current["domain_id"]):
        raise ValidationError(msg="Update of `domain_id` is not allowed.")
    values = _common(attrs, creating=False)
    more = schema.extra(attrs, PROJECT_FIELDS)
    if more:
        values["extra"] = orjson.dumps({**current["extra"], **more}).decode()
    row = _update(conn, t.projects, "project", id_, values, _dup(values.get("name"), current["domain_id"]))
    return row, ([("project", id_)] if values.get("enabled") is False else [])


def delete_project(conn: Connection, id_: str) -> Revoke:
    get(conn, t.projects, "project", id_)
    a = t.assignments
    conn.execute(delete(a).where(a.c.target_type == "project", a.c.target_id == id_))
    conn.execute(delete(t.projects).where(t.projects.c.id == id_))
    return [("project", id_)]


# -- users ---------------------------------------------------------------


def find_user(conn: Connection, ref: Mapping[str, Any]) -> Row:
    """A user by id, or by name within ``ref["domain"]`` (id or name)."""
    if ref.get("id"):
        return get(conn, t.users, "user", str(ref["id"]))
    domain_ref = ref.get("domain")
    if not isinstance(domain_ref, Mapping):
        raise ValidationError(msg="Expecting to find domain in user.")
    domain = find_domain(conn, domain_ref)
    u = t.users
    row = find_named(conn, u, ref.get("name"), u.c.domain_id == domain["id"])
    if row is None:
        raise EntityNotFound(entity="user", id=str(ref.get("name")))
    return as_row(row)


def user_values(attrs: Mapping[str, Any], *, creating: bool, password_hash: str | None) -> Row:
    """Column values from a user body; the caller hashes the password (slow) first."""
    values = _common(attrs, creating=creating)
    if "default_project_id" in attrs:
        values["default_project_id"] = schema.opt_str(attrs, "default_project_id")
    if password_hash is not None or (not creating and "password" in attrs):
        values["password_hash"] = password_hash
    return values


def create_user(conn: Connection, attrs: Mapping[str, Any], password_hash: str | None) -> Row:
    values: Row = {"id": new_id(), "description": "", "enabled": True}
    values.update(user_values(attrs, creating=True, password_hash=password_hash))
    values["domain_id"] = schema.opt_str(attrs, "domain_id") or DEFAULT_DOMAIN_ID
    get(conn, t.domains, "domain", values["domain_id"])
    values["extra"] = orjson.dumps(schema.extra(attrs, USER_FIELDS)).decode()
    return _insert(conn, t.users, "user", values, _dup(values["name"], values["domain_id"]))


def update_user(
    conn: Connection, id_: str, attrs: Mapping[str, Any], password_hash: str | None
) -> tuple[Row, Revoke]:
    current = get(conn, t.users, "user", id_)
    if attrs.get("domain_id") not in (None, current["domain_id"]):
        raise ValidationError(msg="Update of `domain_id` is not allowed.")
    values = user_values(attrs, creating=False, password_hash=password_hash)
    more = schema.extra(attrs, USER_FIELDS)
    if more:
        values["extra"] = orjson.dumps({**current["extra"], **more}).decode()
    row = _update(conn, t.users, "user", id_, values, _dup(values.get("name"), current["domain_id"]))
    revoke = values.get("enabled") is False or "password_hash" in values
    return row, ([("user", id_)] if revoke else [])


def delete_user(conn: Connection, id_: str) -> Revoke:
    get(conn, t.users, "user", id_)
    conn.execute(delete(t.assignments).where(t.assignments.c.user_id == id_))
    conn.execute(delete(t.users).where(t.users.c.id == id_))
    return [("user", id_)]


# -- roles ---------------------------------------------------------------


def find_role(conn: Connection, name: str) -> Row | None:
    row = conn.execute(select(t.roles).where(t.roles.c.name == name)).first()
    return None if row is None else as_row(row)


def create_role(conn: Connection, attrs: Mapping[str, Any], id_: str | None = None) -> Row:
    if attrs.get("domain_id"):
        raise ValidationError(msg="Domain-specific roles are not supported.")
    values = {"id": id_ or new_id(), "description": "", **_common(attrs, creating=True)}
    values.pop("enabled", None)
    return _insert(conn, t.roles, "role", values, _dup(values["name"]))


def update_role(conn: Connection, id_: str, attrs: Mapping[str, Any]) -> tuple[Row, Revoke]:
    values = _common(attrs, creating=False)
    values.pop("enabled", None)
    return _update(conn, t.roles, "role", id_, values, _dup(values.get("name"))), []


def delete_role(conn: Connection, id_: str) -> Revoke:
    get(conn, t.roles, "role", id_)
    a = t.assignments
    users = conn.execute(select(a.c.user_id).where(a.c.role_id == id_).distinct()).scalars().all()
    conn.execute(delete(a).where(a.c.role_id == id_))
    conn.execute(delete(t.roles).where(t.roles.c.id == id_))
    return [("user", u) for u in users]


def domain_exists(conn: Connection, id_: str) -> bool:
    return bool(conn.execute(select(exists().where(t.domains.c.id == id_))).scalar())
