"""In-process client and fixtures for the core API tests (networks, subnets,
ports, listing, tags, quotas).

The app is built exactly as ``kaon server`` builds it (``kaon.cli.server.build``,
``auth_strategy=noauth``), so identity comes from ``X-Project-Id`` and
``X-Roles``. Fixtures (import them into a test module)::

    core_api   module  one app per module and backend (sqlite, pg, mariadb); tests keep
                       out of each other's way by using their own projects
    make_api   func    make_api(**overrides) -> Api on a fresh database (db_url),
                       for tests that need their own configuration or an empty DB
    project / other_project   func  fresh project ids

``Api.member(project)``, ``Api.admin(project)``, ``Api.reader(project)`` give a
:class:`Caller` with helpers that assert success (``network()``, ``subnet()``,
``port()``). ``Api.count(table, **where)`` reads the database directly, to
prove that a refused request wrote nothing.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from kaon.cli.server import build
from kaon.config import load_config
from kaon.db import core_tables, ml2_tables
from tests.fixtures.mariadb import create_mysql_database, drop_mysql_database
from tests.fixtures.postgres import create_pg_database, drop_pg_database

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

BASE_CONF: dict[str, dict[str, Any]] = {
    "ml2": {"type_drivers": "local,flat,vlan,vxlan,gre,geneve", "tenant_network_types": "vxlan",
            "mechanism_drivers": "openvswitch"},
    "ml2_type_flat": {"flat_networks": "*"},
    "ml2_type_vlan": {"network_vlan_ranges": "physnet1:100:199,physnet2"},
    "ml2_type_vxlan": {"vni_ranges": "1:5000"},
    "ml2_type_gre": {"tunnel_id_ranges": "1:1000"},
    "ml2_type_geneve": {"vni_ranges": "1:1000"},
}

MEMBER = "member,reader"
ADMIN = "admin,member,reader"
READER = "reader"

TABLES = {
    "networks": core_tables.networks, "subnets": core_tables.subnets, "ports": core_tables.ports,
    "ip_allocations": core_tables.ip_allocations, "tags": core_tables.tags,
    "network_rbacs": core_tables.network_rbacs, "network_segments": ml2_tables.network_segments,
    "segment_allocations": ml2_tables.ml2_segment_allocations, "quotas": core_tables.quotas,
}


def merged(base: dict[str, dict[str, Any]], extra: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {s: dict(opts) for s, opts in base.items()}
    for section, opts in extra.items():
        out.setdefault(section, {}).update(opts)
    return out


class Caller:
    """Requests as one project with some roles; helpers assert and unwrap."""

    def __init__(self, api: Api, project: str, roles: str) -> None:
        self.api, self.project, self.roles = api, project, roles

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        h = {"X-Project-Id": self.project, "X-Roles": self.roles}
        h.update(extra or {})
        return h

    def get(self, path: str, params: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self.api.client.get(path, params=params, headers=self._headers(headers))

    def post(self, path: str, json: Any = None, content: bytes | None = None,
             headers: dict[str, str] | None = None) -> Any:
        if content is not None:
            return self.api.client.post(path, content=content, headers=self._headers(headers))
        return self.api.client.post(path, json=json, headers=self._headers(headers))

    def put(self, path: str, json: Any = None, content: bytes | None = None,
            headers: dict[str, str] | None = None) -> Any:
        if content is not None:
            return self.api.client.put(path, content=content, headers=self._headers(headers))
        return self.api.client.put(path, json=json, headers=self._headers(headers))

    def delete(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.api.client.delete(path, headers=self._headers(headers))

    # -- helpers that expect success ---------------------------------------
    def create(self, collection: str, **attrs: Any) -> dict[str, Any]:
        name = collection[:-1]
        r = self.post(f"/v2.0/{collection}", json={name: attrs})
        assert r.status_code == 201, r.text
        return r.json()[name]

    def show(self, collection: str, rid: str) -> dict[str, Any]:
        r = self.get(f"/v2.0/{collection}/{rid}")
        assert r.status_code == 200, r.text
        return r.json()[collection[:-1]]

    def update(self, collection: str, rid: str, **attrs: Any) -> dict[str, Any]:
        name = collection[:-1]
        r = self.put(f"/v2.0/{collection}/{rid}", json={name: attrs})
        assert r.status_code == 200, r.text
        return r.json()[name]

    def remove(self, collection: str, rid: str) -> None:
        r = self.delete(f"/v2.0/{collection}/{rid}")
        assert r.status_code == 204, r.text

    def list(self, collection: str, params: Any = None) -> list[dict[str, Any]]:
        r = self.get(f"/v2.0/{collection}", params=params)
        assert r.status_code == 200, r.text
        return r.json()[collection]

    def network(self, **attrs: Any) -> dict[str, Any]:
        return self.create("networks", **attrs)

    def subnet(self, network_id: str, cidr: str = "10.0.0.0/24", **attrs: Any) -> dict[str, Any]:
        version = 6 if ":" in cidr else 4
        attrs.setdefault("ip_version", version)
        return self.create("subnets", network_id=network_id, cidr=cidr, **attrs)

    def port(self, network_id: str, **attrs: Any) -> dict[str, Any]:
        return self.create("ports", network_id=network_id, **attrs)

    def net_with_subnet(self, cidr: str = "10.0.0.0/24", **subnet_attrs: Any) -> tuple[dict, dict]:
        net = self.network()
        return net, self.subnet(net["id"], cidr, **subnet_attrs)


class Api:
    def __init__(self, app: Any, engine: Engine) -> None:
        self.app = app
        self.engine = engine
        self.client = TestClient(app)

    def member(self, project: str) -> Caller:
        return Caller(self, project, MEMBER)

    def admin(self, project: str = "admin-project") -> Caller:
        return Caller(self, project, ADMIN)

    def reader(self, project: str) -> Caller:
        return Caller(self, project, READER)

    def count(self, table: str, **where: Any) -> int:
        t = TABLES[table]
        stmt = select(func.count()).select_from(t)
        for col, value in where.items():
            stmt = stmt.where(t.c[col] == value)
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def rows(self, table: str, **where: Any) -> list[Any]:
        t = TABLES[table]
        stmt = select(t)
        for col, value in where.items():
            stmt = stmt.where(t.c[col] == value)
        with self.engine.connect() as conn:
            return list(conn.execute(stmt).all())

    def footprint(self, project: str) -> dict[str, int]:
        """How many networks, subnets, ports and allocations ``project`` holds."""
        with self.engine.connect() as conn:
            out = {}
            for name in ("networks", "subnets", "ports"):
                t = TABLES[name]
                out[name] = int(conn.execute(select(func.count()).select_from(t)
                                             .where(t.c.project_id == project)).scalar_one())
            ports = core_tables.ports
            alloc = core_tables.ip_allocations
            out["ip_allocations"] = int(conn.execute(
                select(func.count()).select_from(alloc).where(alloc.c.port_id.in_(
                    select(ports.c.id).where(ports.c.project_id == project)))).scalar_one())
        return out

    def close(self) -> None:
        self.client.close()
        self.engine.dispose()


def build_api(db_url: str, state: Path, extra: dict[str, dict[str, Any]] | None = None) -> Api:
    conf = merged(BASE_CONF, extra or {})
    conf = merged(conf, {"DEFAULT": {"auth_strategy": "noauth", "state_path": str(state)},
                         "database": {"connection": db_url}})
    app, _ = build(load_config([], conf))
    return Api(app, app.app.state.services.engine)


# Parametrized over the databases by tests/conftest.py (pytest_generate_tests).
@pytest.fixture(scope="module")
def core_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    state = tmp_path_factory.mktemp("core-api")
    drop: Callable[[str], None] | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{state / 'kaon.sqlite'}"
    elif request.param == "mariadb":
        url, drop = create_mysql_database(request.getfixturevalue("mariadb_url"), prefix="core"), drop_mysql_database
    else:
        url, drop = create_pg_database(request.getfixturevalue("postgres_server"), prefix="core"), drop_pg_database
    api = build_api(url, state)
    try:
        yield api
    finally:
        api.close()
        if drop is not None:
            drop(url)


@pytest.fixture
def make_api(db_url: str, tmp_path: Path) -> Iterator[Any]:
    """``make_api(**sections) -> Api`` on the fresh database of ``db_url``."""
    made: list[Api] = []

    def make(**extra: dict[str, Any]) -> Api:
        api = build_api(db_url, tmp_path / f"state{len(made)}", extra)
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def project() -> str:
    return f"p-{uuid.uuid4().hex}"


@pytest.fixture
def other_project() -> str:
    return f"q-{uuid.uuid4().hex}"


def neutron_error(r: Any, status: int, type_: str | None = None, contains: str | None = None) -> dict[str, Any]:
    """Assert a NeutronError body; return its inner dict."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"NeutronError"}, body
    err = body["NeutronError"]
    assert set(err) == {"type", "message", "detail"}, err
    if type_ is not None:
        assert err["type"] == type_, err
    if contains is not None:
        assert contains in err["message"], err
    return err
