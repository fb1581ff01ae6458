"""The ASGI application: Neutron v2.0 at the root, identity under /identity."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy import exc as sa_exc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon import errors
from kaon.api import agent_routes, extensions, intent_routes, l3_routes, misc_routes, pool_routes
from kaon.api.controller import Collection
from kaon.api.limits import CrashBarrier, HttpLimits, RequestGuard
from kaon.api.responses import error_response, json_response
from kaon.api.sg_routes import DefaultingCollection
from kaon.api.tags import TagRoutes
from kaon.compiler.dhcp_section import DhcpSection, dhcp_options
from kaon.compiler.firewall_section import FirewallSection
from kaon.compiler.l3_section import RoutersSection
from kaon.compiler.service import Compiler
from kaon.core.pools.address_scopes import AddressScopes
from kaon.core.agents.agents import Agents, WriteHooks
from kaon.core.security.default_sg import DefaultRules
from kaon.core.agents.dhcp_ports import DhcpPorts
from kaon.core.l3.floatingips import FloatingIps
from kaon.core.l3.l3_binding import RouterPortHosts
from kaon.core.l2.networks import Networks
from kaon.core.l2.ports import Ports
from kaon.core.access.rbac import RbacPolicies
from kaon.core.l3.router_interfaces import RouterInterfaces
from kaon.core.l3.routers import Routers
from kaon.core.agents.scheduling import Scheduler
from kaon.core.security.security_groups import SecurityGroups
from kaon.core.security.sg_rules import SecurityGroupRules
from kaon.core.pools.subnetpools import SubnetPools
from kaon.core.l2.subnets import Subnets
from kaon.db.sg_tables import security_groups
from kaon.metrics import dbtime
from kaon.metrics.http import MetricsMiddleware
from kaon.metrics.state import StateCollector
from kaon.ml2.binding import Binder
from kaon.ml2.mech.registry import build_mechanism_drivers
from kaon.model.address_scope import ADDRESS_SCOPE
from kaon.model.floatingip import FLOATINGIP
from kaon.model.network import NETWORK
from kaon.model.port import PORT
from kaon.model.rbac import RBAC_POLICY
from kaon.model.router import ROUTER
from kaon.model.security_group import DEFAULT_SECURITY_GROUP_RULE, SECURITY_GROUP, SECURITY_GROUP_RULE
from kaon.model.subnet import SUBNET
from kaon.model.subnetpool import SUBNETPOOL
from kaon.web.changes import ChangeCounter
from kaon.web.gate import WebGate
from kaon.web.routes import WebRoutes

LOG = logging.getLogger("kaon.api")

HTTPInternalServerError = errors.define(
    "HTTPInternalServerError", errors.KaonError, "Request Failed: internal server error while processing your request."
)
HTTPNotFound = errors.define("HTTPNotFound", errors.NotFound, "The resource could not be found.")
HTTPMethodNotAllowed = errors.define("HTTPMethodNotAllowed", errors.KaonError, "Method not allowed.")
HTTPMethodNotAllowed.status = 405


async def versions(request: Request) -> Response:
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
        self.routers = Routers(self.networks, self.ports, cfg)
        self.router_interfaces = RouterInterfaces(self.routers, self.subnets, self.ports)
        self.floatingips = FloatingIps(self.networks, self.ports, cfg)
        self.security_groups = SecurityGroups(cfg)
        self.sg_rules = SecurityGroupRules(self.security_groups, cfg)
        self.default_sg_rules = DefaultRules(cfg)
        self.rbac = RbacPolicies(cfg)
        self.address_scopes = AddressScopes(cfg)
        self.subnetpools = SubnetPools(self.address_scopes, cfg)
        # Agents, DHCP/L3 scheduling and port binding (docs/design/binding.md).
        self.scheduler = Scheduler(cfg)
        self.binder = Binder(build_mechanism_drivers(cfg), types, cfg.default.agent_down_time)
        self.agents = Agents(cfg, self.binder, self.scheduler)
        hooks = WriteHooks(self.binder, self.scheduler)
        self.ports.create_hooks.append(hooks.port_created)
        self.ports.update_hooks.append(hooks.port_updated)
        self.subnets.dhcp_hooks.append(hooks.subnet_written)
        self.routers.create_hooks.append(hooks.router_created)
        dhcp_ports = DhcpPorts(self.ports)  # after scheduling: the ports follow the agents
        self.scheduler.dhcp_binding_hooks.append(dhcp_ports.sync_network)
        self.subnets.dhcp_hooks.append(dhcp_ports.sync_network)
        # A router's ports are bound on its L3 agent's host (kaon.core.l3.l3_binding).
        router_hosts = RouterPortHosts(self.binder)
        self.ports.create_hooks.append(router_hosts.port_created)
        self.routers.change_hooks.append(router_hosts.router_changed)
        self.scheduler.router_hooks.append(router_hosts.router_changed)
        # Per-host intents for the agents (docs/design/agents.md); the server
        # starts its thread and gives it the bus's notify.
        self.compiler = Compiler(engine, sections=[RoutersSection(), DhcpSection(dhcp_options(cfg)),
                                                  FirewallSection()])

    def collections(self) -> dict[str, Collection]:
        validate = self.cfg.default.filter_validation
        return {
            "networks": Collection(NETWORK, self.networks, self.engine, validate),
            "subnets": Collection(SUBNET, self.subnets, self.engine, validate),
            "ports": Collection(PORT, self.ports, self.engine, validate,
                                extra_filters=frozenset({"fixed_ips", "ip_address", "subnet_id"})),
            "routers": Collection(ROUTER, self.routers, self.engine, validate),
            "floatingips": Collection(FLOATINGIP, self.floatingips, self.engine, validate),
            "security-groups": DefaultingCollection(SECURITY_GROUP, self.security_groups, self.engine, validate),
            "security-group-rules": DefaultingCollection(SECURITY_GROUP_RULE, self.sg_rules, self.engine,
                                                         validate),
            "default-security-group-rules": Collection(DEFAULT_SECURITY_GROUP_RULE, self.default_sg_rules,
                                                       self.engine, validate),
            "rbac-policies": Collection(RBAC_POLICY, self.rbac, self.engine, validate),
            "subnetpools": Collection(SUBNETPOOL, self.subnetpools, self.engine, validate),
            "address-scopes": Collection(ADDRESS_SCOPE, self.address_scopes, self.engine, validate),
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
    routes.extend(l3_routes.RouterActionRoutes(engine, services.routers, services.router_interfaces).routes())
    routes.extend(agent_routes.AgentRoutes(services).routes())
    routes.extend(pool_routes.SubnetPoolActionRoutes(engine, services.subnetpools).routes())
    routes.extend(TagRoutes(engine, "security-groups", security_groups, services.security_groups).routes())
    routes.extend(intent_routes.routes(services.compiler))
    changes = ChangeCounter()  # the topology page's live updates (kaon.web)
    routes.extend(WebRoutes(services, changes).routes())
    if identity_app is not None:
        from kaon.identity.app import identity_routes

        routes.extend(identity_routes(identity_app))

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

    async def data_error(request: Request, exc: Exception) -> Response:
        # A value the validators let through but the database cannot hold
        # (PostgreSQL: out of an integer column's range, a NUL in text).
        LOG.info("data error on %s %s: %s", request.method, request.url.path, exc)
        return error_response(errors.InvalidInput(error_message="a value in the request cannot be stored"))

    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware

    app = Starlette(
        routes=routes,
        exception_handlers={
            errors.KaonError: kaon_error,
            sa_exc.IntegrityError: integrity,
            sa_exc.DataError: data_error,
            HTTPException: http_error,
        },
        # Unhandled errors: a 500 that keeps the connection (kaon.api.limits).
        middleware=[Middleware(CrashBarrier, render=HTTPInternalServerError)],
    )
    app.state.services = services
    def written() -> None:
        services.compiler.mark_dirty()
        changes.bump()

    wrapped = WriteNotifier(app, written)
    # Body size and NUL characters, before any route reads the body
    # (authentication reads only headers).
    guarded = RequestGuard(wrapped, HttpLimits.from_config(cfg).max_request_body_size)
    authed = auth(guarded) if auth is not None else guarded
    # Outside authentication: the page's login and cookie (kaon.web.gate), and
    # outermost the metrics, which time everything and answer GET /metrics.
    dbtime.instrument(engine)
    state = CollectorRegistry(auto_describe=True)
    state.register(StateCollector(engine))
    return MetricsMiddleware(WebGate(authed), state)  # type: ignore[return-value]


class WriteNotifier:
    """After a POST/PUT/DELETE that can move an intent, tell the compiler
    that the state may have moved.

    Marking dirty is an event set: cheap, and harmless when the request
    changed nothing (the compile finds every digest unchanged). Writes that
    no intent depends on are left out, so they wake no compile: tags,
    quotas, the identity service, the default-rule template (it only
    shapes groups made later).
    """

    QUIET_PREFIXES = ("/identity", "/v2.0/quotas", "/v2.0/default-security-group-rules", "/ui")

    def __init__(self, app: Any, mark_dirty: Any) -> None:
        self.app = app
        self.mark_dirty = mark_dirty
        self.state = app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "DELETE") \
                and self.moves_intents(scope["path"]):
            self.mark_dirty()

    @classmethod
    def moves_intents(cls, path: str) -> bool:
        if path.startswith(cls.QUIET_PREFIXES):
            return False
        parts = path.split("/")  # /v2.0/<collection>/<id>/tags[/<tag>]
        return not (len(parts) >= 5 and parts[4] == "tags")
