"""kaon.db.fast_insert: rows written straight to SQLite's driver read back
exactly as rows SQLAlchemy inserted (datetimes, JSON, booleans, defaults);
conflicts are skipped; constraint errors surface as SQLAlchemy's. The same
on PostgreSQL and MariaDB, which take SQLAlchemy's path (MariaDB: a plain
INSERT whose duplicate-key error counts as skipped)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import exc, insert, select

from kaon.db.core_tables import ip_allocations, networks, ports
from kaon.db.engine import make_engine, write_txn
from kaon.db.fast_insert import FastInsert
from kaon.db.migrate import upgrade


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    eng = make_engine(db_url)
    upgrade(eng)
    stamp = dt.datetime(2026, 11, 21, 12, 0, 0, 123456)
    with write_txn(eng) as conn:
        conn.execute(insert(networks).values(id="net", project_id="p", name="n", description="", created_at=stamp,
                                             updated_at=stamp, revision_number=0))
    yield eng
    eng.dispose()


def port_row(pid: str, mac: str) -> dict:
    stamp = dt.datetime(2026, 11, 21, 12, 0, 1, 654321)
    return {"id": pid, "project_id": "p", "name": pid, "description": "", "created_at": stamp, "updated_at": stamp,
            "revision_number": 0, "network_id": "net", "mac_address": mac, "admin_state_up": False,
            "status": "DOWN", "device_id": "", "device_owner": "", "port_security_enabled": True,
            "binding_host_id": "", "binding_vnic_type": "normal", "binding_profile": {"a": [1, "x"]},
            "binding_vif_type": "unbound", "binding_vif_details": {}, "dns_name": "",
            "extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1400"}], "allowed_address_pairs": []}


def test_rows_read_back_as_sqlalchemy_wrote_them(engine) -> None:  # type: ignore[no-untyped-def]
    fast = FastInsert(ports, unique=("network_id", "mac_address"))
    with write_txn(engine) as conn:
        assert fast.run(conn, port_row("fast", "fa:16:3e:00:00:01")) == 1
        conn.execute(insert(ports), {**port_row("slow", "fa:16:3e:00:00:02")})
    with engine.connect() as conn:
        rows = {r.id: r._asdict() for r in conn.execute(select(ports))}
    fast_row, slow_row = rows["fast"], rows["slow"]
    for row in (fast_row, slow_row):
        del row["id"], row["name"], row["mac_address"]
    assert fast_row == slow_row
    assert fast_row["created_at"] == dt.datetime(2026, 11, 21, 12, 0, 1, 654321)
    assert fast_row["binding_profile"] == {"a": [1, "x"]} and fast_row["admin_state_up"] is False
    assert fast_row["binding_failure"] == ""  # left out of the row: the column's default


def test_conflict_is_skipped_and_other_violations_raise_sqlalchemys_errors(engine) -> None:  # type: ignore[no-untyped-def]
    fast = FastInsert(ports, unique=("network_id", "mac_address"))
    with write_txn(engine) as conn:
        assert fast.run(conn, port_row("one", "fa:16:3e:00:00:03")) == 1
        assert fast.run(conn, port_row("two", "fa:16:3e:00:00:03")) == 0  # same MAC on the network
    alloc = FastInsert(ip_allocations)
    with pytest.raises(exc.IntegrityError), write_txn(engine) as conn:  # no such port: foreign key
        alloc.run(conn, {"port_id": "nope", "ip_address": "10.0.0.5", "subnet_id": "s", "network_id": "net"})
    # A failed statement leaves the transaction usable on MariaDB (InnoDB
    # rolls back the statement only): the conflict above did not undo "one".
    with pytest.raises(KeyError), write_txn(engine) as conn:
        fast.run(conn, {**port_row("three", "fa:16:3e:00:00:04"), "no_such_column": 1})
    with engine.connect() as conn:
        assert [r.id for r in conn.execute(select(ports.c.id))] == ["one"]
