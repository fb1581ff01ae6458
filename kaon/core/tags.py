"""Tags of standard-attr resources (standard-attr-tag): the SQL behind
``/v2.0/{collection}/{id}/tags``. A tag change is a change of the resource,
so every write bumps its revision_number and updated_at."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, delete, insert, select, update

from kaon.core import stdattrs
from kaon.db import core_tables as t
from kaon.db import l3_tables, pool_tables, sg_tables
from kaon.db.core_tables import tags

# collection -> the table whose rows carry the tags' revision.
TAGGED: dict[str, Table] = {
    "networks": t.networks, "subnets": t.subnets, "ports": t.ports, "routers": l3_tables.routers,
    "floatingips": l3_tables.floatingips, "subnetpools": pool_tables.subnetpools,
    "security-groups": sg_tables.security_groups,
}


def current(conn: Connection, rid: str) -> list[str]:
    return sorted(conn.execute(select(tags.c.tag).where(tags.c.resource_id == rid)).scalars())


def replace(conn: Connection, table: Table, row: Any, rtype: str, wanted: list[str]) -> None:
    conn.execute(delete(tags).where(tags.c.resource_id == row.id))
    for tag in wanted:
        conn.execute(insert(tags).values(resource_id=row.id, tag=tag, resource_type=rtype))
    _touch(conn, table, row)


def add(conn: Connection, table: Table, row: Any, rtype: str, tag: str) -> None:
    conn.execute(insert(tags).values(resource_id=row.id, tag=tag, resource_type=rtype))
    _touch(conn, table, row)


def remove(conn: Connection, table: Table, row: Any, tag: str) -> None:
    conn.execute(delete(tags).where(tags.c.resource_id == row.id, tags.c.tag == tag))
    _touch(conn, table, row)


def _touch(conn: Connection, table: Table, row: Any) -> None:
    conn.execute(update(table).where(table.c.id == row.id).values(stdattrs.bump({}, row.revision_number)))
