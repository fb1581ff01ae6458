"""Login throttling with Keystone's ``[security_compliance]`` semantics.

After ``lockout_failure_attempts`` failed password authentications in a row,
a user is locked for ``lockout_duration`` seconds: every password attempt,
right or wrong, answers 401 until the lock expires, and the count starts
again. A successful login resets the count. Per user, as Keystone does
(``identity/backends/sql.py``: ``_is_account_locked``,
``_record_failed_auth``); unknown users have nothing to lock.

Keystone keeps the count in the database; kaon keeps it in the server
process (no schema change; the embedded identity serves all-in-one nodes).
With several API workers each worker counts on its own, so a user may be
tried ``attempts x workers`` times before every worker refuses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class LoginThrottle:
    def __init__(self, attempts: int, duration: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts = attempts  # 0: no lockout
        self.duration = duration  # seconds, at least 1 (Keystone's minimum)
        self.clock = clock
        self._failures: dict[str, tuple[int, float]] = {}  # user id -> (count, last failure)
        self._lock = threading.Lock()  # authentications run in the thread pool

    def locked(self, user_id: str) -> bool:
        if not self.attempts:
            return False
        with self._lock:
            count, last = self._failures.get(user_id, (0, 0.0))
            if count < self.attempts:
                return False
            if self.clock() < last + self.duration:
                return True
            del self._failures[user_id]  # the lock has expired: count again
            return False

    def failed(self, user_id: str) -> None:
        if not self.attempts:
            return
        with self._lock:
            count, _ = self._failures.get(user_id, (0, 0.0))
            self._failures[user_id] = (count + 1, self.clock())

    def succeeded(self, user_id: str) -> None:
        if self.attempts:
            with self._lock:
                self._failures.pop(user_id, None)
