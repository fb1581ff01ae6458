"""The ``kaon`` command: ``server``, ``up``/``down`` (all-in-one node), ``agent``, ``metadata``, ``lab``,
``doctor``, ``trace``, ``config check`` and ``db``."""

from __future__ import annotations

import argparse
import logging
import sys

from kaon.cli import doctor as doctor_cli
from kaon.cli import lab as lab_cli
from kaon.cli import trace as trace_cli
from kaon.config import Config, ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kaon", description="OpenStack Networking, rebuilt.")
    sub = parser.add_subparsers(dest="command", required=True)

    srv = sub.add_parser("server", help="serve the Neutron v2.0 API (and identity)")
    srv.add_argument("--config-file", action="append", default=[], help="Neutron-style ini file (repeatable)")

    up = sub.add_parser("up", help="run an all-in-one node on embedded defaults")
    up.add_argument("--config-file", action="append", default=[], help="extra ini file (repeatable)")
    up.add_argument("--state-dir", help="where state, clouds.yaml and openrc files go")
    up.add_argument("--port", type=int, help="API port (default 9696)")
    up.add_argument("--no-agent", action="store_true", help="API only: no local agent")
    up.add_argument("--mechanism", choices=["linuxbridge", "openvswitch"],
                    help="the local agent: writes the choice into [ml2] mechanism_drivers of the state directory's "
                         "kaon.conf (kept for later starts); openvswitch runs the Open vSwitch agent on the "
                         "system's OVS, or on a private one kaon starts (see README)")

    down = sub.add_parser("down", help="stop the node `kaon up` started and remove what its local agent made")
    down.add_argument("--state-dir", help="the state directory given to `kaon up`")

    agent = sub.add_parser("agent", help="run the L2 agent of this host (Linux bridge, or Open vSwitch for an "
                                          "openvswitch_agent.ini)")
    agent.add_argument("--config-file", action="append", default=[], help="Neutron-style ini file (repeatable)")

    md = sub.add_parser("metadata", help="serve instance metadata from kaon's state (for clouds without Nova)")
    md.add_argument("--config-file", action="append", default=[], help="Neutron-style ini file (repeatable)")

    lab_cli.add_parser(sub)
    doctor_cli.add_parser(sub)
    trace_cli.add_parser(sub)

    conf = sub.add_parser("config", help="configuration files")
    csub = conf.add_subparsers(dest="config_command", required=True)
    check = csub.add_parser("check", help="report each option kaon does not use, does not know, or finds "
                                          "misplaced; exit 1 on errors")
    check.add_argument("files", nargs="+", metavar="FILE", help="ini files, read as the service reads them")
    check.add_argument("--service", choices=["server", "agent", "metadata", "up", "check"], default="check",
                       help="read the files as this program does (default: any of them)")

    db = sub.add_parser("db", help="database schema")
    db.add_argument("action", choices=["upgrade"])
    db.add_argument("--config-file", action="append", default=[])

    argv, command = lab_cli.split_command(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if command is not None:
        args.cmd = [*args.cmd, *command]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "config":
            from kaon.config_check import report

            text, status = report(args.files, args.service)
            print(text)
            return status
        if args.command == "server":
            from kaon.cli.server import run_server

            return run_server(_load(args.config_file, "server"))
        if args.command == "agent":
            from kaon.cli.agent import run_agent

            return run_agent(_load(args.config_file, "agent"))
        if args.command == "metadata":
            from kaon.metadata.server import run_metadata

            return run_metadata(_load(args.config_file, "metadata"))
        if args.command == "doctor":
            return doctor_cli.run(args)
        if args.command == "trace":
            return trace_cli.run(args)
        if args.command == "lab":
            return lab_cli.run(args)
        if args.command == "up":
            from kaon.cli.up import run_up

            return run_up(args.config_file, args.state_dir, args.port, agent=not args.no_agent,
                          mechanism=args.mechanism)
        if args.command == "down":
            from kaon.cli.down import run_down

            return run_down(args.state_dir)
        from kaon.db.engine import make_engine
        from kaon.db.migrate import upgrade

        cfg = load_config(args.config_file)
        upgrade(make_engine(cfg.database.connection))
        return 0
    except ConfigError as exc:
        print(f"kaon: configuration error: {exc}", file=sys.stderr)
        return 2


def _load(files: list[str], service: str) -> Config:
    """The configuration, after logging once what in it kaon does not use (kaon.config_check)."""
    from kaon.config_check import log_findings

    cfg = load_config(files)
    log_findings(files, service)
    return cfg


if __name__ == "__main__":
    sys.exit(main())
