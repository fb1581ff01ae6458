"""Port lists rendered as JSON by the database itself.

Why: a list of 5,000 ports spent most of its time in Python — fetching
23 columns and 10,000 child rows through the driver, then building 5,000
dicts that orjson turned back into text. SQLite (``json_object``,
``json_group_array``) and PostgreSQL (``json_build_object``, ``json_agg``)
can write each port's object in C, in the same statement that selects and
orders the ports; the API splices those texts into the response unparsed
(``orjson.Fragment``). Same objects as :func:`kaon.core.l2.ports._render_tuples`
(tests compare both), keys limited to what the caller may see and asked for.

Only the HTTP list uses this; services that need port dicts still call
:meth:`kaon.core.l2.ports.Ports.list`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import bindparam, literal_column, or_, select

from kaon.db.core_tables import networks, ports

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


def keys_for(hidden: Iterable[str], fields: Iterable[str]) -> tuple[str, ...]:
    """The attributes to render: those asked for (in that order, once), else
    all; never the hidden ones."""
    hidden = set(hidden)
    wanted = list(dict.fromkeys(fields)) or list(EXPRESSIONS)
    return tuple(k for k in wanted if k in EXPRESSIONS and k not in hidden)


@lru_cache(maxsize=64)
def column(dialect: str, keys: tuple[str, ...]) -> object:
    """A select-list column holding each port's JSON text (``ports`` in FROM)."""
    which = DIALECTS[dialect]
    pairs = ", ".join(f"'{k}', {EXPRESSIONS[k][which]}" for k in keys)
    if which == 0:
        return literal_column(f"json_object({pairs})")
    return literal_column(f"json_build_object({pairs})::text")


def supported(dialect: str) -> bool:
    return dialect in DIALECTS


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
