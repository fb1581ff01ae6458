"""Address scopes (``/v2.0/address-scopes``): a named IP space that subnet
pools join, so that addresses from pools of one scope are known not to
overlap (a router routes between subnets of one scope without NAT).

Who may do what (Neutron's policy): the owner (or an admin) reads, renames
and deletes; ``shared`` is set by admins only, through POST/PUT or an RBAC
policy, and a shared scope cannot be unshared (``AddressScopeUpdateError``);
a project the scope is shared with may read it and put its subnet pools in
it, and gets 403 on writes; everybody else gets 404.

A scope is in use while subnet pools reference it (``AddressScopeInUse``).
A network's ``ipv4_address_scope``/``ipv6_address_scope`` are the scopes of
the pools its subnets came from (:func:`network_scopes`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, and_, delete, exists, insert, select, update

from kaon.core import stdattrs
from kaon.core.access import policy, rbac
from kaon.core.context import Context
from kaon.core.list_query import ListQuery
from kaon.core.visible_rows import VisibleRows
from kaon.db.core_tables import subnets
from kaon.db.pool_tables import address_scopes, addressscope_rbacs, subnetpools
from kaon.model import address_scope as m
from kaon.model import rbac as rbac_model
from kaon.model.rbac import SHARED, WILDCARD

Items = list[dict[str, Any]]  # (a service's own ``list`` method shadows the name for mypy)

COLUMNS = {name: address_scopes.c[name] for name in ("id", "name", "project_id", "ip_version")}


def _pool_projects(conn: Connection, scope_id: str) -> set[str]:
    """The projects whose subnet pools are in the scope: they depend on its being shared."""
    return set(conn.execute(select(subnetpools.c.project_id).distinct()
                            .where(subnetpools.c.address_scope_id == scope_id)).scalars())


rbac.TYPES["address_scope"] = rbac.ObjectType("address_scope", "Address scope", addressscope_rbacs, address_scopes)
rbac_model.ACTIONS["address_scope"] = (SHARED,)
rbac.register_usage("address_scope", SHARED, _pool_projects)


_ROWS = VisibleRows(address_scopes, COLUMNS, lambda scope_id: m.AddressScopeNotFound(address_scope_id=scope_id),
                    shared_by=addressscope_rbacs)


def network_scopes(conn: Connection, net_ids: Sequence[str]) -> dict[str, dict[int, str]]:
    """network id -> {ip_version: address scope id} from the pools its
    subnets were allocated from. (A network's subnets of one IP version all
    share one scope: kaon.core.pools.prefix_alloc enforces it.)"""
    out: dict[str, dict[int, str]] = {}
    for start in range(0, len(net_ids), 900):
        chunk = net_ids[start : start + 900]
        rows = conn.execute(
            select(subnets.c.network_id, subnetpools.c.ip_version, subnetpools.c.address_scope_id)
            .join(subnetpools, subnetpools.c.id == subnets.c.subnetpool_id)
            .where(subnets.c.network_id.in_(chunk), subnetpools.c.address_scope_id.is_not(None)))
        for net_id, version, scope_id in rows:
            out.setdefault(net_id, {})[version] = scope_id
    return out


class AddressScopes:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    # -- reads ---------------------------------------------------------
    def fetch_row(self, ctx: Context, conn: Connection, scope_id: str, lock: bool = False) -> Any:
        """The scope if the caller may see it (else AddressScopeNotFound).
        ``lock`` takes its row lock (PostgreSQL), which serialises the
        checks that pools of one scope do not overlap."""
        return _ROWS.fetch_row(ctx, conn, scope_id, lock)

    def writable_row(self, ctx: Context, conn: Connection, scope_id: str, action: str) -> Any:
        """404 when the caller cannot see it, 403 when it is only shared with them."""
        row = self.fetch_row(ctx, conn, scope_id, lock=True)
        policy.enforce_owned(ctx, f"{action}_address_scope", row.project_id)
        return row

    def get(self, ctx: Context, conn: Connection, scope_id: str) -> dict[str, Any]:
        return self._render(ctx, conn, [self.fetch_row(ctx, conn, scope_id)])[0]

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[Items, bool]:
        special = {"shared": lambda vals: shared_filter(addressscope_rbacs, address_scopes, vals, ctx)}
        rows, more = _ROWS.page(ctx, conn, q, special)
        return self._render(ctx, conn, rows), more

    def _render(self, ctx: Context, conn: Connection, rows: Sequence[Any]) -> Items:
        shared = shared_ids(conn, addressscope_rbacs, [r.id for r in rows], ctx.project_id)
        return [{"id": r.id, "name": r.name, "tenant_id": r.project_id, "project_id": r.project_id,
                 "shared": r.id in shared, "ip_version": r.ip_version} for r in rows]

    # -- writes --------------------------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        project = stdattrs.owner_project(ctx, values)
        scope_id = stdattrs.new_id()
        conn.execute(insert(address_scopes).values(id=scope_id, project_id=project, name=values.get("name", ""),
                                                   ip_version=values["ip_version"]))
        if values.get("shared"):
            _grant(conn, scope_id, project)
        return scope_id

    def update(self, ctx: Context, conn: Connection, scope_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row = self.writable_row(ctx, conn, scope_id, "update")
        if "shared" in changes:
            is_shared = scope_id in shared_ids(conn, addressscope_rbacs, [scope_id], ctx.project_id)
            if is_shared and not changes["shared"]:
                raise m.AddressScopeUpdateError(address_scope_id=scope_id,
                                                reason="Shared address scope can't be unshared")
            if changes["shared"] and not _has_wildcard(conn, scope_id):
                _grant(conn, scope_id, row.project_id)
        if "name" in changes:
            conn.execute(update(address_scopes).where(address_scopes.c.id == scope_id)
                         .values(name=changes["name"]))

    def delete(self, ctx: Context, conn: Connection, scope_id: str, check: Any = None) -> None:
        self.writable_row(ctx, conn, scope_id, "delete")
        # The row lock taken above makes a concurrent association of a pool
        # (which locks the scope too) either visible here or wait for us.
        if conn.execute(select(subnetpools.c.id).where(subnetpools.c.address_scope_id == scope_id)
                        .limit(1)).first() is not None:
            raise m.AddressScopeInUse(address_scope_id=scope_id)
        conn.execute(delete(addressscope_rbacs).where(addressscope_rbacs.c.object_id == scope_id))
        conn.execute(delete(address_scopes).where(address_scopes.c.id == scope_id))


def _grant(conn: Connection, scope_id: str, project: str) -> None:
    conn.execute(insert(addressscope_rbacs).values(id=stdattrs.new_id(), project_id=project, object_id=scope_id,
                                                   action=SHARED, target_project=WILDCARD))


def _has_wildcard(conn: Connection, scope_id: str) -> bool:
    return conn.execute(select(addressscope_rbacs.c.id).where(
        addressscope_rbacs.c.object_id == scope_id, addressscope_rbacs.c.action == SHARED,
        addressscope_rbacs.c.target_project == WILDCARD)).first() is not None


def shared_ids(conn: Connection, rbacs: Table, ids: Iterable[str], project: str) -> set[str]:
    """Which of ``ids`` the RBAC table ``rbacs`` shares with ``project`` (or everybody)."""
    ids = list(ids)
    out: set[str] = set()
    for start in range(0, len(ids), 900):
        out.update(conn.execute(select(rbacs.c.object_id).where(
            rbacs.c.action == SHARED, rbacs.c.target_project.in_((WILDCARD, project)),
            rbacs.c.object_id.in_(ids[start : start + 900]))).scalars())
    return out


def shared_filter(rbacs: Table, objects: Table, values: list[Any], ctx: Context) -> Any:
    """The ``?shared=`` filter: shared with the caller's project, or not."""
    granted = exists().where(and_(rbacs.c.object_id == objects.c.id, rbacs.c.action == SHARED,
                                  rbacs.c.target_project.in_((WILDCARD, ctx.project_id))))
    wanted = set(values)
    if wanted == {True}:
        return granted
    if wanted == {False}:
        return ~granted
    return objects.c.id.is_not(None)
