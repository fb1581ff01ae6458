"""Store per-host intents; a host's generation moves only when its content did.

Runs in the compiler's write transaction, so two server processes compiling
at once are serialised by the database (BEGIN IMMEDIATE on SQLite, the row
locks of the UPDATEs on PostgreSQL) and the generation never goes back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from kaon.db.intent_tables import host_intents
from kaon.model.intent import HostIntent


@dataclass(frozen=True)
class HostState:
    host: str
    generation: int
    applied_generation: int
    compiled_at: dt.datetime | None
    applied_at: dt.datetime | None

    @property
    def converged(self) -> bool:
        return self.applied_generation >= self.generation


def known_hosts(conn: Connection) -> frozenset[str]:
    return frozenset(conn.execute(select(host_intents.c.host)).scalars())


Current = dict[str, tuple[int, str]]  # host -> (generation, digest)


def current(conn: Connection) -> Current:
    return {r.host: (r.generation, r.digest) for r in
            conn.execute(select(host_intents.c.host, host_intents.c.generation, host_intents.c.digest))}


Digested = dict[str, tuple[HostIntent, str]]  # host -> (intent, its digest)


def digested(intents: dict[str, HostIntent]) -> Digested:
    return {host: (intent, intent.digest()) for host, intent in intents.items()}


def differs(intents: Digested, stored: Current) -> bool:
    """Whether storing ``intents`` over ``stored`` would change anything."""
    return any(d != stored.get(host, (0, None))[1] for host, (_, d) in intents.items())


def store(conn: Connection, intents: Digested, now: dt.datetime,
          stored: Current | None = None) -> dict[str, int]:
    """Write the intents that changed; ``{host: new generation}`` for those hosts.
    ``stored``: :func:`current`, if just read in this transaction."""
    current_ = current(conn) if stored is None else stored
    changed: dict[str, int] = {}
    for host, (intent, new_digest) in intents.items():
        generation, old_digest = current_.get(host, (0, None))
        if new_digest == old_digest:
            continue
        generation += 1
        values = {"generation": generation, "digest": new_digest, "intent": intent.to_json(), "compiled_at": now}
        if host in current_:
            conn.execute(update(host_intents).where(host_intents.c.host == host).values(values))
        else:
            conn.execute(insert(host_intents).values(host=host, applied_generation=0, **values))
        changed[host] = generation
    return changed


def fetch(conn: Connection, host: str, known_generation: int | None) -> dict[str, Any]:
    """What ``get_intent`` answers: the intent, or ``None`` when the caller has it already."""
    row = conn.execute(select(host_intents.c.generation, host_intents.c.intent)
                       .where(host_intents.c.host == host)).first()
    if row is None:
        # A host nothing was ever compiled for: generation 0 is "nothing to do".
        empty = HostIntent(host).to_json()
        return {"generation": 0, "intent": None if known_generation == 0 else empty}
    if known_generation == row.generation:
        return {"generation": row.generation, "intent": None}
    return {"generation": row.generation, "intent": row.intent}


def mark_applied(conn: Connection, host: str, generation: int, now: dt.datetime) -> None:
    conn.execute(update(host_intents).where(host_intents.c.host == host,
                                            host_intents.c.applied_generation < generation)
                 .values(applied_generation=generation, applied_at=now))


def states(conn: Connection) -> list[HostState]:
    rows = conn.execute(select(host_intents.c.host, host_intents.c.generation,
                               host_intents.c.applied_generation, host_intents.c.compiled_at,
                               host_intents.c.applied_at).order_by(host_intents.c.host))
    return [HostState(r.host, r.generation, r.applied_generation, r.compiled_at, r.applied_at) for r in rows]
