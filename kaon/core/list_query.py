"""What a collection GET asks for, parsed: the service layer's view of a
list request (filters, fields, sorting, pagination), free of HTTP. The
query string is parsed into it by the API layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
# standard-attr-timestamp: resources changed at or after this instant.
CHANGED_SINCE = "changed_since"

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
