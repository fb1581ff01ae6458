"""``POST /v3/auth/tokens``: check credentials, resolve the scope, make the token.

Methods: ``password`` (user by id, or by name and domain id or name) and
``token`` (re-scope a valid token; the new one expires no later than the
old one). Scopes: project (by id, or name and domain), domain, explicit
``"unscoped"``, or none (the user's default project if they hold a role
there, else unscoped, as Keystone does). Every failure to authenticate is a
401 with one message, so that a caller cannot probe which user names exist.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from kaon.db import identity_tables as t
from kaon.identity import assignments, schema, store
from kaon.identity.catalog import build_catalog
from kaon.identity.config import IdentityConfig
from kaon.identity.errors import EntityNotFound, Unauthenticated, ValidationError
from kaon.identity.lockout import LoginThrottle
from kaon.identity.passwords import verify_nobody, verify_password
from kaon.identity.tokens import Ref, TokenData, TokenValidator, new_audit_id

Row = dict[str, Any]


def authenticate(conn: Connection, body: object, validator: TokenValidator,
                 throttle: LoginThrottle | None = None) -> TokenData:
    auth = body.get("auth") if isinstance(body, Mapping) else None
    identity = auth.get("identity") if isinstance(auth, Mapping) else None
    if not isinstance(auth, Mapping) or not isinstance(identity, Mapping):
        raise ValidationError(msg="Expecting to find identity in auth.")
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods:
        raise ValidationError(msg="Expecting to find methods in identity.")
    now = time.time()
    expires_at = now + validator.ttl
    if "password" in methods:
        user = _password_user(conn, identity.get("password"), throttle)
    elif "token" in methods:
        prior = _prior_token(identity.get("token"), validator)
        user = _lookup(conn, t.users, "user", prior.user_id)
        expires_at = min(expires_at, prior.expires_at)
    else:
        raise Unauthenticated("Attempted to authenticate with an unsupported method.")
    user_domain = store.get(conn, t.domains, "domain", user["domain_id"])
    if not user["enabled"] or not user_domain["enabled"]:
        raise Unauthenticated()
    data = TokenData(
        user=(user["id"], user["name"]),
        user_domain=(user_domain["id"], user_domain["name"]),
        issued_at=now,
        expires_at=expires_at,
        audit_id=new_audit_id(),
        methods=tuple(m for m in methods if m in ("password", "token")),
    )
    return _scoped(conn, data, user, auth.get("scope"))


def _lookup(conn: Connection, table: Any, entity: str, id_: str) -> Row:
    try:
        return store.get(conn, table, entity, id_)
    except EntityNotFound as exc:
        raise Unauthenticated() from exc


def _password_user(conn: Connection, password: object, throttle: LoginThrottle | None) -> Row:
    if not isinstance(password, Mapping):
        raise ValidationError(msg="Expecting to find password in identity.")
    ref = schema.ref(password, "user", "password")
    secret = ref.get("password")
    if not isinstance(secret, str):
        raise ValidationError(msg="Expecting to find password in user.")
    try:
        user = store.find_user(conn, ref)
    except EntityNotFound as exc:
        verify_nobody(secret)  # as slow as a real check: timing does not reveal who exists
        raise Unauthenticated() from exc
    if throttle is not None and throttle.locked(user["id"]):
        # Keystone's AccountLocked is a 401 with the generic message.
        verify_nobody(secret)
        raise Unauthenticated()
    if not verify_password(secret, user["password_hash"]):
        if throttle is not None:
            throttle.failed(user["id"])
        raise Unauthenticated()
    if throttle is not None:
        throttle.succeeded(user["id"])
    return user


def _prior_token(token: object, validator: TokenValidator) -> TokenData:
    if not isinstance(token, Mapping) or not isinstance(token.get("id"), str):
        raise ValidationError(msg="Expecting to find id in token.")
    return validator.validate(token["id"])


def _scoped(conn: Connection, data: TokenData, user: Row, scope: object) -> TokenData:
    if scope is None and user["default_project_id"]:
        # Keystone scopes to the default project when the user may use it,
        # and quietly issues an unscoped token when not.
        try:
            return _project_scope(conn, data, {"id": user["default_project_id"]})
        except Unauthenticated:
            return data
    if scope is None or scope == "unscoped":
        return data
    if not isinstance(scope, Mapping):
        raise ValidationError(msg="Invalid scope.")
    if "project" in scope:
        return _project_scope(conn, data, schema.ref(scope, "project", "scope"))
    if "domain" in scope:
        return _domain_scope(conn, data, schema.ref(scope, "domain", "scope"))
    raise Unauthenticated("kaon supports only project and domain scope.")


def _project_scope(conn: Connection, data: TokenData, ref: Mapping[str, Any]) -> TokenData:
    try:
        project = store.find_project(conn, ref)
    except EntityNotFound as exc:
        raise Unauthenticated(exc.msg) from exc
    domain = store.get(conn, t.domains, "domain", project["domain_id"])
    if not project["enabled"] or not domain["enabled"]:
        raise Unauthenticated(f"Project {project['id']} is disabled.")
    roles = assignments.effective_roles(conn, data.user_id, "project", project["id"])
    if not roles:
        raise Unauthenticated(f"User {data.user_id} has no access to project {project['id']}")
    return _with(
        data,
        project=(project["id"], project["name"]),
        project_domain=(domain["id"], domain["name"]),
        roles=tuple(roles),
    )


def _domain_scope(conn: Connection, data: TokenData, ref: Mapping[str, Any]) -> TokenData:
    try:
        domain = store.find_domain(conn, ref)
    except EntityNotFound as exc:
        raise Unauthenticated(exc.msg) from exc
    if not domain["enabled"]:
        raise Unauthenticated(f"Domain {domain['id']} is disabled.")
    roles = assignments.effective_roles(conn, data.user_id, "domain", domain["id"])
    if not roles:
        raise Unauthenticated(f"User {data.user_id} has no access to domain {domain['id']}")
    return _with(data, domain=(domain["id"], domain["name"]), roles=tuple(roles))


def _with(data: TokenData, **changes: Any) -> TokenData:
    return replace(data, **changes)


def isotime(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ref(ref: Ref, domain: Ref | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": ref[0], "name": ref[1]}
    if domain is not None:
        out["domain"] = {"id": domain[0], "name": domain[1]}
    return out


def render_token(data: TokenData, cfg: IdentityConfig, *, catalog: bool = True) -> dict[str, Any]:
    """The ``{"token": ...}`` body of an issue or a validation."""
    user = _ref(data.user, data.user_domain)
    user["password_expires_at"] = None
    body: dict[str, Any] = {
        "methods": list(data.methods),
        "user": user,
        "audit_ids": [data.audit_id],
        "expires_at": isotime(data.expires_at),
        "issued_at": isotime(data.issued_at),
    }
    if data.project is not None:
        body["project"] = _ref(data.project, data.project_domain)
        body["is_domain"] = False
    elif data.domain is not None:
        body["domain"] = _ref(data.domain)
    if data.project is not None or data.domain is not None:
        body["roles"] = [{"id": id_, "name": name} for id_, name in data.roles]
        if catalog:
            body["catalog"] = build_catalog(cfg)
    return {"token": body}
