"""kaon.trace over intents compiled by the real compiler sections (tests/unit/trace/world_fixture.py)."""

from __future__ import annotations

import pytest

from kaon.compiler.snapshot import PortSecurity, Rule
from kaon.trace.engine import trace
from kaon.trace.model import PortNotFound, Query, Trace, TraceError, parse_to
from kaon.trace.world import PortInfo
from tests.unit.trace import world_fixture as fx


def run(world=None, **kw: object) -> Trace:  # type: ignore[no-untyped-def]
    return trace(world or fx.build(), Query(**kw))  # type: ignore[arg-type]


def steps(t: Trace) -> list[str]:
    return [h.step for h in t.hops]


def test_same_network_across_hosts_names_rules_and_vteps() -> None:
    t = run(to="10.0.0.6", from_port="vm1")
    assert t.delivered
    assert steps(t) == ["source", "port-security", "egress", "l2", "ingress", "delivered"]
    assert t.hops[2].ids["rule_id"] == "e-web"
    assert "vxlan 1001" in t.hops[3].text and "10.99.0.1 → 10.99.0.2" in t.hops[3].text
    assert t.hops[4].ids["rule_id"] == "i-icmp"
    assert t.hops[-1].ids["port_id"] == "vm2"


def test_tcp_matches_the_remote_group_rule_and_udp_without_a_rule_is_dropped() -> None:
    assert run(to="10.0.0.6", from_port="vm1", protocol="tcp", dport=22).hops[-2].ids["rule_id"] == "i-ssh"
    t = run(to="10.0.0.6", from_port="vm1", protocol="tcp", dport=80)
    assert not t.delivered and t.hops[-1].step == "ingress" and "tcp/80" in t.hops[-1].text


def test_port_by_name_and_unknown_port() -> None:
    assert run(to="10.0.0.6", from_port="vm1").hops[0].ids["port_id"] == "vm1"
    with pytest.raises(PortNotFound):
        run(to="10.0.0.6", from_port="nope")


def test_across_a_router_to_a_group_without_ingress_is_dropped_naming_the_group() -> None:
    t = run(to="10.1.0.5", from_port="vm1")
    assert [h.ids.get("router_id") for h in t.hops if h.step == "router"] == ["r1", "r1"]
    assert "qr-" in t.hops[4].text
    assert not t.delivered and t.hops[-1].step == "ingress" and "closed" in t.hops[-1].text


def test_across_a_router_delivered() -> None:
    t = run(to="10.0.0.5", from_port="vm3")
    assert t.delivered and t.hops[-2].ids["rule_id"] == "i-icmp"


def test_to_the_outside_with_snat_and_without() -> None:
    t = run(to="8.8.8.8", from_port="vm1")
    assert t.delivered and "next hop 172.24.4.1" in t.hops[-1].text
    nat = next(h for h in t.hops if h.step == "nat")
    assert "SNAT" in nat.text and "172.24.4.2" in nat.text
    t = run(fx.build(snat=False), to="8.8.8.8", from_port="vm1")
    assert "no SNAT" in next(h for h in t.hops if h.step == "nat").text


def test_a_vm_with_a_floating_ip_leaves_with_it() -> None:
    t = run(to="8.8.8.8", from_port="vm2")
    assert "floating IP: source 10.0.0.6 → 172.24.4.10" in next(h for h in t.hops if h.step == "nat").text


def test_floating_ip_inbound_from_outside() -> None:
    t = run(to="172.24.4.10", from_external="203.0.113.9")
    assert t.delivered and t.hops[-1].ids["port_id"] == "vm2"
    assert "203.0.113.9 → 10.0.0.6" in t.hops[-1].text and t.destination == "10.0.0.6"
    t = run(to="172.24.4.10", from_external="203.0.113.9", protocol="tcp", dport=22)
    assert not t.delivered and t.hops[-1].step == "ingress"  # ssh only from the group's members
    t = run(to="172.24.4.99", from_external="203.0.113.9")
    assert not t.delivered and "no floating IP" in t.hops[-1].text


def test_hairpin_to_a_floating_ip_from_inside() -> None:
    t = run(to="172.24.4.10", from_port="vm1")
    assert t.delivered and "172.24.4.2 → 10.0.0.6" in t.hops[-1].text


def test_spoofed_source_is_dropped_and_an_address_pair_lets_it_through() -> None:
    t = run(to="10.0.0.6", from_port="vm1", source="10.0.0.99")
    assert steps(t) == ["source", "port-security"] and "anti-spoofing" in t.hops[-1].text
    world = fx.build(security={"vm1": PortSecurity(True, (("10.0.0.96/28", None),), ("web",))})
    t = run(world, to="10.0.0.6", from_port="vm1", source="10.0.0.99")
    assert "address pair 10.0.0.96/28" in t.hops[1].text
    # No l2population entry can answer for a CIDR: the network floods ARP, and the reply finds its way.
    assert t.delivered and any(n.flood_arp for i in world.intents.values() for n in i.networks.values())
    # A pair of one address has its entry (kaon.compiler.l2_section): answered across hosts.
    world = fx.build(security={"vm1": PortSecurity(True, (("10.0.0.99", None),), ("web",))})
    t = run(world, to="10.0.0.6", from_port="vm1", source="10.0.0.99")
    assert t.delivered and not any(n.flood_arp for i in world.intents.values() for n in i.networks.values())


def test_port_security_off_on_either_end() -> None:
    t = run(to="10.0.0.7", from_port="vm1", protocol="udp", dport=53)
    assert t.delivered and "port security off" in t.hops[-2].text
    t = run(to="10.0.0.5", from_port="open", source="10.0.0.99")
    assert "port security off" in t.hops[1].text and t.hops[2].step == "l2"
    # The request gets there; the reply to an address l2population does not know cannot cross back.
    assert not t.delivered and t.hops[-1].step == "reply" and "no l2population ARP entry for 10.0.0.99" \
        in t.hops[-1].text
    t = run(to="10.0.0.6", from_port="open", source="10.0.0.99")  # same host: the bridge floods the ARP
    assert t.delivered


def test_no_router_on_the_subnet() -> None:
    t = run(to="8.8.8.8", from_port="vm5")
    assert not t.delivered and "no router holds 10.2.0.1" in t.hops[-1].text


def test_nobody_has_the_address_on_the_network() -> None:
    t = run(to="10.0.0.200", from_port="vm1")
    assert not t.delivered and "nothing answers" in t.hops[-1].text


def test_missing_l2population_entry_names_the_vtep_problem() -> None:
    t = run(fx.build(vteps={"h1": "10.99.0.1"}), to="10.0.0.6", from_port="vm1")
    assert not t.delivered and t.hops[-1].step == "l2" and "tunneling_ip" in t.hops[-1].text


def test_binding_failed_destination() -> None:
    ports = {k: v for k, v in fx.PORTS.items() if k != "vm2"}
    failed = PortInfo("vm2", "vm2", "net-a", "fa:16:3e:00:00:02", ("10.0.0.6",), "compute:nova", "", "h9",
                      "binding_failed", "no mechanism driver bound the port on h9")
    t = run(fx.build(ports=ports, unbound=(failed,)), to="10.0.0.6", from_port="vm1")
    assert not t.delivered and "failed to bind on host h9: no mechanism driver" in t.hops[-1].text


def test_query_validation() -> None:
    with pytest.raises(TraceError):
        Query("10.0.0.6", from_port="vm1", protocol="tcp")
    with pytest.raises(TraceError):
        Query("10.0.0.6")
    with pytest.raises(TraceError):
        Query("not-an-ip", from_port="vm1")
    assert parse_to("10.0.0.5:22") == ("10.0.0.5", 22)
    assert parse_to("[fd00::5]:22") == ("fd00::5", 22)
    assert parse_to("fd00::5") == ("fd00::5", None)


def test_json_form_lists_the_hops() -> None:
    d = run(to="10.0.0.6", from_port="vm1").as_dict()
    assert d["delivered"] is True and d["verdict"].startswith("delivered to port vm2")
    assert [h["step"] for h in d["hops"]][-1] == "delivered" and d["hops"][2]["ids"]["rule_id"] == "e-web"


def test_ipv6_needs_ipv6_rules_and_is_not_translated() -> None:
    ports = dict(fx.PORTS)
    for pid, v6 in (("vm1", "fd00::5"), ("vm2", "fd00::6"), ("vm3", "fd01::5"), ("qr-a", "fd00::1"),
                    ("qr-b", "fd01::1")):
        name, net, host, mac, ips, owner = ports[pid]
        ports[pid] = (name, net, host, mac, (*ips, v6), owner)
    subnets = {"net-a": ("fd00::/64", "fd00::1"), "net-b": ("fd01::/64", "fd01::1")}
    world = fx.build(ports=ports, extra_subnets=subnets)
    t = run(world, to="fd00::6", from_port="vm1")
    assert not t.delivered and t.hops[-1].step == "egress" and "IPv6 icmp" in t.hops[-1].text
    world = fx.build(ports=ports, extra_subnets=subnets, extra_rules={
        "e6": ("web", Rule("egress", "IPv6", None, None, None, None, None)),
        "i6": ("web", Rule("ingress", "IPv6", 58, 128, None, None, None))})
    t = run(world, to="fd00::6", from_port="vm1")
    assert t.delivered and t.hops[-2].ids["rule_id"] == "i6"  # ICMPv6 echo request is type 128
    t = run(world, to="2001:db8::1", from_port="vm1")
    assert not t.delivered and "gateway has no IPv6 address" in t.hops[-1].text
    ports["qg"] = (*ports["qg"][:4], ("172.24.4.2", "2001:db8:1::2"), ports["qg"][5])
    world = fx.build(ports=ports, extra_subnets={**subnets, "ext": ("2001:db8:1::/64", "2001:db8:1::1")},
                     extra_rules={"e6": ("web", Rule("egress", "IPv6", None, None, None, None, None))})
    t = run(world, to="2001:db8::1", from_port="vm1")
    assert t.delivered and "no NAT for IPv6" in next(h.text for h in t.hops if h.step == "nat")
