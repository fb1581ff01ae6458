"""HTTP side of security groups and RBAC policies: the extension aliases,
and a collection controller whose GETs first make sure the project has its
default security group.

Why here and not in the service: a GET runs in a read transaction, and
making the default group is a write. On SQLite a read transaction that
starts writing can fail (its snapshot may be stale by then), so the
controller checks in a cheap read and, only when the group is missing,
makes it in a write transaction of its own before the real read.
"""

from __future__ import annotations

from typing import Any

from kaon.api import extensions, listing
from kaon.api.controller import Collection
from kaon.core.context import Context
from kaon.core.security import default_sg
from kaon.db.engine import read_txn, write_txn

for _alias, _name, _description in (
    ("security-group", "security-group", "The security groups extension."),
    ("stateful-security-group", "Stateful security group",
     "Indicates if the security group is stateful or not"),
    ("security-groups-default-rules", "Default rules for security groups",
     "Configure set of security group rules used as default rules for every new security group"),
    ("security-groups-normalized-cidr", "Normalized CIDR field for security group rules",
     "Add new field with normalized remote_ip_prefix cidr in SG rule"),
    ("security-groups-shared-filtering", "Security group filtering on the shared field",
     "Support filtering security groups on the shared field"),
    ("security-groups-rules-belongs-to-default-sg", "Security group rule belongs to the default SG",
     "Flag to determine if the security group rule belongs to the project default security group"),
    ("port-security-groups-filtering", "Port filtering on security groups",
     "Provides security groups filtering when listing ports"),
    ("rbac-policies", "RBAC Policies",
     "Allows creation and modification of policies that control tenant access to resources."),
    ("rbac-security-groups", "Add security_group type to RBAC", "Add security_group type to network RBAC"),
):
    extensions.add(_alias, _name, _description)


class DefaultingCollection(Collection):
    """Lists and shows of security groups and rules make the default group
    of the project asked about (the ``project_id``/``tenant_id`` filter, else
    the caller's) on first use, as Neutron does."""

    def _list(self, ctx: Context, q: listing.ListQuery, base_url: str) -> dict[str, Any]:
        wanted = q.filters.get("project_id")
        self._ensure_default(ctx, str(wanted[0]) if wanted else ctx.project_id)
        return super()._list(ctx, q, base_url)

    def _show(self, ctx: Context, item_id: str, fields: list[str]) -> dict[str, Any]:
        self._ensure_default(ctx, ctx.project_id)
        return super()._show(ctx, item_id, fields)

    def _ensure_default(self, ctx: Context, project: str) -> None:
        if not default_sg.may_ensure(ctx, project):
            return
        with read_txn(self.engine) as conn:
            if default_sg.lookup(conn, project) is not None:
                return
        with write_txn(self.engine) as conn:
            default_sg.ensure(conn, project)
