"""kaon.db.retry on live PostgreSQL and MariaDB servers: the errors the
servers really raise for a deadlock, a serialization failure and a lock wait
timeout are recognised as retriable (a duplicate key is not), and a wrapped
operation is re-run as a whole transaction, a bounded number of times."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, exc, insert, select, text, update

from kaon.db import retry
from kaon.db.engine import make_engine, write_txn

probe = Table("retry_probe", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))


@pytest.fixture(params=[
    pytest.param("postgresql", id="pg", marks=pytest.mark.needs_postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.needs_mariadb),
])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "mariadb":
        url = request.getfixturevalue("fresh_mysql_database")(prefix="retry")
    else:
        url = request.getfixturevalue("fresh_pg_database")(prefix="retry")
    eng = make_engine(url)
    probe.metadata.create_all(eng)
    with eng.begin() as conn:
        conn.execute(insert(probe), [{"id": 1, "n": 0}, {"id": 2, "n": 0}])
    yield eng
    eng.dispose()


def deadlock(engine: Engine) -> list[BaseException]:
    """Two transactions update rows 1 and 2 in opposite orders; what they raised."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def one(first: int, second: int) -> None:
        try:
            with write_txn(engine) as conn:
                conn.execute(update(probe).where(probe.c.id == first).values(n=probe.c.n + 1))
                barrier.wait(timeout=30)
                conn.execute(update(probe).where(probe.c.id == second).values(n=probe.c.n + 1))
        except exc.DBAPIError as e:
            errors.append(e)

    threads = [threading.Thread(target=one, args=args) for args in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_a_real_deadlock_is_retriable(engine: Engine) -> None:
    errors = deadlock(engine)
    assert len(errors) == 1, errors  # the server broke it by aborting one of the two
    assert retry.is_retriable(errors[0])
    # Also when it is the cause of another exception, as a service may wrap it.
    try:
        raise RuntimeError("wrapped") from errors[0]
    except RuntimeError as wrapped:
        assert retry.is_retriable(wrapped)


def test_a_duplicate_key_is_not_retriable(engine: Engine) -> None:
    with pytest.raises(exc.IntegrityError) as info, write_txn(engine) as conn:
        conn.execute(insert(probe).values(id=1, n=5))
    assert not retry.is_retriable(info.value)


def test_a_lock_wait_timeout_or_serialization_failure_is_retriable(engine: Engine) -> None:
    """MariaDB: a row lock not granted within innodb_lock_wait_timeout (1205).
    PostgreSQL: REPEATABLE READ meeting a concurrent update (40001)."""
    mysql = engine.dialect.name != "postgresql"
    with engine.connect() as holder:
        holder.begin()
        holder.execute(update(probe).where(probe.c.id == 1).values(n=10))
        if mysql:
            with pytest.raises(exc.OperationalError) as info, write_txn(engine) as conn:
                conn.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
                conn.execute(update(probe).where(probe.c.id == 1).values(n=11))
            holder.rollback()
        else:
            with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
                conn.begin()
                conn.execute(select(probe.c.n).where(probe.c.id == 2))  # takes the snapshot
                holder.commit()
                with pytest.raises(exc.OperationalError) as info:
                    conn.execute(update(probe).where(probe.c.id == 1).values(n=11))
                conn.rollback()
    e = info.value
    assert retry.is_retriable(e), e


class Service:
    """An operation that runs its own write transaction, as the API controller's do."""

    def __init__(self, engine: Engine, fail: list[BaseException]) -> None:
        self.engine = engine
        self.fail = fail
        self.bodies: list[dict[str, Any]] = []

    @retry.retry_db_errors
    def add(self, body: dict[str, Any]) -> int:
        self.bodies.append(body)
        body["seen"] = True  # a service may change what it was given
        with write_txn(self.engine) as conn:
            conn.execute(insert(probe).values(id=body["id"], n=len(self.bodies)))
            if self.fail:
                raise self.fail.pop()
        return len(self.bodies)

    @retry.retry_db_errors
    def outer(self, body: dict[str, Any]) -> int:
        return self.add(body)


def test_the_whole_transaction_is_rerun_with_a_fresh_body(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(retry, "BASE_DELAY", 0.001)
    real = deadlock(engine)[0]
    svc = Service(engine, [real, real])
    body = {"id": 7}
    assert svc.add(body) == 3
    assert body == {"id": 7}  # each attempt had its own copy
    assert all(b == {"id": 7, "seen": True} for b in svc.bodies)
    with engine.connect() as conn:  # the failed attempts' inserts were rolled back
        assert conn.execute(select(probe.c.n).where(probe.c.id == 7)).scalars().all() == [3]


def test_attempts_are_bounded_and_other_errors_are_not_retried(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(retry, "BASE_DELAY", 0.001)
    real = deadlock(engine)[0]
    svc = Service(engine, [real] * (retry.MAX_ATTEMPTS + 1))
    with pytest.raises(exc.DBAPIError):
        svc.add({"id": 8})
    assert len(svc.bodies) == retry.MAX_ATTEMPTS
    svc = Service(engine, [ValueError("not the database's")])
    with pytest.raises(ValueError):
        svc.add({"id": 9})
    assert len(svc.bodies) == 1


def test_only_the_outermost_call_retries(engine: Engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(retry, "BASE_DELAY", 0.001)
    real = deadlock(engine)[0]
    svc = Service(engine, [real])
    assert svc.outer({"id": 10}) == 2  # the inner call re-raised; the outer one re-ran it
    assert len(svc.bodies) == 2


def test_backoff_is_jittered_and_capped() -> None:
    delays = [retry.backoff(n) for n in range(1, 30) for _ in range(20)]
    assert all(0 <= d <= retry.MAX_DELAY for d in delays)
    assert len(set(delays)) > len(delays) // 2
