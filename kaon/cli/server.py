"""``kaon server``: wire config, database, ML2, identity and the API, then serve."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import uvicorn

from kaon.api.app import build_app
from kaon.api.auth import AuthMiddleware
from kaon.asgi.connections import uvicorn_options
from kaon.asgi.limits import HttpLimits
from kaon.config import Config
from kaon.db.engine import make_engine
from kaon.db.migrate import upgrade
from kaon.ml2.segments import TypeManager

LOG = logging.getLogger("kaon.server")


def build(cfg: Config) -> tuple[Any, dict[str, Any]]:
    """The ASGI app for ``cfg`` and facts about it (URLs, client files)."""
    state = Path(cfg.default.state_path)
    state.mkdir(parents=True, exist_ok=True)
    engine = make_engine(cfg.database.connection)
    upgrade(engine)
    types = TypeManager.from_config(cfg)
    strategy = cfg.default.auth_strategy
    facts: dict[str, Any] = {"network_url": cfg.default.public_url, "auth_strategy": strategy}
    identity_app = None
    authenticator: Any = None
    www = ""
    if strategy == "kaon":
        from kaon.identity.app import build_identity_app, make_token_validator
        from kaon.identity.bootstrap import bootstrap
        from kaon.identity.clientfiles import ensure_passwords, write_client_files
        from kaon.identity.config import IdentityConfig, options_from

        icfg = IdentityConfig(network_url=cfg.default.public_url, state_dir=state, **options_from(cfg))
        passwords = ensure_passwords(state)
        bootstrap(engine, passwords["admin"], passwords["demo"],
                  alt_demo_password=passwords.get("alt_demo"), reader_password=passwords.get("demo_reader"))
        facts["client_files"] = {k: str(v) for k, v in
                                 write_client_files(state, icfg.identity_root, passwords).items()}
        facts["identity_url"] = icfg.identity_root + "/v3"
        authenticator = make_token_validator(engine, icfg)
        identity_app = build_identity_app(engine, icfg, authenticator)
        www = icfg.identity_root
    elif strategy == "keystone":
        authenticator = dict(cfg.keystone_authtoken)

    def with_auth(app: Any) -> Any:
        return AuthMiddleware(app, strategy, authenticator, www_authenticate_uri=www)

    app = build_app(cfg, engine, types, identity_app=identity_app, auth=with_auth)
    return app, facts


def services_of(app: Any) -> Any:
    """The :class:`~kaon.api.app.Services` behind the (wrapped) ASGI app."""
    while not hasattr(app, "state") or not hasattr(app.state, "services"):
        app = app.app
    return app.state.services


def start_agent_side(cfg: Config, app: Any) -> Any:
    """Start the compiler and serve the agents on the bus; returns the server bus."""
    from kaon.bus import server_bus
    from kaon.core.agents.agent_rpc import AgentRpc

    services = services_of(app)
    bus = server_bus(cfg.default.transport_url, cfg.default.state_path)
    services.compiler.notify = bus.notify
    bus.start(AgentRpc(services.engine, services.agents, services.compiler))
    services.compiler.compile_now()
    services.compiler.start()
    return bus


def _start_metadata(cfg: Config, app: Any) -> str | None:
    """kaon's metadata service beside the API when ``[metadata] serve = true`` (no Nova)."""
    from kaon.metadata.server import should_serve, start_in_thread

    if not should_serve(cfg):
        return None
    # The bound socket's address: the same as server_address, which typeshed
    # also allows to be bytes.
    host, port = start_in_thread(cfg, services_of(app).engine).socket.getsockname()[:2]
    return f"http://{host}:{port}"


def run_server(cfg: Config, announce: Any = None, on_ready: Any = None) -> int:
    app, facts = build(cfg)
    bus = start_agent_side(cfg, app)
    facts["transport"] = "rabbit" if cfg.default.transport_url else "local"
    (Path(cfg.default.state_path) / "server.json").write_text(json.dumps(facts, indent=2))
    if on_ready is not None:
        facts = {**facts, **(on_ready(cfg, app) or {})}
    metadata = _start_metadata(cfg, app)
    if metadata is not None:
        facts["metadata_url"] = metadata
    if announce is not None:
        announce(facts)
    LOG.info("kaon server on %s (auth_strategy=%s, bus %s)", facts["network_url"], facts["auth_strategy"],
             facts["transport"])
    try:
        # Head and idle timeouts, connections per client (docs/design/limits.md).
        uvicorn.run(app, host=cfg.default.bind_host, port=cfg.default.bind_port, log_level="warning",
                    access_log=False, lifespan="off", **uvicorn_options(HttpLimits.from_config(cfg)))
    finally:
        services_of(app).compiler.stop()
        bus.close()
    return 0
