"""``GET /v2.0/trace`` (admin): ``kaon trace`` through the API.

Parameters: ``from_port`` (a port's id or name) or ``from_external`` (an
address outside the cloud, for floating IPs inbound), ``to``
(``ADDRESS[:PORT]``), ``protocol`` (icmp, tcp, udp; default icmp), ``port``,
``source`` (the address the VM sends from, to test anti-spoofing). Answers
``{"trace": {"query", "delivered", "verdict", "hops": [...]}}``.
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
    async def trace(request: Request) -> Response:
        policy.current().enforce(context_of(request), "get_trace", {})
        from kaon.trace.model import query_from
        from kaon.trace.source import trace_in

        query = query_from(dict(request.query_params))
        result = await run_in_threadpool(trace_in, services.engine, query)
        return json_response({"trace": result.as_dict()})

    return [Route("/v2.0/trace", trace, methods=["GET"])]
