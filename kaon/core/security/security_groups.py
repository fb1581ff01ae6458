"""Security groups: visibility (own, shared through RBAC, everything for
admins), create from the template, the rules for the default group, and
which groups a port gets.

Who may do what (Neutron's policy): the owner (or an admin) reads,
updates and deletes; a project a group is shared with (an
``access_as_shared`` RBAC entry for it or for ``*``) may read it and put
ports in it, and gets 403 on writes; everybody else gets 404.

Port rules (``port_security`` / ``security-group`` extensions):

* a port whose device_owner starts with ``network:`` (DHCP, router
  interfaces and gateways, floating IPs ...) is trusted and has no groups,
  whatever the request says;
* a port created without ``security_groups`` gets its project's default
  group when port security is on, none when it is off;
* named groups must exist and be usable by the port's project (owned or
  shared with it) or the request fails with ``SecurityGroupNotFound``;
* port security off together with groups is refused by
  :func:`kaon.core.l2.port_extras.check_port_security`.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, exists, or_, select, update

from kaon import errors
from kaon.core import quotas, stdattrs
from kaon.core.access import policy
from kaon.core.context import Context
from kaon.core.list_query import ListQuery
from kaon.core.query import fetch_page, where_filters
from kaon.core.security import default_sg
from kaon.core.security.sg_rules import render_rule, render_rules
from kaon.db.core_tables import port_security_groups
from kaon.db.sg_tables import (
    default_security_groups,
    security_group_rules,
    security_groups,
    securitygroup_rbacs,
)
from kaon.model import security_group as m
from kaon.model.rbac import SHARED, WILDCARD

Items = list[dict[str, Any]]  # (a service's own ``list`` method shadows the name for mypy)

TRUSTED_PREFIX = "network:"

SecurityGroupConflict = errors.define(
    "SecurityGroupConflict", errors.Conflict, "Error {reason} while attempting the operation.")

COLUMNS = {name: security_groups.c[name] for name in (
    "id", "name", "description", "project_id", "stateful", "created_at", "updated_at", "revision_number",
)}

quotas.register("security_group", quotas.table_counter(security_groups))
quotas.register("security_group_rule", quotas.table_counter(security_group_rules))


def shared_with(project: str) -> Any:
    """Ids of the groups shared with ``project`` (or with everybody)."""
    return select(securitygroup_rbacs.c.object_id).where(
        securitygroup_rbacs.c.action == SHARED, securitygroup_rbacs.c.target_project.in_((WILDCARD, project)))


def visible_clause(ctx: Context) -> Any:
    return or_(security_groups.c.project_id == ctx.project_id, security_groups.c.id.in_(shared_with(ctx.project_id)))


# Prebuilt (building a statement costs more than running it): a group by id,
# as an admin sees it and as a project does; with or without whether it is a
# default group.
_SHARED_WITH_PARAM = select(securitygroup_rbacs.c.object_id).where(
    securitygroup_rbacs.c.action == SHARED,
    or_(securitygroup_rbacs.c.target_project == WILDCARD, securitygroup_rbacs.c.target_project == bindparam("project")))
_BY_ID = select(security_groups).where(security_groups.c.id == bindparam("sg_id"))
_VISIBLE_BY_ID = _BY_ID.where(or_(security_groups.c.project_id == bindparam("project"),
                                  security_groups.c.id.in_(_SHARED_WITH_PARAM)))
_IS_DEFAULT = exists().where(default_security_groups.c.security_group_id == security_groups.c.id).label("is_default")
_BY_ID_DEFAULT = _BY_ID.add_columns(_IS_DEFAULT)
_VISIBLE_BY_ID_DEFAULT = _VISIBLE_BY_ID.add_columns(_IS_DEFAULT)


def is_default(conn: Connection, sg_id: str) -> bool:
    return conn.execute(select(default_security_groups.c.project_id)
                        .where(default_security_groups.c.security_group_id == sg_id)).first() is not None


class SecurityGroups:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    # -- reads ---------------------------------------------------------
    def fetch_row(self, ctx: Context, conn: Connection, sg_id: str) -> Any:
        stmt = _BY_ID if ctx.is_admin else _VISIBLE_BY_ID
        row = conn.execute(stmt, {"sg_id": sg_id, "project": ctx.project_id}).first()
        if row is None:
            raise m.SecurityGroupNotFound(id=sg_id)
        return row

    def fetch_with_default(self, ctx: Context, conn: Connection, sg_id: str) -> Any:
        """:meth:`fetch_row` plus ``is_default`` (whether it is its project's default group)."""
        stmt = _BY_ID_DEFAULT if ctx.is_admin else _VISIBLE_BY_ID_DEFAULT
        row = conn.execute(stmt, {"sg_id": sg_id, "project": ctx.project_id}).first()
        if row is None:
            raise m.SecurityGroupNotFound(id=sg_id)
        return row

    def writable_row(self, ctx: Context, conn: Connection, sg_id: str, action: str) -> Any:
        """404 when the caller cannot see it, 403 when it is only shared with them."""
        row = self.fetch_row(ctx, conn, sg_id)
        policy.enforce_owned(ctx, f"{action}_security_group", row.project_id)
        return row

    def get(self, ctx: Context, conn: Connection, sg_id: str) -> dict[str, Any]:
        return self._render(ctx, conn, [self.fetch_row(ctx, conn, sg_id)])[0]

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[Items, bool]:
        stmt = select(security_groups)
        if not ctx.is_admin:
            stmt = stmt.where(visible_clause(ctx))
        special = {"shared": lambda vals: _shared_filter(vals, ctx)}
        for clause in where_filters(q, COLUMNS, special, security_groups.c.id):
            stmt = stmt.where(clause)
        rows, more = fetch_page(conn, stmt, q, COLUMNS, security_groups.c.id, security_groups)
        return self._render(ctx, conn, rows), more

    def _render(self, ctx: Context, conn: Connection, rows: Sequence[Any]) -> Items:
        if not rows:
            return []
        ids = [r.id for r in rows]
        shared: set[str] = set()
        rules: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            shared.update(conn.execute(shared_with(ctx.project_id).where(
                securitygroup_rbacs.c.object_id.in_(chunk))).scalars())
            rule_rows = conn.execute(select(security_group_rules).where(
                security_group_rules.c.security_group_id.in_(chunk))).all()
            for rule in render_rules(conn, rule_rows):
                rules.setdefault(rule["security_group_id"], []).append(rule)
        tag_map = stdattrs.tags_for(conn, ids)
        out = []
        for row in rows:
            item = stdattrs.render(row, tag_map.get(row.id, []))
            item.update(stateful=row.stateful, shared=row.id in shared,
                        security_group_rules=rules.get(row.id, []))
            out.append(item)
        return out

    # -- writes --------------------------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        return str(self.create_item(ctx, conn, values)["id"])

    def create_item(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
        """Create a group (and its template rules); the group as :meth:`get`
        would show it, rendered from what was inserted: a new group has no
        tags, is shared with nobody and is not a default group."""
        project = stdattrs.owner_project(ctx, values)
        quotas.check(conn, self.cfg, project, "security_group", 1)
        default_sg.ensure(conn, project)
        template = default_sg.template_rules(conn, default=False)
        if template:  # the new group's own rules count against the rule quota
            quotas.check(conn, self.cfg, project, "security_group_rule", len(template))
        row, rules = default_sg.insert_group(conn, project, values, rules=template)
        item = stdattrs.render(SimpleNamespace(**row), [])
        item.update(stateful=row["stateful"], shared=False,
                    security_group_rules=[render_rule(r, False) for r in rules])
        return item

    def update(self, ctx: Context, conn: Connection, sg_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row = self.writable_row(ctx, conn, sg_id, "update")
        if check is not None:
            check(row.revision_number)
        if "name" in changes and is_default(conn, sg_id):
            raise m.SecurityGroupCannotUpdateDefault()
        if "stateful" in changes and changes["stateful"] != row.stateful and _bound(conn, sg_id):
            raise m.SecurityGroupInUse(id=sg_id, reason="in use")
        plain: dict[str, Any] = {k: changes[k] for k in ("name", "description", "stateful") if k in changes}
        conn.execute(update(security_groups).where(security_groups.c.id == sg_id)
                     .values(stdattrs.bump(plain, row.revision_number)))

    def delete(self, ctx: Context, conn: Connection, sg_id: str, check: Any = None) -> None:
        row = self.writable_row(ctx, conn, sg_id, "delete")
        if check is not None:
            check(row.revision_number)
        # Race: a port being bound to this group in another transaction.
        # Binding takes a share lock on the group row (check_usable), so
        # this exclusive lock waits for it and the in-use check below then
        # sees the binding (PostgreSQL; SQLite serialises writers anyway).
        conn.execute(select(security_groups.c.id).where(security_groups.c.id == sg_id).with_for_update())
        if _bound(conn, sg_id):
            raise m.SecurityGroupInUse(id=sg_id, reason="in use")
        if not ctx.is_admin and is_default(conn, sg_id):
            raise m.SecurityGroupCannotRemoveDefault()
        # Rules of this group and rules elsewhere that name it as their
        # remote group go with it (foreign keys, ON DELETE CASCADE), as do
        # its RBAC entries and its "default" mark.
        stdattrs.delete_tags(conn, [sg_id])
        conn.execute(delete(security_groups).where(security_groups.c.id == sg_id))


def _bound(conn: Connection, sg_id: str) -> bool:
    return conn.execute(select(port_security_groups.c.port_id)
                        .where(port_security_groups.c.security_group_id == sg_id).limit(1)).first() is not None


def _shared_filter(values: list[Any], ctx: Context) -> Any:
    granted = exists().where(and_(
        securitygroup_rbacs.c.object_id == security_groups.c.id, securitygroup_rbacs.c.action == SHARED,
        securitygroup_rbacs.c.target_project.in_((WILDCARD, ctx.project_id))))
    wanted = set(values)
    if wanted == {True}:
        return granted
    if wanted == {False}:
        return ~granted
    return security_groups.c.id.is_not(None)


# -- ports ------------------------------------------------------------------
def check_usable(ctx: Context, conn: Connection, project: str, sg_ids: list[str]) -> None:
    """Every group exists and the port's project owns it or has it shared."""
    wanted = list(dict.fromkeys(sg_ids))
    # FOR SHARE: a concurrent delete of the group waits for this port (see delete).
    stmt = select(security_groups.c.id).where(security_groups.c.id.in_(wanted)).with_for_update(read=True)
    if not ctx.is_admin and project:
        stmt = stmt.where(or_(security_groups.c.project_id == project,
                              security_groups.c.id.in_(shared_with(project))))
    found = set(conn.execute(stmt).scalars())
    missing = [sg for sg in wanted if sg not in found]
    if missing:
        raise m.SecurityGroupNotFound(id=", ".join(missing))


def check_same_statefulness(conn: Connection, group_ids: list[str]) -> None:
    """A port's groups are all stateful or all stateless (Neutron)."""
    if len(group_ids) < 2:
        return
    kinds = set(conn.execute(select(security_groups.c.stateful)
                             .where(security_groups.c.id.in_(group_ids)).distinct()).scalars())
    if len(kinds) > 1:
        raise SecurityGroupConflict(reason="Cannot apply both stateful and stateless security groups on the "
                                           "same port at the same time")


def groups_for_new_port(ctx: Context, conn: Connection, project: str, device_owner: str,
                        requested: list[str] | None, port_security: bool,
                        memo: dict[str, str] | None = None) -> list[str]:
    """The groups a new port is bound to (see the module docstring).
    ``memo``: project -> default group id, shared by the ports of one bulk create."""
    default_id = None
    if default_sg.may_ensure(ctx, project):
        default_id = memo.get(project) if memo is not None else None
        if default_id is None:
            default_id = default_sg.ensure(conn, project)
            if memo is not None:
                memo[project] = default_id
    if device_owner.startswith(TRUSTED_PREFIX):
        return []
    if requested is None:
        return [default_id] if port_security and default_id else []
    check_usable(ctx, conn, project, requested)
    check_same_statefulness(conn, requested)
    return list(dict.fromkeys(requested))


def groups_for_port_update(ctx: Context, conn: Connection, project: str, device_owner: str,
                           requested: list[str] | None) -> list[str]:
    """The groups a port is bound to after an update that names them
    (``None`` or ``[]`` clears them)."""
    if not requested or device_owner.startswith(TRUSTED_PREFIX):
        return []
    check_usable(ctx, conn, project, requested)
    check_same_statefulness(conn, requested)
    return list(dict.fromkeys(requested))


def bound_groups(conn: Connection, port_id: str) -> list[str]:
    return list(conn.execute(select(port_security_groups.c.security_group_id)
                             .where(port_security_groups.c.port_id == port_id)).scalars())
