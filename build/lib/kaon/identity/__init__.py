"""The embedded identity service: a Keystone v3 subset for all-in-one nodes.

Public API for the server::

    cfg = IdentityConfig(network_url="http://127.0.0.1:9696", state_dir=STATE)
    passwords = ensure_passwords(STATE)             # STATE/passwords.json
    bootstrap(engine, passwords["admin"], passwords["demo"],
              alt_demo_password=passwords["alt_demo"],
              reader_password=passwords["demo_reader"])
    write_client_files(STATE, cfg.identity_root, passwords)
    validator = make_token_validator(engine, cfg)   # STATE/identity.key
    identity_app = build_identity_app(engine, cfg, validator)
    routes += identity_routes(identity_app)         # Mount at /identity (+ bare /identity)
    app = AuthMiddleware(app, "kaon", validator, www_authenticate_uri=cfg.identity_root)

:func:`provision` does the first four steps in one call.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from kaon.identity.app import build_identity_app, identity_routes, make_token_validator
from kaon.identity.bootstrap import bootstrap
from kaon.identity.clientfiles import ensure_passwords, write_client_files
from kaon.identity.config import IdentityConfig
from kaon.identity.tokens import TokenData, TokenValidator


def provision(
    engine: Engine,
    cfg: IdentityConfig,
    *,
    admin_password: str | None = None,
    demo_password: str | None = None,
) -> dict[str, str]:
    """Passwords, bootstrap and client files for ``cfg.state_dir``; returns
    the passwords by user name (admin, demo, alt_demo, demo_reader)."""
    if cfg.state_dir is None:
        raise ValueError("provision needs cfg.state_dir")
    state = Path(cfg.state_dir)
    passwords = ensure_passwords(state, admin_password, demo_password)
    bootstrap(
        engine,
        passwords["admin"],
        passwords["demo"],
        alt_demo_password=passwords["alt_demo"],
        reader_password=passwords["demo_reader"],
    )
    write_client_files(state, cfg.identity_root, passwords, cfg.region)
    return passwords


__all__ = [
    "IdentityConfig",
    "TokenData",
    "TokenValidator",
    "bootstrap",
    "build_identity_app",
    "ensure_passwords",
    "identity_routes",
    "make_token_validator",
    "provision",
    "write_client_files",
]
