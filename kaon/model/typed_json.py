"""Frozen dataclasses to and from JSON, with the type checks a bus edge needs.

``encode`` writes a dataclass tree as JSON values (tuples as lists), leaving
out the fields whose metadata says so (``OMIT_NONE``: when None;
``OMIT_EMPTY``: when None or empty) — a section that is absent rather than
null. ``dumps_pruned`` gives the same result through orjson (which writes
dataclasses in C) and a per-type pass that removes those fields, walking
only the types that have any. ``decode`` reads JSON back into the dataclass
tree through one reader function per type, built once, checking every
field's type and naming the place of a misfit (``ShapeError``:
``intent.ports.p1.ips[1]: expected str, got int``).

Supported field types: dataclasses, ``tuple[X, ...]``, ``Mapping[str, X]``
/ ``dict[str, X]``, ``X | None``, ``str``, ``int``, ``bool``, ``float``.
kaon.model.intent is its one user.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson

OMIT_NONE: Mapping[str, str] = types.MappingProxyType({"omit": "none"})
OMIT_EMPTY: Mapping[str, str] = types.MappingProxyType({"omit": "empty"})


class ShapeError(ValueError):
    """JSON that does not have the shape of the dataclass asked for (the message says where)."""


def encode(value: Any) -> Any:
    """Dataclasses to dicts, tuples to lists, leaving out what OMIT_NONE/OMIT_EMPTY say."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for name, omit in _fields(type(value)):
            item = getattr(value, name)
            if (item is None and omit) or (omit == "empty" and not item):
                continue
            out[name] = encode(item)
        return out
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):
        return {k: encode(v) for k, v in value.items()}
    return value


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    return tuple((f.name, f.metadata.get("omit", "")) for f in dataclasses.fields(cls))


Prune = Callable[[Any], None]


def dumps_pruned(value: Any) -> dict[str, Any]:
    """``encode(value)`` for a dataclass, built by orjson (C) and pruned in place."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(value))
    prune = _pruner(type(value))  # type: ignore[arg-type]  # a class is hashable
    if prune is not None:
        prune(out)
    return out


@functools.cache
def _pruner(hint: Any) -> Prune | None:
    """What removes the OMIT_NONE/OMIT_EMPTY keys from the full JSON form of ``hint``, in place;
    None when nothing under ``hint`` is ever left out (that part is not walked at all)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _pruner(inner)
    if origin is tuple:
        return _each(_pruner(args[0]), lambda values: values)
    if origin in (Mapping, dict):
        return _each(_pruner(args[1]), lambda values: values.values())
    if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
        return None
    hints = _hints(hint)
    plan = [(name, omit, _pruner(hints[name])) for name, omit in _fields(hint)]
    plan = [(name, omit, inner) for name, omit, inner in plan if omit or inner is not None]
    if not plan:
        return None

    def prune(obj: dict[str, Any]) -> None:
        for name, omit, inner in plan:
            value = obj.get(name)
            if (value is None and omit) or (omit == "empty" and not value):
                obj.pop(name, None)
            elif inner is not None and value is not None:
                inner(value)

    return prune


def _each(inner: Prune | None, items: Callable[[Any], Any]) -> Prune | None:
    if inner is None:
        return None

    def prune(values: Any) -> None:
        for value in items(values):
            inner(value)

    return prune


T = TypeVar("T")
Reader = Callable[[Any], Any]


def decode(cls: type[T], data: Any, where: str = "value") -> T:
    """Build ``cls`` from its JSON form, checking every field's type; :class:`ShapeError` says where not."""
    try:
        out: T = _reader(cls)(data)  # type: ignore[arg-type]  # a class is hashable
    except _Misfit as exc:
        raise ShapeError(f"{where}{''.join(reversed(exc.path))}: {exc.why}") from None
    return out


class _Misfit(Exception):
    """A value of the wrong shape; ``path`` grows on the way out, so a good intent pays nothing for it."""

    def __init__(self, why: str) -> None:
        self.why = why
        self.path: list[str] = []

    def at(self, segment: str) -> _Misfit:
        self.path.append(segment)
        return self


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _reader(hint: Any) -> Reader:
    """A function that reads a JSON value as ``hint``, built once per type (the agent reads every intent)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        return _optional(_reader(inner))
    if origin is tuple:
        return _sequence(_reader(args[0]))
    if origin in (Mapping, dict):
        return _mapping(_reader(args[1]))
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _record(hint)
    if hint is Any:
        return lambda data: data
    return _scalar(hint)


def _optional(inner: Reader) -> Reader:
    def read(data: Any) -> Any:
        return None if data is None else inner(data)
    return read


def _sequence(item: Reader) -> Reader:
    def read(data: Any) -> tuple[Any, ...]:
        if not isinstance(data, list | tuple):
            raise _Misfit(f"expected a list, got {type(data).__name__}")
        out = []
        for i, value in enumerate(data):
            try:
                out.append(item(value))
            except _Misfit as exc:
                raise exc.at(f"[{i}]") from None
        return tuple(out)
    return read


def _mapping(value_reader: Reader) -> Reader:
    def read(data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise _Misfit(f"expected an object, got {type(data).__name__}")
        out = {}
        for key, value in data.items():
            try:
                out[str(key)] = value_reader(value)
            except _Misfit as exc:
                raise exc.at(f".{key}") from None
        return out
    return read


def _record(cls: type) -> Reader:
    hints = _hints(cls)
    names = frozenset(hints)
    plan = [(f.name, _reader(hints[f.name]),
             f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
            for f in dataclasses.fields(cls)]

    def read(data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise _Misfit(f"expected an object, got {type(data).__name__}")
        unknown = data.keys() - names
        if unknown:
            raise _Misfit(f"unknown field(s) {', '.join(sorted(unknown))}")
        kwargs = {}
        for name, read_field, required in plan:
            if name in data:
                try:
                    kwargs[name] = read_field(data[name])
                except _Misfit as exc:
                    raise exc.at(f".{name}") from None
            elif required:
                raise _Misfit(f"missing field {name}")
        return cls(**kwargs)
    return read


def _scalar(hint: type) -> Reader:
    def read(data: Any) -> Any:
        # bool is an int in Python; an int where a bool belongs (or back) is a bug upstream.
        if data.__class__ is not hint and (not isinstance(data, hint) or (hint is int and isinstance(data, bool))):
            raise _Misfit(f"expected {hint.__name__}, got {type(data).__name__}")
        return data
    return read
