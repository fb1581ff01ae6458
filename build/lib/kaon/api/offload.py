"""Where a request's database work runs: on the event loop, or in the thread pool.

Services are synchronous (SQLAlchemy Core). Handing each request to a worker
thread and back costs two thread wake-ups, ~0.3 ms of wall time on this
machine kind, which is more than a whole port show takes on SQLite. So a
*short* operation (one item: show, create, update, delete, an action) runs
on the event loop itself when the database is SQLite and no other thread of
this process is writing: the loop takes the in-process writer lock without
waiting (kaon.db.engine), so it never blocks on another thread's
transaction, and SQLite readers do not wait for writers (WAL). Everything
else goes to the thread pool as before: PostgreSQL (network round trips),
lists and bulk creates (they may take tens of milliseconds), and any
operation that finds the lock taken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from kaon.db.engine import sqlite_writer_lock

T = TypeVar("T")


async def short(engine: Engine, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)``, a one-item database operation, where it is cheapest."""
    lock = sqlite_writer_lock(engine)
    if lock is not None and lock.acquire(blocking=False):
        try:
            return fn(*args)
        finally:
            lock.release()
    return await run_in_threadpool(fn, *args)


async def long(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` in the thread pool: lists, bulk work, waits."""
    return await run_in_threadpool(fn, *args)
