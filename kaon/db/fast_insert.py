"""Single-row INSERTs on the hot write paths, straight to SQLite's driver.

Why: SQLAlchemy spends ~50 µs of Python per ``Connection.execute`` on this
machine kind, several times what SQLite takes to insert the row, and a port
create inserts a port and an address (a bulk of 100: 200 rows). Here the
INSERT text and the per-column conversions are worked out once per table
and column set, from SQLAlchemy's own types for the dialect (the same
``bind_processor`` it would apply: datetimes as SQLite stores them, JSON
through the engine's serializer), and the row goes to the driver cursor of
the connection's current transaction. Columns the row leaves out get their
Python-side defaults, as SQLAlchemy would give them.

PostgreSQL and MariaDB/MySQL keep SQLAlchemy's path (their figures are not
the target, and a network round trip dwarfs the overhead there). MySQL has
no ``ON CONFLICT DO NOTHING``: there the row is inserted plainly and a
duplicate-key error counts as "skipped". (``INSERT IGNORE`` would also turn
a failed foreign key into a warning, and ``ON DUPLICATE KEY UPDATE``
reports an inserted and an existing row alike under the FOUND_ROWS flag
SQLAlchemy sets.) InnoDB rolls back only the failed statement, so the
transaction goes on, as after PostgreSQL's ``DO NOTHING``; an insert that
meets another transaction's uncommitted duplicate waits for its outcome,
as on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table, exc, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

MYSQL_DUP_ENTRY = 1062  # ER_DUP_ENTRY

Plan = tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...], tuple[tuple[str, Any], ...]]


class FastInsert:
    """``run(conn, row) -> rowcount``; with ``unique``, a row that would
    break that unique constraint is skipped (``ON CONFLICT DO NOTHING``,
    rowcount 0) instead of failing."""

    def __init__(self, table: Table, unique: Sequence[str] = ()) -> None:
        self.table = table
        self.unique = tuple(unique)
        self._plans: dict[tuple[str, ...], Plan] = {}
        if unique:
            self._fallback = {
                "sqlite": sqlite_insert(table).on_conflict_do_nothing(index_elements=list(unique))
                .execution_options(preserve_rowcount=True),
                "postgresql": pg_insert(table).on_conflict_do_nothing(index_elements=list(unique))
                .execution_options(preserve_rowcount=True),
            }
        else:
            plain = insert(table).execution_options(preserve_rowcount=True)
            self._fallback = {"sqlite": plain, "postgresql": plain}
        self._plain = insert(table).execution_options(preserve_rowcount=True)
        self._columns = frozenset(table.c.keys())

    def run(self, conn: Connection, row: Mapping[str, Any]) -> int:
        name = conn.dialect.name
        if name != "sqlite" and not self._columns.issuperset(row):
            # SQLAlchemy would drop unknown keys without a word.
            self._unknown(row)
        if name in ("mysql", "mariadb"):
            return self._run_mysql(conn, row)
        if name != "sqlite":
            return int(conn.execute(self._fallback[name], dict(row)).rowcount)
        keys = tuple(row)
        plan = self._plans.get(keys)
        if plan is None:
            plan = self._plans[keys] = self._plan(conn, keys)
        sql, columns, processors, defaults = plan
        values = [row[k] for k in keys] + [value() if callable(value) else value for _, value in defaults]
        params = [v if p is None or v is None else p(v) for v, p in zip(values, processors, strict=True)]
        dbapi = conn.dialect.loaded_dbapi
        driver = conn.connection.driver_connection
        assert driver is not None  # None only once the connection is closed
        cursor = driver.cursor()
        try:
            cursor.execute(sql, params)
            return int(cursor.rowcount)
        except dbapi.Error as e:
            # As SQLAlchemy would raise it (IntegrityError -> the API's 409, ...).
            raise exc.DBAPIError.instance(sql, params, e, dbapi.Error) from e
        finally:
            cursor.close()

    def _unknown(self, keys: Iterable[str]) -> None:
        unknown = [k for k in keys if k not in self._columns]
        if unknown:
            raise KeyError(f"{self.table.name} has no column(s) {', '.join(unknown)}")

    def _run_mysql(self, conn: Connection, row: Mapping[str, Any]) -> int:
        try:
            return int(conn.execute(self._plain, dict(row)).rowcount)
        except exc.IntegrityError as e:
            # The only other unique key is a fresh random id.
            if self.unique and getattr(e.orig, "args", (None,))[0] == MYSQL_DUP_ENTRY:
                return 0
            raise

    def _plan(self, conn: Connection, keys: tuple[str, ...]) -> Plan:
        dialect = conn.dialect
        self._unknown(keys)
        defaults = []
        for col in self.table.c:
            if col.key in keys or col.default is None:
                continue
            # Scalar and callable ColumnDefaults carry .arg; the DefaultGenerator base does not.
            arg = col.default.arg  # type: ignore[attr-defined]
            # SQLAlchemy wraps a zero-argument callable default to take the execution context.
            defaults.append((col.key, (lambda f=arg: f(None)) if callable(arg) else arg))
        columns = keys + tuple(k for k, _ in defaults)
        processors = tuple(self.table.c[k].type.dialect_impl(dialect).bind_processor(dialect) for k in columns)
        names = ", ".join(self.table.c[k].name for k in columns)
        sql = f"INSERT INTO {self.table.name} ({names}) VALUES ({', '.join('?' for _ in columns)})"
        if self.unique:
            sql += f" ON CONFLICT ({', '.join(self.unique)}) DO NOTHING"
        return sql, columns, processors, tuple(defaults)
