"""Checks of request bodies at the identity API edge, with Keystone's wording."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kaon.identity.errors import ValidationError


def invalid(field: str, reason: str) -> ValidationError:
    return ValidationError(msg=f"Invalid input for field '{field}': {reason}")


def entity_body(body: object, key: str) -> dict[str, Any]:
    """``body[key]`` as a dict, or Keystone's 400."""
    if not isinstance(body, Mapping) or not isinstance(body.get(key), Mapping):
        raise ValidationError(
            msg=f"Expecting to find {key} in request body. The server could not comply "
            "with the request since it is either malformed or otherwise incorrect. "
            "The client is assumed to be in error."
        )
    return dict(body[key])


def name(attrs: Mapping[str, Any], *, required: bool) -> str | None:
    if "name" not in attrs:
        if required:
            raise invalid("name", "'name' is a required property")
        return None
    value = attrs["name"]
    if not isinstance(value, str) or not value.strip():
        raise invalid("name", f"{value!r} is not a non-empty string")
    if len(value) > 255:
        raise invalid("name", "is longer than 255 characters")
    return value


def opt_str(attrs: Mapping[str, Any], key: str) -> str | None:
    value = attrs.get(key)
    if value is not None and not isinstance(value, str):
        raise invalid(key, f"{value!r} is not of type 'string'")
    return value


def opt_bool(attrs: Mapping[str, Any], key: str) -> bool | None:
    value = attrs.get(key)
    if value is not None and not isinstance(value, bool):
        raise invalid(key, f"{value!r} is not of type 'boolean'")
    return value


def extra(attrs: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """Attributes Keystone would store as "extra" and echo back."""
    return {k: v for k, v in attrs.items() if k not in known}


def ref(body: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    """A nested ``{"id": ...} | {"name": ..., "domain": ...}`` reference."""
    value = body.get(key)
    if not isinstance(value, Mapping) or not (value.get("id") or value.get("name")):
        raise ValidationError(msg=f"Expecting to find {key} id or name in {where}.")
    return dict(value)
