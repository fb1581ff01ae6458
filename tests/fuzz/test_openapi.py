"""``GET /openapi.json``: generated from kaon.model, covers every route the
app serves, and is a valid OpenAPI 3 document (openapi-spec-validator and
schemathesis' own loader)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from kaon.api import openapi
from kaon.model.network import NETWORK
from tests.api.core_support import ADMIN, MEMBER, Api, build_api


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Any:
    state = tmp_path_factory.mktemp("openapi")
    api = build_api(f"sqlite:///{state / 'kaon.sqlite'}", state)
    yield api
    api.close()


@pytest.fixture(scope="module")
def doc(api: Api) -> dict[str, Any]:
    r = api.client.get("/openapi.json", headers={"X-Project-Id": "p", "X-Roles": MEMBER})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()


def starlette_app(app: Any) -> Starlette:
    while not isinstance(app, Starlette):
        app = app.app  # the auth middleware, then the write notifier
    return app


def test_every_route_of_the_app_is_documented(api: Api, doc: dict[str, Any]) -> None:
    routes = [r for r in starlette_app(api.app).routes if isinstance(r, Route) and openapi.is_neutron_route(r)]
    served = {(route.path, method.lower()) for route in routes for method in (route.methods or set()) - {"HEAD"}}
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert "x-kaon-undocumented" not in doc
    assert served == documented
    # The generic collections, the actions and the sub-resources are all there.
    for path, method in (("/v2.0/networks", "post"), ("/v2.0/ports/{id}", "put"),
                         ("/v2.0/routers/{id}/add_router_interface", "put"),
                         ("/v2.0/subnetpools/{id}/add_prefixes", "put"), ("/v2.0/quotas/{project}", "put"),
                         ("/v2.0/rbac-policies", "post"), ("/v2.0/networks/{id}/tags/{tag}", "put"),
                         ("/v2.0/agents/{id}/dhcp-networks", "post"), ("/openapi.json", "get")):
        assert method in doc["paths"][path], (path, method)


def test_a_route_without_a_schema_is_reported() -> None:
    async def nothing(request: Any) -> Any:
        raise AssertionError

    builder = openapi.Builder({"networks": NETWORK}, {})
    out = builder.document([Route("/v2.0/networks", nothing, methods=["GET"]),
                            Route("/v2.0/gizmos", nothing, methods=["GET", "POST"]),
                            Route("/ui/page", nothing, methods=["GET"])])
    assert out["x-kaon-undocumented"] == ["GET /v2.0/gizmos", "POST /v2.0/gizmos"]
    assert list(out["paths"]) == ["/v2.0/networks"]


def test_schemas_come_from_the_definitions(doc: dict[str, Any]) -> None:
    def body(path: str, method: str) -> dict[str, Any]:
        schema = doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        return schema["oneOf"][0] if "oneOf" in schema else schema

    subnet = body("/v2.0/subnets", "post")["properties"]["subnet"]
    assert subnet["required"] == ["ip_version", "network_id"]
    assert subnet["additionalProperties"] is False
    props = subnet["properties"]
    assert props["ip_version"] == {"enum": [4, 6, "4", "6"]}
    assert props["name"] == {"type": "string", "maxLength": 255}
    assert props["enable_dhcp"] == {"type": "boolean"}
    assert props["prefixlen"] == {"type": "integer", "minimum": 0, "maximum": 128}
    assert props["ipv6_ra_mode"] == {}  # a lambda in the definition: any value is fuzzed
    assert "id" not in props and "shared" not in props  # read-only: not in POST
    port = body("/v2.0/ports", "post")["properties"]["port"]["properties"]
    assert "normal" in port["binding:vnic_type"]["enum"]
    assert port["security_groups"] == {}
    assert port["fixed_ips"]["items"]["properties"]["subnet_id"]["format"] == "uuid"
    # PUT takes only what may change, and POST's bulk form is there.
    network_put = body("/v2.0/networks/{id}", "put")["properties"]["network"]["properties"]
    assert "mtu" in network_put and "availability_zone_hints" not in network_put
    bulk = doc["paths"]["/v2.0/networks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert bulk["oneOf"][1]["required"] == ["networks"]
    # List filters follow filter/sort flags and filter converters.
    params = {p["name"]: p for p in doc["paths"]["/v2.0/networks"]["get"]["parameters"]}
    assert params["admin_state_up"]["schema"] == {"type": "array", "items": {"type": "boolean"}}
    assert "segments" not in params  # filter=False
    assert "subnets" not in params["sort_key"]["schema"]["items"]["enum"]
    assert "id" in params["sort_key"]["schema"]["items"]["enum"]


def test_valid_openapi_3(doc: dict[str, Any]) -> None:
    import schemathesis
    from openapi_spec_validator import validate
    from schemathesis.core.result import Ok

    validate(doc)
    schema = schemathesis.openapi.from_dict(doc)
    results = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), [r for r in results if not isinstance(r, Ok)]
    assert len(results) == sum(len(v) for v in doc["paths"].values())


def test_any_role_may_read_it(api: Api, tmp_path: Path) -> None:
    for roles in (ADMIN, MEMBER, "reader"):
        r = api.client.get("/openapi.json", headers={"X-Project-Id": "p", "X-Roles": roles})
        assert r.status_code == 200 and r.json()["openapi"].startswith("3.")
