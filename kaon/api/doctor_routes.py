"""``GET /v2.0/doctor`` (admin): the server-side findings of ``kaon doctor``.

The server's configuration and stored state only: per-host checks need the
agent's configuration on its host (``kaon doctor`` there). The checks block
(network timeouts, queries), so they run in a worker thread.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon.api.controller import context_of
from kaon.api.responses import json_response
from kaon.core.access import policy


def routes(services: Any) -> list[Route]:
    async def doctor(request: Request) -> Response:
        policy.current().enforce(context_of(request), "get_doctor", {})
        from kaon.doctor import registry

        report = await run_in_threadpool(registry.run, services.cfg, engine=services.engine,
                                         kinds=(registry.CONFIG, registry.DATA))
        return json_response({"doctor": report.as_dict()})

    return [Route("/v2.0/doctor", doctor, methods=["GET"])]
