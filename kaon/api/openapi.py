"""``GET /openapi.json``: an OpenAPI 3.0 document of the Neutron API kaon
serves, generated from the resource definitions in :mod:`kaon.model`.

The document is built from the running application's own route table:
every ``Route`` of the app is looked up in the operation builders below
(the generic collections from their :class:`~kaon.model.attrs.Resource`,
then the sub-resources and actions), so a route is documented exactly
when it is served. A route no builder knows is left out and named in
``x-kaon-undocumented``; the test suite fails on it, so a new route needs
its schema (tests/api/test_openapi.py). The ``/identity`` mount is
Keystone's API, not Neutron's, and is not part of this document.

Like every other ``/v2.0`` read it needs a token (any role); Neutron
publishes its API reference, so the document holds nothing secret.
docs/design/fuzz.md describes the document and the fuzz tier built on it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon.api import openapi_types as types
from kaon.api.controller import Collection
from kaon.api.tags import MAX_TAGS
from kaon.core.quotas import DEFAULTS as QUOTA_RESOURCES
from kaon.model.agent import AGENT
from kaon.model.attrs import Resource

Schema = dict[str, Any]
Operation = dict[str, Any]
PATH = "/openapi.json"
ERROR: Schema = {"type": "object", "properties": {"NeutronError": {"type": "object", "properties": {
    "type": {"type": "string"}, "message": {"type": "string"}, "detail": {"type": "string"}}}}}
PAGING: tuple[tuple[str, Schema], ...] = (
    ("limit", {"type": "integer", "minimum": 0}), ("marker", {"type": "string"}),
    ("page_reverse", {"type": "boolean"}), ("sort_dir", {"enum": ["asc", "desc"]}))
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
# Routes of the app that are not Neutron's API: kaon.web's topology page and
# its own JSON (the /identity mount is skipped as a Mount).
NOT_NEUTRON = ("/ui",)


def is_neutron_route(route: Any) -> bool:
    """Whether ``route`` belongs in the document (and its coverage test)."""
    return isinstance(route, Route) and not route.path.startswith(NOT_NEUTRON)


def _param(name: str, where: str, schema: Schema, *, many: bool = False) -> Schema:
    if many:
        schema = {"type": "array", "items": schema}
    out: Schema = {"name": name, "in": where, "schema": schema}
    if where == "path":
        out["required"] = True
    elif many:
        out.update(style="form", explode=True)
    return out


def _path_params(path: str) -> list[Schema]:
    return [_param(name, "path", {"type": "string"}) for name in re.findall(r"{(\w+)}", path)]


def _body(schema: Schema) -> Schema:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, status: int, *, body: Schema | None = None, query: Iterable[Schema] = (),
        result: Schema | None = None) -> Operation:
    ok: Schema = {"description": summary}
    if result is not None:
        ok["content"] = {"application/json": {"schema": result}}
    op: Operation = {"summary": summary, "responses": {
        str(status): ok,
        "default": {"description": "Neutron's error body", "content": {"application/json": {"schema": ERROR}}}}}
    params = list(query)
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = _body(body)
    return op


def _object(props: Mapping[str, Schema], required: Iterable[str] = (), closed: bool = True) -> Schema:
    out: Schema = {"type": "object", "properties": dict(props)}
    req = sorted(required)
    if req:
        out["required"] = req
    if closed:
        out["additionalProperties"] = False
    return out


def _wrapped(key: str, inner: Schema) -> Schema:
    return _object({key: inner}, [key])


class ResourceOps:
    """The generic controller's operations on one :class:`Resource`."""

    def __init__(self, resource: Resource) -> None:
        self.r = resource

    def item_schema(self) -> Schema:
        return _object({a.name: {} for a in self.r.attrs}, closed=False)

    def create_body(self) -> Schema:
        attrs = [a for a in self.r.attrs if a.post]
        one = _object({a.name: types.of_attr(a) for a in attrs}, [a.name for a in attrs if a.required])
        bulk = _object({self.r.collection: {"type": "array", "minItems": 1, "items": _wrapped(self.r.name, one)}},
                       [self.r.collection])
        return {"oneOf": [_wrapped(self.r.name, one), bulk]}

    def update_body(self) -> Schema:
        return _wrapped(self.r.name, _object({a.name: types.of_attr(a) for a in self.r.attrs if a.put}))

    def list_query(self, extra_filters: Iterable[str] = ()) -> list[Schema]:
        out = [_param("fields", "query", {"enum": [a.name for a in self.r.attrs]}, many=True),
               _param("sort_key", "query", {"enum": sorted(self.r.sortable())}, many=True)]
        out += [_param(name, "query", schema) for name, schema in PAGING]
        out += [_param(a.name, "query", types.of_filter(a), many=True) for a in self.r.attrs if a.filter]
        out += [_param(name, "query", {"type": "string"}, many=True)
                for name in extra_filters if name not in self.r.filterable()]
        if "tags" in self.r.by_name:
            out += [_param(name, "query", {"type": "string"}) for name in TAG_FILTERS]
        out.append(_param("changed_since", "query", {"type": "string", "format": "date-time"}))
        return out

    def collection(self, method: str, extra_filters: Iterable[str] = ()) -> Operation | None:
        r = self.r
        many = _object({r.collection: {"type": "array", "items": self.item_schema()}}, closed=False)
        if method == "GET":
            return _op(f"List {r.collection}", 200, query=self.list_query(extra_filters), result=many)
        if method == "POST" and any(a.post for a in r.attrs):
            return _op(f"Create a {r.name} (or several: bulk)", 201, body=self.create_body())
        return None

    def member(self, method: str) -> Operation | None:
        r = self.r
        one = _wrapped(r.name, self.item_schema())
        if method == "GET":
            fields = _param("fields", "query", {"enum": [a.name for a in r.attrs]}, many=True)
            return _op(f"Show a {r.name}", 200, query=[fields], result=one)
        if method == "PUT":  # also where nothing may change: those answer 400 or 405
            return _op(f"Update a {r.name}", 200, body=self.update_body(), result=one)
        if method == "DELETE":
            return _op(f"Delete a {r.name}", 204)
        return None


def _tags(method: str, one: bool) -> Operation | None:
    if one:
        return {"GET": _op("Confirm a tag", 204), "PUT": _op("Add a tag", 201),
                "DELETE": _op("Remove a tag", 204)}.get(method)
    tags = {"type": "array", "maxItems": MAX_TAGS, "items": {"type": "string", "minLength": 1, "maxLength": 255}}
    return {"GET": _op("List the tags", 200), "DELETE": _op("Remove every tag", 204),
            "PUT": _op("Replace the tags", 200, body=_object({"tags": tags}, ["tags"]))}.get(method)


def _interface_body() -> Schema:
    return _object({"subnet_id": types.UUID, "port_id": types.UUID})


def _extraroutes_body() -> Schema:
    return _wrapped("router", _object({"routes": types.STRUCTURED["routes"]}, ["routes"]))


def _quota_body() -> Schema:
    limit = {"type": "integer", "minimum": -1}
    return _wrapped("quota", _object({name: limit for name in QUOTA_RESOURCES}))


def _fixed() -> dict[tuple[str, str], Operation]:
    """The routes that are not a generic collection, by (path, method)."""
    listing = [_param("fields", "query", {"type": "string"}, many=True)]
    out = {
        ("/", "GET"): _op("API versions", 200),
        ("/v2.0", "GET"): _op("The v2.0 resources", 200),
        ("/v2.0/", "GET"): _op("The v2.0 resources", 200),
        (PATH, "GET"): _op("This document", 200),
        ("/v2.0/extensions", "GET"): _op("List API extensions", 200),
        ("/v2.0/service-providers", "GET"): _op("List service providers", 200, query=[
            _param(n, "query", {"type": "string"}, many=True) for n in ("fields", "service_type", "name")]),
        ("/v2.0/doctor", "GET"): _op("The server-side findings of kaon doctor (admin)", 200),
        ("/v2.0/trace", "GET"): _op("A logical packet trace over the compiled intents, like kaon trace (admin)", 200,
                                    query=[_param("to", "query", {"type": "string"}),
                                           _param("from_port", "query", {"type": "string"}),
                                           _param("from_external", "query", {"type": "string"}),
                                           _param("source", "query", {"type": "string"}),
                                           _param("protocol", "query", {"type": "string",
                                                                        "enum": ["icmp", "tcp", "udp"]}),
                                           _param("port", "query", {"type": "integer", "minimum": 1,
                                                                    "maximum": 65535})]),
        ("/v2.0/extensions/{alias}", "GET"): _op("Show an API extension", 200),
        ("/v2.0/routers/{id}/add_router_interface", "PUT"):
            _op("Attach a subnet or port to a router", 200, body=_interface_body()),
        ("/v2.0/routers/{id}/remove_router_interface", "PUT"):
            _op("Detach a subnet or port from a router", 200, body=_interface_body()),
        ("/v2.0/routers/{id}/add_extraroutes", "PUT"): _op("Add extra routes", 200, body=_extraroutes_body()),
        ("/v2.0/routers/{id}/remove_extraroutes", "PUT"):
            _op("Remove extra routes", 200, body=_extraroutes_body()),
        ("/v2.0/subnetpools/{id}/add_prefixes", "PUT"): _op(
            "Add prefixes to a subnet pool", 200, body=_object({"prefixes": types.STRUCTURED["prefixes"]},
                                                               ["prefixes"])),
        ("/v2.0/subnetpools/{id}/remove_prefixes", "PUT"): _op(
            "Remove prefixes from a subnet pool", 200,
            body=_object({"prefixes": types.STRUCTURED["prefixes"]}, ["prefixes"])),
        ("/v2.0/quotas", "GET"): _op("List projects' quotas (admin)", 200),
        ("/v2.0/quotas/project", "GET"): _op("The caller's project", 200),
        ("/v2.0/quotas/tenant", "GET"): _op("The caller's project (old name)", 200),
        ("/v2.0/quotas/{project}", "GET"): _op("Show a project's quotas", 200),
        ("/v2.0/quotas/{project}", "PUT"): _op("Set a project's quotas (admin)", 200, body=_quota_body()),
        ("/v2.0/quotas/{project}", "DELETE"): _op("Reset a project's quotas (admin)", 204),
        ("/v2.0/quotas/{project}/default", "GET"): _op("Default quotas", 200),
        ("/v2.0/quotas/{project}/details", "GET"): _op("Quotas with usage", 200),
        ("/v2.0/network-ip-availabilities", "GET"): _op("IP availability of networks (admin)", 200, query=[
            _param(n, "query", {"type": "string"}, many=True)
            for n in ("network_id", "network_name", "project_id", "tenant_id", "ip_version")]),
        ("/v2.0/network-ip-availabilities/{id}", "GET"): _op("IP availability of one network (admin)", 200),
        ("/v2.0/agents/{id}/dhcp-networks", "GET"): _op("Networks of a DHCP agent (admin)", 200, query=listing),
        ("/v2.0/agents/{id}/dhcp-networks", "POST"): _op(
            "Schedule a network to a DHCP agent (admin)", 201, body=_object({"network_id": types.UUID},
                                                                            ["network_id"])),
        ("/v2.0/agents/{id}/dhcp-networks/{network_id}", "DELETE"):
            _op("Unschedule a network from a DHCP agent (admin)", 204),
        ("/v2.0/networks/{id}/dhcp-agents", "GET"): _op("DHCP agents of a network (admin)", 200, query=listing),
        ("/v2.0/agents/{id}/l3-routers", "GET"): _op("Routers of an L3 agent (admin)", 200, query=listing),
        ("/v2.0/agents/{id}/l3-routers", "POST"): _op(
            "Schedule a router to an L3 agent (admin)", 201, body=_object({"router_id": types.UUID},
                                                                          ["router_id"])),
        ("/v2.0/agents/{id}/l3-routers/{router_id}", "DELETE"):
            _op("Unschedule a router from an L3 agent (admin)", 204),
        ("/v2.0/routers/{id}/l3-agents", "GET"): _op("L3 agents of a router (admin)", 200, query=listing),
        ("/v2.0/availability_zones", "GET"): _op("List availability zones", 200, query=[
            _param(n, "query", {"type": "string"}, many=True) for n in ("name", "resource", "state")]),
        # A long poll: it answers when every host applied its intents, or after ``wait`` seconds.
        ("/v2.0/host-intents", "GET"): _op("Intent generations per host (admin)", 200, query=[
            _param("wait", "query", {"type": "number", "minimum": 0, "maximum": 300})]),
    }
    return out


class Builder:
    """Finds the operation for a (path, method) of the app's route table."""

    def __init__(self, resources: Mapping[str, Resource], extra_filters: Mapping[str, Iterable[str]]) -> None:
        self.resources = {"agents": AGENT, **resources}
        self.extra_filters = extra_filters
        self.fixed = _fixed()
        names = "|".join(re.escape(n) for n in self.resources)
        self.generic: list[tuple[re.Pattern[str], Callable[[re.Match[str], str], Operation | None]]] = [
            (re.compile(rf"^/v2\.0/({names})$"), lambda m, meth: ResourceOps(self.resources[m[1]]).collection(
                meth, self.extra_filters.get(m[1], ()))),
            (re.compile(rf"^/v2\.0/({names})/{{id}}$"),
             lambda m, meth: ResourceOps(self.resources[m[1]]).member(meth)),
            (re.compile(rf"^/v2\.0/({names})/{{id}}/tags$"), lambda m, meth: _tags(meth, False)),
            (re.compile(rf"^/v2\.0/({names})/{{id}}/tags/{{tag}}$"), lambda m, meth: _tags(meth, True)),
        ]

    def operation(self, path: str, method: str) -> Operation | None:
        if (path, method) in self.fixed:
            return self.fixed[(path, method)]
        for pattern, build in self.generic:
            match = pattern.match(path)
            if match:
                return build(match, method)
        return None

    def document(self, routes: Iterable[Any]) -> dict[str, Any]:
        paths: dict[str, dict[str, Operation]] = {}
        missing: list[str] = []
        for route in routes:
            if not is_neutron_route(route):
                continue
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                op = self.operation(route.path, method)
                if op is None:
                    missing.append(f"{method} {route.path}")
                    continue
                op = {**op, "operationId": f"{method.lower()} {route.path}"}
                params = _path_params(route.path)
                if params:
                    op["parameters"] = params + op.get("parameters", [])
                paths.setdefault(route.path, {})[method.lower()] = op
        doc: dict[str, Any] = {
            "openapi": "3.0.3",
            "info": {"title": "kaon: OpenStack Networking API v2.0", "version": "2.0",
                     "description": "Generated from kaon's resource definitions (kaon.model)."},
            "paths": paths,
        }
        if missing:
            doc["x-kaon-undocumented"] = missing
        return doc


def route(cols: Mapping[str, Collection]) -> Route:
    """``GET /openapi.json``; built on first request from the app's routes, then kept."""
    builder = Builder({name: c.resource for name, c in cols.items()},
                      {name: sorted(c.extra_filters) for name, c in cols.items()})
    cache: dict[str, bytes] = {}

    async def serve(request: Request) -> Response:
        if "doc" not in cache:
            cache["doc"] = orjson.dumps(builder.document(request.app.routes))
        return Response(cache["doc"], media_type="application/json")

    return Route(PATH, serve, methods=["GET"])
