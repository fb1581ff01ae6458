"""Helpers for tests that need the identity service: a provisioned node in
a temporary directory, token request bodies, and a synchronous client for
ASGI apps (httpx's ASGI transport, one event loop per call)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.types import ASGIApp

from kaon.db import identity_tables
from kaon.db.engine import make_engine
from kaon.db.meta import metadata
from kaon.identity import IdentityConfig, build_identity_app, make_token_validator, provision
from kaon.identity.app import identity_routes
from kaon.identity.tokens import TokenValidator


class SyncClient:
    """``httpx.Client``-like calls against an ASGI app, without a server."""

    def __init__(self, app: ASGIApp, base_url: str = "http://testserver") -> None:
        self.app = app
        self.base_url = base_url

    async def _request(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url=self.base_url) as client:
            response = await client.request(method, url, **kwargs)
            await response.aread()
            return response

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return anyio.run(self._request, method, url, kwargs)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def head(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("HEAD", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)


@dataclass
class Node:
    """A provisioned identity service in ``state_dir``."""

    engine: Engine
    cfg: IdentityConfig
    passwords: dict[str, str]
    validator: TokenValidator
    app: Starlette  # the identity app mounted at /identity, as the server does

    def client(self) -> SyncClient:
        return SyncClient(self.app)


def make_node(
    state_dir: Path, network_url: str = "http://127.0.0.1:9696", db_url: str | None = None, **cfg: Any
) -> Node:
    """Tables, bootstrap, client files and the app; SQLite in ``state_dir``
    unless ``db_url`` names another (empty or already provisioned) database."""
    state_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(db_url or f"sqlite:///{state_dir / 'kaon.db'}")
    metadata.create_all(engine, tables=list(identity_tables.TABLES))
    config = IdentityConfig(network_url=network_url, state_dir=state_dir, **cfg)
    passwords = provision(engine, config)
    validator = make_token_validator(engine, config)
    identity = build_identity_app(engine, config, validator)
    return Node(engine, config, passwords, validator, Starlette(routes=identity_routes(identity)))


def password_body(
    user: str,
    password: str,
    project: str | None = None,
    *,
    by_id: bool = False,
    domain: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ``POST /v3/auth/tokens`` body: names in the Default domain, or ids."""
    dom = domain or ({"id": "default"} if by_id else {"name": "Default"})
    key = "id" if by_id else "name"
    auth: dict[str, Any] = {
        "identity": {
            "methods": ["password"],
            "password": {"user": {key: user, "domain": dom, "password": password}},
        }
    }
    if project is not None:
        auth["scope"] = {"project": {key: project, "domain": dom}}
    return {"auth": auth}
