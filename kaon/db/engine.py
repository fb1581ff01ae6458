"""Engines and transactions.

One write transaction per API request. On SQLite a write transaction starts
with ``BEGIN IMMEDIATE`` so that two writers never both read, then both try
to upgrade their lock (which SQLite answers with SQLITE_BUSY for one of them
after the fact); the second writer waits at BEGIN instead. On PostgreSQL the
services lock the rows they allocate from (``SELECT ... FOR UPDATE``), and
unique constraints are the backstop.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from kaon.db import mysql

# JSON columns (pools, routes, binding profiles ...) are decoded on every
# row read; orjson is several times faster than the standard library.
JSON_ARGS = {"json_serializer": lambda obj: orjson.dumps(obj).decode(), "json_deserializer": orjson.loads}


BEGIN = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    parsed = make_url(url)
    if mysql.is_mysql(parsed.get_backend_name()):
        engine = create_engine(mysql.engine_url(parsed), pool_size=10, max_overflow=20, pool_pre_ping=True,
                               **mysql.engine_args(), **JSON_ARGS)
        mysql.configure_engine(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **JSON_ARGS)


def _sqlite_engine(url: str) -> Engine:
    memory = url in ("sqlite://", "sqlite:///:memory:")
    kwargs: dict[str, object] = {"connect_args": {"check_same_thread": False, "timeout": 30}, **JSON_ARGS}
    if memory:
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:  # pysqlite's connection: untyped
        # pysqlite's own transaction handling would emit BEGIN lazily and
        # never BEGIN IMMEDIATE; take it over (SQLAlchemy's documented recipe).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        if not memory:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Straight to the driver: SQLAlchemy's exec_driver_sql costs ~70 µs
        # a call here, and every request begins a transaction.
        driver = conn.connection.driver_connection
        assert driver is not None  # None only once the connection is closed
        driver.execute(BEGIN[conn.info.get("kaon_begin", "DEFERRED")])

    return engine


# SQLite lets one writer in at a time; a second BEGIN IMMEDIATE waits in
# SQLite's busy handler, which sleeps in growing steps (up to 100 ms each)
# rather than waking when the lock frees. Writers of one process (API
# requests, the compiler, agent reports) queue on this lock instead, and are
# handed the database the moment it is free. Other processes still meet the
# busy handler. Reentrant: the API takes it around a whole request it runs
# on the event loop (kaon.api.offload), and the request's write_txn again.
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()


def sqlite_writer_lock(engine: Engine) -> threading.RLock | None:
    """The in-process writer lock of a SQLite engine; None for other databases."""
    if engine.dialect.name != "sqlite":
        return None
    lock = _SQLITE_WRITERS.get(engine)
    if lock is None:
        lock = _SQLITE_WRITERS.setdefault(engine, threading.RLock())
    return lock


@contextmanager
def write_txn(engine: Engine) -> Iterator[Connection]:
    """A read-write transaction, committed on success, rolled back on error."""
    lock = sqlite_writer_lock(engine)
    with lock if lock is not None else nullcontext(), engine.connect() as conn:
        conn.info["kaon_begin"] = "IMMEDIATE"
        try:
            with conn.begin():
                yield conn
        finally:
            conn.info.pop("kaon_begin", None)


@contextmanager
def read_txn(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        with conn.begin():
            yield conn
