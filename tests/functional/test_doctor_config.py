"""kaon doctor's configuration checks against the real things: PostgreSQL
(the suite's cluster), SQLite, a private RabbitMQ broker, and a kaon server's
embedded identity standing in for Keystone. Each wrong setting is made and
the doctor must name it — host, port and user, never the password — with
the fix; the right setting must give nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from kaon.config import load_config
from kaon.db.engine import make_engine
from kaon.db.migrate import upgrade
from kaon.doctor import registry
from tests.fixtures import free_port, start_kaon_server


def doctor(check: str, **sections: dict[str, Any]) -> list[str]:
    out = registry.run(load_config([], sections), kinds=[registry.CONFIG], only=[check])
    assert not out.not_checked, out.not_checked
    return [f.line() for f in out.findings]


# ------------------------------------------------------------------ (a)

@pytest.mark.needs_postgres
def test_postgresql_wrong_password_unreachable_and_missing_database(fresh_pg_database: Any) -> None:
    url = make_url(fresh_pg_database(prefix="doctor"))
    where = f"postgresql://{url.username}@{url.host}:{url.port}"
    assert doctor("database", database={"connection": url.render_as_string(hide_password=False)}) == [
        f"database {where}/{url.database}: connects but holds no kaon tables — kaon db upgrade --config-file "
        "<this file> (or fix the database name)"]

    wrong = url.set(password="not-the-password")
    found = doctor("database", database={"connection": wrong.render_as_string(hide_password=False)})
    assert len(found) == 1 and "not-the-password" not in found[0] and url.password not in found[0]
    assert found[0].startswith(f"database {where}/{url.database}: ")
    assert f'password authentication failed for user "{url.username}"' in found[0]
    assert found[0].endswith(f"— check the user ({url.username}) and password in [database] connection, and that "
                             "the database server grants them access")

    closed = url.set(port=free_port())
    found = doctor("database", database={"connection": closed.render_as_string(hide_password=False)})
    assert len(found) == 1 and "Connection refused" in found[0]
    assert found[0].endswith(f"— check that the database server runs and accepts connections on "
                             f"{url.host}:{closed.port} from this host (listen address, firewall, pg_hba.conf)")

    missing = url.set(database="no_such_kaon_db")
    found = doctor("database", database={"connection": missing.render_as_string(hide_password=False)})
    assert len(found) == 1 and found[0].endswith(
        "— create the database no_such_kaon_db (then kaon db upgrade) or fix its name in [database] connection")


def test_sqlite_missing_file_and_a_healthy_database(tmp_path: Path) -> None:
    path = tmp_path / "kaon.sqlite"
    assert doctor("database", database={"connection": f"sqlite:///{path}"}) == [
        f"database {path}: the file does not exist — fix state_path / [database] connection, or create it with "
        "kaon db upgrade"]
    assert not path.exists()  # looking did not create it
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    assert doctor("database", database={"connection": f"sqlite:///{path}"}) == []


# ------------------------------------------------------------------ (b)

def test_rabbitmq_wrong_credentials_and_unreachable(rabbitmq: Any) -> None:
    assert doctor("rabbitmq", DEFAULT={"transport_url": rabbitmq.url}) == []
    good = make_url(rabbitmq.url.replace("rabbit://", "postgresql://", 1))  # only to split the URL
    hostport = f"{good.host}:{good.port}"
    found = doctor("rabbitmq", DEFAULT={"transport_url": f"rabbit://guest:s3cret-x@{hostport}/"})
    assert len(found) == 1 and "s3cret-x" not in found[0]
    assert found[0].startswith(f"RabbitMQ {hostport}: refused user 'guest': ")
    assert found[0].endswith("— fix the user and password in transport_url, or rabbitmqctl add_user guest … on "
                             "the broker")
    port = free_port()
    assert doctor("rabbitmq", DEFAULT={"transport_url": f"rabbit://guest:guest@127.0.0.1:{port}/"}) == [
        f"RabbitMQ 127.0.0.1:{port}: no AMQP answer on 127.0.0.1:{port}: [Errno 111] Connection refused — start "
        f"RabbitMQ on 127.0.0.1:{port} or fix the host/port in transport_url (and open tcp/{port} from this host)"]


def test_rabbitmq_virtual_host_not_allowed(rabbitmq: Any) -> None:
    good = make_url(rabbitmq.url.replace("rabbit://", "postgresql://", 1))
    hostport = f"{good.host}:{good.port}"
    found = doctor("rabbitmq", DEFAULT={"transport_url": f"rabbit://guest:guest@{hostport}/nova"})
    assert len(found) == 1 and found[0].startswith(f"RabbitMQ {hostport}: user 'guest' may not use virtual host "
                                                   "'nova': ")
    assert found[0].endswith("— rabbitmqctl set_permissions -p nova guest '.*' '.*' '.*', or fix the vhost in "
                             "transport_url")


def test_rabbitmq_not_applicable_without_a_rabbit_url() -> None:
    out = registry.run(load_config([], {}), kinds=[registry.CONFIG], only=["rabbitmq"])
    assert (out.findings, out.not_checked, [s.check for s in out.not_applicable]) == ([], [], ["rabbitmq"])


# ------------------------------------------------------------------ (c)

@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with start_kaon_server(tmp_path_factory.mktemp("ks"), auth_strategy="kaon") as srv:
        auth = yaml.safe_load(srv.clouds_yaml.read_text())["clouds"]["kaon-admin"]["auth"]
        yield {"url": srv.url, **auth}


def _authtoken(identity: dict[str, str], **changes: str) -> dict[str, str]:
    opts = {k: identity[k] for k in ("auth_url", "username", "password", "project_name", "user_domain_name",
                                     "project_domain_name")}
    return {**opts, **changes}


def test_keystone_credentials_path_and_reachability(identity: dict[str, str]) -> None:
    assert doctor("keystone", keystone_authtoken=_authtoken(identity)) == []
    url = identity["auth_url"]
    project = identity["project_name"]
    user = identity["username"]
    assert doctor("keystone", keystone_authtoken=_authtoken(identity, password="wrong")) == [
        f"Keystone {url}: refused user {user!r} (401) for project {project!r} — fix username/password/project_name/"
        f"*_domain_name in [keystone_authtoken], or openstack role add --user {user} --project {project} admin"]
    bad_path = identity["url"] + "/keystone/v3"
    assert doctor("keystone", keystone_authtoken=_authtoken(identity, auth_url=bad_path)) == [
        f"Keystone {bad_path}: GET {bad_path} answers 401 without Keystone's version document: not Keystone's v3 "
        "API at that path — fix "
        "the path of [keystone_authtoken] auth_url (usually http://HOST:5000/v3 or http://HOST/identity/v3)"]
    down = f"http://127.0.0.1:{free_port()}/v3"
    found = doctor("keystone", keystone_authtoken=_authtoken(identity, auth_url=down))
    assert len(found) == 1 and found[0].startswith(f"Keystone {down}: unreachable: ")
    assert found[0].endswith("— fix [keystone_authtoken] auth_url (host and port of Keystone's public endpoint) "
                             "or open that port from this host")


def test_an_agent_hosts_files_have_no_database_to_check(tmp_path: Path) -> None:
    out = registry.run(load_config([], {"DEFAULT": {"state_path": str(tmp_path)}}),
                       kinds=[registry.CONFIG, registry.DATA])
    assert (out.findings, out.not_checked, out.exit_code) == ([], [], 0)
    assert {"database", "binding_failed", "router_gateway"} <= {s.check for s in out.not_applicable}
    assert not (tmp_path / "kaon.sqlite").exists()


# ------------------------------------------------------------------ the VXLAN probe's VNI

def test_vni_ranges_that_include_the_probe_vni() -> None:
    assert doctor("probe_vni", ml2_type_vxlan={"vni_ranges": "1:1000,16000000:16777215"}) == [
        "[ml2_type_vxlan] vni_ranges: 16000000:16777215 includes VNI 16777215, which agents keep for their VXLAN "
        "probes: a network given it clashes with the probe device on every host — end the range at 16777214"]
    assert doctor("probe_vni", ml2_type_vxlan={"vni_ranges": "1:16777214"}) == []
    out = registry.run(load_config([], {}), kinds=[registry.CONFIG], only=["probe_vni"])
    assert [s.check for s in out.not_applicable] == ["probe_vni"]
