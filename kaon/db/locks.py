"""Locks on a name for the rest of a write transaction.

Some checks have no row to lock: "at most one default subnet pool per IP
version", "the project's usage is under its quota", "the project has its
default security group". Two transactions doing the same check must take
turns. SQLite needs nothing (one writer at a time: ``BEGIN IMMEDIATE``);
PostgreSQL has transaction-scoped advisory locks; MariaDB/MySQL have named
locks (``GET_LOCK``), which belong to the session: kaon.db.mysql releases
them when the connection returns to the pool, after the commit.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, text

from kaon import errors
from kaon.db.mysql import is_mysql

_PG = text("SELECT pg_advisory_xact_lock(hashtext(:k))")
_MYSQL = text("SELECT GET_LOCK(:k, :timeout)")

# As long as InnoDB waits for a row lock by default (innodb_lock_wait_timeout).
MYSQL_TIMEOUT_S = 50


class LockTimeout(errors.Conflict):
    """Waited longer than InnoDB would for a row lock (MySQL)."""

    message = "Timed out waiting for a database lock."


def xact_lock(conn: Connection, key: str) -> None:
    """Wait for the lock named ``key`` and hold it until the transaction ends."""
    name = conn.dialect.name
    if name == "postgresql":
        conn.execute(_PG, {"k": key})
    elif is_mysql(name):
        # Names are limited to 64 characters: a digest of the key.
        digest = "kaon:" + hashlib.sha1(key.encode()).hexdigest()
        got = conn.execute(_MYSQL, {"k": digest, "timeout": MYSQL_TIMEOUT_S}).scalar()
        conn.connection.info["kaon_named_locks"] = True
        if got != 1:
            raise LockTimeout()
