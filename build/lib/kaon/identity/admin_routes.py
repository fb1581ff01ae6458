"""``/v3/{domains,projects,users,roles}``: create, list, show, update, delete.

The four collections behave alike, so one set of handlers serves them all,
driven by a :class:`Kind` per collection. Every call needs the ``admin``
role, except that users may read themselves and the project they are
scoped to (as Keystone's default policy allows).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, Table
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon.db import identity_tables as t
from kaon.identity import http, schema, store, views
from kaon.identity.passwords import hash_password
from kaon.identity.store import Revoke, Row
from kaon.identity.tokens import TokenData

Attrs = dict[str, Any]


def _no_prep(attrs: Attrs) -> Any:
    return None


def _hash(attrs: Attrs) -> str | None:
    """Hash the password before the transaction: scrypt is slow on purpose."""
    password = schema.opt_str(attrs, "password")
    return hash_password(password) if password is not None else None


@dataclass(frozen=True)
class Kind:
    singular: str
    plural: str
    table: Table
    filters: tuple[str, ...]
    render: Callable[[Row, str], dict[str, Any]]
    create: Callable[[Connection, Attrs, Any], Row]
    update: Callable[[Connection, str, Attrs, Any], tuple[Row, Revoke]]
    delete: Callable[[Connection, str], Revoke]
    prepare: Callable[[Attrs], Any] = _no_prep
    self_read: Callable[[TokenData, str], bool] = lambda _token, _id: False


KINDS = (
    Kind(
        "domain",
        "domains",
        t.domains,
        ("name", "enabled"),
        views.domain,
        lambda c, a, _p: store.create_domain(c, a),
        lambda c, i, a, _p: store.update_domain(c, i, a),
        store.delete_domain,
        self_read=lambda token, id_: token.domain is not None and token.domain[0] == id_,
    ),
    Kind(
        "project",
        "projects",
        t.projects,
        ("name", "domain_id", "enabled"),
        views.project,
        lambda c, a, _p: store.create_project(c, a),
        lambda c, i, a, _p: store.update_project(c, i, a),
        store.delete_project,
        self_read=lambda token, id_: token.project_id == id_,
    ),
    Kind(
        "user",
        "users",
        t.users,
        ("name", "domain_id", "enabled"),
        views.user,
        store.create_user,
        store.update_user,
        store.delete_user,
        prepare=_hash,
        self_read=lambda token, id_: token.user_id == id_,
    ),
    Kind(
        "role",
        "roles",
        t.roles,
        ("name",),
        views.role,
        lambda c, a, _p: store.create_role(c, a),
        lambda c, i, a, _p: store.update_role(c, i, a),
        store.delete_role,
    ),
)


async def list_entities(kind: Kind, request: Request) -> Response:
    http.require_admin(request, f"identity:list_{kind.plural}")
    svc = http.service(request)
    filters = http.query_filters(request, kind.filters)
    rows = await http.read(svc, store.list_rows, kind.table, filters)
    base = http.base(request)
    return http.respond(
        {kind.plural: [kind.render(r, base) for r in rows], "links": http.list_links(request)}
    )


async def create_entity(kind: Kind, request: Request) -> Response:
    http.require_admin(request, f"identity:create_{kind.singular}")
    svc = http.service(request)
    attrs = schema.entity_body(await http.read_body(request), kind.singular)
    prepared = await run_in_threadpool(kind.prepare, attrs)
    row = await http.write(svc, kind.create, attrs, prepared)
    return http.respond({kind.singular: kind.render(row, http.base(request))}, 201)


async def show_entity(kind: Kind, request: Request) -> Response:
    id_ = request.path_params["id"]
    http.require_admin(request, f"identity:get_{kind.singular}", lambda tok: kind.self_read(tok, id_))
    row = await http.read(http.service(request), store.get, kind.table, kind.singular, id_)
    return http.respond({kind.singular: kind.render(row, http.base(request))})


async def update_entity(kind: Kind, request: Request) -> Response:
    http.require_admin(request, f"identity:update_{kind.singular}")
    svc = http.service(request)
    attrs = schema.entity_body(await http.read_body(request), kind.singular)
    prepared = await run_in_threadpool(kind.prepare, attrs)
    row, revoke = await http.write(svc, kind.update, request.path_params["id"], attrs, prepared)
    await http.revoke(svc, revoke)
    return http.respond({kind.singular: kind.render(row, http.base(request))})


async def delete_entity(kind: Kind, request: Request) -> Response:
    http.require_admin(request, f"identity:delete_{kind.singular}")
    svc = http.service(request)
    revoke = await http.write(svc, kind.delete, request.path_params["id"])
    await http.revoke(svc, revoke)
    return http.respond(None, 204)


def routes() -> list[Route]:
    out: list[Route] = []
    for kind in KINDS:
        collection = f"/v3/{kind.plural}"
        member = collection + "/{id}"
        out += [
            Route(collection, partial(list_entities, kind), methods=["GET"]),
            Route(collection, partial(create_entity, kind), methods=["POST"]),
            Route(member, partial(show_entity, kind), methods=["GET"]),
            Route(member, partial(update_entity, kind), methods=["PATCH"]),
            Route(member, partial(delete_entity, kind), methods=["DELETE"]),
        ]
    return out
