"""Security group rules: create with Neutron's validation and duplicate
rule, show, list, delete; only ``description`` changes after creation.

A rule is visible to the owner of its group and to the rule's own project
(an admin may add a rule to a member's group on the admin's project);
creating and deleting need the group's owner or an admin. Anybody else
gets 404 (403 when the group is visible to them, i.e. shared).

A rule belongs to the project named in the request (the caller's by
default), counts against that project's ``security_group_rule`` quota,
and bumps its group's revision_number when it comes or goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, or_, select, update

from kaon import errors
from kaon.api.context import Context
from kaon.api.listing import ListQuery
from kaon.core import quotas, stdattrs
from kaon.core.security import default_sg
from kaon.core.query import fetch_page, where_filters
from kaon.db.fast_insert import FastInsert
from kaon.db.sg_tables import default_security_groups, security_group_rules, security_groups
from kaon.model import security_group as m

Items = list[dict[str, Any]]  # (a service's own ``list`` method shadows the name for mypy)

if TYPE_CHECKING:
    from kaon.core.security.security_groups import SecurityGroups

RULES = security_group_rules
COLUMNS = {name: RULES.c[name] for name in (
    "id", "project_id", "security_group_id", "remote_group_id", "remote_address_group_id", "direction",
    "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix", "description",
    "created_at", "updated_at", "revision_number",
)}
KEY_FIELDS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
              "remote_group_id", "remote_address_group_id")

# Prebuilt statements of a rule create. A duplicate has the same direction,
# ethertype, port range and remote groups (rule_key compares them as
# stored, NULL equal to NULL); protocol and prefix are compared in Python
# (their spellings: "tcp" is 6, 0.0.0.0/0 is no prefix). So a group of many
# rules on different ports compares none of them in Python.
_SAME_KIND = select(RULES.c.id, *[RULES.c[f] for f in KEY_FIELDS]).where(
    RULES.c.security_group_id == bindparam("sg_id"), RULES.c.direction == bindparam("direction"),
    RULES.c.ethertype == bindparam("ethertype"),
    *[RULES.c[f].is_not_distinct_from(bindparam(f)) for f in
      ("port_range_min", "port_range_max", "remote_group_id", "remote_address_group_id")])
_INSERT = FastInsert(RULES)


def render_rules(conn: Connection, rows: Sequence[Any]) -> Items:
    defaults: set[str] = set()
    group_ids = list({r.security_group_id for r in rows})
    for start in range(0, len(group_ids), 900):
        defaults.update(conn.execute(select(default_security_groups.c.security_group_id).where(
            default_security_groups.c.security_group_id.in_(group_ids[start : start + 900]))).scalars())
    return [render_rule(r._mapping, r.security_group_id in defaults) for r in rows]


def render_rule(r: Any, default: bool) -> dict[str, Any]:
    """One rule from its row (a mapping of its columns)."""
    return {
        "id": r["id"], "tenant_id": r["project_id"], "project_id": r["project_id"],
        "security_group_id": r["security_group_id"], "ethertype": r["ethertype"], "direction": r["direction"],
        "protocol": r["protocol"], "port_range_min": r["port_range_min"], "port_range_max": r["port_range_max"],
        "remote_ip_prefix": r["remote_ip_prefix"], "normalized_cidr": m.normalized_cidr(r["remote_ip_prefix"]),
        "remote_group_id": r["remote_group_id"], "remote_address_group_id": r["remote_address_group_id"],
        "description": r["description"], "belongs_to_default_sg": default,
        "created_at": stdattrs.timestamp(r["created_at"]), "updated_at": stdattrs.timestamp(r["updated_at"]),
        "revision_number": r["revision_number"],
    }


class SecurityGroupRules:
    def __init__(self, groups: SecurityGroups, cfg: Any) -> None:
        self.groups = groups
        self.cfg = cfg

    # -- reads ---------------------------------------------------------
    @staticmethod
    def visible_clause(ctx: Context) -> Any:
        owned_groups = select(security_groups.c.id).where(security_groups.c.project_id == ctx.project_id)
        return or_(RULES.c.security_group_id.in_(owned_groups), RULES.c.project_id == ctx.project_id)

    def fetch_row(self, ctx: Context, conn: Connection, rule_id: str) -> Any:
        stmt = select(RULES).where(RULES.c.id == rule_id)
        if not ctx.is_admin:
            stmt = stmt.where(self.visible_clause(ctx))
        row = conn.execute(stmt).first()
        if row is None:
            raise m.SecurityGroupRuleNotFound(id=rule_id)
        return row

    def get(self, ctx: Context, conn: Connection, rule_id: str) -> dict[str, Any]:
        return render_rules(conn, [self.fetch_row(ctx, conn, rule_id)])[0]

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[Items, bool]:
        stmt = select(RULES)
        if not ctx.is_admin:
            stmt = stmt.where(self.visible_clause(ctx))
        special = {"belongs_to_default_sg": _default_filter}
        for clause in where_filters(q, COLUMNS, special, RULES.c.id):
            stmt = stmt.where(clause)
        rows, more = fetch_page(conn, stmt, q, COLUMNS, RULES.c.id, RULES)
        return render_rules(conn, rows), more

    # -- writes --------------------------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        return str(self.create_item(ctx, conn, values)["id"])

    def create_item(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
        """Create a rule; the rule as :meth:`get` would show it, rendered from what was inserted."""
        project = stdattrs.owner_project(ctx, values)
        quotas.check(conn, self.cfg, project, "security_group_rule", 1)
        rule = {f: values.get(f) for f in KEY_FIELDS}
        m.check_rule(rule)
        as_project = ctx if ctx.is_admin else Context(ctx.user_id, project, ctx.roles)
        if rule["remote_group_id"] is not None:
            self.groups.fetch_row(as_project, conn, rule["remote_group_id"])
        if rule["remote_address_group_id"] is not None:
            raise m.AddressGroupNotFound(address_group_id=rule["remote_address_group_id"])
        group = self.groups.fetch_with_default(as_project, conn, values["security_group_id"])
        if not ctx.is_admin and group.project_id != ctx.project_id:
            raise errors.PolicyNotAuthorized(action="create_security_group_rule")
        self._check_duplicate(conn, group.id, rule)
        row = stdattrs.new_row(project, values)
        del row["name"]
        full = {**row, **rule, "security_group_id": group.id}
        _INSERT.run(conn, full)
        default_sg.bump_revision(conn, group.id)
        return render_rule(full, bool(group.is_default))

    @staticmethod
    def _check_duplicate(conn: Connection, sg_id: str, rule: dict[str, Any]) -> None:
        key = m.rule_key(rule)
        params = {f: rule[f] for f in ("direction", "ethertype", "port_range_min", "port_range_max",
                                       "remote_group_id", "remote_address_group_id")}
        for existing in conn.execute(_SAME_KIND, {"sg_id": sg_id, **params}).all():
            if m.rule_key({f: getattr(existing, f) for f in KEY_FIELDS}) == key:
                raise m.SecurityGroupRuleExists(rule_id=existing.id)

    def writable_row(self, ctx: Context, conn: Connection, rule_id: str, action: str) -> Any:
        row = self.fetch_row(ctx, conn, rule_id)
        if not ctx.is_admin:
            owner = conn.execute(select(security_groups.c.project_id)
                                 .where(security_groups.c.id == row.security_group_id)).scalar()
            if owner != ctx.project_id:
                raise errors.PolicyNotAuthorized(action=f"{action}_security_group_rule")
        return row

    def update(self, ctx: Context, conn: Connection, rule_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row = self.writable_row(ctx, conn, rule_id, "update")
        if check is not None:
            check(row.revision_number)
        conn.execute(update(RULES).where(RULES.c.id == rule_id).values(
            stdattrs.bump({k: changes[k] for k in ("description",) if k in changes}, row.revision_number)))
        default_sg.bump_revision(conn, row.security_group_id)

    def delete(self, ctx: Context, conn: Connection, rule_id: str, check: Any = None) -> None:
        row = self.writable_row(ctx, conn, rule_id, "delete")
        if check is not None:
            check(row.revision_number)
        conn.execute(delete(RULES).where(RULES.c.id == rule_id))
        default_sg.bump_revision(conn, row.security_group_id)


def _default_filter(values: list[Any]) -> Any:
    defaults = select(default_security_groups.c.security_group_id)
    wanted = set(values)
    if wanted == {True}:
        return RULES.c.security_group_id.in_(defaults)
    if wanted == {False}:
        return RULES.c.security_group_id.not_in(defaults)
    return RULES.c.id.is_not(None)
