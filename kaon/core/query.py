"""SQL for collection GETs: equality filters (a repeated key ORs), tag
filters, keyset pagination over the requested sort keys plus ``id``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Select, and_, false, func, or_, select, true

from kaon import errors
from kaon.core.list_query import CHANGED_SINCE, ListQuery
from kaon.db.core_tables import tags

# A special filter turns the list of values for one key into a WHERE clause.
Special = Callable[[list[Any]], Any]


def where_filters(query: ListQuery, columns: Mapping[str, Column], special: Mapping[str, Special],
                  id_col: Column) -> list[Any]:
    clauses: list[Any] = []
    for key, values in query.filters.items():
        if key in special:
            clauses.append(special[key](values))
        elif key == CHANGED_SINCE:
            stamp = columns.get("updated_at")
            clauses.append(stamp >= values[0] if stamp is not None else ~true())
        elif key in columns and any(isinstance(val, dt.datetime) for val in values):
            # Timestamps are shown to the second but stored finer: a value
            # matches its whole second.
            col = columns[key]
            clauses.append(or_(*[and_(col >= val, col < val + dt.timedelta(seconds=1)) for val in values]))
        elif key in columns:
            col = columns[key]
            clauses.append(col == values[0] if len(values) == 1 else col.in_(values))
        else:
            # A known attribute with no column (computed): matches nothing
            # rather than everything, so a filter never widens a result.
            clauses.append(~true())
    clauses.extend(_tag_clauses(query.tag_filters, id_col))
    return clauses


def _tag_clauses(tag_filters: dict[str, list[str]], id_col: Column) -> list[Any]:
    out: list[Any] = []
    for key, wanted in tag_filters.items():
        if not wanted:
            continue
        any_ = select(tags.c.resource_id).where(tags.c.tag.in_(wanted))
        all_ = (
            select(tags.c.resource_id)
            .where(tags.c.tag.in_(wanted))
            .group_by(tags.c.resource_id)
            .having(func.count() == len(set(wanted)))
        )
        if key == "tags":
            out.append(id_col.in_(all_))
        elif key == "tags-any":
            out.append(id_col.in_(any_))
        elif key == "not-tags":
            out.append(id_col.not_in(all_))
        else:
            out.append(id_col.not_in(any_))
    return out


def paginate(conn: Connection, stmt: Select, query: ListQuery, columns: Mapping[str, Column],
             id_col: Column, table_from: Any) -> tuple[Select, bool]:
    """Order and limit ``stmt``. Returns it and whether it reads in reverse
    (the caller then reverses the rows back)."""
    order = [(columns[key], asc) for key, asc in query.sorts if key in columns]
    if not any(col is id_col for col, _ in order):
        order.append((id_col, True))
    reverse = query.page_reverse
    if query.marker is not None and query.limit is not None:
        marker_row = conn.execute(
            select(*[c for c, _ in order]).select_from(table_from).where(id_col == query.marker)
        ).first()
        if marker_row is None:
            raise errors.ResourceNotFound()
        stmt = stmt.where(_after(order, list(marker_row), reverse))
    # NULL sorts as the smallest value on every engine (SQLite's and
    # MySQL's default; PostgreSQL's is the opposite), so that a page never
    # depends on the database. MySQL has no NULLS FIRST/LAST syntax, and
    # needs none.
    if conn.dialect.name in ("mysql", "mariadb"):
        stmt = stmt.order_by(*[(c.asc() if asc != reverse else c.desc()) for c, asc in order])
    else:
        stmt = stmt.order_by(*[(c.asc().nulls_first() if asc != reverse else c.desc().nulls_last())
                               for c, asc in order])
    if query.limit is not None:
        stmt = stmt.limit(query.limit + 1)
    return stmt, reverse


def fetch_page(conn: Connection, stmt: Select, query: ListQuery, columns: Mapping[str, Column],
               id_col: Column, table_from: Any) -> tuple[list[Any], bool]:
    """Run a collection query: the rows of one page, in the requested
    order, and whether more follow."""
    stmt, reverse = paginate(conn, stmt, query, columns, id_col, table_from)
    rows = list(conn.execute(stmt).all())
    more = query.limit is not None and len(rows) > query.limit
    if query.limit is not None:
        rows = rows[: query.limit]
    if reverse:
        rows.reverse()
    return rows, more


def _after(order: list[tuple[Column, bool]], values: list[Any], reverse: bool) -> Any:
    """Rows strictly after the marker in the (possibly reversed) order, with
    NULL the smallest value."""
    ors = []
    for i, (col, asc) in enumerate(order):
        ascending = asc != reverse
        value = values[i]
        cmp: ColumnElement[bool]
        if value is None:
            cmp = col.is_not(None) if ascending else false()
        else:
            cmp = col > value if ascending else or_(col < value, col.is_(None))
        ors.append(and_(*[_equal(order[j][0], values[j]) for j in range(i)], cmp))
    return or_(*ors)


def _equal(col: Column, value: Any) -> Any:
    return col.is_(None) if value is None else col == value
