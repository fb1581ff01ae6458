"""Quotas: Neutron's defaults from ``[quotas]``, per-project overrides in
the ``quotas`` table, usage counted live in the same transaction.

Concurrency: on SQLite every write transaction holds the database's write
lock from its first statement (BEGIN IMMEDIATE), so count-then-insert cannot
interleave. On PostgreSQL two transactions could both count N-1; a
transaction-scoped advisory lock per (project, resource) serialises them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select

from kaon import errors
from kaon.db import core_tables as t
from kaon.db.locks import xact_lock

# resource name -> how to count a project's usage. Other modules (routers,
# floating IPs, security groups ...) register theirs with :func:`register`.
Counter = Callable[[Connection, str], int]
COUNTERS: dict[str, Counter] = {}

DEFAULTS = {
    "network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
    "security_group": 10, "security_group_rule": 100, "rbac_policy": 10, "subnetpool": -1,
}


def table_counter(table: Table) -> Counter:
    stmt = select(func.count()).select_from(table).where(table.c.project_id == bindparam("project"))

    def count(conn: Connection, project: str) -> int:
        return conn.execute(stmt, {"project": project}).scalar_one()

    # Read by check() (limit and usage in one statement); a function attribute
    # has no static type.
    count.kaon_table = table  # type: ignore[attr-defined]
    return count


_LIMIT = select(t.quotas.c.limit).where(t.quotas.c.project_id == bindparam("project"),
                                        t.quotas.c.resource == bindparam("resource"))
# resource -> one statement reading the override and the usage (SQLite).
_LIMIT_AND_USAGE: dict[str, Any] = {}


def _limit_and_usage(resource: str, table: Table) -> Any:
    stmt = _LIMIT_AND_USAGE.get(resource)
    if stmt is None:
        stmt = _LIMIT_AND_USAGE[resource] = select(
            _LIMIT.scalar_subquery(),
            select(func.count()).select_from(table).where(table.c.project_id == bindparam("project"))
            .scalar_subquery())
    return stmt


def register(resource: str, counter: Counter) -> None:
    COUNTERS[resource] = counter


register("network", table_counter(t.networks))
register("subnet", table_counter(t.subnets))
register("port", table_counter(t.ports))


def default_limit(cfg: Any, resource: str) -> int:
    """``[quotas] quota_<resource>``, else Neutron's default, else ``default_quota``."""
    limits = cfg.quotas.limits
    if resource in limits:
        return int(limits[resource])
    return DEFAULTS.get(resource, cfg.quotas.default_quota)


def limits(conn: Connection, cfg: Any, project: str) -> dict[str, int]:
    out = {res: default_limit(cfg, res) for res in DEFAULTS}
    for res, limit in conn.execute(
        select(t.quotas.c.resource, t.quotas.c.limit).where(t.quotas.c.project_id == project)
    ):
        out[res] = limit
    return out


def limit_of(conn: Connection, cfg: Any, project: str, resource: str) -> int:
    override = conn.execute(_LIMIT, {"project": project, "resource": resource}).scalar()
    return override if override is not None else default_limit(cfg, resource)


def usage(conn: Connection, project: str) -> dict[str, int]:
    return {res: count(conn, project) for res, count in COUNTERS.items()}


def check(conn: Connection, cfg: Any, project: str, resource: str, delta: int) -> None:
    if not project:
        return  # service-owned resources (gateway, FIP ports) count against nobody
    table = getattr(COUNTERS.get(resource), "kaon_table", None)
    if table is not None and conn.dialect.name == "sqlite":
        # The write lock is held (BEGIN IMMEDIATE): read both at once.
        override, used = conn.execute(_limit_and_usage(resource, table),
                                      {"project": project, "resource": resource}).one()
        limit = override if override is not None else default_limit(cfg, resource)
        if 0 <= limit < used + delta:
            raise errors.OverQuota(overs=resource)
        return
    limit = limit_of(conn, cfg, project, resource)
    if limit < 0:
        return
    xact_lock(conn, f"quota:{project}:{resource}")
    used = COUNTERS[resource](conn, project) if resource in COUNTERS else 0
    if used + delta > limit:
        raise errors.OverQuota(overs=resource)


def check_counted(conn: Connection, cfg: Any, project: str, resource: str, delta: int,
                  memo: dict[tuple[str, str], list[int]]) -> None:
    """:func:`check` for the items of one bulk create: the limit and usage are
    read once (under the same lock as :func:`check`) and counted on in
    ``memo``, so item N fails exactly where N sequential checks would."""
    if not project:
        return
    state = memo.get((project, resource))
    if state is None:
        limit = limit_of(conn, cfg, project, resource)
        if limit >= 0:
            xact_lock(conn, f"quota:{project}:{resource}")
        used = COUNTERS[resource](conn, project) if limit >= 0 and resource in COUNTERS else 0
        state = memo[(project, resource)] = [limit, used]
    limit, used = state
    if limit < 0:
        return
    if used + delta > limit:
        raise errors.OverQuota(overs=resource)
    state[1] = used + delta


def projects_with_limits(conn: Connection) -> list[str]:
    """Projects with at least one limit set (``GET /v2.0/quotas``)."""
    return sorted(set(conn.execute(select(t.quotas.c.project_id)).scalars()))


def set_limits(conn: Connection, project: str, wanted: dict[str, int]) -> None:
    for res, value in wanted.items():
        conn.execute(delete(t.quotas).where(t.quotas.c.project_id == project, t.quotas.c.resource == res))
        conn.execute(insert(t.quotas).values(project_id=project, resource=res, limit=value))


def reset(conn: Connection, project: str) -> None:
    """Back to the defaults: the project's own limits are forgotten."""
    conn.execute(delete(t.quotas).where(t.quotas.c.project_id == project))
