"""Port lists rendered as JSON by the database itself.

Why: a list of 5,000 ports spent most of its time in Python — fetching
23 columns and 10,000 child rows through the driver, then building 5,000
dicts that orjson turned back into text. SQLite (``json_object``,
``json_group_array``), PostgreSQL (``json_build_object``, ``json_agg``) and
MariaDB (``JSON_OBJECT``, ``JSON_ARRAYAGG``) can write each port's object in
C, in the same statement that selects and orders the ports; the API splices
those texts into the response unparsed
(``orjson.Fragment``). The expressions are generated from the attribute
table of :mod:`kaon.core.l2.port_render`, as the Python renderer is (tests
compare both), keys limited to what the caller may see and asked for.

A database is one :class:`JsonDialect`: its object function and one SQL
template per attribute kind. MySQL proper sorts object keys and has no
ORDER BY in JSON_ARRAYAGG, so it takes the Python path (not in
:data:`DIALECTS`).

Only the HTTP list uses this; services that need port dicts still call
:meth:`kaon.core.l2.ports.Ports.list`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import BindParameter, ColumnClause, Select, bindparam, literal_column, or_, select

from kaon.core.l2 import port_render as pr
from kaon.db.core_tables import networks, ports
from kaon.db.mysql import COLLATION_MARIADB, SEQ_COLUMN

keys_for = pr.keys_for


@dataclass(frozen=True)
class JsonDialect:
    """How one database writes a port's JSON object."""

    object_open: str  # the object function and its opening parenthesis
    object_close: str  # the closing parenthesis, and a cast to text where needed
    # Attribute kind -> SQL expression; ``{c}`` is the attribute's source
    # (column name, or the constant's value).
    kinds: dict[str, str]


SQLITE = JsonDialect("json_object(", ")", {
    pr.TEXT: "ports.{c}",
    pr.BOOL: "json(CASE WHEN ports.{c} THEN 'true' ELSE 'false' END)",
    # Timestamps are stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]' and shown to the second.
    pr.STAMP: "substr(ports.{c}, 1, 10) || 'T' || substr(ports.{c}, 12, 8) || 'Z'",
    pr.JSON: "json(ports.{c})",
    pr.EMPTY_IS_NULL: "NULLIF(ports.{c}, '')",
    pr.CONST: "'{c}'",
    # In allocation order, as the Python path reads them.
    pr.ADDRESSES: "(SELECT json_group_array(json_object('subnet_id', a.subnet_id, 'ip_address', a.ip_address)) "
                  "FROM (SELECT subnet_id, ip_address FROM ip_allocations WHERE ip_allocations.port_id = ports.id "
                  "ORDER BY ip_allocations.rowid) AS a)",
    pr.GROUPS: "(SELECT json_group_array(g) FROM (SELECT port_security_groups.security_group_id AS g "
               "FROM port_security_groups WHERE port_security_groups.port_id = ports.id ORDER BY g))",
    pr.TAGS: "(SELECT json_group_array(tag) FROM "
             "(SELECT tags.tag AS tag FROM tags WHERE tags.resource_id = ports.id ORDER BY tags.tag))",
})
POSTGRESQL = JsonDialect("json_build_object(", ")::text", {
    pr.TEXT: "ports.{c}",
    pr.BOOL: "ports.{c}",
    pr.STAMP: "to_char(ports.{c}, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    pr.JSON: "ports.{c}",
    pr.EMPTY_IS_NULL: "NULLIF(ports.{c}, '')",
    pr.CONST: "'{c}'",
    pr.ADDRESSES: "(SELECT COALESCE(json_agg(json_build_object('subnet_id', a.subnet_id, 'ip_address', a.ip_address) "
                  "ORDER BY a.ctid), '[]'::json) FROM ip_allocations AS a WHERE a.port_id = ports.id)",
    pr.GROUPS: "(SELECT COALESCE(json_agg(s.security_group_id ORDER BY s.security_group_id), '[]'::json) "
               "FROM port_security_groups AS s WHERE s.port_id = ports.id)",
    pr.TAGS: "(SELECT COALESCE(json_agg(tags.tag ORDER BY tags.tag), '[]'::json) FROM tags "
             "WHERE tags.resource_id = ports.id)",
})
# MariaDB's JSON_OBJECT keeps the keys in argument order and takes the result
# of a JSON function (JSON_EXTRACT, JSON_ARRAYAGG, JSON_OBJECT) as JSON,
# anything else as a scalar: so booleans, empty-array defaults and stored
# JSON go through JSON_EXTRACT. JSON columns have the collation utf8mb4_bin
# whatever the table's, an "illegal mix" beside the other columns unless
# converted. Addresses in allocation order by ip_allocations' invisible
# auto-increment key (kaon.db.mysql.SEQ_COLUMN), as SQLite's rowid and
# PostgreSQL's ctid.
MARIADB = JsonDialect("JSON_OBJECT(", ")", {
    pr.TEXT: "ports.{c}",
    pr.BOOL: "JSON_EXTRACT(IF(ports.{c}, 'true', 'false'), '$')",
    pr.STAMP: "DATE_FORMAT(ports.{c}, '%Y-%m-%dT%H:%i:%sZ')",
    pr.JSON: "JSON_EXTRACT(ports.{c} COLLATE " + COLLATION_MARIADB + ", '$')",
    pr.EMPTY_IS_NULL: "NULLIF(ports.{c}, '')",
    pr.CONST: "'{c}'",
    pr.ADDRESSES: "JSON_EXTRACT(COALESCE((SELECT JSON_ARRAYAGG(JSON_OBJECT('subnet_id', a.subnet_id, "
                  "'ip_address', a.ip_address) ORDER BY a." + SEQ_COLUMN + ") FROM ip_allocations AS a "
                  "WHERE a.port_id = ports.id), '[]'), '$')",
    pr.GROUPS: "JSON_EXTRACT(COALESCE((SELECT JSON_ARRAYAGG(s.security_group_id ORDER BY s.security_group_id) "
               "FROM port_security_groups AS s WHERE s.port_id = ports.id), '[]'), '$')",
    pr.TAGS: "JSON_EXTRACT(COALESCE((SELECT JSON_ARRAYAGG(tags.tag ORDER BY tags.tag) FROM tags "
             "WHERE tags.resource_id = ports.id), '[]'), '$')",
})
DIALECTS: dict[str, JsonDialect] = {"sqlite": SQLITE, "postgresql": POSTGRESQL, "mariadb": MARIADB}


def expression(dialect: str, key: str) -> str:
    """The SQL expression of one attribute's JSON value (``ports`` in FROM)."""
    attr = pr.BY_KEY[key]
    return DIALECTS[dialect].kinds[attr.kind].format(c=attr.source)


@lru_cache(maxsize=64)
def column(dialect: str, keys: tuple[str, ...]) -> ColumnClause[Any]:
    """A select-list column holding each port's JSON text (``ports`` in FROM)."""
    spec = DIALECTS[dialect]
    pairs = ", ".join(f"'{k}', {expression(dialect, k)}" for k in keys)
    return literal_column(f"{spec.object_open}{pairs}{spec.object_close}")


def supported(dialect: str) -> bool:
    return dialect in DIALECTS


@lru_cache(maxsize=64)
def show_statement(dialect: str, keys: tuple[str, ...], admin: bool) -> Select[Any]:
    """One port's JSON text by ``:port_id``; for others than admins, only if
    ``:project`` owns it or its network (as :meth:`Ports.fetch_row`)."""
    stmt = select(column(dialect, keys)).select_from(ports).where(ports.c.id == bindparam("port_id"))
    if not admin:
        project: BindParameter[str] = bindparam("project")
        stmt = stmt.where(or_(ports.c.project_id == project, ports.c.network_id.in_(
            select(networks.c.id).where(networks.c.project_id == project))))
    return stmt


@lru_cache(maxsize=64)
def many_statement(dialect: str, keys: tuple[str, ...]) -> Select[Any]:
    """(id, JSON text) of the ports in ``:ids`` (expanding), as an admin sees them."""
    return select(ports.c.id, column(dialect, keys)).where(ports.c.id.in_(bindparam("ids", expanding=True)))
