"""Plumbing shared by the identity routes: the service object, JSON in and
out, Keystone error rendering, token and admin checks, and running the
(synchronous) database work off the event loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from kaon.db.engine import read_txn, write_txn
from kaon.errors import KaonError
from kaon.identity.config import IdentityConfig
from kaon.identity.errors import TITLES, Forbidden, Unauthenticated, ValidationError, keystone_body
from kaon.identity.lockout import LoginThrottle
from kaon.identity.tokens import TokenData, TokenValidator
from kaon.model.validators import has_nul

T = TypeVar("T")
LOG = logging.getLogger("kaon.identity")


@dataclass(frozen=True)
class IdentityService:
    engine: Engine
    cfg: IdentityConfig
    validator: TokenValidator
    throttle: LoginThrottle

    def revoke(self, rules: list[tuple[str, str]]) -> None:
        for kind, value in rules:
            self.validator.revoke(self.engine, kind, value)


def service(request: Request) -> IdentityService:
    svc: IdentityService = request.app.state.identity
    return svc


def respond(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def www_authenticate(cfg: IdentityConfig) -> dict[str, str]:
    return {"WWW-Authenticate": f'Keystone uri="{cfg.identity_root}"'}


async def on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KaonError)
    headers = www_authenticate(service(request).cfg) if exc.status == 401 else None
    return respond(keystone_body(exc), exc.status, headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route or method), in Keystone's shape."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = {404: "The resource could not be found.", 405: "The method is not allowed."}.get(
        status, str(exc.detail)
    )
    body = {"error": {"code": status, "title": TITLES.get(status, "Error"), "message": message}}
    return respond(body, status)


class InternalError(KaonError):
    """What an unhandled error answers (rendered by kaon.api.limits.CrashBarrier)."""

    message = "An unexpected error occurred."


async def on_data_error(request: Request, exc: Exception) -> Response:
    """A value the database cannot hold (PostgreSQL: a NUL in text, an integer out of range)."""
    LOG.info("identity: data error on %s %s: %s", request.method, request.url.path, exc)
    return await on_error(request, ValidationError(msg="A value in the request cannot be stored."))


async def read_body(request: Request) -> Any:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError as exc:
        raise ValidationError(msg="Malformed request body: not JSON.") from exc
    if has_nul(raw, body):
        raise ValidationError(msg="The request contains a NUL character, which no attribute may hold.")
    return body


def base(request: Request) -> str:
    """The identity root as this request reached it (honours the mount path)."""
    scope = dict(request.scope)
    scope["path"] = scope.get("root_path", "") or "/"
    scope["query_string"] = b""
    return str(URL(scope=scope)).rstrip("/")


def list_links(request: Request) -> dict[str, Any]:
    return {"self": str(request.url), "previous": None, "next": None}


def caller(request: Request) -> TokenData:
    """The validated ``X-Auth-Token`` of the request, else 401."""
    token = request.headers.get("x-auth-token")
    if not token:
        raise Unauthenticated()
    return service(request).validator.validate(token)


def require_admin(
    request: Request, action: str, allow: Callable[[TokenData], bool] | None = None
) -> TokenData:
    """The caller, who must hold ``admin`` (or satisfy ``allow``), else 403."""
    token = caller(request)
    if "admin" in token.role_names or (allow is not None and allow(token)):
        return token
    raise Forbidden(action=action)


async def read(svc: IdentityService, fn: Callable[..., T], *args: Any) -> T:
    def work() -> T:
        with read_txn(svc.engine) as conn:
            return fn(conn, *args)

    return await run_in_threadpool(work)


async def write(svc: IdentityService, fn: Callable[..., T], *args: Any) -> T:
    def work() -> T:
        with write_txn(svc.engine) as conn:
            return fn(conn, *args)

    return await run_in_threadpool(work)


async def revoke(svc: IdentityService, rules: list[tuple[str, str]]) -> None:
    if rules:
        await run_in_threadpool(svc.revoke, rules)


def query_filters(request: Request, names: tuple[str, ...]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in names:
        value = request.query_params.get(name)
        if value is None:
            continue
        if name in ("enabled", "is_domain"):
            out[name] = value.lower() not in ("false", "0", "no", "off")
        else:
            out[name] = value
    return out
