"""A new subnet's CIDR from a subnet pool (Neutron's SubnetAllocator), and
the network/pool affinity rules every new subnet obeys.

:func:`from_pool` runs inside the subnet create transaction, before the
usual CIDR checks of :mod:`kaon.core.l2.subnets`:

* ``subnetpool_id``, or ``use_default_subnetpool`` (the default pool of the
  subnet's IP version that the caller can see), names the pool; with
  neither, the subnet takes no pool and only the affinity rules apply;
* without a ``cidr`` the subnet gets ``prefixlen`` (else the pool's
  ``default_prefixlen``) bits: the first prefix of the *smallest* free
  block that can hold it (best fit, Neutron's order), so big blocks stay
  whole; with a ``cidr`` the CIDR must lie in the pool and be free;
* the prefix length must be within the pool's min/max; the pool's
  ``default_quota`` caps the addresses (in /32s or /64s) a project holds
  from it;
* all subnets of one IP version on a network come from one pool, or (with
  address scopes) from pools of one scope.

Concurrency: the pool's row is read ``FOR UPDATE`` (PostgreSQL; SQLite
serialises writers), so two allocations from one pool are serialised and
never pick the same free block. The lock is held to the end of the subnet
create transaction, after the subnet row that takes the prefix is written.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import netaddr
from sqlalchemy import Connection, bindparam, select

from kaon import errors
from kaon.core.context import Context
from kaon.core.pools.subnetpools import allocated, visible_clause
from kaon.db.core_tables import subnets
from kaon.db.pool_tables import subnetpools
from kaon.model import subnetpool as m


def _bad(msg: str) -> errors.KaonError:
    return errors.BadRequest(resource="subnets", msg=msg)


def from_pool(ctx: Context, conn: Connection, net: Any, project: str, values: dict[str, Any],
              version: int) -> str | None:
    """The CIDR the new subnet of ``project`` takes from a pool, or None when
    it takes none. Records the pool it used as ``values["subnetpool_id"]``
    (``use_default_subnetpool`` resolves to one)."""
    cidr = values.get("cidr")
    if cidr and "prefixlen" in values:
        raise _bad("cidr and prefixlen must not be supplied together")
    pool = _requested_pool(ctx, conn, values, version)
    if pool is None:
        if not cidr and "prefixlen" in values:
            raise _bad("a subnetpool must be specified in the absence of a cidr")
        _check_affinity(conn, net.id, version, None)
        return None
    values["subnetpool_id"] = pool.id
    if pool.ip_version != version:
        raise _bad(f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} subnet pool")
    if not cidr and values.get("allocation_pools") is not None:
        raise _bad("allocation_pools allowed only for specific subnet requests.")
    if cidr and netaddr.IPNetwork(cidr).version != version:
        raise errors.InvalidInput(error_message=f"cidr '{cidr}' does not match the ip_version '{version}'")
    prefixlen = netaddr.IPNetwork(cidr).prefixlen if cidr else values.get("prefixlen", pool.default_prefixlen)
    if prefixlen > pool.max_prefixlen:
        raise m.MaxPrefixSubnetAllocationError(prefixlen=prefixlen, max_prefixlen=pool.max_prefixlen)
    if prefixlen < pool.min_prefixlen:
        raise m.MinPrefixSubnetAllocationError(prefixlen=prefixlen, min_prefixlen=pool.min_prefixlen)
    _check_quota(conn, pool, project, prefixlen)
    free = netaddr.IPSet(pool.prefixes) - allocated(conn, pool.id)
    chosen = specific(free, cidr) if cidr else first_fit(free, prefixlen)
    _check_affinity(conn, net.id, version, pool)
    return chosen


def _requested_pool(ctx: Context, conn: Connection, values: dict[str, Any], version: int) -> Any:
    """The pool row, locked, or None."""
    pool_id, use_default = values.get("subnetpool_id"), values.get("use_default_subnetpool")
    if pool_id and use_default:
        raise _bad("subnetpool_id and use_default_subnetpool cannot both be specified")
    if not pool_id and not use_default:
        return None
    stmt = select(subnetpools)
    if not ctx.is_admin:
        stmt = stmt.where(visible_clause(ctx))
    if pool_id:
        row = conn.execute(stmt.where(subnetpools.c.id == pool_id).with_for_update()).first()
        if row is None:
            raise errors.SubnetPoolNotFound(subnetpool_id=pool_id)
        return row
    row = conn.execute(stmt.where(subnetpools.c.is_default.is_(True), subnetpools.c.ip_version == version)
                       .order_by(subnetpools.c.created_at).limit(1).with_for_update()).first()
    if row is None:
        raise _bad(f"No default subnetpool found for IPv{version}")
    return row


_POOLS_OF_NETWORK = select(subnets.c.subnetpool_id).where(
    subnets.c.network_id == bindparam("net_id"), subnets.c.ip_version == bindparam("version"))


def _check_affinity(conn: Connection, net_id: str, version: int, pool: Any) -> None:
    """Neutron's _validate_network_subnetpools: a network's subnets of one IP
    version share one pool, or all belong to one address scope."""
    same = conn.execute(_POOLS_OF_NETWORK, {"net_id": net_id, "version": version}).scalars().all()
    used = {p for p in same if p is not None}
    scope = None
    if used:
        scope = conn.execute(select(subnetpools.c.address_scope_id).where(
            subnetpools.c.id.in_(used), subnetpools.c.address_scope_id.is_not(None)).limit(1)).scalar()
    if scope is not None and pool is not None and pool.address_scope_id != scope:
        raise m.NetworkAddressScopeAffinityError()
    for pool_id in same:
        if pool is None and pool_id is not None:
            raise m.NetworkSubnetPoolAffinityError()
        if pool is not None and pool_id != pool.id and scope is None:
            raise m.NetworkSubnetPoolAffinityError()


def _check_quota(conn: Connection, pool: Any, project: str, prefixlen: int) -> None:
    """The pool's default_quota: addresses per project, in /32s (IPv4) or
    /64s (IPv6). Neutron counts the pool owner's subnets here (a slip); kaon
    counts those of the project the subnet is for."""
    if not pool.default_quota:
        return
    unit = m.QUOTA_UNIT[pool.ip_version]
    held = conn.execute(select(subnets.c.cidr).where(
        subnets.c.subnetpool_id == pool.id, subnets.c.project_id == project)).scalars()
    used = sum(Fraction(2) ** (unit - netaddr.IPNetwork(c).prefixlen) for c in held)
    if used + Fraction(2) ** (unit - prefixlen) > pool.default_quota:
        raise m.SubnetPoolQuotaExceeded()


def first_fit(free: netaddr.IPSet, prefixlen: int) -> str:
    """The first /prefixlen of the smallest free block that holds one
    (lowest address among blocks of one size)."""
    blocks = sorted(free.iter_cidrs(), key=lambda c: (-c.prefixlen, c.first))
    for block in blocks:
        if block.prefixlen <= prefixlen:
            return str(next(block.subnet(prefixlen)))
    raise m.SubnetAllocationError(reason=f"Insufficient prefix space to allocate subnet size /{prefixlen}")


def specific(free: netaddr.IPSet, cidr: str) -> str:
    if netaddr.IPNetwork(cidr) in free:
        return cidr
    raise m.SubnetAllocationError(reason="Cannot allocate requested subnet from the available set of prefixes")
