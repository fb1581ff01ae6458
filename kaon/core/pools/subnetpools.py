"""Subnet pools (``/v2.0/subnetpools``; subnet_allocation,
default-subnetpools, subnetpool-prefix-ops, rbac-subnetpool).

A pool is a set of prefixes subnets may be carved from
(:mod:`kaon.core.pools.prefix_alloc` does the carving). Its rules, Neutron's:

* the prefixes are canonicalised and merged; their IP version is the
  pool's; ``min_prefixlen`` <= ``default_prefixlen`` <= ``max_prefixlen``
  <= 32/128 (:func:`kaon.model.subnetpool.read`);
* an update may only grow the prefixes (``add_prefixes`` does the same);
  ``remove_prefixes`` may shrink them, but not under an allocated subnet;
* ``is_default`` (admins only) marks at most one pool per IP version, the
  one ``use_default_subnetpool`` takes;
* ``shared`` (admins, POST only) is a ``*`` RBAC entry, as for networks;
  visibility is own, shared with the caller, or everything for admins;
* a pool in an address scope must match its IP version and must not
  overlap the scope's other pools (``AddressScopePrefixConflict``); a pool
  whose scope the caller does not own (a shared scope) may only be changed
  by the scope's owner or an admin;
* a pool with subnets cannot be deleted (Neutron's ``SubnetPoolDeleteError``,
  a 400).

Concurrency: writes lock the pool's row (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite serialises writers), and so does every subnet
allocation from it, so bounds and prefixes never change under an
allocation. Association with a scope locks the scope's row, so two pools
joining one scope cannot both pass the overlap check.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import netaddr
from sqlalchemy import Connection, delete, insert, or_, select, update

from kaon import errors
from kaon.core import quotas, stdattrs
from kaon.core.access import policy, rbac
from kaon.core.context import Context
from kaon.core.list_query import ListQuery
from kaon.core.pools.address_scopes import AddressScopes, shared_filter, shared_ids
from kaon.core.visible_rows import VisibleRows
from kaon.db.core_tables import subnets
from kaon.db.locks import xact_lock
from kaon.db.pool_tables import address_scopes, addressscope_rbacs, subnetpool_rbacs, subnetpools
from kaon.errors import HTTPBadRequest
from kaon.model import rbac as rbac_model
from kaon.model import subnetpool as m
from kaon.model import validators as v
from kaon.model.rbac import SHARED, WILDCARD

Items = list[dict[str, Any]]  # (a service's own ``list`` method shadows the name for mypy)
PrefixList = dict[str, list[str]]

COLUMNS = {name: subnetpools.c[name] for name in (
    "id", "name", "description", "project_id", "ip_version", "default_prefixlen", "min_prefixlen",
    "max_prefixlen", "default_quota", "is_default", "address_scope_id", "created_at", "updated_at",
    "revision_number",
)}
BOUNDS = ("min_prefixlen", "max_prefixlen", "default_prefixlen")


def _subnet_projects(conn: Connection, pool_id: str) -> set[str]:
    """The projects with subnets from the pool: they depend on its being shared."""
    return set(conn.execute(select(subnets.c.project_id).distinct()
                            .where(subnets.c.subnetpool_id == pool_id)).scalars())


quotas.register("subnetpool", quotas.table_counter(subnetpools))
rbac.TYPES["subnetpool"] = rbac.ObjectType("subnetpool", "Subnetpool", subnetpool_rbacs, subnetpools)
rbac_model.ACTIONS["subnetpool"] = (SHARED,)
rbac.register_usage("subnetpool", SHARED, _subnet_projects)


def _scope_reaches_target(conn: Connection, pool: Any, action: str, target: str) -> None:
    """A pool in an address scope may be shared only with projects that can
    use the scope too (Neutron's subnetpool RBAC callback)."""
    if pool.address_scope_id is None:
        return
    owner = conn.execute(select(address_scopes.c.project_id)
                         .where(address_scopes.c.id == pool.address_scope_id)).scalar()
    if owner == target:
        return
    wanted = (WILDCARD,) if target == WILDCARD else (WILDCARD, target)
    if conn.execute(select(addressscope_rbacs.c.id).where(
            addressscope_rbacs.c.object_id == pool.address_scope_id, addressscope_rbacs.c.action == SHARED,
            addressscope_rbacs.c.target_project.in_(wanted)).limit(1)).first() is None:
        raise errors.InvalidInput(error_message=f"Failed to create RBAC policy on object {pool.id} because "
                                                f"target project {target} has no access to address scope "
                                                f"{pool.address_scope_id}")


rbac.register_grant_check("subnetpool", _scope_reaches_target)


_ROWS = VisibleRows(subnetpools, COLUMNS, lambda pool_id: errors.SubnetPoolNotFound(subnetpool_id=pool_id),
                    shared_by=subnetpool_rbacs)


def visible_clause(ctx: Context) -> Any:
    """Owned, or shared with everybody or with the caller's project."""
    return _ROWS.visible(ctx.project_id)


def allocated(conn: Connection, pool_id: str) -> netaddr.IPSet:
    """The prefixes of the pool that subnets hold."""
    return netaddr.IPSet(conn.execute(select(subnets.c.cidr).where(subnets.c.subnetpool_id == pool_id)).scalars())


def operation_prefixes(body: Any) -> list[str]:
    """The ``{"prefixes": [...]}`` body of add_prefixes/remove_prefixes."""
    if not isinstance(body, dict) or not body.get("prefixes") or not isinstance(body["prefixes"], list):
        raise HTTPBadRequest(msg="Request body contains invalid data")
    try:
        return [v.subnet_cidr(p) for p in body["prefixes"]]
    except v.InvalidValue as exc:
        raise errors.InvalidInput(error_message=f"Invalid input for prefixes. Reason: {exc}") from None


class SubnetPools:
    def __init__(self, scopes: AddressScopes, cfg: Any) -> None:
        self.scopes = scopes
        self.cfg = cfg

    # -- reads ---------------------------------------------------------
    def fetch_row(self, ctx: Context, conn: Connection, pool_id: str, lock: bool = False) -> Any:
        return _ROWS.fetch_row(ctx, conn, pool_id, lock)

    def writable_row(self, ctx: Context, conn: Connection, pool_id: str, action: str) -> Any:
        """Locked; 404 when the caller cannot see it, 403 when it is only shared with them."""
        row = self.fetch_row(ctx, conn, pool_id, lock=True)
        # "update"/"delete" or a full action name (add_prefixes, remove_prefixes).
        policy.enforce_owned(ctx, action if "_" in action else f"{action}_subnetpool", row.project_id)
        return row

    def get(self, ctx: Context, conn: Connection, pool_id: str) -> dict[str, Any]:
        return self._render(ctx, conn, [self.fetch_row(ctx, conn, pool_id)])[0]

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[Items, bool]:
        special = {"shared": lambda vals: shared_filter(subnetpool_rbacs, subnetpools, vals, ctx)}
        rows, more = _ROWS.page(ctx, conn, q, special)
        return self._render(ctx, conn, rows), more

    def _render(self, ctx: Context, conn: Connection, rows: Sequence[Any]) -> Items:
        ids = [r.id for r in rows]
        shared = shared_ids(conn, subnetpool_rbacs, ids, ctx.project_id)
        tag_map = stdattrs.tags_for(conn, ids)
        out = []
        for row in rows:
            item = stdattrs.render(row, tag_map.get(row.id, []))
            item.update(
                prefixes=list(row.prefixes), ip_version=row.ip_version,
                default_prefixlen=str(row.default_prefixlen), min_prefixlen=str(row.min_prefixlen),
                max_prefixlen=str(row.max_prefixlen), default_quota=row.default_quota,
                address_scope_id=row.address_scope_id, is_default=row.is_default, shared=row.id in shared,
            )
            out.append(item)
        return out

    # -- create --------------------------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        project = stdattrs.owner_project(ctx, values)
        quotas.check(conn, self.cfg, project, "subnetpool", 1)
        spec = m.read(values)
        row = stdattrs.new_row(project, values)
        if values.get("is_default"):
            self._check_default(conn, spec["ip_version"])
        scope_id = values.get("address_scope_id")
        self._check_scope(ctx, conn, row["id"], scope_id, spec, rescope=False)
        row.update(spec, default_quota=values.get("default_quota"), is_default=values.get("is_default", False),
                   address_scope_id=scope_id)
        conn.execute(insert(subnetpools).values(row))
        if values.get("shared"):
            conn.execute(insert(subnetpool_rbacs).values(
                id=stdattrs.new_id(), project_id=project, object_id=row["id"], action=SHARED,
                target_project=WILDCARD))
        return str(row["id"])

    def _check_default(self, conn: Connection, version: int) -> None:
        """At most one default pool per IP version. Only admins mark one, so
        the check is global; an advisory lock serialises two admins on
        PostgreSQL (SQLite serialises writers anyway)."""
        xact_lock(conn, f"default-subnetpool:{version}")
        if conn.execute(select(subnetpools.c.id).where(
                subnetpools.c.is_default.is_(True), subnetpools.c.ip_version == version)).first() is not None:
            raise errors.InvalidInput(error_message="A default subnetpool for this IP family has already been set. "
                                                    "Only one default may exist per IP family")

    def _check_scope(self, ctx: Context, conn: Connection, pool_id: str, scope_id: str | None,
                     spec: dict[str, Any], rescope: bool) -> None:
        """Neutron's _validate_address_scope_id. The scope's row is locked so
        that two pools joining it cannot both pass the overlap check."""
        if scope_id is None:
            return
        scope = self.scopes.fetch_row(ctx, conn, scope_id, lock=True)
        if scope.ip_version != spec["ip_version"]:
            raise m.IllegalSubnetPoolIpVersionAssociationToAddressScope(
                subnetpool_id=pool_id, address_scope_id=scope_id, ip_version=scope.ip_version)
        if rescope:
            self._check_rescope(conn, pool_id, spec["ip_version"])
        mine = netaddr.IPSet(spec["prefixes"])
        others = conn.execute(select(subnetpools.c.prefixes).where(
            subnetpools.c.address_scope_id == scope_id, subnetpools.c.id != pool_id)).scalars()
        if any(mine & netaddr.IPSet(prefixes) for prefixes in others):
            raise m.AddressScopePrefixConflict()

    @staticmethod
    def _check_rescope(conn: Connection, pool_id: str, version: int) -> None:
        """Moving a pool to another scope must not leave a network with
        subnets of one IP version in two scopes: every same-version subnet
        of the networks using the pool must come from the pool."""
        nets = select(subnets.c.network_id).where(subnets.c.subnetpool_id == pool_id)
        stray = conn.execute(select(subnets.c.id).where(
            subnets.c.network_id.in_(nets), subnets.c.ip_version == version,
            or_(subnets.c.subnetpool_id.is_(None), subnets.c.subnetpool_id != pool_id)).limit(1)).first()
        if stray is not None:
            raise m.NetworkAddressScopeAffinityError()

    # -- update / delete -----------------------------------------------
    def update(self, ctx: Context, conn: Connection, pool_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row = self.writable_row(ctx, conn, pool_id, "update")
        if check is not None:
            check(row.revision_number)
        self._apply(ctx, conn, row, changes)

    def _apply(self, ctx: Context, conn: Connection, row: Any, changes: dict[str, Any]) -> None:
        """An update of a locked pool row, checked in Neutron's order."""
        prefixes = list(row.prefixes)
        if "prefixes" in changes:
            if not netaddr.IPSet(prefixes).issubset(netaddr.IPSet(changes["prefixes"])):
                raise m.IllegalSubnetPoolPrefixUpdate(msg="Existing prefixes must be a subset of the new prefixes")
            prefixes = changes["prefixes"]
        spec = m.read({"prefixes": prefixes, **{k: changes.get(k, getattr(row, k)) for k in BOUNDS}})
        if changes.get("is_default") and not row.is_default:
            self._check_default(conn, spec["ip_version"])
        if row.address_scope_id is not None:
            self._check_may_change(ctx, conn, row)
        scope_id = changes.get("address_scope_id", row.address_scope_id)
        # Neutron re-checks a pool's network affinity on every update; kaon
        # only when the scope changes (an unchanged scope cannot break it).
        self._check_scope(ctx, conn, row.id, scope_id, spec,
                          rescope=scope_id != row.address_scope_id)
        out: dict[str, Any] = {k: changes[k] for k in ("name", "description", "default_quota", "is_default",
                                                       "address_scope_id") if k in changes}
        out.update(spec)
        conn.execute(update(subnetpools).where(subnetpools.c.id == row.id)
                     .values(stdattrs.bump(out, row.revision_number)))

    @staticmethod
    def _check_may_change(ctx: Context, conn: Connection, row: Any) -> None:
        """A pool in a scope the caller does not own (one shared with it)
        may be changed by the scope's owner or an admin only."""
        if ctx.is_admin:
            return
        owner = conn.execute(select(address_scopes.c.project_id)
                             .where(address_scopes.c.id == row.address_scope_id)).scalar()
        if owner != ctx.project_id:
            raise m.IllegalSubnetPoolUpdate(
                reason=f"subnetpool {row.id} cannot be updated when associated with shared address scope "
                       f"{row.address_scope_id}")

    def delete(self, ctx: Context, conn: Connection, pool_id: str, check: Any = None) -> None:
        row = self.writable_row(ctx, conn, pool_id, "delete")
        if check is not None:
            check(row.revision_number)
        # The pool's row lock orders this after (or before) any allocation.
        if conn.execute(select(subnets.c.id).where(subnets.c.subnetpool_id == pool_id).limit(1)).first():
            raise m.SubnetPoolDeleteError(reason="Subnet pool has existing allocations")
        conn.execute(delete(subnetpool_rbacs).where(subnetpool_rbacs.c.object_id == pool_id))
        conn.execute(delete(subnetpools).where(subnetpools.c.id == pool_id))
        stdattrs.delete_tags(conn, [pool_id])

    # -- subnetpool-prefix-ops -----------------------------------------
    def change_prefixes(self, ctx: Context, conn: Connection, pool_id: str, body: Any,
                        add: bool) -> PrefixList:
        """``PUT .../add_prefixes`` or ``.../remove_prefixes``: the pool's prefixes afterwards."""
        action = "add_prefixes" if add else "remove_prefixes"
        prefixes = operation_prefixes(body)
        row = self.writable_row(ctx, conn, pool_id, action)
        if add:
            self._apply(ctx, conn, row, {"prefixes": [*row.prefixes, *prefixes]})
        else:
            self._remove(conn, row, netaddr.IPSet(prefixes))
        return {"prefixes": list(conn.execute(select(subnetpools.c.prefixes)
                                              .where(subnetpools.c.id == pool_id)).scalar_one())}

    @staticmethod
    def _remove(conn: Connection, row: Any, removal: netaddr.IPSet) -> None:
        current = netaddr.IPSet(row.prefixes)
        if current.isdisjoint(removal):
            return  # nothing of it is in the pool: a no-op, as in Neutron
        if not allocated(conn, row.id).isdisjoint(removal):
            raise m.IllegalSubnetPoolPrefixUpdate(msg="One or more the prefixes to be removed is in use by a subnet")
        left = current - removal
        conn.execute(update(subnetpools).where(subnetpools.c.id == row.id).values(
            stdattrs.bump({"prefixes": m.compact(str(c) for c in left.iter_cidrs())}, row.revision_number)))
