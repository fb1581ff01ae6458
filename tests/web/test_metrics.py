"""``GET /metrics``: scraped from an app built like the server's and parsed
with prometheus-client's own parser."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kaon.config import load_config
from kaon.metrics import agent as agent_metrics
from kaon.metrics import compiler as compiler_metrics
from kaon.metrics.http import route_template
from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, report, services
from tests.api.core_support import Api
from tests.fixtures.net import free_port
from tests.fixtures.server import KaonServer

make_api = core_support.make_api


def scrape(api: Api) -> dict[str, Any]:
    """``{sample name: {frozenset(labels): value}}``; /metrics needs no token."""
    r = api.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return out


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    return float(samples[name][frozenset(labels.items())])


@pytest.fixture
def api(make_api: Any) -> Api:
    return make_api(**AGENT_CONF)


def test_metrics_count_requests_ports_failures_and_lag(api: Api) -> None:
    admin = api.admin()
    report(api, "lb", "h1", tunnel_types=["vxlan"], tunneling_ip="10.9.0.1", l2_population=True,
           interface_mappings={"provider": "eth1"})
    net, _ = admin.net_with_subnet("10.0.0.0/24")
    bound = admin.port(net["id"], **{"binding:host_id": "h1", "device_owner": "compute:nova"})
    ghost = admin.port(net["id"], **{"binding:host_id": "ghost", "device_owner": "compute:nova"})
    assert ghost["binding:vif_type"] == "binding_failed"
    before = scrape(api)
    route = {"method": "GET", "route": "/v2.0/ports/{id}"}

    def shows(samples: dict[str, Any]) -> float:
        return samples.get("kaon_http_request_duration_seconds_count", {}).get(
            frozenset({**route, "status": "200"}.items()), 0.0)

    admin.show("ports", bound["id"])
    services(api).compiler.compile_now()
    after = scrape(api)

    assert shows(after) == shows(before) + 1
    assert value(after, "kaon_http_request_db_seconds_count", **route) >= 1
    assert value(after, "kaon_http_request_db_seconds_sum", **route) > 0
    assert value(after, "kaon_http_request_duration_seconds_count", method="POST", route="/v2.0/ports",
                 status="201") >= 2
    statuses: dict[str, int] = {}
    for p in admin.list("ports"):
        statuses[p["status"]] = statuses.get(p["status"], 0) + 1
    assert {dict(k)["status"]: v for k, v in after["kaon_ports"].items()} == statuses
    failures = {dict(k)["host"]: (dict(k)["reason"], v) for k, v in after["kaon_port_binding_failures"].items()}
    assert set(failures) == {"ghost"} and "ghost" in failures["ghost"][0] and failures["ghost"][1] == 1
    # h1's agent has applied nothing: every generation compiled for it is behind.
    assert value(after, "kaon_host_generation_lag", host="h1") >= 1
    assert value(after, "kaon_host_unapplied_seconds", host="h1") >= 0


def test_a_compiler_pass_is_counted(api: Api) -> None:
    # The compiler calls this hook once per pass (the call site is added where
    # the compile service lives after the agent/compiler restructuring).
    before = scrape(api)
    compiler_metrics.compile_pass(0.02, 3)
    after = scrape(api)
    count, hosts = "kaon_compiler_pass_duration_seconds_count", "kaon_compiler_hosts_changed_total"
    assert value(after, count) == value(before, count) + 1
    assert value(after, hosts) == value(before, hosts) + 3


def test_unmatched_paths_share_one_series(api: Api) -> None:
    for i in range(3):
        api.admin().get(f"/v2.0/no-such-thing-{i}")
    samples = scrape(api)["kaon_http_request_duration_seconds_count"]
    routes = {dict(k)["route"] for k in samples}
    assert "other" in routes and not any("no-such-thing" in r for r in routes)


def test_identity_routes_are_named_under_their_mount(web_server: KaonServer, admin: Any) -> None:
    with httpx.Client(base_url=web_server.url, timeout=10) as c:
        c.get("/identity/v3/users/some-user/projects", headers={"x-auth-token": admin.token})
        for i in range(2):
            c.get(f"/identity/no-such-{i}")
        text = c.get("/metrics").text
    routes = {s.labels.get("route") for f in text_string_to_metric_families(text) for s in f.samples}
    assert "/identity/v3/auth/tokens" in routes  # the fixture's logins
    assert "/identity/v3/users/{user_id}/projects" in routes
    assert "other" in routes and not any("no-such" in str(r) for r in routes)


def test_route_template_names_parameters() -> None:
    scope = {"path": "/v2.0/routers/r1/add_router_interface", "path_params": {"id": "r1"}}
    assert route_template(scope) == "/v2.0/routers/{id}/add_router_interface"
    assert route_template({"path": "/v2.0/ports"}) == "other"
    assert route_template({"path": "/v2.0/ports", "path_params": {}}) == "/v2.0/ports"


def test_agent_metrics_port_is_off_unless_configured() -> None:
    assert agent_metrics.serve(load_config([], {})) is None
    with pytest.raises(ValueError, match="metrics_port"):
        agent_metrics.metrics_port(load_config([], {"agent": {"metrics_port": "70000"}}))


def test_an_agent_serves_its_apply_durations_and_failures() -> None:
    port = free_port()
    server = agent_metrics.serve(load_config([], {"agent": {"metrics_port": str(port),
                                                            "metrics_bind_host": "127.0.0.1"}}))
    try:
        agent_metrics.sync_pass("h-metrics", 0.25, ok=True)
        agent_metrics.sync_pass("h-metrics", 0.5, ok=False)
        agent_metrics.action_failed("h-metrics", "add_vxlan")
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        samples = {(s.name, frozenset(s.labels.items())): s.value
                   for f in text_string_to_metric_families(r.text) for s in f.samples}
        host = ("host", "h-metrics")
        assert samples[("kaon_agent_apply_duration_seconds_count", frozenset({host}))] == 2
        assert samples[("kaon_agent_apply_duration_seconds_sum", frozenset({host}))] == 0.75
        assert samples[("kaon_agent_apply_failures_total", frozenset({host, ("what", "pass")}))] == 1
        assert samples[("kaon_agent_apply_failures_total", frozenset({host, ("what", "add_vxlan")}))] == 1
        # The port is taken now: a second agent says which option and why.
        with pytest.raises(OSError, match=f"metrics_port {port} on 127.0.0.1"):
            agent_metrics.serve(load_config([], {"agent": {"metrics_port": str(port),
                                                            "metrics_bind_host": "127.0.0.1"}}))
    finally:
        server.shutdown()
        server.server_close()
