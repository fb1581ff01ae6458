"""kaon.db.locks.xact_lock on live PostgreSQL and MariaDB servers: two
transactions taking one name take turns, the second getting it only once the
first has committed (or rolled back); different names do not wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from kaon.db.engine import make_engine, write_txn
from kaon.db.locks import xact_lock


@pytest.fixture(params=[
    pytest.param("postgresql", id="pg", marks=pytest.mark.needs_postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.needs_mariadb),
])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "mariadb":
        url = request.getfixturevalue("fresh_mysql_database")(prefix="locks")
    else:
        url = request.getfixturevalue("fresh_pg_database")(prefix="locks")
    eng = make_engine(url)
    yield eng
    eng.dispose()


def hold(engine: Engine, key: str, seconds: float, held: threading.Event, fail: bool = False) -> None:
    try:
        with write_txn(engine) as conn:
            xact_lock(conn, key)
            held.set()
            time.sleep(seconds)
            if fail:
                raise RuntimeError("rolled back")
    except RuntimeError:
        pass


def wait_for_lock(engine: Engine, key: str) -> float:
    with write_txn(engine) as conn:
        xact_lock(conn, key)
        return time.monotonic()


@pytest.mark.parametrize("fail", [False, True], ids=["commit", "rollback"])
def test_one_name_is_held_until_the_transaction_ends(engine: Engine, fail: bool) -> None:
    held = threading.Event()
    t = threading.Thread(target=hold, args=(engine, "quota:p:port", 0.8, held, fail))
    t.start()
    assert held.wait(10)
    start = time.monotonic()
    got = wait_for_lock(engine, "quota:p:port")
    t.join(10)
    assert got - start >= 0.5  # it waited for the holder


def test_other_names_do_not_wait(engine: Engine) -> None:
    held = threading.Event()
    t = threading.Thread(target=hold, args=(engine, "quota:p:port", 2.0, held))
    t.start()
    assert held.wait(10)
    start = time.monotonic()
    wait_for_lock(engine, "quota:p:network")
    assert time.monotonic() - start < 1.5
    t.join(10)
