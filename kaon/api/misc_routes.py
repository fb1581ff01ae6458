"""Routes beside the plain collections: the v2.0 resource index, tags,
quotas, IP availability and service providers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon.api import doctor_routes, service_providers, trace_routes
from kaon.api.controller import Collection
from kaon.api.ip_availability import IpAvailabilityRoutes
from kaon.api.quotas import QuotaRoutes
from kaon.api.responses import json_response
from kaon.api.tags import TagRoutes
from kaon.core.tags import TAGGED


def root_routes(cols: dict[str, Collection]) -> list[Route]:
    def index(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        return json_response({"resources": [
            {"name": c.resource.name, "collection": name,
             "links": [{"href": f"{base}/v2.0/{name}", "rel": "self"}]} for name, c in cols.items()]})

    return [Route("/v2.0", index), Route("/v2.0/", index)]


def routes(services: Any, cols: dict[str, Collection]) -> list[Route]:
    out: list[Route] = []
    for name in TAGGED:
        out.extend(TagRoutes(services.engine, name, cols[name].service).routes())
    out.extend(QuotaRoutes(services.engine, services.cfg).routes())
    out.extend(IpAvailabilityRoutes(services.engine).routes())
    out.extend(service_providers.routes())
    out.extend(doctor_routes.routes(services))
    out.extend(trace_routes.routes(services))
    return out
