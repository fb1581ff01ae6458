"""SQL for collection GETs: equality filters (a repeated key ORs), tag
filters, keyset pagination over the requested sort keys plus ``id``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Column, Connection, Select, and_, func, or_, select, true

from kaon import errors
from kaon.api.listing import ListQuery
from kaon.db.core_tables import tags
from kaon.model.attrs import HTTPBadRequest

# A special filter turns the list of values for one key into a WHERE clause.
Special = Callable[[list[Any]], Any]


def where_filters(query: ListQuery, columns: Mapping[str, Column], special: Mapping[str, Special],
                  id_col: Column) -> list[Any]:
    clauses: list[Any] = []
    for key, values in query.filters.items():
        if key in special:
            clauses.append(special[key](values))
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
        order.append((id_col, order[-1][1] if order else True))
    reverse = query.page_reverse
    if query.marker is not None and query.limit is not None:
        marker_row = conn.execute(
            select(*[c for c, _ in order]).select_from(table_from).where(id_col == query.marker)
        ).first()
        if marker_row is None:
            raise HTTPBadRequest(msg=f"Marker {query.marker} could not be found")
        stmt = stmt.where(_after(order, list(marker_row), reverse))
    stmt = stmt.order_by(*[(c.asc() if asc != reverse else c.desc()) for c, asc in order])
    if query.limit is not None:
        stmt = stmt.limit(query.limit + 1)
    return stmt, reverse


def _after(order: list[tuple[Column, bool]], values: list[Any], reverse: bool) -> Any:
    """Rows strictly after the marker in the (possibly reversed) order."""
    ors = []
    for i, (col, asc) in enumerate(order):
        forward = asc != reverse
        cmp = col > values[i] if forward else col < values[i]
        ors.append(and_(*[order[j][0] == values[j] for j in range(i)], cmp))
    return or_(*ors)


def links(base_url: str, query: ListQuery, ids: list[str], more: bool, collection: str) -> list[dict[str, str]]:
    if query.limit is None:
        return []
    keep = [(k, val) for k, val in query.raw if k not in ("marker", "page_reverse", "limit")]
    out = []

    def href(marker: str, reverse: bool) -> str:
        from urllib.parse import urlencode

        params = [*keep, ("limit", str(query.limit)), ("marker", marker)]
        if reverse:
            params.append(("page_reverse", "True"))
        return f"{base_url}?{urlencode(params)}"

    if not ids:
        return out
    if query.page_reverse:
        if more:
            out.append({"rel": "previous", "href": href(ids[0], True)})
        out.append({"rel": "next", "href": href(ids[-1], False)})
    else:
        if more:
            out.append({"rel": "next", "href": href(ids[-1], False)})
        if query.marker is not None:
            out.append({"rel": "previous", "href": href(ids[0], True)})
    return out


def check_revision(current: int, if_match: str | None) -> None:
    """``If-Match: revision_number=N`` -> 412 unless the resource is at N."""
    if not if_match:
        return
    for part in if_match.split(","):
        part = part.strip()
        if part.startswith("revision_number="):
            try:
                expected = int(part.split("=", 1)[1])
            except ValueError:
                raise HTTPBadRequest(msg=f"Invalid If-Match value {part}") from None
            if expected != current:
                raise errors.RevisionNumberConstraintFailed(expected=expected, current=current)
