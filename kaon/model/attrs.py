"""Declarative resource definitions, in the manner of neutron-lib's
``api/definitions``: for each attribute, whether POST/PUT may set it, its
default, its converter, whether it filters or sorts, and who may set or
read it. The API layer validates bodies from these alone; who may set or
read an attribute is policy (:mod:`kaon.core.access.policy_rules`), not a flag here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kaon import errors
from kaon.model import validators as v

MISSING: Any = object()

@dataclass(frozen=True)
class Attr:
    name: str
    post: bool = False
    put: bool = False
    required: bool = False
    default: Any = MISSING
    convert: Callable[[Any], Any] | None = None
    filter: bool = True
    sort: bool = True
    # Converter for query-string filter values ("true" -> True ...).
    filter_convert: Callable[[str], Any] | None = None


@dataclass(frozen=True)
class Resource:
    name: str  # "network"
    collection: str  # "networks"
    attrs: tuple[Attr, ...]
    by_name: Mapping[str, Attr] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {a.name: a for a in self.attrs})

    def filterable(self) -> set[str]:
        return {a.name for a in self.attrs if a.filter}

    def sortable(self) -> set[str]:
        return {a.name for a in self.attrs if a.sort}


def _bad(msg: str) -> errors.KaonError:
    return errors.HTTPBadRequest(msg=msg)


def _convert(attr: Attr, value: Any) -> Any:
    if attr.convert is None:
        return value
    try:
        return attr.convert(value)
    except v.InvalidValue as exc:
        raise errors.InvalidInput(error_message=f"Invalid input for {attr.name}. Reason: {exc}") from None


def unwrap(resource: Resource, body: Any) -> list[dict[str, Any]]:
    """The items of a POST body: one ``{"port": {...}}`` or bulk ``{"ports": [...]}``."""
    if not isinstance(body, dict) or not body:
        raise _bad("Resource body required")
    if resource.collection in body and resource.name not in body:
        items = body[resource.collection]
        if not isinstance(items, list) or not items:
            raise _bad("Resources required")
        out = []
        for item in items:
            if not isinstance(item, dict) or resource.name not in item and not item:
                raise _bad(f"Unable to find '{resource.name}' in request body")
            inner = item.get(resource.name, item)
            if not isinstance(inner, dict):  # {"routers": [{"router": [...]}]}
                raise _bad(f"Unable to find '{resource.name}' in request body")
            out.append(inner)
        return out
    if resource.name not in body:
        raise _bad(f"Unable to find '{resource.name}' in request body")
    item = body[resource.name]
    if not isinstance(item, dict):
        raise _bad(f"Unable to find '{resource.name}' in request body")
    return [item]


def check_post(resource: Resource, item: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one POST item; fill defaults. Returns the converted values."""
    unknown = [k for k in item if k not in resource.by_name]
    if unknown:
        raise _bad(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    out: dict[str, Any] = {}
    for attr in resource.attrs:
        if attr.name in item:
            if not attr.post:
                raise _bad(f"Attribute '{attr.name}' not allowed in POST")
            out[attr.name] = _convert(attr, item[attr.name])
        elif attr.post:
            if attr.required:
                raise _bad(f"Failed to parse request. Required attribute '{attr.name}' not specified")
            if attr.default is not MISSING:
                out[attr.name] = attr.default() if callable(attr.default) else attr.default
    return out


def check_put(resource: Resource, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or resource.name not in body or not isinstance(body[resource.name], dict):
        raise _bad(f"Unable to find '{resource.name}' in request body")
    item = body[resource.name]
    unknown = [k for k in item if k not in resource.by_name]
    if unknown:
        raise _bad(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
    out: dict[str, Any] = {}
    for name, value in item.items():
        attr = resource.by_name[name]
        if not attr.put:
            raise _bad(f"Cannot update read-only attribute {name}")
        out[name] = _convert(attr, value)
    return out


def project_attrs() -> tuple[Attr, ...]:
    """tenant_id/project_id: set from the token; admins may name another project."""
    conv = v.string(255)
    return (
        Attr("tenant_id", post=True, convert=conv),
        Attr("project_id", post=True, convert=conv),
    )


def standard_attrs() -> tuple[Attr, ...]:
    return (
        Attr("id", convert=v.uuid_str),
        Attr("name", post=True, put=True, default="", convert=v.string(255)),
        Attr("description", post=True, put=True, default="", convert=v.string(255)),
        *project_attrs(),
        Attr("tags", filter=False, sort=False),
        Attr("created_at", filter_convert=v.timestamp),
        Attr("updated_at", filter_convert=v.timestamp),
        Attr("revision_number", filter_convert=v.non_negative_bigint),
    )


def names(attrs: Iterable[Attr]) -> list[str]:
    return [a.name for a in attrs]
