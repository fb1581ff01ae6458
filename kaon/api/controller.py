"""One generic controller for every Neutron collection: list/create on the
collection URL, show/update/delete on the item URL. Resource services do
the work inside one transaction; this module validates, strips and shapes.

A service implements::

    list(ctx, conn, ListQuery) -> (items, more)
    get(ctx, conn, id) -> item            (NotFound when not visible)
    create(ctx, conn, values) -> id
    update(ctx, conn, id, changes, check) (check(revision) enforces If-Match)
    delete(ctx, conn, id, check)

and may implement ``policy_target(ctx, conn, values, id)``: what the policy
rules see of a new (``values``) or existing (``id``) item when they need
more than its project (a port's network owner, a subnet's). Policy is
enforced here, once per request and per attribute (:meth:`Collection._authorize`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import Response

from kaon import errors
from kaon.api import listing, offload
from kaon.api.if_match import check_revision
from kaon.api.listing import links
from kaon.api.responses import json_response
from kaon.asgi.limits import NulInRequest
from kaon.core import stdattrs
from kaon.core.access import policy
from kaon.core.context import Context
from kaon.db.engine import read_txn, write_txn
from kaon.db.retry import retry_db_errors
from kaon.errors import HTTPBadRequest
from kaon.model import attrs
from kaon.model.attrs import Resource
from kaon.model.validators import has_nul

MalformedRequestBody = errors.define(
    "MalformedRequestBody", errors.BadRequest, "Malformed request body: {reason}."
)


def context_of(request: Request) -> Context:
    return request.scope["kaon.context"]


async def read_body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        raise HTTPBadRequest(msg="Resource body required")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedRequestBody(reason=str(exc).split(":")[0]) from None
    if has_nul(raw, body):
        raise NulInRequest()
    return body


def shape(item: dict[str, Any], hidden: frozenset[str], fields: list[str]) -> dict[str, Any]:
    if fields:
        return {k: item[k] for k in fields if k in item and k not in hidden}
    if hidden and any(k in item for k in hidden):
        return {k: val for k, val in item.items() if k not in hidden}
    return item


class Collection:
    def __init__(self, resource: Resource, service: Any, engine: Engine, filter_validation: bool = True,
                 extra_filters: frozenset[str] = frozenset(), on_change: Callable[[], None] | None = None):
        self.resource = resource
        self.service = service
        self.engine = engine
        self.filter_validation = filter_validation
        self.extra_filters = extra_filters
        self.on_change = on_change

    # The body is read on the event loop; the (synchronous) database work of
    # one item runs where kaon.api.offload finds it cheapest, lists and bulk
    # creates in the thread pool.
    async def collection(self, request: Request) -> Response:
        ctx = context_of(request)
        if request.method == "GET":
            q = listing.parse(self.resource, list(request.query_params.multi_items()),
                              set(self.extra_filters), self.filter_validation)
            body = await offload.long(self._list, ctx, q, str(request.url).split("?")[0])
            return json_response(body)
        payload = await read_body(request)
        if self._is_bulk(payload):
            body = await offload.long(self._create, ctx, payload)
        else:
            body = await offload.short(self.engine, self._create, ctx, payload)
        return json_response(body, status=201)

    async def item(self, request: Request) -> Response:
        ctx = context_of(request)
        item_id = request.path_params["id"]
        if request.method == "GET":
            fields = request.query_params.getlist("fields")
            body = await offload.short(self.engine, self._show, ctx, item_id, fields)
            return json_response(body)
        if_match = request.headers.get("if-match")
        if request.method == "PUT":
            payload = await read_body(request)
            body = await offload.short(self.engine, self._update, ctx, item_id, payload, if_match)
            return json_response(body)
        await offload.short(self.engine, self._delete, ctx, item_id, if_match)
        return Response(status_code=204)

    def _is_bulk(self, payload: Any) -> bool:
        return isinstance(payload, dict) and self.resource.collection in payload and self.resource.name not in payload

    def _list(self, ctx: Context, q: listing.ListQuery, base_url: str) -> dict[str, Any]:
        hidden = policy.current().hidden(ctx, self.resource)
        with read_txn(self.engine) as conn:
            if q.marker is not None and q.limit:
                # An unknown (or invisible) marker is the resource's own 404, as in Neutron.
                self.service.get(ctx, conn, q.marker)
            # Services that can have the database write the JSON (ports) do;
            # the texts go into the answer as they are.
            texts = None
            if hasattr(self.service, "list_json"):
                texts = self.service.list_json(ctx, conn, q, self.service.json_keys(hidden, q.fields))
            if texts is None:
                items, more = self.service.list(ctx, conn, q)
        if texts is not None:
            rendered, ids, more = texts
            out: dict[str, Any] = {self.resource.collection: [orjson.Fragment(t) for t in rendered]}
        else:
            out = {self.resource.collection: [shape(i, hidden, q.fields) for i in items]}
            ids = [i["id"] for i in items]
        page_links = links(base_url, q, ids, more, self.resource.collection)
        if page_links:
            out[f"{self.resource.collection}_links"] = page_links
        return out

    def _show(self, ctx: Context, item_id: str, fields: list[str]) -> dict[str, Any]:
        hidden = policy.current().hidden(ctx, self.resource)
        with read_txn(self.engine) as conn:
            if hasattr(self.service, "show_json"):
                text = self.service.show_json(ctx, conn, item_id, self.service.json_keys(hidden, fields))
                if text is not None:
                    return {self.resource.name: orjson.Fragment(text)}
            item = self.service.get(ctx, conn, item_id)
        return {self.resource.name: shape(item, hidden, fields)}

    # -- policy: the one place a request's action and attributes are checked --
    def _may_create(self, ctx: Context, values: dict[str, Any]) -> None:
        """Before any reading: may the caller create this kind of thing at
        all (in its own project, under its own parents)? Readers get their
        403 here, before a 400 for naming another project or a 404 could
        tell them anything. Then the project it names, if another."""
        pol, action = policy.current(), f"create_{self.resource.name}"
        pol.enforce(ctx, action, {**values, **_owned_by(ctx.project_id)})
        project = stdattrs.named_project(ctx, values)
        if project != ctx.project_id:
            pol.enforce(ctx, action, {**values, **_owned_by(project)})

    def _authorize(self, ctx: Context, conn: Any, action: str, values: dict[str, Any],
                   item_id: str | None = None, memo: dict[Any, dict[str, Any]] | None = None) -> None:
        """``<action>_<resource>`` against the item (its parent's owner where
        the service says), then the attribute rules for what ``values`` set.
        An item the caller cannot see is a 404 first. ``memo``: the targets
        of a bulk create, by parent (``policy_parent``) and project."""
        pol = policy.current()
        if item_id is None and not hasattr(self.service, "policy_target"):
            target: dict[str, Any] = {"project_id": stdattrs.named_project(ctx, values)}
            target["tenant_id"] = target["project_id"]
        else:
            parent = getattr(self.service, "policy_parent", None)
            key = (values.get(parent), values.get("project_id"), values.get("tenant_id")) if parent else None
            if memo is not None and key is not None and key in memo:
                target = memo[key]
            else:
                target = self._target(ctx, conn, values, item_id)
                if memo is not None and key is not None:
                    memo[key] = target
            pol.enforce(ctx, f"{action}_{self.resource.name}", {**values, **target} if item_id is None else target)
        if values:
            pol.check_attributes(ctx, self.resource, action, values, target)

    def _target(self, ctx: Context, conn: Any, values: dict[str, Any], item_id: str | None) -> dict[str, Any]:
        if hasattr(self.service, "policy_target"):
            return dict(self.service.policy_target(ctx, conn, values, item_id))
        if hasattr(self.service, "fetch_row"):
            project = getattr(self.service.fetch_row(ctx, conn, item_id), "project_id", "")
        else:
            project = self.service.get(ctx, conn, item_id).get("project_id", "")
        return {"project_id": project, "tenant_id": project}

    @retry_db_errors
    def _create(self, ctx: Context, payload: Any) -> dict[str, Any]:
        bulk = self._is_bulk(payload)
        items = attrs.unwrap(self.resource, payload)
        values = [attrs.check_post(self.resource, item) for item in items]
        for v in values:
            self._may_create(ctx, v)
        hidden = policy.current().hidden(ctx, self.resource)
        with write_txn(self.engine) as conn:
            targets: dict[Any, dict[str, Any]] = {}
            for v in values:
                self._authorize(ctx, conn, "create", v, memo=targets)
            if len(values) == 1 and hasattr(self.service, "create_item"):
                # The service renders what it inserted: no read-back.
                created = [self.service.create_item(ctx, conn, values[0])]
            else:
                if len(values) > 1 and hasattr(self.service, "create_many"):
                    ids = self.service.create_many(ctx, conn, values)
                else:
                    ids = [self.service.create(ctx, conn, v) for v in values]
                if not bulk:
                    text = self._read_back_json(ctx, conn, ids[0], hidden)
                    if text is not None:
                        self._changed()
                        return {self.resource.name: text}
                if bulk and hasattr(self.service, "many_json"):
                    texts = self.service.many_json(conn, ids, self.service.json_keys(hidden, []))
                    if texts is not None:
                        self._changed()
                        return {self.resource.collection: [orjson.Fragment(t) for t in texts]}
                created = [self.service.get(Context.admin(ctx.project_id), conn, i) for i in ids]
        self._changed()
        if bulk:
            return {self.resource.collection: [shape(c, hidden, []) for c in created]}
        return {self.resource.name: shape(created[0], hidden, [])}

    @retry_db_errors
    def _update(self, ctx: Context, item_id: str, payload: Any, if_match: str | None) -> dict[str, Any]:
        changes = attrs.check_put(self.resource, payload)
        hidden = policy.current().hidden(ctx, self.resource)
        with write_txn(self.engine) as conn:
            self._authorize(ctx, conn, "update", changes, item_id)
            self.service.update(ctx, conn, item_id, changes, lambda rev: check_revision(rev, if_match))
            text = self._read_back_json(ctx, conn, item_id, hidden)
            item = self.service.get(Context.admin(ctx.project_id), conn, item_id) if text is None else None
        self._changed()
        if item is not None:  # shaped outside the write transaction
            return {self.resource.name: shape(item, hidden, [])}
        return {self.resource.name: text}

    def _read_back_json(self, ctx: Context, conn: Any, item_id: str, hidden: frozenset[str]) -> Any:
        """What was just written, as the database renders it (one statement),
        for services that can (ports); else None."""
        if not hasattr(self.service, "show_json"):
            return None
        text = self.service.show_json(Context.admin(ctx.project_id), conn, item_id,
                                      self.service.json_keys(hidden, []))
        return None if text is None else orjson.Fragment(text)

    @retry_db_errors
    def _delete(self, ctx: Context, item_id: str, if_match: str | None) -> None:
        with write_txn(self.engine) as conn:
            self._authorize(ctx, conn, "delete", {}, item_id)
            self.service.delete(ctx, conn, item_id, lambda rev: check_revision(rev, if_match))
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def _owned_by(project: str) -> dict[str, str]:
    """A target owned by ``project``, with parents (network, security group)
    of the same project: the question "may it create one of its own"."""
    return {"project_id": project, "tenant_id": project, "network:tenant_id": project,
            "security_group:tenant_id": project}
