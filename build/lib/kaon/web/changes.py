"""A counter of API writes in this process, for the page's live updates.

The event stream (kaon.web.routes) compares it every 50 ms, which is what
makes a change made through this server show on open pages at once. It is
only a hint: writes in other API workers or servers, and agent reports
(ports going ACTIVE), are seen by the stream's periodic re-read instead.
"""

from __future__ import annotations

import itertools


class ChangeCounter:
    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self.value = 0

    def bump(self) -> None:
        # next() on itertools.count is atomic under the GIL: concurrent bumps
        # from worker threads never lose one.
        self.value = next(self._counter)
