"""Query-string parsing for collection GETs: filters, fields, sorting,
pagination, with Neutron's 400s for anything it does not know."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kaon import errors
from kaon.model import validators as v
from kaon.model.attrs import HTTPBadRequest, Resource

RESERVED = {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


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
    filterable = resource.filterable() | extra_filters
    for key, value in items:
        if key == "fields":
            q.fields.append(value)
        elif key == "sort_key":
            sort_keys.append(value)
        elif key == "sort_dir":
            sort_dirs.append(value)
        elif key == "limit":
            try:
                q.limit = int(value)
                if q.limit < 0:
                    raise ValueError
            except ValueError:
                raise _bad(f"Limit must be an integer 0 or greater and not '{value}'") from None
        elif key == "marker":
            q.marker = value
        elif key == "page_reverse":
            try:
                q.page_reverse = v.boolean(value)
            except v.InvalidValue:
                raise _bad(f"'{value}' cannot be converted to boolean") from None
        elif key in TAG_FILTERS:
            q.tag_filters.setdefault(key, []).extend(t for t in value.split(",") if t)
        elif key in filterable:
            q.filters.setdefault(key, []).append(_filter_value(resource, key, value))
        elif validate:
            raise _bad(f"{key} is invalid attribute for filtering")
    if "tenant_id" in q.filters and "project_id" in q.filters:
        raise _bad("Both tenant_id and project_id passed as filters.")
    if "tenant_id" in q.filters:
        q.filters["project_id"] = q.filters.pop("tenant_id")
    q.sorts = _sorts(resource, sort_keys, sort_dirs)
    if q.limit == 0:
        q.limit = None
    return q


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
    out = []
    for key, direction in zip(keys, dirs, strict=True):
        if key == "tenant_id":
            key = "project_id"
        if key not in sortable:
            raise _bad(f"{key} is invalid attribute for sort_keys")
        if direction not in ("asc", "desc"):
            raise _bad(f"{direction} is invalid value for sort_dirs, valid value is 'asc' and 'desc'")
        out.append((key, direction == "asc"))
    return out
