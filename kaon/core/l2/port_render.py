"""How a port is shown: one table of its attributes, and the Python renderer
made from it.

Each attribute of Neutron's port names where its value comes from (a column
of ``ports``, a child table, a constant) and its *kind*, which says how the
stored value becomes the API's: a timestamp shown to the second, a JSON
column, an empty string shown as null. Both ways of rendering a port are
generated from this table — the Python one here (:func:`render`, behind
:meth:`kaon.core.l2.ports.Ports.list` and ``get``) and the SQL one the database
runs for the HTTP answers (:mod:`kaon.core.l2.port_json`, per dialect) — so a
new attribute is one row here (plus its column), and
``tests/api/test_port_json.py`` fails when a path or a dialect lacks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import String, Text, cast

from kaon.db.core_tables import ports

# The kinds. Column kinds read one column of ``ports``; child kinds read a
# child table in allocation order (addresses) or sorted (groups, tags).
TEXT, BOOL, STAMP, JSON, EMPTY_IS_NULL, CONST = "text", "bool", "stamp", "json", "empty_is_null", "const"
ADDRESSES, GROUPS, TAGS = "addresses", "groups", "tags"
CHILD_KINDS = (ADDRESSES, GROUPS, TAGS)


@dataclass(frozen=True)
class PortAttr:
    key: str  # the API's name
    kind: str
    source: str = ""  # the ports column (column kinds), the value (CONST)


# In the order Neutron shows them (and the JSON answers keep).
ATTRS: tuple[PortAttr, ...] = (
    PortAttr("id", TEXT, "id"),
    PortAttr("name", TEXT, "name"),
    PortAttr("description", TEXT, "description"),
    PortAttr("tenant_id", TEXT, "project_id"),
    PortAttr("project_id", TEXT, "project_id"),
    PortAttr("tags", TAGS),
    PortAttr("created_at", STAMP, "created_at"),
    PortAttr("updated_at", STAMP, "updated_at"),
    PortAttr("revision_number", TEXT, "revision_number"),
    PortAttr("network_id", TEXT, "network_id"),
    PortAttr("mac_address", TEXT, "mac_address"),
    PortAttr("admin_state_up", BOOL, "admin_state_up"),
    PortAttr("status", TEXT, "status"),
    PortAttr("device_id", TEXT, "device_id"),
    PortAttr("device_owner", TEXT, "device_owner"),
    PortAttr("fixed_ips", ADDRESSES),
    PortAttr("security_groups", GROUPS),
    PortAttr("port_security_enabled", BOOL, "port_security_enabled"),
    PortAttr("allowed_address_pairs", JSON, "allowed_address_pairs"),
    PortAttr("extra_dhcp_opts", JSON, "extra_dhcp_opts"),
    PortAttr("binding:host_id", TEXT, "binding_host_id"),
    PortAttr("binding:vnic_type", TEXT, "binding_vnic_type"),
    PortAttr("binding:profile", JSON, "binding_profile"),
    PortAttr("binding:vif_type", TEXT, "binding_vif_type"),
    PortAttr("binding:vif_details", JSON, "binding_vif_details"),
    PortAttr("dns_name", TEXT, "dns_name"),
    PortAttr("binding:failure_reason", EMPTY_IS_NULL, "binding_failure"),
    PortAttr("ip_allocation", CONST, "immediate"),
)
BY_KEY = {a.key: a for a in ATTRS}


def keys_for(hidden: Iterable[str], fields: Iterable[str]) -> tuple[str, ...]:
    """The attributes to render: those asked for (in that order, once), else
    all; never the hidden ones."""
    hidden = set(hidden)
    wanted = list(dict.fromkeys(fields)) or list(BY_KEY)
    return tuple(k for k in wanted if k in BY_KEY and k not in hidden)


# -- the Python path ------------------------------------------------------
def _stamp(value: str | None) -> str | None:
    """'YYYY-MM-DD HH:MM:SS[.ffffff]' (SQLite's storage, PostgreSQL's text
    form) -> Neutron's 'YYYY-MM-DDTHH:MM:SSZ'."""
    return None if value is None else f"{value[:10]}T{value[11:19]}Z"


def _json(value: str | None) -> Any:
    if value == "[]":
        return []
    if value == "{}":
        return {}
    return None if value is None else orjson.loads(value)


def _empty_is_null(value: Any) -> Any:
    return value or None


# How the Python path converts what it selected (None: as selected). The
# list path reads timestamps and JSON columns as text and converts them
# itself: SQLAlchemy's per-value processing dominated a 5,000-port list.
_CONVERT: dict[str, Callable[[Any], Any] | None] = {
    TEXT: None, BOOL: None, STAMP: _stamp, JSON: _json, EMPTY_IS_NULL: _empty_is_null,
}
_SELECT_AS = {STAMP: String, JSON: Text}

# The selected columns: ``id`` first, each column once.
_SOURCES = list(dict.fromkeys(["id", *(a.source for a in ATTRS if a.kind in _CONVERT)]))


def _column(source: str) -> Any:
    kind = next(a.kind for a in ATTRS if a.source == source)
    return cast(ports.c[source], _SELECT_AS[kind]) if kind in _SELECT_AS else ports.c[source]


COLUMNS = tuple(_column(s) for s in _SOURCES)
_INDEX = {s: i for i, s in enumerate(_SOURCES)}
_CHILD_EXPR = {ADDRESSES: "ips.get(r[0], [])", GROUPS: "sorted(sgs.get(r[0], ()))", TAGS: "sorted(tags.get(r[0], ()))"}


@lru_cache(maxsize=64)
def _row_renderer(keys: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """``f(row, ips, sgs, tags) -> dict`` for these keys, compiled from the
    table once per key set: one dict display per port, as a hand-written
    renderer would be (a loop over the table cost 40 % more on a
    5,000-port list)."""
    names: dict[str, Any] = {"sorted": sorted}
    items = []
    for key in keys:
        attr = BY_KEY[key]
        if attr.kind == CONST:
            expr = repr(attr.source)
        elif attr.kind in CHILD_KINDS:
            expr = _CHILD_EXPR[attr.kind]
        else:
            expr = f"r[{_INDEX[attr.source]}]"
            convert = _CONVERT[attr.kind]
            if convert is not None:
                names[convert.__name__] = convert
                expr = f"{convert.__name__}({expr})"
        items.append(f"{key!r}: {expr}")
    source = f"def render_row(r, ips, sgs, tags):\n    return {{{', '.join(items)}}}\n"
    exec(source, names)  # noqa: S102 - the source is made from the constant table above
    return names["render_row"]


def render(rows: Iterable[Any], children: Iterable[Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """Port dicts with ``keys`` (:func:`keys_for`) from :data:`COLUMNS` rows
    and ``(kind, port id, value, address)`` child rows: addresses (kind 1),
    security groups (2), tags (3)."""
    ips: dict[str, list[dict[str, str]]] = {}
    sgs: dict[str, list[str]] = {}
    tag_map: dict[str, list[str]] = {}
    for kind, pid, value, ip in children:
        if kind == 1:
            ips.setdefault(pid, []).append({"subnet_id": value, "ip_address": ip})
        elif kind == 2:
            sgs.setdefault(pid, []).append(value)
        else:
            tag_map.setdefault(pid, []).append(value)
    render_row = _row_renderer(keys)
    return [render_row(row, ips, sgs, tag_map) for row in rows]
