"""Build the identity ASGI app (mounted by the server at ``/identity``)."""

from __future__ import annotations

from sqlalchemy import Engine
from starlette.applications import Starlette

from kaon.errors import KaonError
from kaon.identity import admin_routes, assignment_routes, auth_routes, http
from kaon.identity.config import IdentityConfig
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
    app = Starlette(routes=routes, exception_handlers={KaonError: http.on_error})
    app.state.identity = http.IdentityService(engine, cfg, validator)
    return app
