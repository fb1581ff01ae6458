"""What a check is given, and the two ways a check says it did not look.

A check is ``fn(inputs) -> list[Finding]``. It raises :class:`NotApplicable`
when its subject does not exist here (no ``transport_url`` to try, no OVS
bridge configured): that is not a problem and not a gap. It raises
:class:`CannotCheck` when it should have looked and could not (a tool is
missing, a service answered 500): the run's exit code becomes 2 unless
something else was found.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection


class NotApplicable(Exception):
    """Nothing for this check to look at here (the reason says why)."""


class CannotCheck(Exception):
    """The check should have looked and could not (the reason says why)."""


@dataclass(frozen=True)
class Inputs:
    cfg: Any  # kaon.config.Config
    now: dt.datetime  # the server's clock (UTC, naive, as stored)
    conn: Connection | None = None  # a read transaction, for data checks only
    lag_seconds: int = 60  # a host this far behind its latest generation is reported

    @property
    def down_time(self) -> int:
        return int(self.cfg.default.agent_down_time)

    def db(self) -> Connection:
        if self.conn is None:
            raise CannotCheck("no database connection")
        return self.conn
