"""Segmentation-ID bookkeeping shared by the flat, VLAN and tunnel drivers.

A taken ID is a row in ``ml2_segment_allocations``; a free ID is the absence
of one. Reserving is one ``INSERT ... ON CONFLICT DO NOTHING`` on the primary
key (a network create runs these on every request: prebuilt statements, two
of them for an allocation):

* On SQLite the caller's write transaction began with ``BEGIN IMMEDIATE``, so
  no other writer runs between our "first free ID" query and our INSERT.
* On PostgreSQL two transactions can both see ID 7 as free. Both INSERT; the
  second blocks on the primary key until the first commits, then inserts
  nothing (no error, the transaction goes on), and the loser moves past 7 and
  tries the next free ID, so neither request fails and no ID is given twice.
  No ``SELECT ... FOR UPDATE`` is needed: there is no row to lock for a free
  ID, and the primary key is the arbiter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    select,
)

from kaon.db.fast_insert import FastInsert
from kaon.db.ml2_tables import ml2_segment_allocations as alloc

NO_PHYSNET = ""  # tunnel types: a NULL could not take part in the primary key


def _key(network_type: str, physical_network: str | None) -> ColumnElement[bool]:
    return and_(alloc.c.network_type == network_type,
                alloc.c.physical_network == (physical_network or NO_PHYSNET))


_KEY = and_(alloc.c.network_type == bindparam("network_type"), alloc.c.physical_network == bindparam("physnet"))
_TAKEN = select(alloc.c.network_id).where(_KEY, alloc.c.segmentation_id == bindparam("ident"))
# The smallest free ID in [low, high]: low itself, else t + 1 for the
# smallest taken t >= low whose successor is not taken (one indexed query).
_nxt = alloc.alias("nxt")
_LOW = bindparam("low", type_=BigInteger)
_FIRST_FREE = select(case(
    (~exists().where(_KEY, alloc.c.segmentation_id == _LOW), _LOW),
    else_=select(func.min(alloc.c.segmentation_id + 1)).where(
        _KEY, alloc.c.segmentation_id >= _LOW, alloc.c.segmentation_id < bindparam("high", type_=BigInteger),
        ~exists().where(_nxt.c.network_type == alloc.c.network_type,
                        _nxt.c.physical_network == alloc.c.physical_network,
                        _nxt.c.segmentation_id == alloc.c.segmentation_id + 1)).scalar_subquery(),
))
_CLAIM = FastInsert(alloc, unique=("network_type", "physical_network", "segmentation_id"))


def _params(network_type: str, physical_network: str | None, **more: int) -> dict[str, Any]:
    return {"network_type": network_type, "physnet": physical_network or NO_PHYSNET, **more}


def is_taken(conn: Connection, network_type: str, physical_network: str | None, ident: int) -> bool:
    return conn.execute(_TAKEN, _params(network_type, physical_network, ident=ident)).first() is not None


def claim(conn: Connection, network_type: str, physical_network: str | None, ident: int,
          network_id: str) -> bool:
    """Take ``ident`` for ``network_id``; False if it is already taken (now or by a concurrent commit).

    Any other failure (say, network_id not in networks) is the caller's bug and raises.
    """
    row = {"network_type": network_type, "physical_network": physical_network or NO_PHYSNET,
           "segmentation_id": ident, "network_id": network_id}
    return _CLAIM.run(conn, row) == 1


def first_free(conn: Connection, network_type: str, physical_network: str | None, low: int,
               high: int) -> int | None:
    """The smallest ID in ``[low, high]`` without a row."""
    if low > high:
        return None
    found = conn.execute(_FIRST_FREE, _params(network_type, physical_network, low=low, high=high)).scalar()
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
