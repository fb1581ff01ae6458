"""Database time per request: SQLAlchemy cursor events add each statement's
duration to the account of the request being served.

The account is a one-element list put in a context variable by the HTTP
middleware. Starlette's thread pool (anyio) runs a request's database work
with a copy of the request's context, and the copy refers to the same list,
so statements run on the event loop and in worker threads both count.
Statements outside a request (the compiler's thread, agent reports over the
bus) find no account and cost one context-variable read.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from sqlalchemy import Engine, event

ACCOUNT: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("kaon_db_seconds", default=None)
_STARTED = "_kaon_started"


def _before(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool) -> None:
    if context is not None:
        setattr(context, _STARTED, time.perf_counter())


def _after(conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, executemany: bool) -> None:
    account = ACCOUNT.get()
    if account is not None and context is not None:
        started = getattr(context, _STARTED, None)
        if started is not None:
            account[0] += time.perf_counter() - started


def instrument(engine: Engine) -> None:
    """Time every statement ``engine`` runs (once per engine)."""
    if event.contains(engine, "before_cursor_execute", _before):
        return
    event.listen(engine, "before_cursor_execute", _before)
    event.listen(engine, "after_cursor_execute", _after)
