#!/usr/bin/env python3
"""Half-open request heads against a kaon server: do they slow anybody else?

    .venv/bin/python benchmarks/half_open_bench.py [--sockets 3000] [--samples 50]

Starts its own ``python -m kaon server`` (noauth, SQLite, 127.0.0.1, free
port, ``request_head_timeout`` 10 s) through tests/fixtures/server.py, then
times ``GET /v2.0/networks`` over one keep-alive connection: with nothing
else open, with ``--sockets`` connections that each sent half a request
head from one address (127.0.0.2; the per-client cap refuses most of them),
and spread over as many addresses as the cap needs (127.0.1.x; all held
open). Last, it waits past the head timeout and counts how many of the
held sockets the server closed. Everything it starts is stopped on exit.
"""

from __future__ import annotations

import argparse
import http.client
import select
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.fixtures import start_kaon_server  # noqa: E402

HALF = b"GET /v2.0/networks HTTP/1.1\r\nHost: kaon\r\nX-Slow: "
HEAD_TIMEOUT = 10


def latency_ms(host: str, port: int, samples: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    times = []
    for _ in range(samples + 1):
        start = time.perf_counter()
        conn.request("GET", "/v2.0/networks")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200, resp.status
        times.append((time.perf_counter() - start) * 1000)
    conn.close()
    times = times[1:]
    return statistics.median(times), sorted(times)[int(len(times) * 0.95) - 1]


def ms(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.2f} / {pair[1]:.2f}"


def open_half(host: str, port: int, count: int, sources: list[str]) -> list[socket.socket]:
    out = []
    for i in range(count):
        try:
            s = socket.create_connection((host, port), timeout=5, source_address=(sources[i % len(sources)], 0))
            s.sendall(HALF)
            out.append(s)
        except OSError:
            break
    return out


def still_open(socks: list[socket.socket]) -> int:
    """How many the server has not closed (one poll over all of them)."""
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    closed = 0
    for fd, _ in poller.poll(0):
        try:
            by_fd[fd].setblocking(False)
            closed += by_fd[fd].recv(1) == b""
        except OSError:
            closed += 1
    return len(socks) - closed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sockets", type=int, default=3000)
    ap.add_argument("--samples", type=int, default=50)
    args = ap.parse_args()
    conf = {"DEFAULT": {"request_head_timeout": HEAD_TIMEOUT}}
    with tempfile.TemporaryDirectory() as tmp, start_kaon_server(Path(tmp), extra_conf=conf) as srv:
        host, port = srv.host, srv.port
        print(f"baseline: median/p95 {ms(latency_ms(host, port, args.samples))} ms")
        one = open_half(host, port, args.sockets, ["127.0.0.2"])
        time.sleep(0.5)
        print(f"{len(one)} half heads from one address: median/p95 "
              f"{ms(latency_ms(host, port, args.samples))} ms; "
              f"held open by the server: {still_open(one)}")
        for s in one:
            s.close()
        spread = open_half(host, port, args.sockets, [f"127.0.1.{i}" for i in range(1, 101)])
        time.sleep(0.5)
        print(f"{len(spread)} half heads from 100 addresses: median/p95 "
              f"{ms(latency_ms(host, port, args.samples))} ms; held open: {still_open(spread)}")
        time.sleep(HEAD_TIMEOUT + 2)
        print(f"after the head timeout ({HEAD_TIMEOUT} s): still open {still_open(spread)} of {len(spread)}; "
              f"median/p95 {ms(latency_ms(host, port, args.samples))} ms")
        for s in spread:
            s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
