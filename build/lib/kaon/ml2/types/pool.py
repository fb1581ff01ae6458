"""Segmentation-ID bookkeeping shared by the flat, VLAN and tunnel drivers.

A taken ID is a row in ``ml2_segment_allocations``; a free ID is the absence
of one. Reserving is an INSERT inside a SAVEPOINT:

* On SQLite the caller's write transaction began with ``BEGIN IMMEDIATE``, so
  no other writer runs between our "first free ID" query and our INSERT.
* On PostgreSQL two transactions can both see ID 7 as free. Both INSERT; the
  second blocks on the primary key until the first commits, then fails with
  a unique violation. Only the SAVEPOINT is rolled back, and the loser moves
  past 7 and tries the next free ID, so neither request fails and no ID is
  given twice. No ``SELECT ... FOR UPDATE`` is needed: there is no row to lock
  for a free ID, and the primary key is the arbiter.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, func, insert, select
from sqlalchemy.exc import IntegrityError

from kaon.db.ml2_tables import ml2_segment_allocations as alloc

NO_PHYSNET = ""  # tunnel types: a NULL could not take part in the primary key


def _key(network_type: str, physical_network: str | None) -> ColumnElement[bool]:
    return and_(alloc.c.network_type == network_type,
                alloc.c.physical_network == (physical_network or NO_PHYSNET))


def is_taken(conn: Connection, network_type: str, physical_network: str | None, ident: int) -> bool:
    query = select(alloc.c.network_id).where(_key(network_type, physical_network),
                                             alloc.c.segmentation_id == ident)
    return conn.execute(query).first() is not None


def claim(conn: Connection, network_type: str, physical_network: str | None, ident: int,
          network_id: str) -> bool:
    """Take ``ident`` for ``network_id``; False if it is already taken (now or by a concurrent commit)."""
    if is_taken(conn, network_type, physical_network, ident):
        return False
    row = {"network_type": network_type, "physical_network": physical_network or NO_PHYSNET,
           "segmentation_id": ident, "network_id": network_id}
    try:
        with conn.begin_nested():
            conn.execute(insert(alloc).values(**row))
    except IntegrityError:
        # A concurrent transaction committed the same key after our check (PostgreSQL).
        # Anything else (say, network_id not in networks) is the caller's bug: re-raise.
        if is_taken(conn, network_type, physical_network, ident):
            return False
        raise
    return True


def first_free(conn: Connection, network_type: str, physical_network: str | None, low: int,
               high: int) -> int | None:
    """The smallest ID in ``[low, high]`` without a row, in two indexed queries."""
    if low > high:
        return None
    if not is_taken(conn, network_type, physical_network, low):
        return low
    # The smallest free ID above a taken ``low`` is t + 1 for the smallest
    # taken t >= low whose successor is not taken.
    nxt = alloc.alias("nxt")
    successor = alloc.c.segmentation_id + 1
    query = select(func.min(successor)).where(
        _key(network_type, physical_network),
        alloc.c.segmentation_id >= low,
        alloc.c.segmentation_id < high,
        ~exists().where(nxt.c.network_type == alloc.c.network_type,
                        nxt.c.physical_network == alloc.c.physical_network,
                        nxt.c.segmentation_id == successor),
    )
    found = conn.execute(query).scalar()
    return int(found) if found is not None else None


def allocate(conn: Connection, network_type: str, physical_network: str | None,
             ranges: tuple[tuple[int, int], ...], network_id: str) -> int | None:
    """Take the first free ID of ``ranges`` (in their configured order); None when all are taken."""
    for low, high in ranges:
        floor = low
        while (candidate := first_free(conn, network_type, physical_network, floor, high)) is not None:
            if claim(conn, network_type, physical_network, candidate, network_id):
                return candidate
            floor = candidate + 1  # lost a race for it; whatever won holds it now
    return None


def release(conn: Connection, network_type: str, physical_network: str | None, ident: int) -> None:
    conn.execute(delete(alloc).where(_key(network_type, physical_network), alloc.c.segmentation_id == ident))


def release_network(conn: Connection, network_id: str) -> None:
    """Drop every ID ``network_id`` holds, including those of types no longer configured."""
    conn.execute(delete(alloc).where(alloc.c.network_id == network_id))
