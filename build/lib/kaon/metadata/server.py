"""Serve kaon's metadata service over HTTP on ``nova_metadata_host:nova_metadata_port``.

Neutron's option names, read where Neutron's metadata agent reads them
(``[DEFAULT]``, then ``[agent]``: kaon.agent.metadata_proxy.proxy_config), so
one file configures both ends. The service's own secret may differ: Nova
reads ``[neutron] metadata_proxy_shared_secret``, and kaon does too when it is
set (that is also how a test gives the service a wrong secret).

Why the standard library's threading HTTP server and not the API's uvicorn:
``kaon server`` already runs uvicorn in its main thread; this one runs in a
daemon thread beside it (or alone, for ``kaon metadata``), its requests are
tiny, and each is one short read transaction.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import Engine

from kaon.agent.metadata_proxy import proxy_config
from kaon.config import Config, parse_bool
from kaon.metadata.service import respond

LOG = logging.getLogger("kaon.metadata")


def service_secret(cfg: Config) -> str:
    nova = cfg.get("neutron", "metadata_proxy_shared_secret")
    return nova if nova is not None else proxy_config(cfg).shared_secret


def should_serve(cfg: Config) -> bool:
    """``[metadata] serve = true``: ``kaon server`` (and ``kaon up``) serve metadata too."""
    return bool(cfg.get_typed("metadata", "serve", parse_bool, False))


def make_server(cfg: Config, engine: Engine) -> ThreadingHTTPServer:
    """A bound (not yet serving) metadata server for ``cfg``."""
    secret = service_secret(cfg)
    if not secret:
        LOG.warning("metadata_proxy_shared_secret is empty: any client that can reach the metadata service "
                    "can sign for any instance")

    class Handler(BaseHTTPRequestHandler):
        server_version = "kaon-metadata"

        def do_GET(self) -> None:
            self._reply(include_body=True)

        def do_HEAD(self) -> None:
            self._reply(include_body=False)

        def do_POST(self) -> None:
            self._reply(include_body=True)

        def _reply(self, include_body: bool) -> None:
            reply = respond(engine, secret, self.command, self.path, self.headers)
            body = reply.body.encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if include_body:
                self.wfile.write(body)

        def log_message(self, fmt: str, *args: Any) -> None:
            LOG.debug("%s %s", self.address_string(), fmt % args)

    opts = proxy_config(cfg)
    server = ThreadingHTTPServer((opts.nova_metadata_host, opts.nova_metadata_port), Handler)
    server.daemon_threads = True
    return server


def start_in_thread(cfg: Config, engine: Engine) -> ThreadingHTTPServer:
    """Serve from a daemon thread (``kaon server`` with ``[metadata] serve = true``)."""
    server = make_server(cfg, engine)
    threading.Thread(target=server.serve_forever, name="kaon-metadata", daemon=True).start()
    LOG.info("metadata service on %s:%d", *server.server_address[:2])
    return server


def run_metadata(cfg: Config) -> int:
    """``kaon metadata``: serve in the foreground until killed."""
    from kaon.db.engine import make_engine

    server = make_server(cfg, make_engine(cfg.database.connection))
    LOG.info("metadata service on %s:%d", *server.server_address[:2])
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
