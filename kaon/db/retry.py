"""Re-running a write transaction that the database aborted for concurrency.

PostgreSQL and MariaDB/MySQL break a deadlock by aborting one of the
transactions in it; PostgreSQL aborts a transaction that cannot be
serialized, and InnoDB gives up on a row lock after
``innodb_lock_wait_timeout``. None of these says anything about the request:
the same work, run again, usually succeeds (or meets the 409 it should have
met, now that the other transaction has committed). Neutron re-runs the
whole API operation for them (neutron-lib's ``retry_db_errors``, oslo.db's
``wrap_db_retry``), and so does kaon: :func:`retry_db_errors` wraps the
controller's create/update/delete (and :func:`retrying` the other write
routes: router interfaces and routes, subnet pool prefixes, tags; and the
agents' reports over the bus), whose
transaction starts and ends inside the wrapped call, so a retry repeats the whole transaction from the request
body (a deep copy each time: services may change what they are given).

Policy: at most :data:`MAX_ATTEMPTS` runs; before each retry a random
sleep up to ``min(MAX_DELAY, BASE_DELAY * 2**n)`` ("full jitter": the
transactions that collided do not collide again in lockstep). Only the
outermost wrapped call retries: one nested in it re-raises, because its
transaction is the outer one's. SQLite is never retried: its writers take
turns (``BEGIN IMMEDIATE``), so it has no deadlocks to break.
"""

from __future__ import annotations

import copy
import functools
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, exc

LOG = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
BASE_DELAY = 0.02
MAX_DELAY = 1.0

# PostgreSQL SQLSTATEs: serialization_failure, deadlock_detected.
PG_RETRIABLE = frozenset({"40001", "40P01"})
# MySQL/MariaDB error numbers: lock wait timeout, deadlock (Galera's
# certification failures are reported as deadlocks too), and MariaDB's
# "record has changed since last read" (innodb_snapshot_isolation).
MYSQL_RETRIABLE = frozenset({1205, 1213, 1020})

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_depth = threading.local()


def is_retriable(error: BaseException) -> bool:
    """True if ``error`` (or what caused it) is a deadlock, a serialization
    failure or a lock wait timeout."""
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, exc.DBAPIError) and _driver_retriable(e.orig):
            return True
        e = e.__cause__ or e.__context__
    return False


def _driver_retriable(orig: BaseException | None) -> bool:
    if orig is None:
        return False
    # PyMySQL's errors carry the server's error number first (and a
    # SQLSTATE too, which is too coarse: HY000 for a lock wait timeout);
    # psycopg's carry the SQLSTATE.
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        return args[0] in MYSQL_RETRIABLE
    return getattr(orig, "sqlstate", None) in PG_RETRIABLE


def _fresh(value: Any) -> Any:
    """A copy of a request body (dicts and lists) for one attempt; other
    arguments (the caller's context, ids) as they are."""
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


def backoff(attempt: int) -> float:
    """Seconds to sleep before retry number ``attempt`` (1-based)."""
    return random.uniform(0, min(MAX_DELAY, BASE_DELAY * 2 ** attempt))


def retrying(engine: Engine | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, a whole write transaction (or several) on
    ``engine``, re-run on a retriable database error. Dict and list
    arguments (request bodies) are copied afresh for each attempt."""
    depth = getattr(_depth, "n", 0)
    if depth or engine is None or engine.dialect.name == "sqlite":
        return fn(*args, **kwargs)
    _depth.n = depth + 1
    try:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                return fn(*[_fresh(v) for v in args], **{k: _fresh(v) for k, v in kwargs.items()})
            except Exception as e:
                if attempt == MAX_ATTEMPTS or not is_retriable(e):
                    raise
                delay = backoff(attempt)
                LOG.debug("%s: %s; retry %d in %.3f s", getattr(fn, "__qualname__", fn),
                          type(getattr(e, "orig", e)).__name__, attempt, delay)
                time.sleep(delay)
    finally:
        _depth.n = depth
    raise AssertionError("unreachable")


def retry_db_errors(fn: F) -> F:
    """Decorate a method of an object with an ``engine`` whose call runs whole
    write transactions: :func:`retrying` for each call."""

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        return retrying(getattr(self, "engine", None), fn, self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
