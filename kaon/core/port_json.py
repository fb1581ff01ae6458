"""Port lists rendered as JSON by the database itself.

Why: a list of 5,000 ports spent most of its time in Python — fetching
23 columns and 10,000 child rows through the driver, then building 5,000
dicts that orjson turned back into text. SQLite (``json_object``,
``json_group_array``), PostgreSQL (``json_build_object``, ``json_agg``)
and MariaDB (``JSON_OBJECT``, ``JSON_ARRAYAGG``) can write each port's
object in C, in the same statement that selects and orders the ports; the API splices those texts into the response unparsed
(``orjson.Fragment``). Same objects as :func:`kaon.core.ports._render_tuples`
(tests compare both), keys limited to what the caller may see and asked for.

Only the HTTP list uses this; services that need port dicts still call
:meth:`kaon.core.ports.Ports.list`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import bindparam, literal_column, or_, select

from kaon.db.core_tables import networks, ports
from kaon.db.mysql import COLLATION_MARIADB, SEQ_COLUMN

# Attribute -> (SQLite expression, PostgreSQL expression), in the order of _render_tuples.
# Timestamps are stored as 'YYYY-MM-DD HH:MM:SS[.ffffff]' and shown to the second.
_SQLITE_STAMP = "substr(ports.{c}, 1, 10) || 'T' || substr(ports.{c}, 12, 8) || 'Z'"
_PG_STAMP = "to_char(ports.{c}, 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
_SQLITE_BOOL = "json(CASE WHEN ports.{c} THEN 'true' ELSE 'false' END)"


def _plain(column: str) -> tuple[str, str]:
    return f"ports.{column}", f"ports.{column}"


EXPRESSIONS: dict[str, tuple[str, str]] = {
    "id": _plain("id"),
    "name": _plain("name"),
    "description": _plain("description"),
    "tenant_id": _plain("project_id"),
    "project_id": _plain("project_id"),
    "tags": (
        "(SELECT json_group_array(tag) FROM "
        "(SELECT tags.tag AS tag FROM tags WHERE tags.resource_id = ports.id ORDER BY tags.tag))",
        "(SELECT COALESCE(json_agg(tags.tag ORDER BY tags.tag), '[]'::json) FROM tags "
        "WHERE tags.resource_id = ports.id)",
    ),
    "created_at": (_SQLITE_STAMP.format(c="created_at"), _PG_STAMP.format(c="created_at")),
    "updated_at": (_SQLITE_STAMP.format(c="updated_at"), _PG_STAMP.format(c="updated_at")),
    "revision_number": _plain("revision_number"),
    "network_id": _plain("network_id"),
    "mac_address": _plain("mac_address"),
    "admin_state_up": (_SQLITE_BOOL.format(c="admin_state_up"), "ports.admin_state_up"),
    "status": _plain("status"),
    "device_id": _plain("device_id"),
    "device_owner": _plain("device_owner"),
    # In allocation order, as the dict path returns them.
    "fixed_ips": (
        "(SELECT json_group_array(json_object('subnet_id', a.subnet_id, 'ip_address', a.ip_address)) FROM "
        "(SELECT subnet_id, ip_address FROM ip_allocations WHERE ip_allocations.port_id = ports.id "
        "ORDER BY ip_allocations.rowid) AS a)",
        "(SELECT COALESCE(json_agg(json_build_object('subnet_id', a.subnet_id, 'ip_address', a.ip_address) "
        "ORDER BY a.ctid), '[]'::json) FROM ip_allocations AS a WHERE a.port_id = ports.id)",
    ),
    "security_groups": (
        "(SELECT json_group_array(g) FROM (SELECT port_security_groups.security_group_id AS g "
        "FROM port_security_groups WHERE port_security_groups.port_id = ports.id ORDER BY g))",
        "(SELECT COALESCE(json_agg(s.security_group_id ORDER BY s.security_group_id), '[]'::json) "
        "FROM port_security_groups AS s WHERE s.port_id = ports.id)",
    ),
    "port_security_enabled": (_SQLITE_BOOL.format(c="port_security_enabled"), "ports.port_security_enabled"),
    "allowed_address_pairs": ("json(ports.allowed_address_pairs)", "ports.allowed_address_pairs"),
    "extra_dhcp_opts": ("json(ports.extra_dhcp_opts)", "ports.extra_dhcp_opts"),
    "binding:host_id": _plain("binding_host_id"),
    "binding:vnic_type": _plain("binding_vnic_type"),
    "binding:profile": ("json(ports.binding_profile)", "ports.binding_profile"),
    "binding:vif_type": _plain("binding_vif_type"),
    "binding:vif_details": ("json(ports.binding_vif_details)", "ports.binding_vif_details"),
    "dns_name": _plain("dns_name"),
    "binding:failure_reason": ("NULLIF(ports.binding_failure, '')", "NULLIF(ports.binding_failure, '')"),
    "ip_allocation": ("'immediate'", "'immediate'"),
}
DIALECTS = {"sqlite": 0, "postgresql": 1}


# --- MariaDB -------------------------------------------------------------
# Kept apart from the table above so that it can be folded into however that
# table is generated. MariaDB's JSON_OBJECT keeps the keys in argument order
# and takes the result of a JSON function (JSON_EXTRACT, JSON_ARRAYAGG,
# JSON_OBJECT) or a JSON column as JSON, anything else as a scalar; so
# booleans, empty-array defaults and stored JSON go through JSON_EXTRACT.
# Addresses in allocation order: ip_allocations' invisible auto-increment key
# on MySQL (kaon.db.mysql.SEQ_COLUMN), as SQLite's rowid and PostgreSQL's ctid. (MySQL
# proper sorts object keys and has no ORDER BY in JSON_ARRAYAGG: it keeps
# the dict path.)
_MARIADB_STAMP = "DATE_FORMAT(ports.{c}, '%Y-%m-%dT%H:%i:%sZ')"
_MARIADB_BOOL = "JSON_EXTRACT(IF(ports.{c}, 'true', 'false'), '$')"
# MariaDB gives JSON columns the collation utf8mb4_bin whatever the table's;
# mixed with the other columns in one JSON_OBJECT that is an "illegal mix".
_MARIADB_STORED_JSON = "JSON_EXTRACT(ports.{c} COLLATE " + COLLATION_MARIADB + ", '$')"


def _mariadb_array(select_list: str, rest: str) -> str:
    return f"JSON_EXTRACT(COALESCE((SELECT JSON_ARRAYAGG({select_list}) {rest}), '[]'), '$')"


MARIADB_EXPRESSIONS: dict[str, str] = {
    **{k: pg for k, (_, pg) in EXPRESSIONS.items()},
    "tags": _mariadb_array("tags.tag ORDER BY tags.tag", "FROM tags WHERE tags.resource_id = ports.id"),
    "created_at": _MARIADB_STAMP.format(c="created_at"),
    "updated_at": _MARIADB_STAMP.format(c="updated_at"),
    "admin_state_up": _MARIADB_BOOL.format(c="admin_state_up"),
    "fixed_ips": _mariadb_array("JSON_OBJECT('subnet_id', a.subnet_id, 'ip_address', a.ip_address)",
                                f"FROM ip_allocations AS a WHERE a.port_id = ports.id ORDER BY a.{SEQ_COLUMN}"),
    "security_groups": _mariadb_array("s.security_group_id ORDER BY s.security_group_id",
                                      "FROM port_security_groups AS s WHERE s.port_id = ports.id"),
    "port_security_enabled": _MARIADB_BOOL.format(c="port_security_enabled"),
    **{k: _MARIADB_STORED_JSON.format(c=c) for k, c in (
        ("allowed_address_pairs", "allowed_address_pairs"), ("extra_dhcp_opts", "extra_dhcp_opts"),
        ("binding:profile", "binding_profile"), ("binding:vif_details", "binding_vif_details"))},
}


def _mariadb_column(keys: tuple[str, ...]) -> object:
    pairs = ", ".join(f"'{k}', {MARIADB_EXPRESSIONS[k]}" for k in keys)
    return literal_column(f"JSON_OBJECT({pairs})")


def keys_for(hidden: Iterable[str], fields: Iterable[str]) -> tuple[str, ...]:
    """The attributes to render: those asked for (in that order, once), else
    all; never the hidden ones."""
    hidden = set(hidden)
    wanted = list(dict.fromkeys(fields)) or list(EXPRESSIONS)
    return tuple(k for k in wanted if k in EXPRESSIONS and k not in hidden)


@lru_cache(maxsize=64)
def column(dialect: str, keys: tuple[str, ...]) -> object:
    """A select-list column holding each port's JSON text (``ports`` in FROM)."""
    if dialect == "mariadb":
        return _mariadb_column(keys)
    which = DIALECTS[dialect]
    pairs = ", ".join(f"'{k}', {EXPRESSIONS[k][which]}" for k in keys)
    if which == 0:
        return literal_column(f"json_object({pairs})")
    return literal_column(f"json_build_object({pairs})::text")


def supported(dialect: str) -> bool:
    return dialect in DIALECTS or dialect == "mariadb"


@lru_cache(maxsize=64)
def show_statement(dialect: str, keys: tuple[str, ...], admin: bool) -> object:
    """One port's JSON text by ``:port_id``; for others than admins, only if
    ``:project`` owns it or its network (as :meth:`Ports.fetch_row`)."""
    stmt = select(column(dialect, keys)).select_from(ports).where(ports.c.id == bindparam("port_id"))
    if not admin:
        project = bindparam("project")
        stmt = stmt.where(or_(ports.c.project_id == project, ports.c.network_id.in_(
            select(networks.c.id).where(networks.c.project_id == project))))
    return stmt


@lru_cache(maxsize=64)
def many_statement(dialect: str, keys: tuple[str, ...]) -> object:
    """(id, JSON text) of the ports in ``:ids`` (expanding), as an admin sees them."""
    return select(ports.c.id, column(dialect, keys)).where(ports.c.id.in_(bindparam("ids", expanding=True)))
