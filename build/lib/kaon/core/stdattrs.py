"""Standard attributes every resource carries: project, timestamps,
revision number and tags (read in one batched query per list)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from kaon.api.context import Context
from kaon.db.core_tables import tags
from kaon.model.attrs import HTTPBadRequest


def now() -> dt.datetime:
    """UTC, naive. Stored with microseconds (so creation order is exact:
    default address allocation tries subnets oldest first); shown to the
    second, as Neutron does."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def new_id() -> str:
    return str(uuid.uuid4())


def timestamp(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def owner_project(ctx: Context, values: dict[str, Any]) -> str:
    """The project a new resource belongs to: the caller's, or (admin only)
    the one named by project_id/tenant_id."""
    tenant = values.pop("tenant_id", None)
    project = values.pop("project_id", None)
    if tenant is not None and project is not None and tenant != project:
        raise HTTPBadRequest(msg="'project_id' and 'tenant_id' do not match")
    wanted = project if project is not None else tenant
    if wanted is None or wanted == ctx.project_id:
        return ctx.project_id
    if not ctx.is_admin:
        raise HTTPBadRequest(
            msg="Specifying 'project_id' or 'tenant_id' other than the authenticated project "
            "in request requires admin privileges"
        )
    return wanted


def new_row(ctx_project: str, values: dict[str, Any]) -> dict[str, Any]:
    stamp = now()
    return {
        "id": new_id(),
        "project_id": ctx_project,
        "name": values.get("name", ""),
        "description": values.get("description", ""),
        "created_at": stamp,
        "updated_at": stamp,
        "revision_number": 0,
    }


def render(row: Any, tag_list: list[str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "tenant_id": row.project_id,
        "project_id": row.project_id,
        "tags": tag_list,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
        "revision_number": row.revision_number,
    }


_TAGS_OF = select(tags.c.resource_id, tags.c.tag).where(tags.c.resource_id.in_(bindparam("ids", expanding=True)))


def tags_for(conn: Connection, ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(ids)
    out: dict[str, list[str]] = {}
    if not ids:
        return out
    # A short IN list per batch keeps SQLite under its variable limit.
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        for rid, tag in conn.execute(_TAGS_OF, {"ids": chunk}):
            out.setdefault(rid, []).append(tag)
    for lst in out.values():
        lst.sort()
    return out


def delete_tags(conn: Connection, ids: Iterable[str]) -> None:
    """Tags have no foreign key (they hang off any resource type): drop
    them with the resource."""
    ids = list(ids)
    for start in range(0, len(ids), 900):
        conn.execute(delete(tags).where(tags.c.resource_id.in_(ids[start : start + 900])))


def bump(values: dict[str, Any], current_revision: int) -> dict[str, Any]:
    values["updated_at"] = now()
    values["revision_number"] = current_revision + 1
    return values
