"""One resource's table as a caller sees it: one row or a 404, and a page of rows.

An admin sees every row; anyone else sees their project's rows and, for a
resource shared through an RBAC table (address scopes, subnet pools), the
rows it shares with their project or with everybody. A row the caller
cannot see does not exist for them: fetching it raises the resource's
NotFound (404), as Neutron does, never a 403 that would confirm its id.
The fetch statements are built once, with the project as a parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import BindParameter, Column, ColumnElement, Connection, Table, bindparam, or_, select

from kaon.core.context import Context
from kaon.core.list_query import ListQuery
from kaon.core.query import Special, fetch_page, where_filters
from kaon.model.rbac import SHARED, WILDCARD


class VisibleRows:
    def __init__(self, table: Table, columns: Mapping[str, Column], not_found: Callable[[str], Exception],
                 shared_by: Table | None = None) -> None:
        self.table = table
        self.columns = columns
        self.not_found = not_found  # the resource's NotFound for an id
        self.shared_by = shared_by  # the RBAC table that shares rows with other projects, if any
        by_id = select(table).where(table.c.id == bindparam("row_id"))
        own = by_id.where(self.visible(bindparam("project")))
        self._fetch = {(True, False): by_id, (True, True): by_id.with_for_update(),
                       (False, False): own, (False, True): own.with_for_update()}

    def visible(self, project: str | BindParameter[Any]) -> ColumnElement[bool]:
        """Rows of ``project``, or shared with it or with everybody."""
        own = self.table.c.project_id == project
        if self.shared_by is None:
            return own
        rbacs = self.shared_by
        granted = select(rbacs.c.object_id).where(rbacs.c.action == SHARED,
                                                  rbacs.c.target_project.in_([WILDCARD, project]))
        return or_(own, self.table.c.id.in_(granted))

    def fetch_row(self, ctx: Context, conn: Connection, row_id: str, lock: bool = False) -> Any:
        """The row if the caller may see it, else the resource's NotFound. ``lock`` takes its row
        lock (FOR UPDATE), for the writes that check it first."""
        row = conn.execute(self._fetch[ctx.is_admin, lock], {"row_id": row_id, "project": ctx.project_id}).first()
        if row is None:
            raise self.not_found(row_id)
        return row

    def page(self, ctx: Context, conn: Connection, q: ListQuery,
             special: Mapping[str, Special] | None = None) -> tuple[list[Any], bool]:
        """The rows of one page the caller may see, filtered and sorted as asked, and whether more follow."""
        stmt = select(self.table)
        if not ctx.is_admin:
            stmt = stmt.where(self.visible(ctx.project_id))
        for clause in where_filters(q, self.columns, special or {}, self.table.c.id):
            stmt = stmt.where(clause)
        return fetch_page(conn, stmt, q, self.columns, self.table.c.id, self.table)
