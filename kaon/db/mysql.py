"""What MariaDB/MySQL need that the other databases do not.

Imported by :mod:`kaon.db.meta`, so it applies to every table, to the
Alembic migrations (they emit the same DDL constructs) and to every engine.

* Tables are ``utf8mb4`` with a binary, NO PAD collation (MariaDB's
  ``utf8mb4_nopad_bin``, MySQL 8's ``utf8mb4_0900_bin``): names, tags,
  descriptions and ids compare and sort as on SQLite and PostgreSQL (the
  test clusters' C collation), so a filter, a sort or a unique constraint
  means the same on every database. The server's default,
  ``utf8mb4_general_ci``, would make ``?name=Web`` match ``web`` and tags
  ``A``/``a`` collide; a PAD SPACE collation (``utf8mb4_bin``) would make
  ``web`` equal ``web `` (trailing spaces ignored).
* ``DateTime`` is ``DATETIME(6)``: MySQL's plain DATETIME drops the
  microseconds that ordering by ``created_at`` and ``changed_since`` rely on.
* Connections run ``READ COMMITTED`` with ``sql_mode=TRADITIONAL``: the
  isolation kaon's locking is written for (PostgreSQL's default: a locking
  read sees the latest committed row and there are no gap locks), and
  strict mode, so that a value that does not fit is an error rather than
  silently truncated (oslo.db sets the same mode for Neutron).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import DateTime, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateTable

CHARSET = "utf8mb4"
COLLATION_MARIADB = "utf8mb4_nopad_bin"
COLLATION_MYSQL = "utf8mb4_0900_bin"
SQL_MODE = "TRADITIONAL"


def is_mysql(name: str) -> bool:
    """True for the dialect names of MySQL and MariaDB."""
    return name in ("mysql", "mariadb")


# A table without a primary key (ip_allocations) gets an invisible
# auto-increment one. InnoDB would otherwise cluster it on its first NOT NULL
# unique key, (subnet_id, ip_address), and every index, the port_id one
# included, would then list a port's addresses by subnet id rather than in
# the order they were allocated (which SQLite's rowid and PostgreSQL's heap
# order keep, and Neutron's answers show). INVISIBLE: SELECT * and INSERTs
# do not see it.
SEQ_COLUMN = "kaon_seq"


@compiles(CreateTable, "mysql")
@compiles(CreateTable, "mariadb")
def _create_table(create: CreateTable, compiler: Any, **kw: Any) -> str:
    sql = compiler.visit_create_table(create, **kw).rstrip()
    if not create.element.primary_key.columns:
        head, _, tail = sql.rpartition(")")
        sql = f"{head.rstrip()}, \n\t{SEQ_COLUMN} BIGINT NOT NULL AUTO_INCREMENT INVISIBLE PRIMARY KEY\n){tail}"
    if "CHARSET" in sql.upper().rsplit(")", 1)[-1]:
        return sql  # the table chose its own
    return f"{sql} DEFAULT CHARSET={CHARSET} COLLATE={collation(compiler.dialect)}"


def collation(dialect: Any) -> str:
    """The binary NO PAD collation of the server behind ``dialect``."""
    return COLLATION_MARIADB if getattr(dialect, "is_mariadb", False) else COLLATION_MYSQL


@compiles(DateTime, "mysql")
@compiles(DateTime, "mariadb")
def _datetime(type_: DateTime, compiler: Any, **kw: Any) -> str:
    return "DATETIME(6)"


def engine_url(url: URL) -> URL:
    """``url`` with ``charset=utf8mb4`` unless it names a character set."""
    if "charset" in url.query:
        return url
    return url.update_query_dict({"charset": CHARSET})


def engine_args() -> dict[str, Any]:
    # pool_recycle: the server closes idle connections after wait_timeout
    # (8 h by default, often less behind HAProxy); pre-ping catches the rest.
    return {"isolation_level": "READ COMMITTED", "pool_recycle": 3600}


def configure_engine(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _session(dbapi_conn: Any, _record: Any) -> None:
        # Runs after SQLAlchemy's first-connect inspection of the server.
        # A MariaDB server behind a ``mysql+`` URL (the install guide's)
        # gets the dialect name ``mariadb+`` would give, so that code can
        # tell it from MySQL by name (port JSON uses MariaDB's own JSON
        # functions; MySQL's sort object keys and lack JSON_ARRAYAGG ORDER BY).
        if getattr(engine.dialect, "is_mariadb", False) and engine.dialect.name != "mariadb":
            engine.dialect.name = "mariadb"
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"SET SESSION sql_mode = '{SQL_MODE}'")
            # Literals in the tables' collation: an expression mixing a
            # column and a literal (JSON_OBJECT's keys) is otherwise an
            # "illegal mix of collations".
            cur.execute(f"SET NAMES {CHARSET} COLLATE {collation(engine.dialect)}")
        finally:
            cur.close()

    # Named locks (GET_LOCK, see kaon.db.locks) belong to the session, not
    # the transaction: release them when the connection goes back to the
    # pool, which is after the transaction that took them has committed.
    @event.listens_for(engine, "checkin")
    def _release(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is None or not record.info.pop("kaon_named_locks", False):
            return
        try:
            cur = dbapi_conn.cursor()
            try:
                cur.execute("DO RELEASE_ALL_LOCKS()")
            finally:
                cur.close()
        except Exception:  # noqa: BLE001  a broken connection: the server dropped its locks with it
            record.invalidate()
