"""Version discovery and ``/v3/auth/*``: tokens, and what a token may use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon.identity import assignments, http, views
from kaon.identity.authn import authenticate, render_token
from kaon.identity.catalog import build_catalog
from kaon.identity.errors import Forbidden, NotFound, Unauthenticated
from kaon.identity.store import Row
from kaon.identity.tokens import TokenData

V3_ID = "v3.14"
V3_UPDATED = "2020-04-07T00:00:00Z"
MEDIA_TYPES = [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}]


def _v3(request: Request) -> dict[str, Any]:
    return {
        "id": V3_ID,
        "status": "stable",
        "updated": V3_UPDATED,
        "links": [{"rel": "self", "href": http.base(request) + "/v3/"}],
        "media-types": MEDIA_TYPES,
    }


async def versions(request: Request) -> Response:
    # Keystone answers 300 Multiple Choices here; keystoneauth expects it.
    return http.respond({"versions": {"values": [_v3(request)]}}, 300)


async def version_v3(request: Request) -> Response:
    return http.respond({"version": _v3(request)})


async def issue_token(request: Request) -> Response:
    svc = http.service(request)
    body = await http.read_body(request)
    data = await http.read(svc, authenticate, body, svc.validator, svc.throttle)
    token = svc.validator.issue(data)
    catalog = "nocatalog" not in request.query_params
    return http.respond(render_token(data, svc.cfg, catalog=catalog), 201, {"X-Subject-Token": token})


def _subject(request: Request) -> tuple[TokenData, TokenData]:
    """(caller, subject): the subject token may be checked by its owner,
    an admin or a service (Keystone's ``identity:validate_token``)."""
    token = http.caller(request)
    subject = request.headers.get("x-subject-token")
    if not subject:
        raise NotFound("Could not find token: no X-Subject-Token given.")
    try:
        data = http.service(request).validator.validate(subject)
    except Unauthenticated as exc:
        raise NotFound("Failed to validate token") from exc
    if token.user_id != data.user_id and not token.role_names & {"admin", "service"}:
        raise Forbidden(action="identity:validate_token")
    return token, data


async def validate_token(request: Request) -> Response:
    _caller, data = _subject(request)
    svc = http.service(request)
    catalog = "nocatalog" not in request.query_params
    headers = {"X-Subject-Token": request.headers["x-subject-token"]}
    return http.respond(render_token(data, svc.cfg, catalog=catalog), 200, headers)


async def revoke_token(request: Request) -> Response:
    _caller, data = _subject(request)
    svc = http.service(request)
    await http.revoke(svc, [("audit", data.audit_id)])
    return http.respond(None, 204)


def _targets(conn: Connection, user_id: str, target_type: str) -> list[Row]:
    return assignments.targets_of_user(conn, user_id, target_type, enabled_only=True)


async def auth_projects(request: Request) -> Response:
    token = http.caller(request)
    rows = await http.read(http.service(request), _targets, token.user_id, "project")
    base = http.base(request)
    return http.respond(
        {"projects": [views.project(r, base) for r in rows], "links": http.list_links(request)}
    )


async def auth_domains(request: Request) -> Response:
    token = http.caller(request)
    rows = await http.read(http.service(request), _targets, token.user_id, "domain")
    base = http.base(request)
    return http.respond({"domains": [views.domain(r, base) for r in rows], "links": http.list_links(request)})


async def auth_catalog(request: Request) -> Response:
    token = http.caller(request)
    if token.project is None and token.domain is None:
        raise Forbidden(action="identity:get_auth_catalog (the token is unscoped)")
    catalog = build_catalog(http.service(request).cfg)
    return http.respond({"catalog": catalog, "links": http.list_links(request)})


def routes() -> list[Route]:
    return [
        Route("/", versions),
        Route("/v3", version_v3),
        Route("/v3/", version_v3),
        Route("/v3/auth/tokens", issue_token, methods=["POST"]),
        Route("/v3/auth/tokens", validate_token, methods=["GET", "HEAD"]),
        Route("/v3/auth/tokens", revoke_token, methods=["DELETE"]),
        Route("/v3/auth/projects", auth_projects),
        Route("/v3/auth/domains", auth_domains),
        Route("/v3/auth/catalog", auth_catalog),
    ]
