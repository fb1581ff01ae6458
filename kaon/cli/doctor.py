"""``kaon doctor [--config-file FILE ...] [--json] [--verbose]``: what is wrong, why, and the fix.

Runs every check of :mod:`kaon.doctor.registry` that the given files make
possible (a server's files: database, broker, Keystone, the stored state;
an agent's files on its host: local_ip, br_netfilter, OVS bridges) and
prints one line per finding. Exit 0 healthy, 1 findings, 2 could not check.
While it runs, a progress line on stderr says which check it is on (when
stderr is a terminal, or with --verbose, which also prints each check's time).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from kaon.config import load_config


def add_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="name what is wrong, with the evidence and the fix")
    p.add_argument("--config-file", action="append", default=[], help="Neutron-style ini file (repeatable)")
    p.add_argument("--json", action="store_true", help="findings as JSON")
    p.add_argument("--verbose", action="store_true", help="each check and its time on stderr")


def run(args: argparse.Namespace) -> int:
    from kaon.doctor import registry

    cfg = load_config(args.config_file)
    live = args.verbose or sys.stderr.isatty()

    def progress(name: str, seconds: float) -> None:
        if args.verbose:
            print(f"doctor: {name} checked in {seconds * 1000:.0f} ms", file=sys.stderr)
        elif live:
            print(f"\rdoctor: checked {name:<24}", end="", file=sys.stderr, flush=True)

    report = registry.run(cfg, progress=progress)
    if live and not args.verbose:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        for line in report.lines():
            print(line)
    if args.verbose:
        print(f"doctor: {len(registry.CHECKS)} checks in {report.seconds:.2f} s "
              f"({len(report.not_applicable)} not applicable)", file=sys.stderr)
    return report.exit_code
