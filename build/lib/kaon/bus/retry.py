"""The listener loop every transport shares: connect, subscribe, deliver, retry.

A transport supplies a *session*: a function that connects, subscribes,
calls ``connected()`` once the subscription is in place, then delivers
messages until the connection drops (it raises) or the listener stops (it
returns).  ``ListenerThread`` runs sessions forever with a capped backoff and
turns ``connected()`` into the agent's ``on_reconnect``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kaon.bus.base import ReconnectCallback

log = logging.getLogger(__name__)

Session = Callable[[Callable[[], None]], None]

BACKOFF_START = 0.1
BACKOFF_CAP = 2.0


class Backoff:
    """Delays 0.1, 0.2, 0.4 ... capped at ``cap`` seconds; ``reset()`` after a success."""

    def __init__(self, start: float = BACKOFF_START, cap: float = BACKOFF_CAP) -> None:
        self.start = start
        self.cap = cap
        self._next = start

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.start


def call_safely(what: str, fn: Callable[..., Any], *args: Any) -> None:
    """Run a user callback; its exception is logged, never kills the calling thread."""
    try:
        fn(*args)
    except Exception:
        log.exception("bus: %s failed", what)


class ListenerThread:
    """Runs ``session`` until ``stop()``, reconnecting with a capped backoff."""

    def __init__(self, name: str, session: Session, on_reconnect: ReconnectCallback | None) -> None:
        self.name = name
        self._session = session
        self._on_reconnect = on_reconnect
        self._stop = threading.Event()
        self._backoff = Backoff()
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to end; the caller must also wake a session blocked in I/O."""
        self._stop.set()

    def join(self, timeout: float = 5.0) -> None:
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _connected(self) -> None:
        self._backoff.reset()
        self._failures = 0
        if self._on_reconnect is not None:
            call_safely(f"{self.name}: on_reconnect", self._on_reconnect)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._session(self._connected)
            except Exception as e:
                if self._stop.is_set():
                    break
                # Log the first failure of a streak loudly and the retries
                # quietly: a broker that is down for an hour must not fill the log.
                self._failures += 1
                level = logging.WARNING if self._failures == 1 else logging.DEBUG
                log.log(level, "bus: %s lost its connection (%s); retrying", self.name, e)
            self._stop.wait(self._backoff.next())
