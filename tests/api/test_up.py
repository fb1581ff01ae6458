"""``kaon up``: the all-in-one node, started the way a user would.

``python -m kaon up --state-dir STATE --port PORT`` in a subprocess (stopped by
its pid at teardown): it must answer ``GET /`` within 10 s, tell the user how
to point the ``openstack`` CLI at it, and the ``clouds.yaml`` it writes must
work.  Started a second time on the same state directory it keeps its
passwords, its config file and its data (the bootstrap is idempotent).

SQLite (``up``'s own default, in the state directory) and PostgreSQL (an
extra ``--config-file`` with ``[database] connection``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.fixtures import (
    OpenStackCLI,
    create_pg_database,
    drop_pg_database,
    find_openstack,
    free_port,
    require,
)

pytestmark = pytest.mark.needs_cli

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_WITHIN = 10.0


class Up:
    """One ``python -m kaon up`` process."""

    def __init__(self, state: Path, port: int, log: Path, extra_args: list[str]):
        self.state, self.port, self.log = state, port, log
        self.url = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.pop("KAON_STATE_DIR", None)
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        argv = [sys.executable, "-m", "kaon", "up", "--state-dir", str(state), "--port", str(port), *extra_args]
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                argv, cwd=state.parent, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.started = time.monotonic()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = READY_WITHIN) -> float:
        """Seconds until ``GET /`` answered 200 (fails after ``timeout``)."""
        last = "no answer"
        while time.monotonic() - self.started < timeout:
            rc = self.proc.poll()
            if rc is not None:
                pytest.fail(f"kaon up exited with {rc}:\n{self.output()}")
            try:
                r = httpx.get(self.url + "/", timeout=2.0)
                if r.status_code == 200:
                    return time.monotonic() - self.started
                last = f"GET / -> {r.status_code}"
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(0.1)
        pytest.fail(f"kaon up not answering GET / after {timeout}s ({last}):\n{self.output()}")

    def stop(self) -> int | None:
        """SIGTERM the process group we started (by its pid), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


class UpFactory:
    """``factory(n)`` starts the n-th ``kaon up`` on one state dir and port."""

    def __init__(self, tmp_path: Path, db: str, extra_args: list[str]):
        self.tmp_path, self.db, self.extra_args = tmp_path, db, extra_args
        self.state = tmp_path / "state"
        self.port = free_port()
        self.procs: list[Up] = []

    def __call__(self, n: int) -> Up:
        p = Up(self.state, self.port, self.tmp_path / f"up{n}.log", self.extra_args)
        self.procs.append(p)
        return p


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="pg", marks=pytest.mark.needs_postgres),
    ]
)
def up(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UpFactory]:
    """An ``UpFactory``; every process it started is stopped (by pid) at teardown."""
    # The local agent has tests of its own (tests/fullstack/test_up_agent.py),
    # inside a namespace; these stay off the machine's own network.
    extra: list[str] = ["--no-agent"]
    db_url = None
    if request.param == "postgresql":
        db_url = create_pg_database(request.getfixturevalue("postgres_server"), prefix="kaon_up")
        conf = tmp_path / "db.conf"
        conf.write_text(f"[database]\nconnection = {db_url}\n")
        extra += ["--config-file", str(conf)]
    factory = UpFactory(tmp_path, request.param, extra)
    try:
        yield factory
    finally:
        for p in factory.procs:
            p.stop()
        if db_url is not None:
            with contextlib.suppress(Exception):
                drop_pg_database(db_url)


def _passwords(clouds_yaml: Path) -> dict[str, str]:
    clouds = yaml.safe_load(clouds_yaml.read_text())["clouds"]
    return {name: c["auth"]["password"] for name, c in clouds.items()}


def test_up_serves_prints_instructions_and_restarts_idempotently(up: UpFactory) -> None:
    binary = find_openstack()
    require(binary, "python-openstackclient not installed (run scripts/bootstrap.sh)")
    state = up.state
    clouds_yaml = state / "clouds.yaml"

    first = up(1)
    took = first.wait_ready()
    assert took < READY_WITHIN
    # The instructions are printed before serving; give the pipe a moment.
    deadline = time.monotonic() + 5
    while "OS_CLIENT_CONFIG_FILE" not in first.output() and time.monotonic() < deadline:
        time.sleep(0.1)
    out = first.output()
    assert f"export OS_CLIENT_CONFIG_FILE={clouds_yaml}" in out, out
    assert "openstack --os-cloud kaon-admin network list" in out, out
    assert f"{first.url}/v2.0" in out, out
    assert f"{first.url}/identity/v3" in out, out

    # What it left in the state directory.
    for name in ("kaon.conf", "clouds.yaml", "passwords.json", "admin-openrc", "demo-openrc"):
        assert (state / name).is_file(), name
    # SQLite in the state directory unless a config file names another database.
    assert (state / "kaon.sqlite").exists() == (up.db == "sqlite")
    for name in ("clouds.yaml", "passwords.json", "admin-openrc", "demo-openrc"):
        assert (state / name).stat().st_mode & 0o077 == 0, f"{name} is readable by others"
    passwords = _passwords(clouds_yaml)
    assert set(passwords) >= {"kaon-admin", "kaon-demo", "kaon-alt-demo"}
    stored = (state / "passwords.json").read_bytes()

    # Exactly what the instructions say: OS_CLIENT_CONFIG_FILE + --os-cloud kaon-admin.
    cli = OpenStackCLI(clouds_yaml, cloud="kaon-admin", binary=binary)
    assert cli.json("network", "list") == []
    net = cli.json(
        "network", "create", "ext-net", "--external",
        "--provider-physical-network", "provider", "--provider-network-type", "flat",
    )  # fmt: skip
    assert net["provider:network_type"] == "flat" and net["router:external"] is True

    # The config file is the user's from now on: not rewritten.
    conf = state / "kaon.conf"
    conf.write_text(conf.read_text() + "\n# edited by the test\n")

    assert first.stop() is not None
    second = up(2)
    second.wait_ready()
    assert (state / "passwords.json").read_bytes() == stored
    assert _passwords(clouds_yaml) == passwords
    assert conf.read_text().endswith("# edited by the test\n")
    assert "Traceback" not in second.output(), second.output()

    # Same passwords still authenticate (bootstrap didn't reset them), and the data is kept.
    rows = cli.json("network", "list")
    assert [(r["ID"], r["Name"]) for r in rows] == [(net["id"], "ext-net")]
    demo = OpenStackCLI(clouds_yaml, cloud="kaon-demo", binary=binary)
    assert demo.json("token", "issue")["project_id"] != net["project_id"]
    # One admin user, not two.
    users = [u["Name"] for u in cli.json("user", "list")]
    assert sorted(users) == sorted(set(users)) and "admin" in users
