"""``/v2.0/quotas``: limits per project (read by the project's members and
admins; changed and reset by admins), defaults and usage details."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon import errors
from kaon.api.controller import context_of, read_body
from kaon.api.responses import json_response
from kaon.core import quotas
from kaon.core.access import policy
from kaon.db.engine import read_txn, write_txn
from kaon.errors import HTTPBadRequest

DB_INTEGER_MAX = 2**31 - 1
PROJECT_ID_MAX = 255  # the project_id column's length


class QuotaRoutes:
    def __init__(self, engine: Engine, cfg: Any) -> None:
        self.engine = engine
        self.cfg = cfg

    def routes(self) -> list[Route]:
        return [
            Route("/v2.0/quotas", self.list_all),
            Route("/v2.0/quotas/project", self.whoami),
            Route("/v2.0/quotas/tenant", self.whoami),
            Route("/v2.0/quotas/{project}", self.one, methods=["GET", "PUT", "DELETE"]),
            Route("/v2.0/quotas/{project}/default", self.default),
            Route("/v2.0/quotas/{project}/details", self.details),
        ]

    @staticmethod
    def _may_read(ctx: Any, project: str) -> None:
        policy.enforce_owned(ctx, "get_quota", project)

    @staticmethod
    def _admin(ctx: Any, action: str = "get_quota", project: str | None = None) -> None:
        """Every project's quotas (no project: the list) or a change of one."""
        policy.current().enforce(ctx, action, {} if project is None else {"project_id": project, "tenant_id": project})

    async def whoami(self, request: Request) -> Response:
        """``GET /v2.0/quotas/project`` (and the older ``tenant``): the caller's project."""
        key = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        return json_response({key: {f"{key}_id": context_of(request).project_id}})

    async def list_all(self, request: Request) -> Response:
        ctx = context_of(request)
        self._admin(ctx)

        def run() -> list[dict[str, Any]]:
            with read_txn(self.engine) as conn:
                out = []
                for p in quotas.projects_with_limits(conn):
                    item: dict[str, Any] = dict(quotas.limits(conn, self.cfg, p))
                    item.update(project_id=p, tenant_id=p)
                    out.append(item)
                return out

        return json_response({"quotas": await run_in_threadpool(run)})

    async def one(self, request: Request) -> Response:
        ctx, project = context_of(request), request.path_params["project"]
        if request.method == "GET":
            self._may_read(ctx, project)

            def show() -> dict[str, int]:
                with read_txn(self.engine) as conn:
                    return quotas.limits(conn, self.cfg, project)

            return json_response({"quota": await run_in_threadpool(show)})
        self._admin(ctx, "delete_quota" if request.method == "DELETE" else "update_quota", project)
        if request.method == "DELETE":
            def reset() -> None:
                with write_txn(self.engine) as conn:
                    quotas.reset(conn, project)

            await run_in_threadpool(reset)
            return Response(status_code=204)
        if len(project) > PROJECT_ID_MAX:
            raise errors.InvalidInput(error_message=f"Invalid input for project_id. Reason: '{project}' exceeds "
                                                    f"maximum length of {PROJECT_ID_MAX}.")
        body = await read_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
            raise HTTPBadRequest(msg="Unable to find 'quota' in request body")
        asked = dict(body["quota"])
        # openstackclient sends these (quota set --force / --check-limit).
        asked.pop("force", None)
        check_limit = bool(asked.pop("check_limit", False))
        wanted = {}
        for res, limit in asked.items():
            if res not in quotas.DEFAULTS:
                raise HTTPBadRequest(msg=f"Unrecognized attribute(s) '{res}'")
            try:
                if isinstance(limit, bool):
                    raise ValueError
                value = int(limit)
            except (TypeError, ValueError):
                raise errors.InvalidInput(error_message=f"Invalid input for {res}. Reason: '{limit}' is not an "
                                                        "integer.") from None
            # Neutron: type:range [-1, DB_INTEGER_MAX_VALUE] (a signed 32-bit column).
            if not -1 <= value <= DB_INTEGER_MAX:
                raise errors.InvalidInput(error_message=f"Invalid input for {res}. Reason: '{limit}' is not in "
                                                        f"range -1 through {DB_INTEGER_MAX}.")
            wanted[res] = value

        def put() -> dict[str, int]:
            with write_txn(self.engine) as conn:
                if check_limit:
                    used = quotas.usage(conn, project)
                    for res, value in wanted.items():
                        if 0 <= value < used.get(res, 0):
                            raise HTTPBadRequest(msg=f"Quota limit {value} for {res} must be greater than or "
                                                     f"equal to already used {used[res]}")
                quotas.set_limits(conn, project, wanted)
                return quotas.limits(conn, self.cfg, project)

        return json_response({"quota": await run_in_threadpool(put)})

    async def default(self, request: Request) -> Response:
        ctx, project = context_of(request), request.path_params["project"]
        self._may_read(ctx, project)
        return json_response({"quota": {res: quotas.default_limit(self.cfg, res) for res in quotas.DEFAULTS}})

    async def details(self, request: Request) -> Response:
        ctx, project = context_of(request), request.path_params["project"]
        self._may_read(ctx, project)

        def run() -> dict[str, Any]:
            with read_txn(self.engine) as conn:
                limits = quotas.limits(conn, self.cfg, project)
                used = quotas.usage(conn, project)
            return {res: {"limit": limit, "used": used.get(res, 0), "reserved": 0} for res, limit in limits.items()}

        return json_response({"quota": await run_in_threadpool(run)})
