#!/usr/bin/env python3
"""kaon API latency benchmark.

    .venv/bin/python benchmarks/api_bench.py [--db sqlite|postgresql|both] [--quick]
                                             [--json FILE] [--samples N] [--profile DIR]
                                             [--auth noauth|kaon] [--only OP [--only OP ...]]

Starts its own ``python -m kaon server`` (auth_strategy=noauth, bound to
127.0.0.1 on a free port) on a fresh SQLite file or on a throwaway
PostgreSQL cluster (initdb + pg_ctl as the ``postgres`` user, fsync=off,
via ``tests/fixtures/postgres.py``), waits for ``GET /`` to answer, then
times sequential requests over one keep-alive connection (``http.client``) and prints
median / p95 per operation next to the targets.  Everything it starts is
stopped by pid on exit, error, Ctrl-C or SIGTERM.  It talks to 127.0.0.1
only (the client ignores proxy settings from the environment).

``--auth kaon`` runs the server with kaon's identity service and sends
tokens (``X-Auth-Token``, validated on every request, as clients of a
deployment do) for its bootstrap ``demo`` (member) and ``admin`` users
instead of noauth headers. ``--only`` runs just the named operations (and
the untimed setup they need), for a quick look at a few of them.

``--profile DIR`` runs the server under yappi (CPU clock, all threads; not a
project dependency: ``.venv/bin/pip install yappi``) and writes, for port
create, port show, list 5,000 ports and bulk create, DIR/<db>-<op>.top.txt
(per-thread CPU, top functions by self and inclusive time) and
DIR/<db>-<op>.pstat (``python -m pstats``, snakeviz, gprof2dot).  Profiling
slows the server down: take figures from a run without it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

PROJECT = "bench-project"
MEMBER = {"X-Project-Id": PROJECT, "X-User-Id": "bench-user", "X-Roles": "member,reader"}
ADMIN = {"X-Project-Id": PROJECT, "X-User-Id": "bench-admin", "X-Roles": "admin,member,reader"}

# op name -> (target median in ms, label).  Targets are for SQLite on the
# reference machine; they are checked (PASS/MISS) for every database.
TARGETS: dict[str, float] = {
    "network create": 3.0,
    "subnet create": 3.0,
    "port create": 3.0,
    "port show": 1.0,
    "list 5000 ports: all": 100.0,
    "bulk create 100 ports": 50.0,
    "router create+iface+gw": 20.0,
    "FIP create+associate": 10.0,
    "SG create + 10 rules": 20.0,
}

# What --only accepts (the list operations are named by their size when run).
ALL_OPS = ("network create", "subnet create", "port create", "port show", "port update (name)", "port delete",
           "bulk create 100 ports", "router create+iface+gw", "FIP create+associate", "SG create + 10 rules")

# Profiled with --profile (by name).
PROFILE_OPS = ("network create", "subnet create", "port create", "port show", "list 5000 ports: all", "bulk create 100 ports", "SG create + 10 rules")
PROFILE_LIST_ALL = "list {n} ports: all"  # profiled at whatever size --quick gives it


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------- helpers
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def percentile(values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * pct / 100.0
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def summarize(samples_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(samples_ms),
        "median_ms": round(statistics.median(samples_ms), 3),
        "p95_ms": round(percentile(samples_ms, 95), 3),
        "mean_ms": round(statistics.fmean(samples_ms), 3),
        "min_ms": round(min(samples_ms), 3),
        "max_ms": round(max(samples_ms), 3),
    }


def rss_of(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak) of ``pid`` in KiB, from /proc."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(rest.split()[0])
    except OSError:
        pass
    return out


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def thread_cpu_ns(pid: int | None) -> dict[int, int]:
    """On-CPU time (ns, /proc/PID/task/TID/schedstat) of each live thread of ``pid``."""
    out: dict[int, int] = {}
    if not pid:
        return out
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    out[int(tid)] = int(f.read().split()[0])
    return out


def children_cpu_ms(parent: int | None) -> float | None:
    """CPU time (ms) of ``parent`` and its direct children: a PostgreSQL
    postmaster and its backends (connections are pooled, so they live on)."""
    if not parent:
        return None
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == parent or int(fields[1]) == parent:
            total += (int(fields[11]) + int(fields[12])) * 1000.0 / _TICK
    return total


def loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "kaon"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        if dirty:
            commit += " (kaon/ modified)"
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "mem_gib": mem_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
    }


# --------------------------------------------------------------------------- processes
class Server:
    """``python -m kaon server`` in its own session, stopped by pid."""

    def __init__(self, workdir: Path, db_url: str | None, profile_dir: Path | None = None,
                 auth: str = "noauth") -> None:
        self.workdir = workdir
        self.auth = auth
        self.profile_dir = profile_dir  # run under yappi, profiles written here
        self.state = workdir / "state"
        self.state.mkdir()
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.db_url = db_url or f"sqlite:///{self.state}/kaon.sqlite"
        self.conf = workdir / "kaon.conf"
        self.log = workdir / "server.log"
        self.proc: subprocess.Popen | None = None

    def write_conf(self) -> None:
        big = 1_000_000  # finite, so quota counting stays on the request path as in production
        self.conf.write_text(
            "[DEFAULT]\n"
            f"bind_host = {HOST}\n"
            f"bind_port = {self.port}\n"
            f"state_path = {self.state}\n"
            f"auth_strategy = {self.auth}\n"
            f"public_url = {self.url}\n"
            "[database]\n"
            f"connection = {self.db_url}\n"
            "[ml2]\n"
            "type_drivers = local,flat,vlan,vxlan,gre,geneve\n"
            "tenant_network_types = vxlan\n"
            "[ml2_type_vxlan]\n"
            "vni_ranges = 1:100000\n"
            "[ml2_type_flat]\n"
            "flat_networks = *\n"
            "[quotas]\n"
            + "".join(f"quota_{r} = {big}\n" for r in (
                "network", "subnet", "port", "router", "floatingip", "security_group", "security_group_rule"))
        )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, timeout: float = 60.0) -> None:
        self.write_conf()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        cmd = [sys.executable, "-m", "kaon", "server", "--config-file", str(self.conf)]
        if self.profile_dir is not None:
            cmd = [sys.executable, str(Path(__file__).resolve()), PROFILED_SERVER, str(self.profile_dir),
                   str(self.conf)]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2.0)
                try:
                    conn.request("GET", "/")
                    status = conn.getresponse().status
                finally:
                    conn.close()
                if status == 200:
                    return
                last = f"GET / -> {status}"
            except (http.client.HTTPException, OSError) as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.1)
        raise BenchError(f"server not ready after {timeout:.0f}s ({last}):\n{self.log_tail()}")

    def token(self, user: str, project: str) -> str:
        """A project-scoped token of a bootstrap user (``--auth kaon``)."""
        password = json.loads((self.state / "passwords.json").read_text())[user]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10.0)
        try:
            conn.request("POST", "/identity/v3/auth/tokens", body=json.dumps(body),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            token = r.getheader("X-Subject-Token")
        finally:
            conn.close()
        if r.status != 201 or not token:
            raise BenchError(f"token for {user}: {r.status}")
        return token

    def profile_mark(self, sig: int, name: str, ack: str, timeout: float = 120.0) -> None:
        """Tell the profiled server to clear (SIGUSR1) or write (SIGUSR2) its profile; wait for it."""
        assert self.profile_dir is not None and self.proc is not None
        ack_file = self.profile_dir / "ack"
        ack_file.unlink(missing_ok=True)
        (self.profile_dir / "name").write_text(name)
        os.kill(self.proc.pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if ack_file.read_text() == ack:
                    return
            if self.proc.poll() is not None:
                raise BenchError(f"profiled server exited:\n{self.log_tail()}")
            time.sleep(0.02)
        raise BenchError(f"profiled server did not answer {signal.Signals(sig).name}")

    def log_tail(self, n: int = 40) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: pgid == pid
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in its group


# --------------------------------------------------------------------------- profiling
# With --profile the server runs as ``api_bench.py _profiled-server CTL CONF``:
# kaon's own ``main()`` in a process where yappi (CPU clock, every thread,
# C builtins included) is on.  The benchmark marks each profiled operation
# with SIGUSR1 (clear) and SIGUSR2 (write CTL/<name>.top.txt and .pstat).
# py-spy is not used: against uvicorn on uvloop plus the anyio thread pool it
# credits the event loop's idle epoll_wait to stale Python frames and
# under-samples the worker thread (checked against /proc/PID/task/*/schedstat).
PROFILED_SERVER = "_profiled-server"


def profiled_server(ctl: Path, conf: str) -> int:
    import yappi  # not a project dependency: .venv/bin/pip install yappi

    def begin(_signum: int, _frame: Any) -> None:
        yappi.clear_stats()
        (ctl / "ack").write_text("begin")

    def end(_signum: int, _frame: Any) -> None:
        name = (ctl / "name").read_text().strip()
        stats = yappi.get_func_stats()
        threads = yappi.get_thread_stats()
        (ctl / f"{name}.top.txt").write_text(yappi_report(stats, threads))
        stats.save(str(ctl / f"{name}.pstat"), type="pstat")
        (ctl / "ack").write_text("end")

    signal.signal(signal.SIGUSR1, begin)
    signal.signal(signal.SIGUSR2, end)
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True, profile_threads=True)
    from kaon.cli.main import main as kaon_main

    return kaon_main(["server", "--config-file", conf])


def _where(module: str, lineno: int) -> str:
    path = module
    for marker in ("/site-packages/", "/lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = path.split("/", 1)[-1]
            break
    if str(REPO_ROOT) in path:
        path = os.path.relpath(path, REPO_ROOT)
    return f"{path}:{lineno}" if lineno else path


def yappi_report(stats: Any, threads: Any, n: int = 35) -> str:
    """Per-thread CPU, then the top functions by self and by inclusive CPU time."""
    total = sum(t.ttot for t in threads) or 1e-9
    out = [f"CPU time profile (yappi, cpu clock): {total * 1000:.0f} ms over all threads", ""]
    for t in sorted(threads, key=lambda t: -t.ttot):
        if t.ttot > 0.0005:
            out.append(f"  {100 * t.ttot / total:5.1f}%  thread {t.name}")
    items = list(stats)

    def label(f: Any) -> str:
        return f"{f.name}  ({_where(f.module, f.lineno)})"

    out += ["", f"-- self (top {n}) --  % of all CPU, calls"]
    for f in sorted(items, key=lambda f: -f.tsub)[:n]:
        out.append(f"{100 * f.tsub / total:6.1f}%  {f.ncall:>8}  {label(f)}")
    out += ["", f"-- inclusive (top {2 * n}) --"]
    for f in sorted(items, key=lambda f: -f.ttot)[: 2 * n]:
        out.append(f"{100 * f.ttot / total:6.1f}%  {f.ncall:>8}  {label(f)}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- API
@dataclass
class Result:
    name: str
    samples: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    error: str | None = None
    note: str = ""
    # CPU time (ms) spent during the timed requests: kaon server process, PostgreSQL.
    cpu_srv: float = 0.0
    cpu_loop: float = 0.0  # the server's main thread: event loop, HTTP, ASGI stack, JSON
    cpu_client: float = 0.0  # this process (the HTTP client), for reference
    cpu_db: float = 0.0
    cpu_samples: int = 0

    def cpu_per_sample(self) -> dict[str, float]:
        if not self.cpu_samples:
            return {}
        out = {"server_cpu_ms": self.cpu_srv / self.cpu_samples,
               "server_loop_cpu_ms": self.cpu_loop / self.cpu_samples,
               "client_cpu_ms": self.cpu_client / self.cpu_samples}
        if self.cpu_db:
            out["db_cpu_ms"] = self.cpu_db / self.cpu_samples
        return {k: round(v, 3) for k, v in out.items()}


class Reply:
    """What the benchmark needs of an HTTP answer."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class HttpError(OSError):
    """The connection failed (refused, reset, closed mid-answer)."""


class Api:
    """Sequential requests over one keep-alive HTTP/1.1 connection.

    The standard library's ``http.client`` rather than httpx: the figures
    are the server's latency, and httpx spends ~0.4 ms of this process's
    CPU per request (measured: ``GET /`` 1.04 ms median through httpx,
    the client's CPU per request printed as ``client CPU``), which a
    2-CPU machine also takes from the server. ``http.client`` spends
    about a fifth of that; it is what a lean client (curl, wrk, Go's
    net/http) costs, not what kaon costs.
    """

    def __init__(self, url: str, member: dict[str, str] | None = None, admin: dict[str, str] | None = None) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or HOST, parsed.port or 80
        self.member, self.admin = member or MEMBER, admin or ADMIN
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120.0)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self) -> None:
        self.conn.close()

    def request(self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None,
                headers: dict[str, str] | None = None) -> Reply:
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
        hdrs = dict(headers or self.member)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                return Reply(r.status, r.read())
            except (http.client.HTTPException, OSError) as e:
                # The server closed the kept-alive connection: once more on a new one.
                self.conn.close()
                self.conn = self._connect()
                if attempt:
                    raise HttpError(f"{method} {path}: {type(e).__name__}: {e}") from e
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: Any = None, *, admin: bool = False,
             params: dict[str, str] | None = None, expect: tuple[int, ...] = (200, 201, 204)) -> Reply:
        r = self.request(method, path, body, params, self.admin if admin else None)
        if r.status_code not in expect:
            raise BenchError(f"{method} {path} -> {r.status_code}: {r.text[:500]}")
        return r

    def timed(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[float, Reply]:
        t0 = time.perf_counter()
        r = self.call(method, path, body, **kw)
        return (time.perf_counter() - t0) * 1000.0, r

    # resources
    def network(self, name: str, **extra: Any) -> dict[str, Any]:
        admin = bool(extra.pop("_admin", False))
        return self.call("POST", "/v2.0/networks", {"network": {"name": name, **extra}}, admin=admin).json()["network"]

    def subnet(self, net_id: str, cidr: str, **extra: Any) -> dict[str, Any]:
        admin = bool(extra.pop("_admin", False))
        body = {"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 4, **extra}}
        return self.call("POST", "/v2.0/subnets", body, admin=admin).json()["subnet"]

    def exposes(self, collection: str) -> bool:
        try:
            return self.request("GET", f"/v2.0/{collection}").status_code == 200
        except HttpError:
            return False


# --------------------------------------------------------------------------- the benchmark
@dataclass
class Plan:
    samples: int
    warmup: int
    list_ports: int
    list_samples: int
    bulk_samples: int
    bulk_size: int = 100
    only: frozenset[str] = frozenset()  # --only: these operations (empty: all)


class Bench:
    def __init__(self, api: Api, plan: Plan, server: Server, db: str) -> None:
        self.api = api
        self.plan = plan
        self.server = server
        self.db = db
        self.results: list[Result] = []
        self.notes: list[str] = []
        self._cidr = 0
        self.seed_nets: list[str] = []
        self.warm_ports: list[str] = []
        self.profiles: list[str] = []
        self._ext = ""
        self.db_pid: int | None = None  # PostgreSQL's postmaster

    def next_cidr24(self) -> str:
        """A fresh 10.x.y.0/24 (10.0-127.x.0/24: private nets of the tests)."""
        self._cidr += 1
        n = self._cidr
        if n >= 128 * 256:
            raise BenchError("out of /24s")
        return f"10.{n // 256}.{n % 256}.0/24"

    @contextlib.contextmanager
    def window(self, res: Result) -> Iterator[None]:
        """Around a timed loop: the server's CPU time per sample, and (--profile)
        a profile of the server during the loop for the operations of PROFILE_OPS."""
        name = None
        if self.server.profile_dir is not None and (
                res.name in PROFILE_OPS or res.name == PROFILE_LIST_ALL.format(n=self.plan.list_ports)):
            name = f"{self.db}-" + "".join(ch if ch.isalnum() else "_" for ch in res.name).strip("_")
            self.server.profile_mark(signal.SIGUSR1, name, "begin")
        n0 = len(res.samples)
        with self.cpu_into(res):
            yield
        res.cpu_samples += len(res.samples) - n0
        if name is not None:
            self.server.profile_mark(signal.SIGUSR2, name, "end")
            self.profiles.append(str(self.server.profile_dir / f"{name}.top.txt"))

    @contextlib.contextmanager
    def cpu_into(self, res: Result) -> Iterator[None]:
        """Add the CPU time the server (and PostgreSQL) spent inside the block to ``res``."""
        pid = self.server.pid
        s0, d0, c0 = thread_cpu_ns(pid), children_cpu_ms(self.db_pid), time.process_time()
        yield
        c1, s1, d1 = time.process_time(), thread_cpu_ns(pid), children_cpu_ms(self.db_pid)
        res.cpu_client += (c1 - c0) * 1000.0
        # Threads that ended meanwhile (idle pool workers) are left out; new ones count from 0.
        res.cpu_srv += sum(ns - s0.get(tid, 0) for tid, ns in s1.items()) / 1e6
        if pid in s1:
            res.cpu_loop += (s1[pid] - s0.get(pid, 0)) / 1e6
        if d0 is not None and d1 is not None:
            res.cpu_db += d1 - d0

    def run_op(self, name: str, fn: Callable[[Result], None]) -> Result:
        res = Result(name)
        if self.plan.only and name not in self.plan.only and name != "GET / (floor)":
            return res  # not asked for (--only): neither run nor reported
        print(f"  {name} ...", end="", flush=True)
        t0 = time.monotonic()
        try:
            fn(res)
        except BenchError as e:
            res.error = str(e)
        except HttpError as e:
            res.error = f"{type(e).__name__}: {e}"
        took = time.monotonic() - t0
        if res.error:
            print(f" ERROR ({res.error.splitlines()[0][:200]})", flush=True)
        else:
            print(f" {len(res.samples)} samples, median {statistics.median(res.samples):.2f} ms "
                  f"({took:.1f}s)", flush=True)
        self.results.append(res)
        return res

    # -- the sequence ----------------------------------------------------------------
    def run(self) -> None:
        api, p = self.api, self.plan
        # Named by the real size: the 5,000-port target applies only to a full run.
        list_ops = [f"list {p.list_ports} ports: {what}" for what in ("all", "by network", "by device_id")]
        self.run_op("GET / (floor)", self.op_floor)
        nets: list[str] = []
        self.run_op("network create", lambda r: self.op_network_create(r, nets))
        self.run_op("subnet create", lambda r: self.op_subnet_create(r, nets))

        ports: list[str] = []
        self.run_op("port create", lambda r: self.op_port_create(r, ports))
        self.run_op("port show", lambda r: self.op_each(r, "GET", ports, None))
        self.run_op("port update (name)", lambda r: self.op_each(
            r, "PUT", ports, lambda i: {"port": {"name": f"renamed-{i}"}}))
        self.run_op("port delete", lambda r: self.op_each(r, "DELETE", ports, None))
        for pid in self.warm_ports:  # untimed: leave exactly the seeded ports for the listings
            api.call("DELETE", f"/v2.0/ports/{pid}", expect=(204, 404))

        if not p.only:  # the listings are not among --only's choices
            self.listings(list_ops)
        self.run_op("bulk create 100 ports", self.op_bulk)

        # Extensions, when the server has them.
        has = {c: api.exposes(c) for c in ("routers", "floatingips", "security-groups")}
        if has["routers"]:
            self.run_op("router create+iface+gw", self.op_router)
        else:
            self.skip("router create+iface+gw", "/v2.0/routers")
        if has["routers"] and has["floatingips"]:
            self.run_op("FIP create+associate", self.op_fip)
        else:
            self.skip("FIP create+associate", " and ".join(
                f"/v2.0/{c}" for c in ("routers", "floatingips") if not has[c]))
        if has["security-groups"]:
            self.run_op("SG create + 10 rules", self.op_sg)
        else:
            self.skip("SG create + 10 rules", "/v2.0/security-groups")

    def listings(self, list_ops: list[str]) -> None:
        """5,000 ports on two networks with /20 subnets, then the listings."""
        p = self.plan
        try:
            device_id = self.seed_ports()
        except (BenchError, HttpError) as e:
            print(f" ERROR ({str(e).splitlines()[0][:200]})", flush=True)
            for name in list_ops:
                self.results.append(Result(name, error=f"seeding failed: {e}"))
        else:
            self.run_op(list_ops[0], lambda r: self.op_list(r, {}, p.list_ports))
            self.run_op(list_ops[1],
                        lambda r: self.op_list(r, {"network_id": self.seed_nets[0]}, p.list_ports // 2))
            self.run_op(list_ops[2], lambda r: self.op_list(r, {"device_id": device_id}, 1))

    def skip(self, name: str, what: str) -> None:
        note = f"{name}: skipped, the server does not expose {what} (GET did not answer 200)"
        print(f"  {note}", flush=True)
        self.notes.append(note)
        self.results.append(Result(name, note="not available"))

    def op_floor(self, r: Result) -> None:
        for _ in range(self.plan.warmup):
            self.api.call("GET", "/")
        with self.window(r):
            for _ in range(self.plan.samples):
                r.samples.append(self.api.timed("GET", "/")[0])

    def op_network_create(self, r: Result, nets: list[str]) -> None:
        for i in range(self.plan.warmup):
            self.api.network(f"warm-net-{i}")
        with self.window(r):
            for i in range(self.plan.samples):
                ms, resp = self.api.timed("POST", "/v2.0/networks", {"network": {"name": f"bench-net-{i}"}})
                r.samples.append(ms)
                nets.append(resp.json()["network"]["id"])

    def op_subnet_create(self, r: Result, nets: list[str]) -> None:
        if not nets:  # --only without network create: networks of its own, untimed
            nets.extend(self.api.network(f"bench-net-{i}")["id"] for i in range(self.plan.samples))
        warm = [self.api.network(f"warm-subnet-net-{i}")["id"] for i in range(self.plan.warmup)]
        for net_id in warm:
            self.api.subnet(net_id, self.next_cidr24())
        with self.window(r):
            for net_id in nets:
                body = {"subnet": {"network_id": net_id, "cidr": self.next_cidr24(), "ip_version": 4}}
                r.samples.append(self.api.timed("POST", "/v2.0/subnets", body)[0])

    def op_port_create(self, r: Result, ports: list[str]) -> None:
        net = self.api.network("bench-ops")  # a /20 for the per-port operations
        self.api.subnet(net["id"], "10.200.0.0/20")
        net_id = net["id"]
        for i in range(self.plan.warmup):
            resp = self.api.call("POST", "/v2.0/ports", {"port": {"network_id": net_id, "name": f"warm-{i}"}})
            self.warm_ports.append(resp.json()["port"]["id"])
        with self.window(r):
            for i in range(self.plan.samples):
                ms, resp = self.api.timed("POST", "/v2.0/ports", {"port": {"network_id": net_id, "name": f"p{i}"}})
                r.samples.append(ms)
                ports.append(resp.json()["port"]["id"])

    def op_each(self, r: Result, method: str, ids: list[str], body: Callable[[int], Any] | None) -> None:
        if not ids:
            raise BenchError("no ports to work on (port create failed)")
        for i in range(min(self.plan.warmup, len(ids))):  # warm-up on the same ports (idempotent for GET/PUT)
            if method != "DELETE":
                self.api.call(method, f"/v2.0/ports/{ids[i]}", body(i) if body else None)
        with self.window(r):
            for i, pid in enumerate(ids):
                r.samples.append(self.api.timed(method, f"/v2.0/ports/{pid}", body(i) if body else None)[0])

    def seed_ports(self) -> str:
        """``list_ports`` ports in bulks of 100 over two networks with /20s; a device_id to look up."""
        p = self.plan
        print(f"  seeding {p.list_ports} ports (bulk creates of 100 on 2 networks) ...", end="", flush=True)
        t0 = time.monotonic()
        self.seed_nets = []
        for k, cidr in enumerate(("10.210.0.0/20", "10.220.0.0/20")):
            net = self.api.network(f"bench-list-{k}")
            self.api.subnet(net["id"], cidr)
            self.seed_nets.append(net["id"])
        made = 0
        probe = ""
        per_net = p.list_ports // 2
        for k, net_id in enumerate(self.seed_nets):
            todo = per_net if k == 0 else p.list_ports - per_net
            while todo > 0:
                n = min(100, todo)
                batch = [{"network_id": net_id, "name": f"list-{made + j}", "device_id": str(uuid.uuid4()),
                          "device_owner": "compute:nova"} for j in range(n)]
                self.api.call("POST", "/v2.0/ports", {"ports": batch})
                if not probe:
                    probe = batch[n // 2]["device_id"]
                made += n
                todo -= n
        total = len(self.api.call("GET", "/v2.0/ports", params={"fields": "id"}).json()["ports"])
        print(f" {made} in {time.monotonic() - t0:.1f}s ({total} ports visible)", flush=True)
        if total != p.list_ports:
            self.notes.append(f"{total} ports visible when listing (expected {p.list_ports})")
        return probe

    def op_list(self, r: Result, params: dict[str, str], expect: int) -> None:
        got = len(self.api.call("GET", "/v2.0/ports", params=params).json()["ports"])  # warm-up + check
        if got != expect:
            raise BenchError(f"GET /v2.0/ports {params} returned {got} ports, expected {expect}")
        for _ in range(2):
            self.api.call("GET", "/v2.0/ports", params=params)
        with self.window(r):
            for _ in range(self.plan.list_samples):
                r.samples.append(self.api.timed("GET", "/v2.0/ports", params=params)[0])  # body read, not parsed

    def op_bulk(self, r: Result) -> None:
        p = self.plan
        net = self.api.network("bench-bulk")
        self.api.subnet(net["id"], "10.230.0.0/18")

        def body(i: int) -> Any:
            return {"ports": [{"network_id": net["id"], "name": f"bulk-{i}-{j}"} for j in range(p.bulk_size)]}

        for i in range(2):
            self.api.call("POST", "/v2.0/ports", body(-1 - i))
        with self.window(r):
            for i in range(p.bulk_samples):
                ms, resp = self.api.timed("POST", "/v2.0/ports", body(i))
                r.samples.append(ms)
                if i == 0 and len(resp.json()["ports"]) != p.bulk_size:
                    raise BenchError("bulk create returned the wrong number of ports")

    # -- routers, floating IPs, security groups ----------------------------------
    def external_network(self) -> str:
        """A flat external network with a /16 subnet, created once (admin)."""
        if self._ext:
            return self._ext
        net = self.api.network("bench-ext", _admin=True, **{
            "router:external": True, "provider:network_type": "flat", "provider:physical_network": "extnet"})
        self.api.subnet(net["id"], "172.16.0.0/16", enable_dhcp=False, _admin=True)
        self._ext = str(net["id"])
        return self._ext

    def private_subnet(self, name: str) -> str:
        net = self.api.network(name)
        return str(self.api.subnet(net["id"], self.next_cidr24())["id"])

    def router_composite(self, ext: str, subnet_id: str, name: str) -> tuple[list[float], str]:
        api = self.api
        t1, resp = api.timed("POST", "/v2.0/routers", {"router": {"name": name}})
        rid = resp.json()["router"]["id"]
        t2, _ = api.timed("PUT", f"/v2.0/routers/{rid}/add_router_interface", {"subnet_id": subnet_id})
        t3, _ = api.timed("PUT", f"/v2.0/routers/{rid}",
                          {"router": {"external_gateway_info": {"network_id": ext}}})
        return [t1, t2, t3], rid

    def op_router(self, r: Result) -> None:
        ext = self.external_network()
        for i in range(min(self.plan.warmup, 5)):
            self.router_composite(ext, self.private_subnet(f"warm-rt-{i}"), f"warm-rt-{i}")
        r.parts = {"router create": [], "add_router_interface": [], "set gateway": []}
        for i in range(self.plan.samples):
            sub = self.private_subnet(f"rt-{i}")  # untimed
            with self.cpu_into(r):
                parts, _ = self.router_composite(ext, sub, f"rt-{i}")
            r.cpu_samples += 1
            for key, ms in zip(r.parts, parts, strict=True):
                r.parts[key].append(ms)
            r.samples.append(sum(parts))

    def op_fip(self, r: Result) -> None:
        api = self.api
        ext = self.external_network()
        net = api.network("bench-fip")
        sub = api.subnet(net["id"], self.next_cidr24())
        self.router_composite(ext, sub["id"], "bench-fip-router")

        def one(i: int, acc: Result) -> list[float]:
            port = api.call("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "name": f"fip-{i}"}})
            port_id = port.json()["port"]["id"]  # untimed
            with self.cpu_into(acc):
                t1, resp = api.timed("POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": ext}})
                fid = resp.json()["floatingip"]["id"]
                t2, _ = api.timed("PUT", f"/v2.0/floatingips/{fid}", {"floatingip": {"port_id": port_id}})
            return [t1, t2]

        for i in range(min(self.plan.warmup, 5)):
            one(-1 - i, Result("warm-up"))
        r.parts = {"FIP create": [], "FIP associate": []}
        for i in range(self.plan.samples):
            parts = one(i, r)
            r.cpu_samples += 1
            r.parts["FIP create"].append(parts[0])
            r.parts["FIP associate"].append(parts[1])
            r.samples.append(sum(parts))

    def op_sg(self, r: Result) -> None:
        api = self.api

        def one(i: int) -> tuple[float, float]:
            t_sg, resp = api.timed("POST", "/v2.0/security-groups", {"security_group": {"name": f"sg-{i}"}})
            sg = resp.json()["security_group"]["id"]
            t_rules = 0.0
            for j in range(10):
                ms, _ = api.timed("POST", "/v2.0/security-group-rules", {"security_group_rule": {
                    "security_group_id": sg, "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                    "port_range_min": 1000 + j, "port_range_max": 1000 + j, "remote_ip_prefix": "0.0.0.0/0"}})
                t_rules += ms
            return t_sg, t_rules

        for i in range(min(self.plan.warmup, 5)):
            one(-1 - i)
        r.parts = {"SG create": [], "10 rule creates": []}
        with self.window(r):
            for i in range(self.plan.samples):
                t_sg, t_rules = one(i)
                r.parts["SG create"].append(t_sg)
                r.parts["10 rule creates"].append(t_rules)
                r.samples.append(t_sg + t_rules)


# --------------------------------------------------------------------------- runs
def start_postgres(stack: contextlib.ExitStack) -> tuple[str, int | None]:
    """A throwaway cluster (tests/fixtures/postgres.py): its URL and postmaster pid.  Stopped by the stack."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        from tests.fixtures.postgres import PostgresCluster, PostgresUnavailable
    except ImportError as e:
        raise BenchError(f"cannot import tests/fixtures/postgres.py: {e}") from None
    try:
        cluster = PostgresCluster.start()
    except PostgresUnavailable as e:
        raise BenchError(f"PostgreSQL unavailable: {e}") from None
    stack.callback(cluster.stop)  # pg_ctl stop, then the postmaster's pid; removes the directory
    print(f"  PostgreSQL {cluster.bindir.parent.name} on {cluster.host}:{cluster.port} "
          f"(postmaster pid {cluster.pid}, fsync=off)", flush=True)
    return cluster.url, cluster.pid


def run_db(db: str, plan: Plan, profile_dir: Path | None, auth: str = "noauth") -> dict[str, Any]:
    print(f"\n=== {db} ===", flush=True)
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix=f"kaon-bench-{db}-"))
        stack.callback(shutil.rmtree, workdir, True)
        db_url, db_pid = start_postgres(stack) if db == "postgresql" else (None, None)
        server = Server(workdir, db_url, profile_dir, auth)
        if profile_dir is not None:
            for ctl in ("ack", "name"):
                stack.callback((profile_dir / ctl).unlink, missing_ok=True)
        stack.callback(server.stop)  # registered before start: a failed start is cleaned up too
        t0 = time.monotonic()
        server.start()
        print(f"  server pid {server.pid} on {server.url}, ready in {time.monotonic() - t0:.1f}s; "
              f"RSS {rss_of(server.pid or 0).get('VmRSS', 0) / 1024:.0f} MiB", flush=True)
        if auth == "kaon":
            api = Api(server.url, {"X-Auth-Token": server.token("demo", "demo")},
                      {"X-Auth-Token": server.token("admin", "admin")})
        else:
            api = Api(server.url)
        stack.callback(api.close)
        bench = Bench(api, plan, server, db)
        bench.db_pid = db_pid
        load_start = loadavg()
        try:
            bench.run()
        except (BenchError, HttpError) as e:
            bench.notes.append(f"aborted: {e}")
            print(f"\n  aborted: {e}\n--- server log ---\n{server.log_tail()}", file=sys.stderr, flush=True)
        else:
            if any(res.error for res in bench.results):
                print(f"--- server log (last lines, {server.log}) ---\n{server.log_tail(30)}",
                      file=sys.stderr, flush=True)
        rss = rss_of(server.pid or 0)
        if server.proc is not None and server.proc.poll() is not None:
            bench.notes.append(f"server exited with {server.proc.returncode}")
        out: dict[str, Any] = {
            "database": db,
            "ops": {},
            "rss_kib": rss.get("VmRSS"),
            "peak_rss_kib": rss.get("VmHWM"),
            "loadavg_1min": {"start": load_start, "end": loadavg()},
            "notes": bench.notes,
            "profiles": bench.profiles,
        }
        for res in bench.results:
            entry: dict[str, Any] = {"target_median_ms": TARGETS.get(res.name)}
            if res.error:
                entry["error"] = res.error
            elif not res.samples:
                entry["skipped"] = res.note or "no samples"
            else:
                entry.update(summarize(res.samples))
                entry.update(res.cpu_per_sample())
                if res.parts:
                    entry["parts"] = {k: summarize(v) for k, v in res.parts.items()}
                tgt = TARGETS.get(res.name)
                if tgt is not None:
                    entry["verdict"] = "PASS" if entry["median_ms"] <= tgt else "MISS"
            out["ops"][res.name] = entry
        return out


def print_table(run: dict[str, Any]) -> None:
    db = run["database"]
    print(f"\n--- {db}: sequential requests over one keep-alive connection, ms ---")
    hdr = (f"{'operation':32} {'n':>4} {'median':>8} {'p95':>8} {'srv CPU':>8} {'(loop)':>7} {'db CPU':>7} "
           f"{'target':>7}  verdict")
    print(hdr)
    print("-" * len(hdr))
    for name, e in run["ops"].items():
        tgt = e.get("target_median_ms")
        tgt_s = f"<={tgt:g}" if tgt is not None else ""
        if "error" in e:
            print(f"{name:32} {'':>4} {'':>8} {'':>8} {'':>8} {'':>7} {'':>7} {tgt_s:>7}  ERROR: {e['error'].splitlines()[0][:70]}")
            continue
        if "skipped" in e:
            print(f"{name:32} {'':>4} {'-':>8} {'-':>8} {'':>8} {'':>7} {'':>7} {tgt_s:>7}  skipped ({e['skipped']})")
            continue
        cpu_s = " ".join(f"{e[k]:{w}.2f}" if e.get(k) is not None else f"{'':>{w}}"
                         for k, w in (("server_cpu_ms", 8), ("server_loop_cpu_ms", 7), ("db_cpu_ms", 7)))
        print(f"{name:32} {e['n']:>4} {e['median_ms']:>8.2f} {e['p95_ms']:>8.2f} {cpu_s} {tgt_s:>7}  "
              f"{e.get('verdict', '')}")
        for part, sm in (e.get("parts") or {}).items():
            print(f"  {'- ' + part:30} {sm['n']:>4} {sm['median_ms']:>8.2f} {sm['p95_ms']:>8.2f}")
    rss, peak = run.get("rss_kib"), run.get("peak_rss_kib")
    if rss:
        print(f"server RSS at the end: {rss / 1024:.0f} MiB (peak {(peak or 0) / 1024:.0f} MiB)")
    load = run.get("loadavg_1min") or {}
    if load:
        print(f"load average (1 min) at start/end: {load.get('start')} / {load.get('end')} "
              f"on {os.cpu_count()} CPUs")
    for note in run["notes"]:
        print(f"note: {note}")
    for prof in run.get("profiles") or []:
        print(f"profile: {prof}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    ap.add_argument("--quick", action="store_true",
                    help="fewer samples and 1,000 ports to list (a smoke run; figures are not comparable)")
    ap.add_argument("--samples", type=int, help="samples per single operation (default 200, quick 30)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="write the figures to FILE")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help=f"run the server under yappi and write CPU profiles of: {', '.join(PROFILE_OPS)} "
                         "(needs .venv/bin/pip install yappi; slows the server down: not for figures)")
    ap.add_argument("--auth", choices=("noauth", "kaon"), default="noauth",
                    help="noauth headers (default), or kaon's identity service and a token on every request")
    ap.add_argument("--only", action="append", metavar="OP", choices=sorted(ALL_OPS),
                    help="run only this operation (repeat for more; port show, update and delete use the "
                         "ports port create made): " + ", ".join(sorted(ALL_OPS)))
    ap.add_argument("--nice", type=int, metavar="N",
                    help="run the benchmark, and the server and PostgreSQL it starts (they inherit it), at "
                         "scheduling priority N (negative needs root): steadier figures on a busy machine")
    args = ap.parse_args(argv)
    if args.nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)
        except OSError as e:
            ap.error(f"--nice {args.nice}: {e}")

    if args.quick:
        plan = Plan(samples=30, warmup=5, list_ports=1000, list_samples=5, bulk_samples=5)
    else:
        plan = Plan(samples=200, warmup=20, list_ports=5000, list_samples=20, bulk_samples=20)
    if args.samples:
        plan.samples = args.samples
    plan.only = frozenset(args.only or ())
    if args.profile:
        args.profile = args.profile.resolve()
        args.profile.mkdir(parents=True, exist_ok=True)
        try:
            import yappi  # noqa: F401
        except ImportError:
            ap.error("--profile needs yappi: .venv/bin/pip install yappi")

    # Ctrl-C raises KeyboardInterrupt; make SIGTERM/SIGHUP unwind the same way so
    # every ExitStack callback (server, PostgreSQL, temp dirs) runs.
    def _terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored (cmd &)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    info = machine_info()
    started = dt.datetime.now(dt.UTC)
    print(f"kaon API benchmark {started:%Y-%m-%d %H:%M} UTC on {info['cpu']} x{info['cpus']}, "
          f"{info['mem_gib']} GiB, Python {info['python']}, commit {info['commit'] or '?'}"
          + (" [quick]" if args.quick else "") + (f" [nice {args.nice}]" if args.nice is not None else "")
          + (f" [auth {args.auth}]" if args.auth != "noauth" else ""),
          flush=True)
    runs: list[dict[str, Any]] = []
    rc = 0
    try:
        for db in dbs:
            try:
                runs.append(run_db(db, plan, args.profile, args.auth))
            except BenchError as e:
                print(f"\n{db}: {e}", file=sys.stderr, flush=True)
                runs.append({"database": db, "ops": {}, "notes": [f"failed: {e}"]})
                rc = 1
    except KeyboardInterrupt:
        print("\ninterrupted: everything started was stopped", file=sys.stderr)
        return 130

    print("\n" + "=" * 78)
    print("Targets are medians for SQLite on the reference machine; PASS/MISS is shown for every database.\n"
          "srv CPU: the kaon server's CPU time per sample (all threads), (loop) the part of it on the event\n"
          "loop thread (HTTP, ASGI stack, auth, JSON), the rest is the worker thread (service code, SQLAlchemy,\n"
          "SQLite); db CPU: PostgreSQL's processes. CPU figures move much less with other load than wall time.")
    for run in runs:
        print_table(run)
    misses = [(r["database"], n) for r in runs for n, e in r["ops"].items() if e.get("verdict") == "MISS"]
    if misses:
        print("\nmissed targets: " + "; ".join(f"{n} ({db})" for db, n in misses))
    if args.json:
        args.json.write_text(json.dumps({
            "date": started.isoformat(timespec="seconds"),
            "machine": info,
            "quick": args.quick,
            "auth": args.auth,
            "nice": args.nice,
            "plan": plan.__dict__,
            "targets_median_ms": TARGETS,
            "runs": runs,
        }, indent=2) + "\n")
        print(f"figures written to {args.json}")
    if any("error" in e for r in runs for e in r["ops"].values()):
        rc = rc or 1
    return rc


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == PROFILED_SERVER:
        sys.exit(profiled_server(Path(sys.argv[2]), sys.argv[3]))
    sys.exit(main())
