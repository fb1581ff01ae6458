#!/usr/bin/env python3
"""What policy costs: one check, and a port create/show in-process.

    .venv/bin/python benchmarks/policy_bench.py [--n N]

1. µs per check of two of Neutron's rules (``create_port``,
   ``create_port:mac_address``), by oslo.policy's ``Enforcer.enforce`` and by
   kaon's compiled form of the same parsed rules (kaon/core/access/policy.py).
2. Port create and port show as a member, in-process (Starlette's
   TestClient, SQLite in a temporary directory, noauth), with Neutron's
   table and with a table where every rule is ``@`` (always): the difference
   is what enforcement adds to a request. The number of checks each request
   asks is counted too.

Figures depend on the machine and its load; docs/design/policy.md records
a run and the conditions.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oslo_config import cfg
from oslo_policy import policy as oslo

from kaon.cli.server import build
from kaon.config import load_config
from kaon.core.access import policy
from kaon.core.access.policy_rules import DEFAULTS
from kaon.core.context import Context

MEMBER = {"X-Project-Id": "pa", "X-User-Id": "u", "X-Roles": "member,reader"}


def per_call_us(fn: Callable[[], Any], n: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def checks(n: int, workdir: Path) -> None:
    empty = workdir / "policy.yaml"
    empty.write_text("{}\n")
    conf = cfg.ConfigOpts()
    conf([], project="kaon-bench")
    enforcer = oslo.Enforcer(conf, policy_file=str(empty))
    enforcer.register_defaults([oslo.RuleDefault(name, check) for name, check in DEFAULTS])
    enforcer.load_rules()
    ctx = Context("u", "pa", frozenset({"member", "reader"}))
    creds = policy.creds_of(ctx)
    ours = policy.Policy()
    target = {"project_id": "pa", "tenant_id": "pa", "network:tenant_id": "pa"}
    print("µs per check                       oslo Enforcer   kaon compiled")
    for rule in ("create_port", "create_port:mac_address"):
        slow = per_call_us(lambda r=rule: enforcer.enforce(r, target, creds), max(n // 20, 50))
        fast = per_call_us(lambda r=rule: ours.allowed(ctx, r, target), n)
        print(f"  {rule:32s} {slow:12.1f} {fast:14.2f}")


def requests(n: int, workdir: Path, table: policy.Policy, label: str) -> None:
    state = workdir / label
    state.mkdir()
    conf = load_config([], {"DEFAULT": {"auth_strategy": "noauth", "state_path": str(state)},
                            "ml2": {"type_drivers": "local,vxlan", "tenant_network_types": "vxlan"},
                            "ml2_type_vxlan": {"vni_ranges": "1:1000"}})
    app, _ = build(conf)
    policy.install(table)  # after build: it installed the (empty) configured table
    from starlette.testclient import TestClient

    client = TestClient(app)
    net = client.post("/v2.0/networks", json={"network": {"name": "n"}}, headers=MEMBER).json()["network"]
    client.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/16", "ip_version": 4}},
                headers=MEMBER)
    asked = [0]
    allowed = table.allowed

    def counting(*args: Any, **kwargs: Any) -> bool:
        asked[0] += 1
        return allowed(*args, **kwargs)

    table.allowed = counting  # type: ignore[method-assign]
    create_ms, show_ms, ids = [], [], []
    for i in range(n):
        start = time.perf_counter()
        r = client.post("/v2.0/ports", json={"port": {"network_id": net["id"], "name": f"p{i}"}}, headers=MEMBER)
        create_ms.append((time.perf_counter() - start) * 1e3)
        assert r.status_code == 201, r.text
        ids.append(r.json()["port"]["id"])
    per_create = asked[0] / n
    asked[0] = 0
    for port_id in ids:
        start = time.perf_counter()
        r = client.get(f"/v2.0/ports/{port_id}", headers=MEMBER)
        show_ms.append((time.perf_counter() - start) * 1e3)
        assert r.status_code == 200, r.text
    per_show = asked[0] / n
    print(f"  {label:18s} create median {statistics.median(create_ms):6.3f} ms ({per_create:.0f} checks)   "
          f"show median {statistics.median(show_ms):6.3f} ms ({per_show:.0f} checks)")
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per operation (checks: 10x)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kaon-policy-bench-") as tmp:
        workdir = Path(tmp)
        checks(args.n * 10, workdir)
        print("in-process, member, SQLite")
        requests(args.n, workdir, policy.Policy(), "neutron defaults")
        requests(args.n, workdir, policy.Policy({name: "@" for name, _ in DEFAULTS}), "every rule @")


if __name__ == "__main__":
    main()
