"""Per-host intents and generations (kaon.compiler) and the server's side of
the bus (kaon.core.agents.agent_rpc), driven through the API on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from kaon.core.agents.agent_rpc import AgentRpc
from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, report, services
from tests.api.core_support import Api

make_api, project = core_support.make_api, core_support.project

VTEPS = {"h1": "10.99.0.1", "h2": "10.99.0.2", "h3": "10.99.0.3"}


@pytest.fixture
def api(make_api: Any) -> Api:
    api = make_api(**AGENT_CONF)
    for host, ip in VTEPS.items():
        lb_agent(api, host, ip)
    return api


def lb_agent(api: Api, host: str, ip: str, **extra: Any) -> None:
    report(api, "lb", host, tunnel_types=["vxlan"], tunneling_ip=ip, l2_population=True,
           interface_mappings={"provider": "eth1"}, **extra)


def compile_now(api: Api) -> dict[str, int]:
    return services(api).compiler.compile_now()


def rpc(api: Api) -> AgentRpc:
    svc = services(api)
    return AgentRpc(svc.engine, svc.agents, svc.compiler)


def vm(api: Api, net: str, host: str, **attrs: Any) -> dict[str, Any]:
    return api.admin().port(net, **{"binding:host_id": host, "device_owner": "compute:nova", **attrs})


def intent(api: Api, host: str) -> dict[str, Any]:
    reply = rpc(api).get_intent({"host": host, "known_generation": None})
    return reply["intent"]


def test_a_host_gets_its_ports_networks_and_peers(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.0.0.0/24")
    a = vm(api, net["id"], "h1")
    b = vm(api, net["id"], "h2")
    c = vm(api, net["id"], "h2")
    changed = compile_now(api)
    assert set(changed) == {"h1", "h2"}
    mine = intent(api, "h1")
    assert list(mine["ports"]) == [a["id"]]
    port = mine["ports"][a["id"]]
    assert port["device"] == "tap" + a["id"][:11] and port["mac"] == a["mac_address"]
    assert port["ips"] == [a["fixed_ips"][0]["ip_address"]] and port["admin_state_up"] is True
    network = mine["networks"][net["id"]]
    seg = admin.show("networks", net["id"])
    assert network["bridge"] == "brq" + net["id"][:11] and network["network_type"] == "vxlan"
    assert network["segmentation_id"] == seg["provider:segmentation_id"] and network["mtu"] == 1450
    # l2population: the other host's VTEP, with exactly its ports there.
    assert list(network["peers"]) == ["10.99.0.2"]
    remote = sorted(network["peers"]["10.99.0.2"], key=lambda p: p["mac"])
    assert remote == sorted([{"mac": p["mac_address"], "ips": [p["fixed_ips"][0]["ip_address"]]} for p in (b, c)],
                            key=lambda p: p["mac"])
    # h3 has no port on the network: nothing for it, and it is nobody's peer.
    assert rpc(api).get_intent({"host": "h3", "known_generation": None}) == {
        "generation": 0, "intent": {"version": 1, "host": "h3", "networks": {}, "ports": {}}}
    assert list(intent(api, "h2")["networks"][net["id"]]["peers"]) == ["10.99.0.1"]


def test_generations_move_only_for_affected_hosts(api: Api) -> None:
    admin = api.admin()
    net1, _ = admin.net_with_subnet("10.0.0.0/24")
    net2, _ = admin.net_with_subnet("10.1.0.0/24")
    # Without security groups: L2 alone decides here. (Ports in one group see every
    # new member's address in their remote-group sets, the firewall section, and move too.)
    plain = {"port_security_enabled": False, "security_groups": []}
    vm(api, net1["id"], "h1", **plain)
    vm(api, net1["id"], "h2", **plain)
    vm(api, net2["id"], "h3", **plain)
    assert compile_now(api) == {"h1": 1, "h2": 1, "h3": 1}
    assert compile_now(api) == {}  # nothing changed, nothing moves
    # A port on net1 on h2 changes h2 (its port) and h1 (its peer entry), not h3.
    vm(api, net1["id"], "h2", **plain)
    assert compile_now(api) == {"h1": 2, "h2": 2}
    # A port on a network only h3 has: h3 alone.
    vm(api, net2["id"], "h3", **plain)
    assert compile_now(api) == {"h3": 2}
    # An unbound port changes nobody.
    admin.port(net1["id"], **plain)
    assert compile_now(api) == {}


def test_fetch_is_cheap_when_current_and_applied_is_recorded(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet()
    vm(api, net["id"], "h1")
    compile_now(api)
    server = rpc(api)
    full = server.get_intent({"host": "h1", "known_generation": None})
    assert full["generation"] == 1 and full["intent"]["ports"]
    assert server.get_intent({"host": "h1", "known_generation": 1}) == {"generation": 1, "intent": None}
    r = admin.get("/v2.0/host-intents")
    assert r.status_code == 200
    body = r.json()
    assert body["converged"] is False
    assert [(h["host"], h["generation"], h["applied_generation"]) for h in body["host_intents"]] == [("h1", 1, 0)]
    server.report_applied({"host": "h1", "generation": 1})
    server.report_applied({"host": "h1", "generation": 0})  # never goes back
    body = admin.get("/v2.0/host-intents", params={"wait": "1"}).json()
    assert body["converged"] is True and body["host_intents"][0]["applied_generation"] == 1


def test_host_intents_are_admin_only(api: Api, project: str) -> None:
    r = api.member(project).get("/v2.0/host-intents")
    assert r.status_code == 403 and r.json()["NeutronError"]["type"] == "PolicyNotAuthorized"
    assert api.admin().get("/v2.0/host-intents", params={"wait": "soon"}).status_code == 400


def test_device_status_from_the_ports_own_host_only(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet()
    a = vm(api, net["id"], "h1")
    assert admin.show("ports", a["id"])["status"] == "DOWN"
    server = rpc(api)
    assert server.update_devices({"host": "h2", "up": [a["id"]]}) == {"updated": 0}
    assert admin.show("ports", a["id"])["status"] == "DOWN"
    assert server.update_devices({"host": "h1", "up": [a["id"]]}) == {"updated": 1}
    shown = admin.show("ports", a["id"])
    assert shown["status"] == "ACTIVE" and shown["revision_number"] == a["revision_number"] + 1
    assert server.update_devices({"host": "h1", "up": [a["id"]]}) == {"updated": 0}  # no change, no bump
    assert server.update_devices({"host": "h1", "down": [a["id"]]}) == {"updated": 1}
    assert admin.show("ports", a["id"])["status"] == "DOWN"


def test_bad_bus_requests_are_refused(api: Api) -> None:
    server = rpc(api)
    from kaon.errors import BadRequest

    with pytest.raises(BadRequest):
        server("no_such_method", {})
    with pytest.raises(BadRequest):
        server("get_intent", {})
    with pytest.raises(BadRequest):
        server("report_applied", {"host": "h1", "generation": "7"})


def test_report_state_over_rpc_registers_and_binds(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet()
    p = vm(api, net["id"], "h4")
    assert admin.show("ports", p["id"])["binding:vif_type"] == "binding_failed"
    reply = rpc(api).report_state({"report": {
        "agent_type": "Linux bridge agent", "binary": "neutron-linuxbridge-agent", "topic": "N/A",
        "host": "h4", "start_flag": True,
        "configurations": {"tunnel_types": ["vxlan"], "tunneling_ip": "10.99.0.4", "l2_population": True}}})
    assert reply["status"] == "new"
    assert admin.show("ports", p["id"])["binding:vif_type"] == "bridge"
    compile_now(api)
    assert list(intent(api, "h4")["ports"]) == [p["id"]]
    assert list(intent(api, "h4")["networks"][net["id"]]["peers"]) == []


def test_a_change_of_vtep_moves_the_peers(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet()
    vm(api, net["id"], "h1")
    vm(api, net["id"], "h2")
    compile_now(api)
    lb_agent(api, "h2", "10.99.0.22")
    assert set(compile_now(api)) == {"h1"}
    assert list(intent(api, "h1")["networks"][net["id"]]["peers"]) == ["10.99.0.22"]


def test_the_result_does_not_depend_on_the_order_of_changes(api: Api) -> None:
    """Compiling after every step or once at the end gives the same intents (incremental == full)."""
    admin = api.admin()
    results = []
    for compile_each_step in (True, False):
        net, _ = admin.net_with_subnet()
        steps = [lambda h=h, i=i, n=net["id"]: vm(api, n, h, mac_address=f"fa:16:3e:00:00:0{i}",
                                     fixed_ips=[{"ip_address": f"10.0.0.1{i}"}])
                 for i, h in ((1, "h1"), (2, "h2"), (3, "h3"))]
        made = []
        for step in (steps if compile_each_step else list(reversed(steps))):
            made.append(step())
            if compile_each_step:
                compile_now(api)
        admin.remove("ports", next(p for p in made if p["binding:host_id"] == "h3")["id"])
        compile_now(api)
        snapshot = {}
        for host in VTEPS:
            got = intent(api, host)
            # Ids differ between the two rounds; compare by what the host sees.
            snapshot[host] = (sorted((p["mac"], tuple(p["ips"])) for p in got["ports"].values()),
                              sorted((vtep, sorted(x["mac"] for x in ports))
                                     for n in got["networks"].values() for vtep, ports in n["peers"].items()))
        results.append(snapshot)
        for port in made:
            if port["binding:host_id"] != "h3":
                admin.remove("ports", port["id"])
        admin.remove("networks", net["id"])
        compile_now(api)
        assert all(intent(api, h) == {"version": 1, "host": h, "networks": {}, "ports": {}} for h in VTEPS)
    assert results[0] == results[1]
    assert results[0]["h3"] == ([], [])
    assert results[0]["h1"][1] == [("10.99.0.2", ["fa:16:3e:00:00:02"])]


# -- l2population and allowed address pairs (kaon.compiler.l2_section) --
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
