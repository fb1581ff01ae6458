"""``GET /v2.0/service-providers`` (service-type): Neutron's L3 router
plugin's providers, for every authenticated user, with Neutron's filters and
fields, on SQLite and PostgreSQL, against an in-process server."""

from __future__ import annotations

import pytest

from tests.api.l3_env import Env, l3_env

NEUTRON_L3 = [
    {"service_type": "L3_ROUTER_NAT", "name": "dvrha", "default": False},
    {"service_type": "L3_ROUTER_NAT", "name": "dvr", "default": False},
    {"service_type": "L3_ROUTER_NAT", "name": "ha", "default": False},
    {"service_type": "L3_ROUTER_NAT", "name": "single_node", "default": True},
]


@pytest.fixture
def env(db_url, tmp_path) -> Env:
    return l3_env(db_url, tmp_path)


def test_listed_for_everyone(env: Env) -> None:
    for caller in (env.admin, env.demo, env.reader, env.alt):
        assert caller.get("/service-providers") == {"service_providers": NEUTRON_L3}
    ext = env.demo.get("/extensions/service-type")["extension"]
    assert ext["name"] == "Neutron Service Type Management"


def test_filters_and_fields(env: Env) -> None:
    [default] = env.demo.get("/service-providers?default=true")["service_providers"]
    assert default["name"] == "single_node"
    assert [p["name"] for p in env.demo.get("/service-providers?default=False")["service_providers"]] == [
        "dvrha", "dvr", "ha"]
    names = env.demo.get("/service-providers?name=ha&name=dvr")["service_providers"]
    assert [p["name"] for p in names] == ["dvr", "ha"]
    assert env.demo.get("/service-providers?service_type=LOADBALANCERV2")["service_providers"] == []
    assert env.demo.get("/service-providers?service_type=L3_ROUTER_NAT&fields=name")["service_providers"] == [
        {"name": p["name"]} for p in NEUTRON_L3]
    env.demo.error("GET", "/service-providers?default=perhaps", None, 400, "InvalidInput")

