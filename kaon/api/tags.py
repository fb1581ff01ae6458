"""``/v2.0/{collection}/{id}/tags[/{tag}]`` (standard-attr-tag).

A tag change is a change of the resource: it bumps revision_number and
updated_at. Reading needs the resource to be visible; changing needs the
right to update it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon import errors
from kaon.api.controller import context_of, read_body
from kaon.api.responses import json_response
from kaon.core import tags
from kaon.db.engine import read_txn, write_txn
from kaon.db.retry import retry_db_errors, retrying

MAX_TAGS = 50


def _valid_tag(tag: Any) -> str:
    # Commas would make the tag impossible to filter on (tags=a,b), and a
    # slash impossible to address in a URL: kaon refuses both.
    if not isinstance(tag, str) or not tag or len(tag) > 255 or "," in tag or "/" in tag:
        raise errors.InvalidInput(error_message=f"'{tag}' is not a valid tag")
    return tag


def _valid_tags(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
        raise errors.InvalidInput(error_message="Invalid tags body")
    wanted = [_valid_tag(t) for t in body["tags"]]
    if len(set(wanted)) != len(wanted):
        raise errors.InvalidInput(error_message=f"Duplicate items in the list: '{', '.join(wanted)}'")
    if len(wanted) > MAX_TAGS:
        raise errors.InvalidInput(error_message=f"more than {MAX_TAGS} tags")
    return sorted(wanted)


class TagRoutes:
    def __init__(self, engine: Engine, collection: str, service: Any) -> None:
        self.engine = engine
        self.collection = collection
        self.rtype = collection.rstrip("s")
        self.table = tags.TAGGED[collection]
        self.service = service

    def routes(self) -> list[Route]:
        base = f"/v2.0/{self.collection}/{{id}}/tags"
        return [Route(base, self.all_tags, methods=["GET", "PUT", "DELETE"]),
                Route(base + "/{tag}", self.one_tag, methods=["GET", "PUT", "DELETE"])]

    def _writable(self, ctx: Any, conn: Connection, rid: str) -> Any:
        """A tag change is an update of the resource: its ``update_<resource>`` rule."""
        return self.service.writable_row(ctx, conn, rid, "update")

    async def all_tags(self, request: Request) -> Response:
        ctx, rid = context_of(request), request.path_params["id"]
        if request.method == "GET":
            def show() -> list[str]:
                with read_txn(self.engine) as conn:
                    self.service.fetch_row(ctx, conn, rid)
                    return tags.current(conn, rid)
            return json_response({"tags": await run_in_threadpool(show)})
        if request.method == "DELETE":
            await run_in_threadpool(self._replace, ctx, rid, [])
            return Response(status_code=204)
        wanted = _valid_tags(await read_body(request))
        return json_response({"tags": await run_in_threadpool(self._replace, ctx, rid, wanted)})

    @retry_db_errors
    def _replace(self, ctx: Any, rid: str, wanted: list[str]) -> list[str]:
        with write_txn(self.engine) as conn:
            row = self._writable(ctx, conn, rid)
            tags.replace(conn, self.table, row, self.rtype, wanted)
        return wanted

    async def one_tag(self, request: Request) -> Response:
        ctx, rid = context_of(request), request.path_params["id"]
        tag = _valid_tag(request.path_params["tag"])

        def run() -> int:
            if request.method == "GET":
                with read_txn(self.engine) as conn:
                    self.service.fetch_row(ctx, conn, rid)
                    if tag not in tags.current(conn, rid):
                        raise errors.TagNotFound(tag=tag)
                    return 204
            with write_txn(self.engine) as conn:
                row = self._writable(ctx, conn, rid)
                current = tags.current(conn, rid)
                if request.method == "PUT":
                    if tag in current:
                        return 201
                    if len(current) >= MAX_TAGS:
                        raise errors.InvalidInput(error_message=f"more than {MAX_TAGS} tags")
                    tags.add(conn, self.table, row, self.rtype, tag)
                    return 201
                if tag not in current:
                    raise errors.TagNotFound(tag=tag)
                tags.remove(conn, self.table, row, tag)
                return 204

        status = await run_in_threadpool(retrying, self.engine, run)
        return Response(status_code=status)
