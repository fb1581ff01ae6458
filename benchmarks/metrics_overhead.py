#!/usr/bin/env python3
"""What the metrics layer costs per request, in-process (no HTTP, no socket).

    .venv/bin/python benchmarks/metrics_overhead.py [--requests N] [--rounds R]

Builds the app as ``kaon server`` does (noauth, SQLite in a temporary
directory), creates one port, then calls the ASGI app directly with a
``GET /v2.0/ports/{id}`` scope, N times per round, alternating between the
whole stack (kaon.metrics.http.MetricsMiddleware outermost) and the same
stack without it (its ``.app``), and then the whole stack with and
without the database statement timers (kaon.metrics.dbtime). Prints the median per-request time of each
and the difference over R rounds; the best of the rounds is the figure
least disturbed by other work on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event

from kaon.cli.server import build, services_of
from kaon.config import load_config
from kaon.metrics import dbtime

CONF = {"ml2": {"type_drivers": "local,flat,vlan,vxlan", "tenant_network_types": "vxlan",
                "mechanism_drivers": "linuxbridge"},
        "ml2_type_vxlan": {"vni_ranges": "1:1000"}}


async def call(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "server": ("127.0.0.1", 9696), "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}
    sent = False
    out: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out["status"], out["body"]


async def timed(app: Any, path: str, n: int) -> float:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        status, _ = await call(app, "GET", path)
        samples.append(time.perf_counter() - started)
        assert status == 200
    return statistics.median(samples)


async def main(requests: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config([], {**CONF, "DEFAULT": {"auth_strategy": "noauth", "state_path": tmp},
                               "database": {"connection": f"sqlite:///{Path(tmp) / 'kaon.sqlite'}"}})
        app, _ = build(cfg)
        bare = app.app  # everything but the metrics layer
        status, body = await call(app, "POST", "/v2.0/networks", orjson.dumps({"network": {"name": "n"}}))
        net = orjson.loads(body)["network"]["id"]
        status, body = await call(app, "POST", "/v2.0/ports", orjson.dumps({"port": {"network_id": net}}))
        path = f"/v2.0/ports/{orjson.loads(body)['port']['id']}"
        await timed(app, path, 200)  # warm up both
        diffs = []
        for r in range(rounds):
            with_metrics = await timed(app, path, requests)
            without = await timed(bare, path, requests)
            diffs.append(with_metrics - without)
            print(f"round {r + 1}: port show {with_metrics * 1e6:.1f} µs with metrics, "
                  f"{without * 1e6:.1f} µs without: {(with_metrics - without) * 1e6:+.1f} µs")
        print(f"metrics layer: median {statistics.median(diffs) * 1e6:+.1f} µs, "
              f"best {min(diffs) * 1e6:+.1f} µs per request")
        engine = services_of(app).engine
        db_diffs = []
        for r in range(rounds):
            timed_db = await timed(app, path, requests)
            event.remove(engine, "before_cursor_execute", dbtime._before)
            event.remove(engine, "after_cursor_execute", dbtime._after)
            untimed_db = await timed(app, path, requests)
            dbtime.instrument(engine)
            db_diffs.append(timed_db - untimed_db)
            print(f"round {r + 1}: statement timers {(timed_db - untimed_db) * 1e6:+.1f} µs")
        print(f"statement timers: median {statistics.median(db_diffs) * 1e6:+.1f} µs, "
              f"best {min(db_diffs) * 1e6:+.1f} µs per request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
