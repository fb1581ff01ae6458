"""Fixtures and hooks for kaon's test suite.

Fixtures (helpers behind them live in tests/fixtures/):

  postgres_cluster   session  PostgresCluster (throwaway initdb'd server on 127.0.0.1)
  postgres_server    session  its SQLAlchemy URL: postgresql+psycopg://kaon:PW@127.0.0.1:PORT/kaon
  fresh_pg_database  function callable(url=None, prefix="t") -> URL of a new database,
                              dropped at teardown (url: any URL on the server; default the
                              session server)
  mariadb_server     session  MariaDBServer (a private mariadbd on 127.0.0.1, stopped by pid)
  mariadb_url        session  its SQLAlchemy URL: mysql+pymysql://kaon:PW@127.0.0.1:PORT/kaon?charset=utf8mb4
  fresh_mysql_database function callable(url=None, prefix="t") -> URL of a new MariaDB database,
                              dropped at teardown
  db_url             function a fresh empty database URL, parametrized sqlite / pg / mariadb
  live_server        function callable(db_url=None, auth_strategy="noauth", extra_conf=None,
                              **kw) -> KaonServer (a running ``python -m kaon server``),
                              stopped at teardown
  openstack_cli      function callable(server_or_clouds_yaml, cloud="kaon-admin") -> OpenStackCLI
  openstack_bin      session  path of the ``openstack`` binary
  rabbitmq           session  RabbitMQ (tests/fixtures/rabbitmq.py): a private broker;
                              .url is a kaon transport_url, .restart() bounces it
  netns_prefix       session  network namespace name prefix unique to this run; every
                              namespace with it is removed at the end (needs root)
  make_netns         function callable(label="ns") -> name of a new namespace
                              "<prefix><n>-<label>", removed at teardown (by exact name)

Plain helpers: ``from tests.fixtures import require, free_port, start_kaon_server, ...``.
One server for a whole module (much faster than one per test)::

    @pytest.fixture(scope="module")
    def server(tmp_path_factory):
        with start_kaon_server(tmp_path_factory.mktemp("srv"), auth_strategy="kaon") as srv:
            yield srv

Markers: needs_root (skips unless root), needs_cli (skips without the openstack
CLI), needs_postgres (set on the pg param of db_url), needs_mariadb (on its
mariadb param).  With KAON_REQUIRE_ALL=1
(CI) every skip is reported as a failure with its reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import cli as _cli
from tests.fixtures import mariadb as _mariadb
from tests.fixtures import netns as _netns
from tests.fixtures import postgres as _pg
from tests.fixtures import rabbitmq as _rmq
from tests.fixtures import server as _server
from tests.fixtures.require import (
    apply_require_all,
    pytest_make_collect_report,  # noqa: F401  (a hook)
    require,
)
from tests.fixtures.require import configure as _require_configure


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "needs_root: needs root and kernel features",
        "needs_postgres: needs a PostgreSQL server (started by the suite)",
        "needs_mariadb: needs a MariaDB server (started by the suite)",
        "needs_cli: needs python-openstackclient",
    ):
        config.addinivalue_line("markers", line)
    _require_configure(config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # 1. skip -> failure under KAON_REQUIRE_ALL=1 (tests/fixtures/require.py)
    # 2. on a failed test, append the log tail of every kaon server still running
    outcome = yield
    rep = outcome.get_result()
    apply_require_all(rep)
    if rep.failed and rep.when in ("setup", "call"):
        for srv in _server.running_servers():
            rep.sections.append((f"kaon server {srv.url} (pid {srv.pid}) output", srv.log_tail(150)))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_root"):
        require(os.geteuid() == 0, "needs root")
        require(shutil.which("ip"), "needs iproute2 (ip)")
    if item.get_closest_marker("needs_cli"):
        require(_cli.find_openstack(), "python-openstackclient not installed (run scripts/bootstrap.sh)")


# ------------------------------------------------------------------ PostgreSQL
@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[_pg.PostgresCluster]:
    try:
        cluster = _pg.PostgresCluster.start()
    except _pg.PostgresUnavailable as e:
        pytest.skip(f"PostgreSQL unavailable: {e}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres_server(postgres_cluster: _pg.PostgresCluster) -> str:
    """SQLAlchemy URL of the session's PostgreSQL database."""
    return postgres_cluster.url


@pytest.fixture
def fresh_pg_database(request: pytest.FixtureRequest):
    """``fresh_pg_database(url=None, prefix="t") -> url`` of a new database, dropped at teardown."""
    created: list[str] = []

    def make(url: str | None = None, prefix: str = "t") -> str:
        if url is None:
            url = request.getfixturevalue("postgres_server")
        new = _pg.create_pg_database(url, prefix=prefix)
        created.append(new)
        return new

    yield make
    for u in reversed(created):
        try:
            _pg.drop_pg_database(u)
        except Exception:  # the cluster may be gone already; not the test's fault
            pass


# ------------------------------------------------------------------ MariaDB
@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[_mariadb.MariaDBServer]:
    """A private mariadbd for the session (own datadir, socket, loopback port), stopped by pid."""
    require(_mariadb.find_binaries(), "MariaDB server not installed: run scripts/bootstrap.sh")
    server = _mariadb.MariaDBServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb_url(mariadb_server: _mariadb.MariaDBServer) -> str:
    """SQLAlchemy URL of the session's MariaDB database."""
    return mariadb_server.url


@pytest.fixture
def fresh_mysql_database(request: pytest.FixtureRequest):
    """``fresh_mysql_database(url=None, prefix="t") -> url`` of a new database, dropped at teardown."""
    created: list[str] = []

    def make(url: str | None = None, prefix: str = "t") -> str:
        if url is None:
            url = request.getfixturevalue("mariadb_url")
        new = _mariadb.create_mysql_database(url, prefix=prefix)
        created.append(new)
        return new

    yield make
    for u in reversed(created):
        try:
            _mariadb.drop_mysql_database(u)
        except Exception:  # the server may be gone already; not the test's fault
            pass


# One parameter per database kaon supports: tests taking ``db_url`` (or the
# API tier's ``core_api``) run on each; see pytest_generate_tests.
DB_PARAMS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="pg", marks=pytest.mark.needs_postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.needs_mariadb),
]

def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every module that takes a database runs on all three (the whole API tier on MariaDB too).
    if "db_url" in metafunc.fixturenames:
        metafunc.parametrize("db_url", DB_PARAMS, indirect=True)
    if "core_api" in metafunc.fixturenames:
        metafunc.parametrize("core_api", DB_PARAMS, indirect=True, scope="module")


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: SQLite file in tmp_path, or a new PostgreSQL or MariaDB database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kaon.sqlite'}"
    if request.param == "mariadb":
        return request.getfixturevalue("fresh_mysql_database")(prefix=request.node.name)
    make = request.getfixturevalue("fresh_pg_database")
    return make(prefix=request.node.name)


# ------------------------------------------------------------------ RabbitMQ
@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[_rmq.RabbitMQ]:
    """A private rabbitmq-server for the session (its own node, ports, data, epmd)."""
    require(_rmq.find_rabbitmq_server(), "rabbitmq-server not installed: run scripts/bootstrap.sh")
    broker = _rmq.RabbitMQ.start()
    try:
        yield broker
    finally:
        broker.close()


# ------------------------------------------------------------------ kaon server
@pytest.fixture
def live_server(tmp_path: Path):
    """``live_server(db_url=None, auth_strategy="noauth", extra_conf=None, **kw) -> KaonServer``.

    Each call runs a new server in its own directory under tmp_path; all are
    stopped at teardown.  kw: timeout, env, command, port (see start_kaon_server).
    """
    stack: list = []
    n = 0

    def start(db_url: str | None = None, auth_strategy: str = "noauth", extra_conf=None, **kw):
        nonlocal n
        n += 1
        cm = _server.start_kaon_server(tmp_path / f"server{n}", db_url, auth_strategy, extra_conf, **kw)
        srv = cm.__enter__()
        stack.append(cm)
        return srv

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


# ------------------------------------------------------------------ openstack CLI
@pytest.fixture(scope="session")
def openstack_bin() -> str:
    path = _cli.find_openstack()
    require(path, "python-openstackclient not installed: run scripts/bootstrap.sh (makes .venv-osc)")
    assert path is not None
    return path


@pytest.fixture
def openstack_cli(openstack_bin: str):
    """``openstack_cli(server_or_clouds_yaml, cloud="kaon-admin") -> OpenStackCLI``."""

    def make(target, cloud: str | None = "kaon-admin", **kw) -> _cli.OpenStackCLI:
        clouds = target.clouds_yaml if isinstance(target, _server.KaonServer) else target
        return _cli.OpenStackCLI(clouds, cloud=cloud, binary=openstack_bin, **kw)

    return make


# ------------------------------------------------------------------ network namespaces
@pytest.fixture(scope="session")
def netns_prefix() -> Iterator[str]:
    pool = _netns.NetnsPool(_netns.run_prefix())
    yield pool.prefix
    if os.geteuid() == 0:
        pool.sweep()


@pytest.fixture
def make_netns(netns_prefix: str) -> Iterator[_netns.NetnsPool]:
    """``make_netns(label="ns") -> name``: a fresh namespace, removed at teardown."""
    require(os.geteuid() == 0, "needs root: creates network namespaces")
    pool = _netns.NetnsPool(netns_prefix)
    yield pool
    pool.cleanup()
