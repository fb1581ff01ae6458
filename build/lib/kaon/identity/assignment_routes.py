"""Grants and the listings built on them.

``/v3/{projects,domains}/{t}/users/{u}/roles[/{r}]`` (PUT/HEAD/GET/DELETE),
``/v3/role_assignments``, ``/v3/users/{u}/projects``, ``/v3/role_inferences``
and ``POST /v3/users/{u}/password``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon.db import identity_tables as t
from kaon.identity import assignments, http, roles, schema, store, views
from kaon.identity.assignments import Grant
from kaon.identity.errors import EntityNotFound, Unauthenticated, ValidationError
from kaon.identity.passwords import hash_password, verify_password

PLURAL = {"project": "projects", "domain": "domains"}


def _grant(target_type: str, request: Request) -> Grant:
    p = request.path_params
    return Grant(p["user_id"], target_type, p["target_id"], p["role_id"])


async def put_grant(target_type: str, request: Request) -> Response:
    http.require_admin(request, "identity:create_grant")
    await http.write(http.service(request), assignments.grant, _grant(target_type, request))
    return http.respond(None, 204)


async def check_grant(target_type: str, request: Request) -> Response:
    http.require_admin(request, "identity:check_grant")
    found = await http.read(http.service(request), assignments.has, _grant(target_type, request))
    if not found:
        g = _grant(target_type, request)
        raise EntityNotFound(entity="role assignment", id=f"{g.role_id} for user {g.user_id}")
    return http.respond(None, 204)


async def delete_grant(target_type: str, request: Request) -> Response:
    http.require_admin(request, "identity:revoke_grant")
    svc = http.service(request)
    g = _grant(target_type, request)
    await http.write(svc, assignments.revoke, g)
    # Tokens carry roles; the user's tokens must not keep the revoked one.
    await http.revoke(svc, [("user", g.user_id)])
    return http.respond(None, 204)


async def list_grants(target_type: str, request: Request) -> Response:
    http.require_admin(request, "identity:list_grants")
    p = request.path_params
    rows = await http.read(
        http.service(request), assignments.roles_of, p["user_id"], target_type, p["target_id"]
    )
    base = http.base(request)
    return http.respond({"roles": [views.role(r, base) for r in rows], "links": http.list_links(request)})


def _assignment_listing(conn: Connection, q: dict[str, Any], base: str) -> list[dict[str, Any]]:
    target_type = "project" if q["project"] else "domain" if q["domain"] else None
    grants = assignments.list_grants(
        conn,
        user_id=q["user"],
        target_type=target_type,
        target_id=q["project"] or q["domain"],
        role_id=None if q["effective"] else q["role"],
    )
    if q["effective"]:
        grants = assignments.expand(conn, grants)
        grants = [g for g in grants if q["role"] is None or g.role_id == q["role"]]
    names = _names(conn) if q["names"] else None
    return [_render_grant(g, base, names) for g in grants]


def _names(conn: Connection) -> dict[str, Any]:
    """id -> (name, domain ref) of every user, project, domain and role."""
    domains = {r.id: r.name for r in conn.execute(select(t.domains))}
    out: dict[str, Any] = {r.id: (r.name, None) for r in conn.execute(select(t.roles))}
    out.update({id_: (name, None) for id_, name in domains.items()})
    for table in (t.users, t.projects):
        for r in conn.execute(select(table.c.id, table.c.name, table.c.domain_id)):
            out[r.id] = (r.name, {"id": r.domain_id, "name": domains.get(r.domain_id)})
    return out


def _named(id_: str, names: dict[str, Any] | None) -> dict[str, Any]:
    ref: dict[str, Any] = {"id": id_}
    if names is not None and id_ in names:
        name, domain = names[id_]
        ref["name"] = name
        if domain is not None:
            ref["domain"] = domain
    return ref


def _render_grant(g: Grant, base: str, names: dict[str, Any] | None) -> dict[str, Any]:
    path = f"{PLURAL[g.target_type]}/{g.target_id}/users/{g.user_id}/roles/{g.role_id}"
    return {
        "role": _named(g.role_id, names),
        "user": _named(g.user_id, names),
        "scope": {g.target_type: _named(g.target_id, names)},
        "links": {"assignment": f"{base}/v3/{path}"},
    }


async def role_assignments(request: Request) -> Response:
    http.require_admin(request, "identity:list_role_assignments")
    qp = request.query_params
    q = {
        "user": qp.get("user.id"),
        "project": qp.get("scope.project.id"),
        "domain": qp.get("scope.domain.id"),
        "role": qp.get("role.id"),
        "effective": "effective" in qp,
        "names": "include_names" in qp and qp["include_names"].lower() not in ("false", "0"),
    }
    rows = await http.read(http.service(request), _assignment_listing, q, http.base(request))
    return http.respond({"role_assignments": rows, "links": http.list_links(request)})


async def user_projects(request: Request) -> Response:
    user_id = request.path_params["user_id"]
    http.require_admin(request, "identity:list_user_projects", lambda tok: tok.user_id == user_id)

    def work(conn: Connection) -> list[store.Row]:
        store.get(conn, t.users, "user", user_id)
        return assignments.targets_of_user(conn, user_id, "project", enabled_only=False)

    rows = await http.read(http.service(request), work)
    base = http.base(request)
    return http.respond(
        {"projects": [views.project(r, base) for r in rows], "links": http.list_links(request)}
    )


async def role_inferences(request: Request) -> Response:
    http.require_admin(request, "identity:list_role_inference_rules")
    rows = await http.read(http.service(request), store.list_rows, t.roles, {})
    by_name = {r["name"].lower(): r for r in rows}
    base = http.base(request)
    out: dict[str, dict[str, Any]] = {}
    for prior, implied in roles.inferences():
        if prior in by_name and implied in by_name:
            entry = out.setdefault(prior, {"prior_role": views.role(by_name[prior], base), "implies": []})
            entry["implies"].append(views.role(by_name[implied], base))
    return http.respond({"role_inferences": list(out.values()), "links": http.list_links(request)})


async def change_password(request: Request) -> Response:
    """A user changes their own password, proving the old one."""
    user_id = request.path_params["user_id"]
    attrs = schema.entity_body(await http.read_body(request), "user")
    old, new = schema.opt_str(attrs, "original_password"), schema.opt_str(attrs, "password")
    if old is None or new is None:
        raise ValidationError(msg="Expecting to find original_password and password in user.")
    svc = http.service(request)
    user = await http.read(svc, store.get, t.users, "user", user_id)
    if not await run_in_threadpool(verify_password, old, user["password_hash"]):
        raise Unauthenticated()
    new_hash = await run_in_threadpool(hash_password, new)
    await http.write(svc, store.update_user, user_id, {}, new_hash)
    await http.revoke(svc, [("user", user_id)])
    return http.respond(None, 204)


def routes() -> list[Route]:
    out: list[Route] = []
    for target_type, plural in PLURAL.items():
        member = f"/v3/{plural}/{{target_id}}/users/{{user_id}}/roles/{{role_id}}"
        out += [
            Route(member, partial(put_grant, target_type), methods=["PUT"]),
            Route(member, partial(check_grant, target_type), methods=["GET", "HEAD"]),
            Route(member, partial(delete_grant, target_type), methods=["DELETE"]),
            Route(f"/v3/{plural}/{{target_id}}/users/{{user_id}}/roles", partial(list_grants, target_type)),
        ]
    return out + [
        Route("/v3/role_assignments", role_assignments),
        Route("/v3/users/{user_id}/projects", user_projects),
        Route("/v3/users/{user_id}/password", change_password, methods=["POST"]),
        Route("/v3/role_inferences", role_inferences),
    ]
