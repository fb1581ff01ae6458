"""Who is calling: the ASGI middleware that puts a :class:`Context` on every request.

Three strategies, chosen by the ``auth_strategy`` option:

* ``kaon``     the embedded identity service's tokens: HMAC and expiry
               check in memory (:class:`kaon.identity.tokens.TokenValidator`),
               no database read per request;
* ``noauth``   trust ``X-Project-Id``/``X-Tenant-Id``, ``X-User-Id`` and
               ``X-Roles`` headers (benchmarks, tests);
* ``keystone`` an external Keystone through keystonemiddleware
               (:mod:`kaon.identity.external`).

``GET /`` (the version list) and everything under ``/identity`` pass
through without a context. A request without a valid token gets
Keystone's 401 body and a ``WWW-Authenticate`` header, like Neutron.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from kaon.api.context import Context
from kaon.identity import roles
from kaon.identity.errors import AUTH_REQUIRED, Unauthenticated
from kaon.identity.tokens import TokenValidator

CONTEXT_KEY = "kaon.context"
STRATEGIES = ("kaon", "noauth", "keystone")
NOAUTH_ROLES = "admin,member,reader"
UNAUTHORIZED = orjson.dumps({"error": {"code": 401, "title": "Unauthorized", "message": AUTH_REQUIRED}})


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _split_roles(value: str) -> frozenset[str]:
    return roles.effective(r.strip() for r in value.split(",") if r.strip())


def noauth_context(headers: Mapping[str, str]) -> Context:
    project = headers.get("x-project-id") or headers.get("x-tenant-id") or "admin"
    return Context(
        user_id=headers.get("x-user-id") or "kaon",
        project_id=project,
        roles=_split_roles(headers.get("x-roles") or NOAUTH_ROLES),
        request_id=new_request_id(),
        user_name=headers.get("x-user-name", ""),
        project_name=headers.get("x-project-name", ""),
    )


def _is_public(scope: Scope) -> bool:
    path: str = scope["path"]
    if path == "/identity" or path.startswith("/identity/"):
        return True
    return path == "/" and scope["method"] in ("GET", "HEAD")


class AuthMiddleware:
    """ASGI middleware setting ``scope["kaon.context"]``.

    ``authenticator`` is the :class:`TokenValidator` for ``kaon``, the
    ``[keystone_authtoken]`` options (a mapping) or a ready
    :class:`kaon.identity.external.KeystoneAuth` for ``keystone``, and
    ignored for ``noauth``. ``www_authenticate_uri`` is the identity URL
    named in 401 answers (``kaon``; keystonemiddleware names its own).
    """

    def __init__(
        self,
        app: ASGIApp,
        strategy: str,
        authenticator: Any = None,
        *,
        www_authenticate_uri: str = "",
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown auth_strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
        self.app = app
        self.strategy = strategy
        self.www_authenticate_uri = www_authenticate_uri
        self.validator: TokenValidator | None = None
        self.keystone: Any = None
        if strategy == "kaon":
            if not isinstance(authenticator, TokenValidator):
                raise TypeError("auth_strategy kaon needs the identity TokenValidator")
            self.validator = authenticator
        elif strategy == "keystone":
            from kaon.identity.external import KeystoneAuth

            self.keystone = (
                authenticator if isinstance(authenticator, KeystoneAuth) else KeystoneAuth(authenticator)
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or _is_public(scope):
            await self.app(scope, receive, send)
            return
        if self.strategy == "noauth":
            scope[CONTEXT_KEY] = noauth_context(_headers(scope))
        elif self.strategy == "kaon":
            context = self._kaon_context(_headers(scope))
            if context is None:
                await self._reject(send)
                return
            scope[CONTEXT_KEY] = context
        else:
            verdict = await self.keystone.check(scope)
            if verdict.headers is None:
                await _send(send, verdict.status, list(verdict.response_headers), verdict.body)
                return
            context = _keystone_context(verdict.headers)
            if context is None:
                await self._reject(send)
                return
            scope[CONTEXT_KEY] = context
        await self.app(scope, receive, send)

    def _kaon_context(self, headers: Mapping[str, str]) -> Context | None:
        token = headers.get("x-auth-token")
        if not token or self.validator is None:
            return None
        try:
            data = self.validator.validate(token)
        except Unauthenticated:
            return None
        if data.project is None:
            # Neutron resources belong to projects: an unscoped or
            # domain-scoped token cannot use the network API.
            return None
        return data.to_context(new_request_id())

    async def _reject(self, send: Send) -> None:
        headers = [("content-type", "application/json")]
        if self.www_authenticate_uri:
            headers.append(("www-authenticate", f'Keystone uri="{self.www_authenticate_uri}"'))
        await _send(send, 401, headers, UNAUTHORIZED)


def _keystone_context(h: Mapping[str, str]) -> Context | None:
    if h.get("X_IDENTITY_STATUS") != "Confirmed" or not h.get("X_PROJECT_ID"):
        return None
    return Context(
        user_id=h.get("X_USER_ID", ""),
        project_id=h["X_PROJECT_ID"],
        roles=_split_roles(h.get("X_ROLES", "")),
        request_id=new_request_id(),
        user_name=h.get("X_USER_NAME", ""),
        project_name=h.get("X_PROJECT_NAME", ""),
    )


async def _send(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in headers
        if k.lower() != "content-length"
    ]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
