"""Query-string parsing for collection GETs: filters, fields, sorting,
pagination, with Neutron's 400s for anything it does not know."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from kaon import errors
from kaon.model import validators as v
from kaon.model.attrs import HTTPBadRequest, Resource

TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
# standard-attr-timestamp: resources changed at or after this instant.
CHANGED_SINCE = "changed_since"

TenantIdProjectIdFilterConflict = errors.define(
    "TenantIdProjectIdFilterConflict", errors.BadRequest, "Both tenant_id and project_id passed as filters.")


@dataclass
class ListQuery:
    filters: dict[str, list[Any]] = field(default_factory=dict)
    tag_filters: dict[str, list[str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (attr, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False
    raw: list[tuple[str, str]] = field(default_factory=list)


def _bad(msg: str) -> errors.KaonError:
    return HTTPBadRequest(msg=msg)


def parse(resource: Resource, items: list[tuple[str, str]], extra_filters: set[str] = frozenset(),
          validate: bool = True) -> ListQuery:
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
