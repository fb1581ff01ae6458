"""The compiler as a server component: compile after changes, store, hint the hosts.

A pass reads the snapshot (kaon.core.agents.snapshot), projects it through the
sections (kaon.compiler, pure) into one typed intent per host
(kaon.model.intent), and stores the JSON form of those that changed with a
new generation (kaon.core.agents.generations).

``mark_dirty()`` is cheap and called after every write the API commits that
can move an intent, and after every agent report. One background thread
compiles; changes that arrive while it runs are folded into the next pass,
and passes start at most every ``MIN_INTERVAL`` seconds, so a burst of
writes costs a compile or two, not one each (the first write after a quiet
spell compiles at once); ``IDLE_INTERVAL`` while there is no host at all,
unless an agent reported. ``compile_now()`` is the synchronous form
(start-up, tests, ``wait``).

A compile is cheap when it has nothing to do:

* with no host at all (no agent, no ``host_intents`` row, no bound port)
  there is nothing to compile for: one statement, no write transaction;
* otherwise the intents are computed in a *read* transaction and compared
  with the stored digests; only when a host's intent changed is a write
  transaction taken (SQLite's write lock: holding it for the whole pass
  held up the API's writers on every pass). The intents computed in the
  read are stored unless another process stored intents in between, in
  which case they are computed again in the write transaction. That is
  safe because every write marks its own process's compiler dirty after
  it commits: a compile that read before a write is followed by one that
  reads after it, which either stores after ours (and wins) or finds ours
  stored since its read and recomputes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, exists, literal, or_, select

from kaon.compiler.l2_section import L2Section
from kaon.compiler.sections import Section, project
from kaon.core.agents import generations
from kaon.core.agents.snapshot import read_snapshot
from kaon.db.agent_tables import agents, port_binding_levels
from kaon.db.engine import read_txn, write_txn
from kaon.db.intent_tables import host_intents
from kaon.metrics import compiler as compiler_metrics
from kaon.ml2.binding import utcnow

LOG = logging.getLogger("kaon.compiler")

Notify = Callable[[str, dict[str, Any]], None]

# Passes start at most this often while writes keep coming (seconds).
MIN_INTERVAL = 0.01
# ... and this often while the last pass found no host at all: nothing
# consumes intents then, and a pass per burst of API writes took CPU (and
# the GIL) from the requests themselves. An agent's report, which is how
# hosts appear, is compiled for without this wait (``mark_dirty(urgent=True)``).
IDLE_INTERVAL = 0.1

# Anything to compile for? Every host comes from one of these tables: an
# agent (L3/DHCP sections, VTEPs), a stored intent, a bound port (L2, firewall).
_ANY_HOST = select(literal(1)).where(or_(exists().where(agents.c.id.is_not(None)),
                                         exists().where(host_intents.c.host.is_not(None)),
                                         exists().where(port_binding_levels.c.port_id.is_not(None))))


class Compiler:
    def __init__(self, engine: Engine, notify: Notify | None = None, sections: list[Section] | None = None) -> None:
        """``sections``: those beyond L2 (routers, DHCP, firewall), each built from the server's options."""
        self.engine = engine
        self.notify = notify
        self.sections: list[Section] = [L2Section(), *(sections or [])]
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one compile at a time in this process
        self._thread: threading.Thread | None = None
        self._idle = False  # the last pass found no host
        self._urgent = False
        self.compiles = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kaon-compiler", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def mark_dirty(self, urgent: bool = False) -> None:
        if urgent:
            self._urgent = True
        self._dirty.set()

    def compile_now(self) -> dict[str, int]:
        """Compile every host from the current state; ``{host: generation}`` of those that changed."""
        with self._lock:
            started = time.perf_counter()
            now = utcnow()
            changed: dict[str, int] = {}
            with read_txn(self.engine) as conn:
                self._idle = conn.execute(_ANY_HOST).first() is None
                if self._idle:
                    intents, seen = {}, {}
                else:
                    intents, seen = self._intents(conn), generations.current(conn)
            if generations.differs(intents, seen):
                with write_txn(self.engine) as conn:
                    current = generations.current(conn)
                    if current != seen:
                        # Another process stored intents since the read: its
                        # state may be newer than ours; compile again under the lock.
                        intents = self._intents(conn)
                    changed = generations.store(conn, intents, now, current)
            self.compiles += 1
            compiler_metrics.compile_pass(time.perf_counter() - started, len(changed))
        for host, generation in changed.items():
            self._hint(host, generation)
        if changed:
            LOG.debug("compiled: %s", changed)
        return changed

    def _intents(self, conn: Connection) -> generations.Digested:
        snap = read_snapshot(conn, generations.known_hosts(conn))
        return generations.digested(project(snap, self.sections))

    def _hint(self, host: str, generation: int) -> None:
        if self.notify is None:
            return
        try:
            self.notify(host, {"type": "hint", "host": host, "generation": generation})
        except Exception:  # a hint is only a hint: the agent's next fetch catches up
            LOG.exception("hint to host %s (generation %s) failed", host, generation)

    def _run(self) -> None:
        last = 0.0
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            interval = IDLE_INTERVAL if self._idle and not self._urgent else MIN_INTERVAL
            pause = last + interval - time.monotonic()
            if pause > 0:  # writes keep coming: let them gather
                self._sleep_unless_urgent(pause)
            self._dirty.clear()
            self._urgent = False
            last = time.monotonic()
            try:
                self.compile_now()
            except Exception:
                # Keep the work: try again shortly rather than lose the change.
                LOG.exception("compile failed; retrying")
                time.sleep(0.5)
                self._dirty.set()

    def _sleep_unless_urgent(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._urgent and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, MIN_INTERVAL))

    def wait_converged(self, timeout: float) -> tuple[bool, list[generations.HostState]]:
        """Compile, then wait until every host applied its current generation (or ``timeout``)."""
        self.compile_now()
        deadline = time.monotonic() + timeout
        while True:
            with read_txn(self.engine) as conn:
                states = generations.states(conn)
            if all(s.converged for s in states) or time.monotonic() >= deadline:
                return all(s.converged for s in states), states
            time.sleep(0.02)
