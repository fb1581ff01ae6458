"""The ``firewall`` section of host intents (kaon.compiler.firewall_section):
the pure projection, then driven through the API on SQLite and PostgreSQL —
default group semantics, remote groups as sets of every member's addresses,
address pairs, port_security_enabled=false, stateless groups."""

from __future__ import annotations

from typing import Any

from kaon.compiler.firewall_section import project_firewall, set_name
from kaon.compiler.snapshot import BoundPort, FirewallData, PortSecurity, Rule, Snapshot
from kaon.core.agents.agent_rpc import AgentRpc
from kaon.core.agents.snapshot import merge
from kaon.model.typed_json import encode
from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, report, services
from tests.api.core_support import Api

make_api, project = core_support.make_api, core_support.project


def test_projection_is_pure() -> None:
    snap = Snapshot((
        BoundPort("pa", "n1", "h1", "fa:16:3e:00:00:0a", True, "compute:nova", "s", ("10.0.0.10",)),
        BoundPort("pb", "n1", "h2", "fa:16:3e:00:00:0b", True, "compute:nova", "s", ("10.0.0.11",)),
        BoundPort("pr", "n1", "h1", "fa:16:3e:00:00:01", True, "network:router_interface", "s", ("10.0.0.1",)),
        BoundPort("po", "n1", "h1", "fa:16:3e:00:00:0c", True, "compute:nova", "s", ("10.0.0.12",)),
    ), {}, {}, {})
    rules = (Rule("ingress", "IPv4", None, None, None, None, "g1"),
             Rule("ingress", "IPv4", 6, 22, 22, "0.0.0.0/0", None),
             Rule("egress", "IPv6", None, None, None, None, None))
    data = FirewallData(
        {"pa": PortSecurity(True, (("10.0.0.64/28", None),), ("g1",)), "pb": PortSecurity(True, (), ("g1",)),
         "pr": PortSecurity(True, (), ()), "po": PortSecurity(False, (), ())},
        frozenset({"h1", "h2"}), {"g1": True}, {"g1": rules},
        {"g1": tuple(merge(["10.0.0.10", "10.0.0.11", "10.0.0.64/28", "10.0.0.70"]))})
    part = encode(project_firewall(data, "h1", snap))
    assert set(part["ports"]) == {"pa", "po"}  # the router port is Neutron's "trusted"
    assert part["ports"]["po"] == {"device": "tappo", "mac": "fa:16:3e:00:00:0c", "port_security": False}
    pa = part["ports"]["pa"]
    assert pa["device"] == "tappa" and pa["ips"] == ["10.0.0.10"] and pa["security_groups"] == ["g1"]
    assert pa["stateful"] is True
    assert pa["allowed_address_pairs"] == [{"ip_address": "10.0.0.64/28", "mac_address": "fa:16:3e:00:00:0a"}]
    assert part["groups"]["g1"]["rules"][0]["remote_set"] == set_name("g1", "IPv4") == "sg4-g1"
    assert part["sets"] == {"sg4-g1": ["10.0.0.10/31", "10.0.0.64/28"]}
    assert project_firewall(data, "h3", snap) is None


# -- through the API ----------------------------------------------------------------
def build(make_api: Any) -> Api:
    api = make_api(**AGENT_CONF)
    for host, ip in (("h1", "10.99.0.1"), ("h2", "10.99.0.2")):
        report(api, "lb", host, tunnel_types=["vxlan"], tunneling_ip=ip, l2_population=True)
    return api


def firewall(api: Api, host: str) -> dict[str, Any]:
    svc = services(api)
    svc.compiler.compile_now()
    reply = AgentRpc(svc.engine, svc.agents, svc.compiler).get_intent({"host": host, "known_generation": None})
    return reply["intent"].get("firewall", {})


def vm(caller: Any, net: str, host: str, **attrs: Any) -> dict[str, Any]:
    return caller.port(net, **{"binding:host_id": host, "device_owner": "compute:nova", **attrs})


def test_default_group_rules_remote_sets_and_pairs(make_api: Any) -> None:
    api = build(make_api)
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.0.0.0/24")
    a = vm(admin, net["id"], "h1", allowed_address_pairs=[{"ip_address": "10.0.0.200"}])
    b = vm(admin, net["id"], "h2")
    fw = firewall(api, "h1")
    assert list(fw["ports"]) == [a["id"]]
    port = fw["ports"][a["id"]]
    default = a["security_groups"][0]
    assert port["security_groups"] == [default] and port["port_security"] is True and port["stateful"] is True
    assert port["allowed_address_pairs"] == [{"ip_address": "10.0.0.200", "mac_address": a["mac_address"]}]
    rules = fw["groups"][default]["rules"]
    ingress = [r for r in rules if r["direction"] == "ingress"]
    assert sorted(r["remote_set"] for r in ingress) == [f"sg4-{default}", f"sg6-{default}"]
    assert sorted((r["ethertype"], r["remote_ip_prefix"], r["protocol"]) for r in rules
                  if r["direction"] == "egress") == [("IPv4", None, None), ("IPv6", None, None)]
    # The remote set: every member's fixed IPs and pairs, the other host's port included.
    want = sorted([a["fixed_ips"][0]["ip_address"], b["fixed_ips"][0]["ip_address"], "10.0.0.200"])
    assert sorted(fw["sets"][f"sg4-{default}"]) == sorted(merge(want)) and fw["sets"][f"sg6-{default}"] == []
    # A router port on the host is not filtered.
    admin.port(net["id"], device_owner="network:router_interface", **{"binding:host_id": "h1"})
    assert list(firewall(api, "h1")["ports"]) == [a["id"]]


def test_rules_protocols_stateless_and_disabled_port_security(make_api: Any) -> None:
    api = build(make_api)
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.1.0.0/24")
    web = admin.post("/v2.0/security-groups", json={"security_group": {"name": "web", "stateful": False}}).json()["security_group"]
    for body in ({"protocol": "tcp", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.9.0.7/16"},
                 {"protocol": "icmp", "port_range_min": 8, "port_range_max": 0, "ethertype": "IPv6"}):
        r = admin.post("/v2.0/security-group-rules", json={"security_group_rule": {
            "security_group_id": web["id"], "direction": "ingress", "ethertype": "IPv4", **body}})
        assert r.status_code == 201, r.text
    p = vm(admin, net["id"], "h1", security_groups=[web["id"]])
    open_port = vm(admin, net["id"], "h1", port_security_enabled=False, security_groups=[])
    fw = firewall(api, "h1")
    assert fw["ports"][p["id"]]["stateful"] is False and fw["groups"][web["id"]]["stateful"] is False
    rules = {(r["direction"], r["protocol"]): r for r in fw["groups"][web["id"]]["rules"]}
    assert rules[("ingress", 6)]["remote_ip_prefix"] == "10.9.0.0/16"  # normalized
    assert rules[("ingress", 6)]["port_range_min"] == rules[("ingress", 6)]["port_range_max"] == 22
    assert rules[("ingress", 58)]["port_range_min"] == 8  # IPv6 "icmp" is ICMPv6
    assert fw["ports"][open_port["id"]] == {"device": "tap" + open_port["id"][:11], "mac": open_port["mac_address"],
                                           "port_security": False}
    assert fw["sets"] == {}  # no rule names a remote group
