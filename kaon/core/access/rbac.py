"""RBAC policies (``/v2.0/rbac-policies``): who else may use a network or
a security group.

A policy is a row in the object type's own table: ``network_rbacs`` (the
same rows that make a network ``shared`` or ``router:external``) or
``securitygroup_rbacs``. So a ``*`` ``access_as_shared`` policy on a
network *is* ``shared: true``, and ``PUT shared=false`` removes that row.

Rules (Neutron's):

* only the object's owner or an admin may grant access to it (a project
  the object is merely shared with gets 400, as from Neutron's callback);
  only an admin may target ``*`` (403);
* a policy is visible to the project that owns it, and to admins; not to
  its target;
* removing or retargeting a grant that some project still depends on is
  ``RbacPolicyInUse`` (409). "Depends" is asked of the functions
  registered with :func:`register_usage` for (object type, action): ports
  on a shared network, ports in a shared group, routers with a gateway on
  an external network. The object's owner, and projects still covered by
  another grant, do not count;
* a change of a policy is a change of its object: it bumps the object's
  revision_number.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, delete, false, func, insert, select, true, update

from kaon import errors
from kaon.core import quotas, stdattrs
from kaon.core.context import Context
from kaon.core.list_query import ListQuery
from kaon.core.query import where_filters
from kaon.db.core_tables import network_rbacs, networks, port_security_groups, ports
from kaon.db.sg_tables import security_groups, securitygroup_rbacs
from kaon.model import rbac as m

Items = list[dict[str, Any]]  # (a service's own ``list`` method shadows the name for mypy)


@dataclass(frozen=True)
class ObjectType:
    name: str  # "network"
    label: str  # "Network", for messages
    rbacs: Table
    objects: Table


TYPES = {
    "network": ObjectType("network", "Network", network_rbacs, networks),
    "security_group": ObjectType("security_group", "Security group", securitygroup_rbacs, security_groups),
}

# (object type, action) -> functions giving the projects that use an object
# through that kind of grant. Other modules add theirs at import time.
Usage = Callable[[Connection, str], set[str]]
USAGE: dict[tuple[str, str], list[Usage]] = {}


def register_usage(object_type: str, action: str, usage: Usage) -> None:
    USAGE.setdefault((object_type, action), []).append(usage)


# object type -> functions (conn, object row, action, target project) that
# refuse a new or retargeted grant by raising (Neutron's BEFORE_CREATE /
# BEFORE_UPDATE callbacks, whose failures are InvalidInput: 400).
GrantCheck = Callable[[Connection, Any, str, str], None]
GRANT_CHECKS: dict[str, list[GrantCheck]] = {}


def register_grant_check(object_type: str, check: GrantCheck) -> None:
    GRANT_CHECKS.setdefault(object_type, []).append(check)


def _check_grant(conn: Connection, otype: ObjectType, obj: Any, action: str, target: str) -> None:
    for grant_check in GRANT_CHECKS.get(otype.name, []):
        grant_check(conn, obj, action, target)


def _network_port_projects(conn: Connection, net_id: str) -> set[str]:
    return set(conn.execute(select(ports.c.project_id).distinct().where(ports.c.network_id == net_id)).scalars())


def _group_port_projects(conn: Connection, sg_id: str) -> set[str]:
    return set(conn.execute(select(ports.c.project_id).distinct().where(ports.c.id.in_(
        select(port_security_groups.c.port_id).where(port_security_groups.c.security_group_id == sg_id)))).scalars())


def _gateway_router_projects(conn: Connection, net_id: str) -> set[str]:
    # Routers own their gateway port under project '' (Neutron's layout):
    # the project that depends on the external network is the router's.
    from kaon.db.l3_tables import routers

    gateways = select(ports.c.id).where(ports.c.network_id == net_id,
                                        ports.c.device_owner == "network:router_gateway")
    return set(conn.execute(select(routers.c.project_id).distinct()
                            .where(routers.c.gw_port_id.in_(gateways))).scalars())


register_usage("network", m.SHARED, _network_port_projects)
register_usage("security_group", m.SHARED, _group_port_projects)
register_usage("network", m.EXTERNAL, _gateway_router_projects)


def _is_default_net(conn: Connection, net_id: str) -> bool:
    from kaon.db.core_tables import networks

    return bool(conn.execute(select(networks.c.is_default).where(networks.c.id == net_id)).scalar())


def _count_policies(conn: Connection, project: str) -> int:
    return sum(conn.execute(select(func.count()).select_from(t.rbacs).where(t.rbacs.c.project_id == project))
               .scalar_one() for t in TYPES.values())


quotas.register("rbac_policy", _count_policies)


def render(otype: str, row: Any) -> dict[str, Any]:
    return {"id": row.id, "project_id": row.project_id, "tenant_id": row.project_id, "object_type": otype,
            "object_id": row.object_id, "action": row.action, "target_tenant": row.target_project}


def bump_object(conn: Connection, otype: ObjectType, obj_id: str) -> None:
    table = otype.objects
    if "revision_number" not in table.c:
        return  # address scopes have no standard attributes
    rev = conn.execute(select(table.c.revision_number).where(table.c.id == obj_id)).scalar()
    if rev is not None:
        conn.execute(update(table).where(table.c.id == obj_id).values(stdattrs.bump({}, rev)))


class RbacPolicies:
    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    # -- reads ---------------------------------------------------------
    def _find(self, ctx: Context, conn: Connection, policy_id: str) -> tuple[ObjectType, Any]:
        for otype in TYPES.values():
            row = conn.execute(select(otype.rbacs).where(otype.rbacs.c.id == policy_id)).first()
            if row is None:
                continue
            if not ctx.is_admin and row.project_id != ctx.project_id:
                raise m.RbacPolicyNotFound(id=policy_id, object_type=otype.name)
            return otype, row
        raise m.RbacPolicyNotFound(id=policy_id, object_type="unknown")

    def fetch_row(self, ctx: Context, conn: Connection, policy_id: str) -> Any:
        return self._find(ctx, conn, policy_id)[1]

    def get(self, ctx: Context, conn: Connection, policy_id: str) -> dict[str, Any]:
        otype, row = self._find(ctx, conn, policy_id)
        return render(otype.name, row)

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[Items, bool]:
        items: list[dict[str, Any]] = []
        for otype in TYPES.values():
            t = otype.rbacs
            columns = {"id": t.c.id, "project_id": t.c.project_id, "object_id": t.c.object_id,
                       "action": t.c.action, "target_tenant": t.c.target_project}
            special = {"object_type": lambda vals, name=otype.name: true() if name in vals else false()}
            stmt = select(t)
            if not ctx.is_admin:
                stmt = stmt.where(t.c.project_id == ctx.project_id)
            for clause in where_filters(q, columns, special, t.c.id):
                stmt = stmt.where(clause)
            items.extend(render(otype.name, row) for row in conn.execute(stmt))
        return _page(_sorted(items, q.sorts), q)

    # -- writes --------------------------------------------------------
    def _object(self, ctx: Context, conn: Connection, otype: ObjectType, obj_id: str) -> Any:
        """The object a policy is about; the caller must own it unless admin."""
        row = conn.execute(select(otype.objects).where(otype.objects.c.id == obj_id)).first()
        if row is None or (not ctx.is_admin and not self._visible(ctx, conn, otype, row)):
            raise errors.InvalidInput(error_message=f"{otype.label} {obj_id} could not be found")
        if not ctx.is_admin and row.project_id != ctx.project_id:
            what = "networks" if otype.name == "network" else "objects"
            raise errors.InvalidInput(error_message=f"Only admins can manipulate policies on {what} they do not own")
        return row

    @staticmethod
    def _visible(ctx: Context, conn: Connection, otype: ObjectType, row: Any) -> bool:
        if row.project_id == ctx.project_id:
            return True
        return conn.execute(select(otype.rbacs.c.id).where(
            otype.rbacs.c.object_id == row.id,
            otype.rbacs.c.target_project.in_((m.WILDCARD, ctx.project_id))).limit(1)).first() is not None

    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        otype = TYPES[values["object_type"]]
        action, target = values["action"], values["target_tenant"]
        valid = m.ACTIONS[otype.name]
        if action not in valid:
            raise m.InvalidActionForType(action=action, object_type=otype.name, valid_actions=list(valid))
        project = stdattrs.owner_project(ctx, values)
        obj = self._object(ctx, conn, otype, values["object_id"])
        quotas.check(conn, self.cfg, project, "rbac_policy", 1)
        self._check_unique(conn, otype, obj.id, action, target)
        _check_grant(conn, otype, obj, action, target)
        policy_id = stdattrs.new_id()
        conn.execute(insert(otype.rbacs).values(id=policy_id, project_id=project, object_id=obj.id,
                                                action=action, target_project=target))
        bump_object(conn, otype, obj.id)
        return policy_id

    @staticmethod
    def _check_unique(conn: Connection, otype: ObjectType, obj_id: str, action: str, target: str) -> None:
        t = otype.rbacs
        if conn.execute(select(t.c.id).where(t.c.object_id == obj_id, t.c.action == action,
                                             t.c.target_project == target)).first() is not None:
            raise m.DuplicateRbacPolicy()

    def update(self, ctx: Context, conn: Connection, policy_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        otype, row = self._find(ctx, conn, policy_id)
        new = changes.get("target_tenant", row.target_project)
        if new == row.target_project:
            return
        self._check_not_in_use(conn, otype, row, also_granted=frozenset({new}))
        self._check_unique(conn, otype, row.object_id, row.action, new)
        obj = conn.execute(select(otype.objects).where(otype.objects.c.id == row.object_id)).first()
        _check_grant(conn, otype, obj, row.action, new)
        conn.execute(update(otype.rbacs).where(otype.rbacs.c.id == policy_id).values(target_project=new))
        bump_object(conn, otype, row.object_id)

    def delete(self, ctx: Context, conn: Connection, policy_id: str, check: Any = None) -> None:
        otype, row = self._find(ctx, conn, policy_id)
        self._check_not_in_use(conn, otype, row)
        conn.execute(delete(otype.rbacs).where(otype.rbacs.c.id == policy_id))
        bump_object(conn, otype, row.object_id)

    def _check_not_in_use(self, conn: Connection, otype: ObjectType, row: Any,
                          also_granted: frozenset[str] = frozenset()) -> None:
        """Would taking ``row``'s grant away strand a project that uses the object?

        The object's row is locked first, so a port that is being bound to
        it in another transaction (which reads the grant, then inserts) is
        either committed and counted here, or waits for this change."""
        owner = conn.execute(select(otype.objects.c.project_id).where(otype.objects.c.id == row.object_id)
                             .with_for_update()).scalar()
        target = row.target_project
        if target == owner:
            return  # self-sharing grants nothing the owner does not have
        t = otype.rbacs
        remaining = set(conn.execute(select(t.c.target_project).where(
            t.c.object_id == row.object_id, t.c.action == row.action, t.c.id != row.id)).scalars())
        remaining |= also_granted
        if (otype.name, row.action, target) == ("network", m.EXTERNAL, m.WILDCARD) and _is_default_net(
                conn, row.object_id):
            # The default external network is everybody's way out: its
            # wildcard grant stays while it is the default (Neutron's rule).
            raise m.RbacPolicyInUse(object_id=row.object_id, details="default external network")
        if m.WILDCARD in remaining:
            return
        users: set[str] = set()
        for usage in USAGE.get((otype.name, row.action), []):
            users |= usage(conn, row.object_id)
        users -= {owner, ""} | remaining
        if target != m.WILDCARD:
            users &= {target}
        if users:
            raise m.RbacPolicyInUse(object_id=row.object_id, details=f"tenant_id={target}")


def _sorted(items: list[dict[str, Any]], sorts: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Sort on the requested keys (then id), each ascending or descending."""
    keys = [(k if k != "tenant_id" else "project_id", asc) for k, asc in sorts]
    if not any(k == "id" for k, _ in keys):
        keys.append(("id", True))  # the tie-break kaon.core.query.paginate uses too
    out = list(items)
    for key, asc in reversed(keys):
        out.sort(key=lambda item: str(item.get(key) or ""), reverse=not asc)
    return out


def _page(items: list[dict[str, Any]], q: ListQuery) -> tuple[Items, bool]:
    seq = list(reversed(items)) if q.page_reverse else items
    if q.marker is not None and q.limit is not None:
        at = next((i for i, item in enumerate(seq) if item["id"] == q.marker), None)
        if at is None:
            raise errors.ResourceNotFound()  # as kaon.core.query.paginate answers
        seq = seq[at + 1 :]
    more = q.limit is not None and len(seq) > q.limit
    if q.limit is not None:
        seq = seq[: q.limit]
    if q.page_reverse:
        seq.reverse()
    return seq, more
