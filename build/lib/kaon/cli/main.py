"""The ``kaon`` command: ``server``, ``up`` (all-in-one node), ``agent``, ``metadata``, ``lab`` and ``db``."""

from __future__ import annotations

import argparse
import logging
import sys

from kaon.cli import lab as lab_cli
from kaon.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kaon", description="OpenStack Networking, rebuilt.")
    sub = parser.add_subparsers(dest="command", required=True)

    srv = sub.add_parser("server", help="serve the Neutron v2.0 API (and identity)")
    srv.add_argument("--config-file", action="append", default=[], help="Neutron-style ini file (repeatable)")

    up = sub.add_parser("up", help="run an all-in-one node on embedded defaults")
    up.add_argument("--config-file", action="append", default=[], help="extra ini file (repeatable)")
    up.add_argument("--state-dir", help="where state, clouds.yaml and openrc files go")
    up.add_argument("--port", type=int, help="API port (default 9696)")
    up.add_argument("--no-agent", action="store_true", help="API only: no local Linux bridge agent")

    agent = sub.add_parser("agent", help="run the Linux bridge agent of this host")
    agent.add_argument("--config-file", action="append", default=[], help="Neutron-style ini file (repeatable)")

    md = sub.add_parser("metadata", help="serve instance metadata from kaon's state (for clouds without Nova)")
    md.add_argument("--config-file", action="append", default=[], help="Neutron-style ini file (repeatable)")

    lab_cli.add_parser(sub)

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.add_argument("--config-file", action="append", default=[])

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "server":
            from kaon.cli.server import run_server

            return run_server(load_config(args.config_file))
        if args.command == "agent":
            from kaon.cli.agent import run_agent

            return run_agent(load_config(args.config_file))
        if args.command == "metadata":
            from kaon.metadata.server import run_metadata

            return run_metadata(load_config(args.config_file))
        if args.command == "lab":
            return lab_cli.run(args)
        if args.command == "up":
            from kaon.cli.up import run_up

            return run_up(args.config_file, args.state_dir, args.port, agent=not args.no_agent)
        from kaon.db.engine import make_engine
        from kaon.db.migrate import upgrade

        cfg = load_config(args.config_file)
        upgrade(make_engine(cfg.database.connection))
        return 0
    except ConfigError as exc:
        print(f"kaon: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
