"""The page's front door: an ASGI layer outside authentication, for /ui only.

* ``/ui/login`` and ``/ui/static/*`` are public (the login form must load
  before there is a token); ``POST /ui/logout`` only clears the cookie.
* Elsewhere under ``/ui`` the session cookie (``kaon_ui_token``, path
  ``/ui``, HttpOnly, SameSite=Strict) becomes the ``X-Auth-Token`` header,
  unless the request carries one; authentication then runs exactly as for
  the API, whatever ``auth_strategy`` is. The cookie is never read for any
  other path, so it cannot authenticate a v2.0 call made by another site.
* A 401 for the page itself (``/ui``, ``/ui/``) becomes a redirect to the
  login page; the JSON routes keep their 401 (the script goes to the login).
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "/ui"
COOKIE = "kaon_ui_token"
FROM_COOKIE = "kaon.web.token_from_cookie"
STATIC = Path(__file__).parent / "static"
PAGES = ("/ui", "/ui/")


def session_cookie(response: Response, token: str, secure: bool) -> None:
    response.set_cookie(COOKIE, token, path=PREFIX, httponly=True, samesite="strict", secure=secure)


def _login(request: Request) -> Response:
    return FileResponse(STATIC / "login.html", headers={"cache-control": "no-store"})


def _logout(request: Request) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


def public_app() -> Starlette:
    return Starlette(routes=[
        Route(f"{PREFIX}/login", _login),
        Route(f"{PREFIX}/logout", _logout, methods=["POST"]),
        Mount(f"{PREFIX}/static", app=StaticFiles(directory=STATIC), name="static"),
    ])


def _cookie_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            try:
                jar = SimpleCookie(value.decode("latin-1"))
            except CookieError:
                return None
            morsel = jar.get(COOKIE)
            if morsel is not None and morsel.value:
                return morsel.value
    return None


def _has_token_header(scope: Scope) -> bool:
    return any(name == b"x-auth-token" for name, _ in scope.get("headers", ()))


class WebGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.public = public_app()

    def __getattr__(self, name: str) -> Any:
        """``app.state`` and friends: from the first wrapped layer that has it
        (authentication, inside, does not forward attributes)."""
        inner: Any = self.app
        while not hasattr(inner, name):
            inner = inner.app  # AttributeError past the innermost layer
        return getattr(inner, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        if path in (f"{PREFIX}/login", f"{PREFIX}/logout") or path.startswith(f"{PREFIX}/static/"):
            await self.public(scope, receive, send)
            return
        if not _has_token_header(scope):
            token = _cookie_token(scope)
            if token is not None:
                # In place: the metrics layer outside reads the route from this scope.
                scope["headers"] = [*scope["headers"], (b"x-auth-token", token.encode("latin-1"))]
                scope[FROM_COOKIE] = True
        if path in PAGES:
            await self.app(scope, receive, _login_on_401(send))
            return
        await self.app(scope, receive, send)


def _login_on_401(send: Send) -> Send:
    """Turn a 401 answer into a redirect to the login page (its body is dropped)."""
    redirected = False

    async def wrapped(message: Message) -> None:
        nonlocal redirected
        if message["type"] == "http.response.start" and message["status"] == 401:
            redirected = True
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", f"{PREFIX}/login".encode()), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        if not redirected:
            await send(message)

    return wrapped
