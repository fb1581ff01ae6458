"""Keystone-style errors of the identity service.

They extend kaon's one exception tree (:mod:`kaon.errors`) with the one
status Neutron never produces itself, 401::

    KaonError
    ├── Unauthenticated (401)          bad credentials, bad or expired token
    ├── BadRequest (400) ── ValidationError
    ├── NotAuthorized (403) ── Forbidden
    ├── NotFound (404) ── EntityNotFound
    └── Conflict (409) ── DuplicateEntry

The identity API renders any :class:`KaonError` as Keystone does,
``{"error": {"code", "title", "message"}}``, and adds
``WWW-Authenticate: Keystone uri="..."`` to a 401.
"""

from __future__ import annotations

from kaon.errors import BadRequest, Conflict, KaonError, NotAuthorized, NotFound

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}

AUTH_REQUIRED = "The request you have made requires authentication."


class Unauthenticated(KaonError):
    status = 401
    message = AUTH_REQUIRED


class ValidationError(BadRequest):
    message = "{msg}"


class Forbidden(NotAuthorized):
    message = "You are not authorized to perform the requested action: {action}."


class EntityNotFound(NotFound):
    message = "Could not find {entity}: {id}."


class DuplicateEntry(Conflict):
    message = "Conflict occurred attempting to store {entity} - {detail}."


def keystone_body(exc: KaonError) -> dict[str, dict[str, object]]:
    status = exc.status
    return {"error": {"code": status, "title": TITLES.get(status, "Error"), "message": exc.msg}}
