"""Build the identity ASGI app (mounted by the server at ``/identity``)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DataError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kaon.api.limits import CrashBarrier
from kaon.errors import KaonError
from kaon.identity import admin_routes, assignment_routes, auth_routes, http
from kaon.identity.config import IdentityConfig
from kaon.identity.lockout import LoginThrottle
from kaon.identity.tokens import TokenSigner, TokenValidator, load_or_create_key


def make_token_validator(engine: Engine, cfg: IdentityConfig) -> TokenValidator:
    """The validator the identity app and the auth middleware share.

    The key is ``cfg.secret_key`` or the one in ``<state_dir>/identity.key``;
    revocation rules still in force are read back from the database.
    """
    if cfg.secret_key is not None:
        key = cfg.secret_key
    elif cfg.state_dir is not None:
        key = load_or_create_key(cfg.state_dir)
    else:
        raise ValueError("identity needs a secret_key or a state_dir to keep its key in")
    validator = TokenValidator(TokenSigner(key), cfg.token_ttl)
    validator.revocations.load(engine)
    return validator


def build_identity_app(
    engine: Engine, cfg: IdentityConfig, validator: TokenValidator | None = None
) -> Starlette:
    """The Keystone v3 subset as an ASGI app; ``app.state.identity.validator``
    is the token validator (pass one in to share it with the middleware)."""
    if validator is None:
        validator = make_token_validator(engine, cfg)
    routes = auth_routes.routes() + admin_routes.routes() + assignment_routes.routes()
    handlers = {KaonError: http.on_error, HTTPException: http.on_http_error, DataError: http.on_data_error}
    # Unhandled errors: a 500 that keeps the connection (kaon.api.limits).
    app = Starlette(routes=routes, exception_handlers=handlers,
                    middleware=[Middleware(CrashBarrier, render=http.InternalError)])
    throttle = LoginThrottle(cfg.lockout_failure_attempts, cfg.lockout_duration)
    app.state.identity = http.IdentityService(engine, cfg, validator, throttle)
    return app


def identity_routes(identity_app: ASGIApp, prefix: str = "/identity") -> list[BaseRoute]:
    """Routes serving ``identity_app`` under ``prefix`` for the server's router.

    A bare ``Mount`` answers ``GET /identity`` (no slash; what keystoneauth
    asks first when ``auth_url`` has no version) with a redirect; this adds
    a route that serves it directly.
    """

    bare = _Bare(identity_app, prefix)
    return [Route(prefix, bare, methods=["GET", "HEAD"]), Mount(prefix, app=identity_app)]


class _Bare:
    """``<prefix>`` served as ``<prefix>/`` (a class: Starlette would wrap a
    plain function as a request handler rather than call it as ASGI)."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        root = scope.get("root_path", "") + self.prefix
        await self.app({**scope, "root_path": root, "path": scope["path"] + "/"}, receive, send)
