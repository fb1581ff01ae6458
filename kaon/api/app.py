"""The ASGI application: Neutron v2.0 at the root, identity under /identity."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import Engine, exc as sa_exc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from kaon import errors
from kaon.api import extensions, misc_routes
from kaon.api.controller import Collection
from kaon.api.responses import error_response, json_response
from kaon.core.networks import Networks
from kaon.core.ports import Ports
from kaon.core.subnets import Subnets
from kaon.model.network import NETWORK
from kaon.model.port import PORT
from kaon.model.subnet import SUBNET

LOG = logging.getLogger("kaon.api")

HTTPInternalServerError = errors.define(
    "HTTPInternalServerError", errors.KaonError, "Request Failed: internal server error while processing your request."
)
HTTPNotFound = errors.define("HTTPNotFound", errors.NotFound, "The resource could not be found.")
HTTPMethodNotAllowed = errors.define("HTTPMethodNotAllowed", errors.KaonError, "Method not allowed.")
HTTPMethodNotAllowed.status = 405


def versions(request: Request) -> Response:
    base = str(request.base_url).rstrip("/")
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                        "links": [{"href": f"{base}/v2.0/", "rel": "self"}]}]})


class Services:
    """The service objects of one server, wired once at start-up."""

    def __init__(self, cfg: Any, engine: Engine, types: Any) -> None:
        self.cfg = cfg
        self.engine = engine
        self.types = types
        self.networks = Networks(types, cfg)
        self.subnets = Subnets(self.networks, cfg)
        self.ports = Ports(self.networks, self.subnets, cfg)

    def collections(self) -> dict[str, Collection]:
        validate = self.cfg.default.filter_validation
        return {
            "networks": Collection(NETWORK, self.networks, self.engine, validate),
            "subnets": Collection(SUBNET, self.subnets, self.engine, validate),
            "ports": Collection(PORT, self.ports, self.engine, validate,
                                extra_filters=frozenset({"fixed_ips", "ip_address", "subnet_id"})),
        }


def build_app(cfg: Any, engine: Engine, types: Any, identity_app: Any = None,
              auth: Any = None) -> Starlette:
    services = Services(cfg, engine, types)
    cols = services.collections()
    routes: list[Any] = [Route("/", versions), *misc_routes.root_routes(cols)]
    for name, col in cols.items():
        routes.append(Route(f"/v2.0/{name}", col.collection, methods=["GET", "POST"]))
        routes.append(Route(f"/v2.0/{name}/{{id}}", col.item, methods=["GET", "PUT", "DELETE"]))
    routes.extend(extensions.routes())
    routes.extend(misc_routes.routes(services, cols))
    if identity_app is not None:
        routes.append(Mount("/identity", app=identity_app))

    async def kaon_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.KaonError)
        return error_response(exc)

    async def integrity(request: Request, exc: Exception) -> Response:
        LOG.info("integrity error: %s", exc)
        return error_response(errors.Conflict("A conflicting resource exists: the request was not applied."))

    async def http_error(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 500)
        if code == 404:
            return error_response(HTTPNotFound())
        if code == 405:
            return error_response(HTTPMethodNotAllowed())
        return error_response(HTTPInternalServerError())

    async def crash(request: Request, exc: Exception) -> Response:
        LOG.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(HTTPInternalServerError())

    from starlette.exceptions import HTTPException

    app = Starlette(
        routes=routes,
        exception_handlers={
            errors.KaonError: kaon_error,
            sa_exc.IntegrityError: integrity,
            HTTPException: http_error,
            Exception: crash,
        },
    )
    app.state.services = services
    if auth is not None:
        return auth(app)  # type: ignore[no-any-return]
    return app


def request_id() -> str:
    return f"req-{uuid.uuid4()}"
