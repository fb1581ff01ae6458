"""``/v2.0/host-intents``: where each host is, and waiting until all have applied.

Admin only (a kaon extension; Neutron has nothing like it, clients ignore it).
``GET /v2.0/host-intents`` lists ``{host, generation, applied_generation,
converged, compiled_at, applied_at}``; ``?wait=SECONDS`` first compiles
everything committed so far, then waits up to that long until every host has
applied its generation (the part OVN's ``nb_cfg``/``hv_cfg`` plays), and
answers with ``converged`` overall.
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
from kaon.core.agents import generations
from kaon.core.agents.intents import Compiler
from kaon.db.engine import read_txn
from kaon.errors import HTTPBadRequest

MAX_WAIT = 300.0


def _stamp(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _render(states: list[generations.HostState]) -> list[dict[str, Any]]:
    return [{"host": s.host, "generation": s.generation, "applied_generation": s.applied_generation,
             "converged": s.converged, "compiled_at": _stamp(s.compiled_at), "applied_at": _stamp(s.applied_at)}
            for s in states]


def routes(compiler: Compiler) -> list[Route]:
    async def listing(request: Request) -> Response:
        ctx = context_of(request)
        policy.current().enforce(ctx, "get_host_intents", {})
        wait = request.query_params.get("wait")
        if wait is not None:
            try:
                seconds = min(float(wait), MAX_WAIT)
            except ValueError:
                raise HTTPBadRequest(msg=f"wait must be a number of seconds, not {wait!r}") from None
            converged, states = await run_in_threadpool(compiler.wait_converged, seconds)
        else:
            def read() -> list[generations.HostState]:
                with read_txn(compiler.engine) as conn:
                    return generations.states(conn)
            states = await run_in_threadpool(read)
            converged = all(s.converged for s in states)
        return json_response({"host_intents": _render(states), "converged": converged})

    return [Route("/v2.0/host-intents", listing, methods=["GET"])]
