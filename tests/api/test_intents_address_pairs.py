"""l2population's peers carry allowed address pairs (kaon.compiler.l2_section), read from the
database through the snapshot, and follow the pairs when a VIP moves between ports."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api import core_support
from tests.api.agent_support import AGENT_CONF
from tests.api.core_support import Api
from tests.api.test_intents import VTEPS, compile_now, intent, lb_agent, vm

make_api, project = core_support.make_api, core_support.project


@pytest.fixture
def api(make_api: Any) -> Api:
    api = make_api(**AGENT_CONF)
    for host, ip in VTEPS.items():
        lb_agent(api, host, ip)
    return api


def remote(api: Api, host: str, net: str, vtep: str) -> dict[str, list[str]]:
    return {p["mac"]: p["ips"] for p in intent(api, host)["networks"][net]["peers"][vtep]}


def test_a_vip_follows_the_pairs_of_the_ports(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.0.0.0/24")
    client = vm(api, net["id"], "h1")
    first = vm(api, net["id"], "h2", allowed_address_pairs=[{"ip_address": "10.0.0.200"}])
    second = vm(api, net["id"], "h3")
    compile_now(api)
    ip = {p["id"]: p["fixed_ips"][0]["ip_address"] for p in (first, second)}
    assert remote(api, "h1", net["id"], "10.99.0.2") == {first["mac_address"]: [ip[first["id"]], "10.0.0.200"]}
    assert remote(api, "h1", net["id"], "10.99.0.3") == {second["mac_address"]: [ip[second["id"]]]}
    assert client["id"] in intent(api, "h1")["ports"]

    admin.update("ports", first["id"], allowed_address_pairs=[])
    admin.update("ports", second["id"], allowed_address_pairs=[
        {"ip_address": "10.0.0.200/32"}, {"ip_address": "10.0.0.201", "mac_address": "FA:16:3E:AA:BB:CC"}])
    assert set(compile_now(api)) >= {"h1", "h2"}
    assert remote(api, "h1", net["id"], "10.99.0.2") == {first["mac_address"]: [ip[first["id"]]]}
    assert remote(api, "h1", net["id"], "10.99.0.3") == {second["mac_address"]: [ip[second["id"]], "10.0.0.200"],
                                                         "fa:16:3e:aa:bb:cc": ["10.0.0.201"]}


def test_a_vip_on_two_ports_has_no_entry(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.0.0.0/24")
    vm(api, net["id"], "h1")
    pairs: Any = [{"ip_address": "10.0.0.200"}]
    b = vm(api, net["id"], "h2", allowed_address_pairs=pairs)
    c = vm(api, net["id"], "h3", allowed_address_pairs=pairs)
    compile_now(api)
    assert remote(api, "h1", net["id"], "10.99.0.2") == {b["mac_address"]: [b["fixed_ips"][0]["ip_address"]]}
    assert remote(api, "h1", net["id"], "10.99.0.3") == {c["mac_address"]: [c["fixed_ips"][0]["ip_address"]]}
