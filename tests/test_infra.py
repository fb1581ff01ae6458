"""Tests of the test infrastructure itself (tests/conftest.py, tests/fixtures/).

None of these need kaon's server: a stub HTTP server stands in for it.
"""

from __future__ import annotations

import configparser
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.fixtures import (
    OpenStackCLI,
    ServerStartError,
    create_pg_database,
    drop_pg_database,
    free_port,
    running_servers,
    start_kaon_server,
    write_kaon_config,
)
from tests.fixtures.server import REPO_ROOT

# ------------------------------------------------------------------ ports


def test_free_port_is_bindable():
    port = free_port()
    assert 1024 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_broker_start_that_lost_its_port_is_retried():
    from tests.fixtures.rabbitmq import _port_taken

    assert _port_taken("ERROR: could not bind to distribution port 34075 on host localhost")
    assert _port_taken("{dist_port_already_used,34075,not_erlang,\"localhost\"}")
    assert _port_taken("listen failed: eaddrinuse")
    assert not _port_taken("BOOT FAILED: {badarg, config}")


# ------------------------------------------------------------------ PostgreSQL


@pytest.mark.needs_postgres
def test_postgres_server_answers(postgres_server):
    assert postgres_server.startswith("postgresql+psycopg://")
    assert "@127.0.0.1:" in postgres_server
    engine = sa.create_engine(postgres_server)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar() == 1
            assert conn.execute(sa.text("show fsync")).scalar() == "off"
    finally:
        engine.dispose()


@pytest.mark.needs_postgres
def test_postgres_cluster_not_run_as_root(postgres_cluster):
    assert postgres_cluster.pid
    uid = os.stat(f"/proc/{postgres_cluster.pid}").st_uid
    assert uid != 0 or os.geteuid() != 0


@pytest.mark.needs_postgres
def test_fresh_pg_databases_are_isolated(postgres_server, fresh_pg_database):
    a = fresh_pg_database(postgres_server)
    b = fresh_pg_database()
    assert a != b
    ea, eb = sa.create_engine(a), sa.create_engine(b)
    try:
        with ea.begin() as conn:
            conn.execute(sa.text("create table t (x int)"))
        with eb.connect() as conn:
            assert conn.execute(sa.text("select to_regclass('t')")).scalar() is None
    finally:
        ea.dispose()
        eb.dispose()


@pytest.mark.needs_postgres
def test_drop_pg_database_closes_connections(postgres_server):
    url = create_pg_database(postgres_server, prefix="drop me")
    engine = sa.create_engine(url)
    conn = engine.connect()  # left open on purpose: DROP ... WITH (FORCE)
    try:
        drop_pg_database(url)
    finally:
        conn.invalidate()
        engine.dispose()
    with pytest.raises(sa.exc.OperationalError):
        sa.create_engine(url).connect()


def test_db_url_is_fresh_and_usable(db_url):
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            assert sa.inspect(conn).get_table_names() == []
            conn.execute(sa.text("create table t (x int)"))
            assert conn.execute(sa.text("select 1")).scalar() == 1
    finally:
        engine.dispose()


# ------------------------------------------------------------------ KAON_REQUIRE_ALL

_SAMPLE = """
import pytest
from tests.fixtures import require

def test_passes():
    pass

def test_skip_in_body():
    pytest.skip("no widget here")

@pytest.mark.skipif(True, reason="marker says no")
def test_skipif():
    pass

def test_require():
    require(False, "needs the frobnicator")

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False
"""

_SAMPLE_MODULE_SKIP = """
import pytest
pytest.importorskip("no_such_module_kaon_xyz")

def test_never():
    pass
"""


def _run_sample(tmp_path: Path, require_all: bool) -> tuple[int, str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_sample.py").write_text(_SAMPLE)
    (tmp_path / "test_sample_modskip.py").write_text(_SAMPLE_MODULE_SKIP)
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONPATH"] = str(REPO_ROOT)
    if require_all:
        env["KAON_REQUIRE_ALL"] = "1"
    else:
        env.pop("KAON_REQUIRE_ALL", None)
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.conftest",
            "-p",
            "no:cacheprovider",
            "-rA",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return p.returncode, p.stdout + p.stderr


def _counts(out: str) -> dict[str, int]:
    last = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed|error|skipped)", ln)][-1]
    return {k: int(n) for n, k in re.findall(r"(\d+) (\w+)", last)}


def test_require_all_turns_skips_into_failures(tmp_path):
    rc, out = _run_sample(tmp_path, require_all=True)
    assert rc == 1, out
    c = _counts(out)
    # body skip and require() fail in call; skipif fails in setup (an error);
    # the module-level skip is a collection error; xfail stays xfail.
    assert c.get("passed") == 1, out
    assert c.get("xfailed") == 1, out
    assert c.get("skipped", 0) == 0, out
    assert c.get("failed", 0) + c.get("errors", c.get("error", 0)) == 4, out
    for reason in ("no widget here", "marker says no", "needs the frobnicator", "no_such_module_kaon_xyz"):
        assert reason in out, (reason, out)
    assert "KAON_REQUIRE_ALL=1 turns skips into failures" in out


def test_without_require_all_skips_are_skips(tmp_path):
    rc, out = _run_sample(tmp_path, require_all=False)
    assert rc == 0, out
    c = _counts(out)
    assert c == {"passed": 1, "skipped": 4, "xfailed": 1}, out


# ------------------------------------------------------------------ live server (stub)

_STUB_SERVER = r"""
import configparser, http.server, os, sys
conf = configparser.ConfigParser()
conf.read(sys.argv[sys.argv.index("--config-file") + 1])
d = conf["DEFAULT"]
if os.environ.get("STUB_FAIL"):
    print("stub: refusing to start: " + os.environ["STUB_FAIL"], file=sys.stderr, flush=True)
    sys.exit(3)
state = d["state_path"]
if d["auth_strategy"] == "kaon":
    with open(os.path.join(state, "clouds.yaml"), "w") as f:
        f.write("clouds: {}\n")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = conf["database"]["connection"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        print("stub:", *a, flush=True)
print("stub: listening", flush=True)
http.server.HTTPServer((d["bind_host"], int(d["bind_port"])), H).serve_forever()
"""


@pytest.fixture
def stub_command(tmp_path):
    script = tmp_path / "stub_server.py"
    script.write_text(_STUB_SERVER)
    return [sys.executable, str(script), "--config-file", "{conf}"]


def test_write_kaon_config_merges_extra(tmp_path):
    conf_path = tmp_path / "kaon.conf"
    write_kaon_config(
        conf_path,
        port=1234,
        state_dir=tmp_path / "state",
        auth_strategy="kaon",
        extra_conf={
            "ml2": {"tenant_network_types": ["vxlan", "gre"], "mechanism_drivers": None},
            "ml2_type_gre": None,
            "securitygroup": {"enable_security_group": True},
        },
    )
    cp = configparser.ConfigParser()
    cp.read(conf_path)
    assert cp["DEFAULT"]["bind_host"] == "127.0.0.1"
    assert cp["DEFAULT"]["bind_port"] == "1234"
    assert cp["DEFAULT"]["auth_strategy"] == "kaon"
    assert cp["DEFAULT"]["state_path"] == str(tmp_path / "state")
    assert cp["database"]["connection"] == f"sqlite:///{tmp_path / 'state'}/kaon.sqlite"
    assert cp["ml2"]["type_drivers"] == "local,flat,vlan,vxlan,gre,geneve"
    assert cp["ml2"]["tenant_network_types"] == "vxlan,gre"
    assert not cp.has_option("ml2", "mechanism_drivers")
    assert not cp.has_section("ml2_type_gre")
    assert cp["ml2_type_vlan"]["network_vlan_ranges"] == "provider:100:200,default:100:101,default:200:201"
    assert cp["securitygroup"]["enable_security_group"] == "true"


def test_start_kaon_server_runs_and_stops(tmp_path, stub_command):
    import httpx

    with start_kaon_server(
        tmp_path / "srv", "sqlite:///x.db", auth_strategy="kaon", command=stub_command
    ) as srv:
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        assert srv.conf_path.exists()
        assert srv.state_dir.is_dir()
        assert srv.clouds_yaml == srv.state_dir / "clouds.yaml" and srv.clouds_yaml.exists()
        assert httpx.get(srv.url + "/").text == "sqlite:///x.db"
        assert srv in running_servers()
        pid = srv.proc.pid
    assert srv.proc.returncode is not None
    assert srv not in running_servers()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_start_failure_reports_server_output(tmp_path, stub_command):
    with pytest.raises(ServerStartError) as ei:
        with start_kaon_server(tmp_path / "srv", command=stub_command, env={"STUB_FAIL": "bad config xyz"}):
            pass
    msg = str(ei.value)
    assert "exited with code 3" in msg
    assert "bad config xyz" in msg
    assert "[ml2]" in msg  # the config is shown too


def test_live_server_factory(live_server, stub_command):

    a = live_server(command=stub_command)
    b = live_server("sqlite:///other.db", command=stub_command)
    assert a.port != b.port and a.state_dir != b.state_dir
    with b.client() as c:
        assert c.get("/").text == "sqlite:///other.db"


# ------------------------------------------------------------------ openstack CLI


@pytest.mark.needs_cli
def test_openstack_cli_runs(openstack_cli, tmp_path):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  kaon-admin:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n")
    cli = openstack_cli(clouds, cloud=None)
    assert isinstance(cli, OpenStackCLI)
    rc, out, err = cli.run("--version")
    assert rc == 0, err
    assert re.match(r"openstack \d+\.\d+", (out + err).strip()), out + err
    # `-f json` parsing against something that needs no server:
    cmds = cli.json("command", "list", "--group", "openstack.network.v2")
    assert any("network create" in " ".join(g.get("Commands", [])) for g in cmds), cmds
