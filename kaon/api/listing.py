"""Query-string parsing for collection GETs: filters, fields, sorting,
pagination, with Neutron's 400s for anything it does not know."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from kaon import errors
from kaon.core.list_query import CHANGED_SINCE, TAG_FILTERS, ListQuery
from kaon.errors import HTTPBadRequest
from kaon.model import validators as v
from kaon.model.attrs import Resource

TenantIdProjectIdFilterConflict = errors.define(
    "TenantIdProjectIdFilterConflict", errors.BadRequest, "Both tenant_id and project_id passed as filters.")


def _bad(msg: str) -> errors.KaonError:
    return HTTPBadRequest(msg=msg)


def parse(resource: Resource, items: list[tuple[str, str]],
          extra_filters: frozenset[str] | set[str] = frozenset(), validate: bool = True) -> ListQuery:
    q = ListQuery(raw=items)
    sort_keys: list[str] = []
    sort_dirs: list[str] = []
    invalid: list[str] = []
    filterable = resource.filterable() | extra_filters
    for key, value in items:
        if key == "fields":
            if value:
                q.fields.append(value)
        elif key in ("sort_key", "sort_dir"):
            if value:
                (sort_keys if key == "sort_key" else sort_dirs).append(value)
        elif key == "limit":
            q.limit = _limit(value)
        elif key == "marker":
            q.marker = value or None
        elif key == "page_reverse":
            # Neutron: "true" in any case reverses, anything else does not.
            q.page_reverse = value.lower() == "true"
        elif key in TAG_FILTERS:
            q.tag_filters.setdefault(key, []).extend(t for t in value.split(",") if t)
        elif key == CHANGED_SINCE:
            q.filters[key] = [_changed_since(value)]
        elif key in filterable:
            q.filters.setdefault(key, []).append(_filter_value(resource, key, value))
        elif validate and key not in invalid:
            invalid.append(key)
    if invalid:
        raise _bad(f"{invalid} is invalid attribute for filtering")
    if "tenant_id" in q.filters and "project_id" in q.filters:
        raise TenantIdProjectIdFilterConflict()
    if "tenant_id" in q.filters:
        q.filters["project_id"] = q.filters.pop("tenant_id")
    q.sorts = _sorts(resource, sort_keys, sort_dirs)
    if q.limit == 0:
        q.limit = None
    return q


# A page never holds more rows than this; a larger limit means "all" (the
# database refuses a LIMIT past bigint, and kaon asks for one row more).
MAX_PAGE = 2**31 - 1


def _limit(value: str) -> int:
    try:
        limit = int(value)
        if limit >= 0:
            return min(limit, MAX_PAGE)
    except ValueError:
        pass
    raise errors.BadRequest(resource="limit", msg=f"Limit must be an integer 0 or greater and not '{value}'")


def _changed_since(value: str) -> dt.datetime:
    try:
        return v.timestamp(value)
    except v.InvalidValue as exc:
        raise errors.InvalidInput(error_message=f"Invalid input for changed_since. Reason: {exc}") from None


def _filter_value(resource: Resource, key: str, value: str) -> Any:
    attr = resource.by_name.get(key)
    if attr is None or attr.filter_convert is None:
        return value
    try:
        return attr.filter_convert(value)
    except (ValueError, v.InvalidValue):
        raise errors.InvalidInput(
            error_message=f"Invalid input for {key}. Reason: '{value}' is not valid for filtering"
        ) from None


def _sorts(resource: Resource, keys: list[str], dirs: list[str]) -> list[tuple[str, bool]]:
    if len(keys) != len(dirs):
        raise _bad("The number of sort_keys and sort_dirs must be same")
    sortable = resource.sortable()
    absent = [k for k in keys if k not in sortable]
    if absent:
        raise _bad(f"{absent} is invalid attribute for sort_keys")
    wrong = [d for d in dirs if d not in ("asc", "desc")]
    if wrong:
        raise _bad(f"{wrong} is invalid value for sort_dirs, valid value is 'asc' and 'desc'")
    out: list[tuple[str, bool]] = []
    for key, direction in zip(keys, dirs, strict=True):
        key = "project_id" if key == "tenant_id" else key
        if all(key != k for k, _ in out):
            out.append((key, direction == "asc"))
    return out


def links(base_url: str, query: ListQuery, ids: list[str], more: bool, collection: str) -> list[dict[str, str]]:
    """Neutron's ``<collection>_links``: ``next`` unless a forward page came
    back short, ``previous`` unless a reverse page did. (So the last full
    page links to an empty one, which has no ``next``: clients and tempest
    walk collections that way.) ``more`` is not used: Neutron does not know it."""
    if not query.limit:
        return []
    short = len(ids) < query.limit
    out = []
    if not (short and not query.page_reverse):
        out.append({"rel": "next", "href": _href(base_url, query, ids[-1] if ids else None, False)})
    if not (short and query.page_reverse):
        out.append({"rel": "previous", "href": _href(base_url, query, ids[0] if ids else None, True)})
    return out


def _href(base_url: str, query: ListQuery, marker: str | None, reverse: bool) -> str:
    """The request's own query string with the marker (and page_reverse for
    a previous page) replaced and moved to the end, as webob's MultiDict does."""
    params = [(k, v) for k, v in query.raw if k != "marker" and k != "page_reverse"]
    if marker is not None:
        params.append(("marker", marker))
    if reverse:
        params.append(("page_reverse", "True"))
    return f"{base_url}?{urlencode(params)}"
