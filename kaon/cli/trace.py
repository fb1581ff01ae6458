"""``kaon trace [--config-file FILE ...] (--from PORT | --from-external ADDRESS) --to ADDRESS[:PORT]
[--protocol icmp|tcp|udp] [--source ADDRESS] [--json] [--verbose] [--probe]``.

A logical packet trace over the host intents the server stored (kaon.trace),
read straight from the database the configuration names, as ``kaon doctor``
does, or asked of the server (``--os-cloud``: ``GET /v2.0/trace``, admin). One line per hop; ``--json`` gives the hops as a list. Exit 0 when the
packet is delivered, 1 when it is dropped, 2 when the question could not be
asked (no such port, a bad address, no database). ``--probe`` (in the lab)
also sends the real packet and says whether reality matched (kaon.lab.probe);
then exit 3 when it did not.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from kaon.config import load_config


def add_parser(sub: Any) -> None:
    p = sub.add_parser("trace", help="follow a packet through the compiled intents, hop by hop")
    p.add_argument("--config-file", action="append", default=[], help="Neutron-style ini file (repeatable)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from", dest="from_port", metavar="PORT", help="the source port's name or id")
    src.add_argument("--from-external", metavar="ADDRESS",
                     help="an address outside the cloud (traffic to a floating IP or router gateway)")
    p.add_argument("--to", required=True, metavar="ADDRESS[:PORT]", help="the destination ([v6]:port for IPv6)")
    p.add_argument("--protocol", choices=["icmp", "tcp", "udp"], default="icmp")
    p.add_argument("--source", metavar="ADDRESS", help="the address the VM sends from (default its own)")
    p.add_argument("--os-cloud", help="ask this cloud's server (GET /v2.0/trace, admin) instead of the database")
    p.add_argument("--os-client-config-file", help="--os-cloud: the clouds.yaml to read")
    p.add_argument("--json", action="store_true", help="the trace as JSON")
    p.add_argument("--verbose", action="store_true", help="the time the trace took, on stderr")
    p.add_argument("--probe", action="store_true",
                   help="in `kaon lab`: also send the real packet and compare (see docs/trace.md)")
    p.add_argument("--lab-prefix", default=os.environ.get("KAON_LAB_PREFIX", "kl-"),
                   help="--probe: the lab's prefix (default KAON_LAB_PREFIX, else kl-)")
    p.add_argument("--lab-state-dir", help="--probe: the lab's state directory (default as `kaon lab`)")


def run(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from kaon import errors
    from kaon.db.engine import make_engine
    from kaon.trace.model import query_from
    from kaon.trace.source import trace_in

    started = time.monotonic()
    params = {"from_port": args.from_port, "from_external": args.from_external, "to": args.to,
              "protocol": args.protocol, "source": args.source}
    try:
        query = query_from(params)
        if args.os_cloud:
            result = _ask_server(args, params)
        else:
            engine = make_engine(load_config(args.config_file).database.connection)
            try:
                result = trace_in(engine, query)
            finally:
                engine.dispose()
    except errors.KaonError as exc:
        print(f"kaon trace: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(f"kaon trace: cannot read the database: {type(exc).__name__}: {str(exc).splitlines()[0]}",
              file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started
    report: dict[str, Any] = result.as_dict()
    if args.probe:
        from kaon.lab.lab import Lab
        from kaon.lab.probe import probe

        report["probe"] = probe(result, Lab(args.lab_prefix, args.lab_state_dir)).as_dict()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for line in result.lines():
            print(line)
        if args.probe:
            p = report["probe"]
            print(f"probe: {p['summary']}")
    if args.verbose:
        print(f"trace: {len(result.hops)} hops in {elapsed * 1000:.0f} ms", file=sys.stderr)
    if args.probe and not report["probe"]["matched"]:
        return 3
    return 0 if result.delivered else 1


def _ask_server(args: argparse.Namespace, params: dict[str, Any]) -> Any:
    """The trace from ``GET /v2.0/trace`` of the cloud ``--os-cloud`` names (kaon.lab.api_client)."""
    from kaon import errors
    from kaon.lab.api_client import ApiError, client_for_cloud, clouds_yaml_paths, load_cloud
    from kaon.trace.model import Trace

    try:
        client = client_for_cloud(load_cloud(args.os_cloud, clouds_yaml_paths(None, args.os_client_config_file)))
        answer = client.get("trace", **{k: v for k, v in params.items() if v})
    except ApiError as exc:
        raise errors.KaonError(f"the server did not answer the trace: {exc}") from None
    return Trace.from_dict(answer["trace"])
