"""Role implication, as Keystone's defaults since 2023.2.

``admin`` implies ``member``, ``manager`` implies ``member``, ``member``
implies ``reader``. Tokens list the effective roles (the closure), so
consumers such as the Neutron policy check names only. kaon keeps the
rules fixed rather than in a table: no client of an all-in-one node edits
them, and a fixed rule needs no database read when a token is issued.
"""

from __future__ import annotations

from collections.abc import Iterable

DEFAULT_ROLES = ("admin", "manager", "member", "reader", "service")

IMPLIES: dict[str, tuple[str, ...]] = {
    "admin": ("member",),
    "manager": ("member",),
    "member": ("reader",),
}


def effective(names: Iterable[str]) -> frozenset[str]:
    """The role names ``names`` grant, implied ones included."""
    seen: set[str] = set()
    todo = [n.lower() for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(IMPLIES.get(name, ()))
    return frozenset(seen)


def inferences() -> list[tuple[str, str]]:
    """(prior, implied) pairs, for ``GET /v3/role_inferences``."""
    return [(prior, implied) for prior, many in IMPLIES.items() for implied in many]
