"""The per-project ``default`` security group and the rule template every
new group starts from (``/v2.0/default-security-group-rules``).

A project gets its default group on first use: the first security group
list, show or create, the first rule list, the first port. Exactly once:

* on SQLite every write transaction holds the database's write lock from
  its first statement, so two creators cannot both see "no default yet";
* on PostgreSQL a transaction-scoped advisory lock per project serialises
  them; the second one waits, then (READ COMMITTED) sees the first one's
  row and uses it;
* either way the primary key of ``default_security_groups`` (one row per
  project) is the backstop.

:func:`ensure` must run inside a *write* transaction. A GET that wants the
group checks with a cheap read first and only then opens a write
transaction (the security-group routes of the API), so listing does not take the
write lock every time.

The template: rules with ``used_in_default_sg`` go into default groups,
rules with ``used_in_non_default_sg`` into all others; ``remote_group_id``
``PARENT`` stands for the group being created. The migration seeds
Neutron's legacy template: egress IPv4 and IPv6 to anywhere for every
group, ingress IPv4 and IPv6 from the same group for default groups only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from kaon import errors
from kaon.core import stdattrs
from kaon.core.context import Context
from kaon.core.list_query import ListQuery
from kaon.core.query import fetch_page, where_filters
from kaon.db.fast_insert import FastInsert
from kaon.db.locks import xact_lock
from kaon.db.sg_tables import (
    default_security_group_rules as template,
)
from kaon.db.sg_tables import (
    default_security_groups,
    security_group_rules,
    security_groups,
)
from kaon.model import security_group as m

DefaultRuleNotUpdatable = errors.define(
    "HTTPMethodNotAllowed", errors.KaonError, "Default security group rules cannot be updated.")
DefaultRuleNotUpdatable.status = 405

Items = list[dict[str, Any]]  # (a service's own ``list`` method shadows the name for mypy)

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"

TEMPLATE_COLUMNS = {name: template.c[name] for name in (
    "id", "description", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
    "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "used_in_default_sg",
    "used_in_non_default_sg",
)}
RULE_FIELDS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max", "remote_ip_prefix",
               "remote_group_id", "remote_address_group_id")


_LOOKUP = select(default_security_groups.c.security_group_id).where(
    default_security_groups.c.project_id == bindparam("project"))


def lookup(conn: Connection, project: str) -> str | None:
    return conn.execute(_LOOKUP, {"project": project}).scalar()


def may_ensure(ctx: Context, project: str | None) -> bool:
    """Neutron makes a default group for the caller's own project, or for
    any project when an admin asks; never for the service-owned ''."""
    return bool(project) and (ctx.is_admin or project == ctx.project_id)


def ensure(conn: Connection, project: str) -> str:
    """The id of ``project``'s default group, made now if it has none.
    Call inside a write transaction."""
    found = lookup(conn, project)
    if found is not None:
        return found
    if conn.dialect.name != "sqlite":
        xact_lock(conn, f"default-sg:{project}")
        found = lookup(conn, project)
        if found is not None:
            return found
    return create_group(conn, project, {"name": DEFAULT_NAME, "description": DEFAULT_DESCRIPTION},
                        default=True)


def create_group(conn: Connection, project: str, values: dict[str, Any], default: bool = False,
                 rules: list[dict[str, Any]] | None = None) -> str:
    """Insert a group and its rules from the template (no policy or quota
    checks: the callers do those)."""
    return str(insert_group(conn, project, values, default, rules)[0]["id"])


def insert_group(conn: Connection, project: str, values: dict[str, Any], default: bool = False,
                 rules: list[dict[str, Any]] | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """:func:`create_group`, returning the group row and the rule rows
    inserted; ``rules``: the template, when the caller read it already."""
    row = stdattrs.new_row(project, values)
    row["stateful"] = values.get("stateful", True)
    _INSERT_GROUP.run(conn, row)
    if default:
        conn.execute(insert(default_security_groups).values(project_id=project, security_group_id=row["id"]))
    inserted = []
    for rule in template_rules(conn, default) if rules is None else [dict(r) for r in rules]:
        remote = rule["remote_group_id"]
        if remote == m.PARENT:
            rule["remote_group_id"] = row["id"]
        elif remote is not None and conn.execute(
                select(security_groups.c.id).where(security_groups.c.id == remote)).first() is None:
            continue  # the template names a group that is gone
        rule_row = stdattrs.new_row(project, {"description": ""})
        del rule_row["name"]
        inserted.append({**rule_row, **rule, "security_group_id": row["id"]})
    for rule_row in inserted:
        _INSERT_RULE.run(conn, rule_row)
    return row, inserted


_INSERT_GROUP = FastInsert(security_groups)
_INSERT_RULE = FastInsert(security_group_rules)
_BUMP = update(security_groups).where(security_groups.c.id == bindparam("sg_id")).values(
    revision_number=security_groups.c.revision_number + 1, updated_at=bindparam("now"))


def bump_revision(conn: Connection, sg_id: str) -> None:
    """A change below a group (its rules, its RBAC entries) is a change of the group."""
    conn.execute(_BUMP, {"sg_id": sg_id, "now": stdattrs.now()})


def template_rules(conn: Connection, default: bool) -> list[dict[str, Any]]:
    rows = conn.execute(_TEMPLATE[default]).all()
    return [{f: getattr(r, f) for f in RULE_FIELDS} for r in rows]


_TEMPLATE = {default: select(template).where(
    (template.c.used_in_default_sg if default else template.c.used_in_non_default_sg).is_(True))
    .order_by(template.c.direction, template.c.ethertype, template.c.id) for default in (False, True)}


class DefaultRules:
    """``/v2.0/default-security-group-rules``: readable by everybody,
    written by admins; rules are immutable (create and delete only)."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def fetch_row(self, ctx: Context, conn: Connection, rule_id: str) -> Any:
        row = conn.execute(select(template).where(template.c.id == rule_id)).first()
        if row is None:
            raise m.DefaultSecurityGroupRuleNotFound(id=rule_id)
        return row

    def get(self, ctx: Context, conn: Connection, rule_id: str) -> dict[str, Any]:
        return render_template_rule(self.fetch_row(ctx, conn, rule_id))

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[Items, bool]:
        stmt = select(template)
        for clause in where_filters(q, TEMPLATE_COLUMNS, {}, template.c.id):
            stmt = stmt.where(clause)
        rows, more = fetch_page(conn, stmt, q, TEMPLATE_COLUMNS, template.c.id, template)
        return [render_template_rule(r) for r in rows], more

    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        rule = {f: values.get(f) for f in RULE_FIELDS}
        m.check_rule(rule)
        if rule["remote_address_group_id"] is not None:
            raise m.AddressGroupNotFound(address_group_id=rule["remote_address_group_id"])
        key = m.rule_key(rule)
        for existing in conn.execute(select(template)).all():
            # The same rule may be two entries when they differ in both
            # flags (one for default groups, one for the others); a match
            # in either flag makes it a duplicate.
            same_use = bool(existing.used_in_default_sg) == bool(values["used_in_default_sg"]) or \
                bool(existing.used_in_non_default_sg) == bool(values["used_in_non_default_sg"])
            if same_use and m.rule_key({f: getattr(existing, f) for f in RULE_FIELDS}) == key:
                raise m.DefaultSecurityGroupRuleExists(rule_id=existing.id)
        rule_id = stdattrs.new_id()
        conn.execute(insert(template).values(
            id=rule_id, description=values.get("description", ""), **rule,
            used_in_default_sg=values["used_in_default_sg"],
            used_in_non_default_sg=values["used_in_non_default_sg"]))
        return rule_id

    def update(self, ctx: Context, conn: Connection, rule_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        # No attribute allows PUT, so only an empty change gets here: the
        # rules have no update (a template is replaced by delete and create).
        self.fetch_row(ctx, conn, rule_id)
        raise DefaultRuleNotUpdatable()

    def delete(self, ctx: Context, conn: Connection, rule_id: str, check: Any = None) -> None:
        self.fetch_row(ctx, conn, rule_id)
        conn.execute(delete(template).where(template.c.id == rule_id))


def render_template_rule(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "description": row.description, "direction": row.direction,
        "ethertype": row.ethertype, "protocol": row.protocol, "port_range_min": row.port_range_min,
        "port_range_max": row.port_range_max, "remote_ip_prefix": row.remote_ip_prefix,
        "remote_group_id": row.remote_group_id, "remote_address_group_id": row.remote_address_group_id,
        "used_in_default_sg": row.used_in_default_sg, "used_in_non_default_sg": row.used_in_non_default_sg,
    }
