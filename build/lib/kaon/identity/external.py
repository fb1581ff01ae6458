"""An external Keystone, through keystonemiddleware's ``auth_token``.

keystonemiddleware is what every OpenStack service uses to validate
tokens: it knows every Keystone release's quirks, caches validations, and
reads the ``[keystone_authtoken]`` options operators already have. It is a
WSGI filter, so kaon calls it with a minimal WSGI environ built from the
ASGI request's headers, in a worker thread (it blocks on HTTP). Its inner
"application" only records the environ it was handed; kaon then reads the
identity headers it set (``X-Identity-Status``, ``X-User-Id``, ...). The
request body never passes through it, so nothing is buffered or copied.
If keystonemiddleware answers by itself (a 401), that answer is returned
to the client unchanged.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

# Options that would make keystonemiddleware use memcached; the all-in-one
# and test setups have none, and an unreachable memcached slows every call.
_MEMCACHE_OPTIONS = ("memcached_servers", "memcache_servers")

StartResponse = Callable[..., Any]


@dataclass(frozen=True)
class Verdict:
    """Either identity headers (accepted) or a ready response (rejected)."""

    headers: dict[str, str] | None = None
    status: int = 200
    response_headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


def _environ(scope: Scope) -> dict[str, Any]:
    server = scope.get("server") or ("localhost", 80)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": scope.get("root_path", ""),
        "PATH_INFO": scope["path"],
        "QUERY_STRING": scope.get("query_string", b"").decode("latin-1"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "CONTENT_LENGTH": "0",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        if name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            continue
        environ["HTTP_" + name] = raw_value.decode("latin-1")
    return environ


def _record(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The inner WSGI app: keystonemiddleware let the request through."""
    environ["kaon.accepted"] = True
    start_response("200 OK", [])
    return [b""]


class _QuietUnknownOptions(logging.Filter):
    """keystonemiddleware warns about every auth plugin option (auth_url,
    username, ...) passed the paste-deploy way, then uses them all the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is not known to keystonemiddleware" not in record.getMessage()


class KeystoneAuth:
    """keystonemiddleware ``auth_token`` configured from ``[keystone_authtoken]``."""

    def __init__(self, options: Mapping[str, str]) -> None:
        # Heavy imports, only when an external Keystone is configured.
        from keystonemiddleware import auth_token  # type: ignore[import-untyped]
        from oslo_config import cfg

        conf: dict[str, Any] = {k: str(v) for k, v in options.items() if k not in _MEMCACHE_OPTIONS}
        # kaon must get the decision itself: no anonymous requests reach it.
        conf["delay_auth_decision"] = "false"
        conf.setdefault("auth_type", "password")
        # A private oslo.config object rather than the process-wide cfg.CONF:
        # the options come from kaon's own configuration, passed in here.
        local = cfg.ConfigOpts()
        local([], project="kaon", default_config_files=[], default_config_dirs=[])
        conf["oslo_config_config"] = local
        quiet = _QuietUnknownOptions()
        logger = logging.getLogger("keystonemiddleware._common.config")
        logger.addFilter(quiet)
        try:
            self._filter = auth_token.AuthProtocol(_record, conf)
        finally:
            logger.removeFilter(quiet)

    def _run(self, environ: dict[str, Any]) -> Verdict:
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            answer["status"] = int(status.split(" ", 1)[0])
            answer["headers"] = tuple(headers)

        chunks = self._filter(environ, start_response)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if environ.get("kaon.accepted"):
            prefix = "HTTP_X_"
            return Verdict(headers={k[len("HTTP_") :]: v for k, v in environ.items() if k.startswith(prefix)})
        return Verdict(
            status=answer.get("status", 500), response_headers=answer.get("headers", ()), body=body
        )

    async def check(self, scope: Scope) -> Verdict:
        """Ask keystonemiddleware about this request's ``X-Auth-Token``."""
        return await run_in_threadpool(self._run, _environ(scope))
