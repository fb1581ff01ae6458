"""The router namespace plan (kaon.agent.l3_plan) and the routers section's projection, pure."""

from __future__ import annotations

from dataclasses import replace

from kaon.agent import l3_plan
from kaon.compiler.l3_section import project_routers
from kaon.compiler.snapshot import L3Data, PortAddress, RouterPort, RouterRow
from kaon.model.intent import FloatingIp, Route, RouterInterface

QR = "11111111-aaaa-4000-8000-000000000001"
QG = "22222222-bbbb-4000-8000-000000000002"


def data(**kw: object) -> L3Data:
    ports = (RouterPort(QR, "r1", False, "fa:16:3e:00:00:01", 1450, (PortAddress("10.0.0.1", "10.0.0.0/24", "10.0.0.1"),)),
             RouterPort(QG, "r1", True, "fa:16:3e:00:00:02", 1500,
                        (PortAddress("192.168.100.20", "192.168.100.0/24", "192.168.100.1"),)))
    base = {"l3_hosts": frozenset({"h1", "h2"}), "routers": (RouterRow("r1", "h1", True),), "ports": {"r1": ports},
            "fips": {"r1": (("192.168.100.30", "10.0.0.5"),)}, "routes": {}}
    return L3Data(**{**base, **kw})  # type: ignore[arg-type]


def test_projection_puts_a_router_on_its_host_only() -> None:
    part = project_routers(data(), "h1")["r1"]
    assert part.interfaces == (RouterInterface(QR, "qr-11111111-aa", "tap11111111-aa", "fa:16:3e:00:00:01",
                                               ("10.0.0.1/24",), 1450),)
    assert part.gateway is not None
    assert part.gateway.device == "qg-22222222-bb" and part.gateway.gateway_ip == "192.168.100.1"
    assert part.floating_ips == (FloatingIp("192.168.100.30", "10.0.0.5"),)
    assert project_routers(data(), "h2") == {}


def test_no_gateway_no_floating_ips() -> None:
    d = data(ports={"r1": data().ports["r1"][:1]})
    part = project_routers(d, "h1")["r1"]
    assert part.gateway is None and part.floating_ips == ()
    assert "snat to" not in l3_plan.nat_body(part) and "dnat" not in l3_plan.nat_body(part)


def test_nat_rules_snat_fip_and_hairpin() -> None:
    part = project_routers(data(), "h1")["r1"]
    body = l3_plan.nat_body(part)
    assert body.count("ip daddr 192.168.100.30 dnat to 10.0.0.5") == 2  # prerouting and output
    assert 'ip saddr 10.0.0.5 oifname "qg-22222222-bb" snat to 192.168.100.30' in body
    assert 'ip saddr { 10.0.0.0/24 } oifname "qg-22222222-bb" snat to 192.168.100.20' in body
    assert 'ip saddr { 10.0.0.0/24 } ct status dnat oifname != "qg-22222222-bb" masquerade' in body
    # The FIP's SNAT comes before the router-wide SNAT: first match wins.
    assert body.index("snat to 192.168.100.30") < body.index("snat to 192.168.100.20")
    no_snat = l3_plan.nat_body(replace(part, enable_snat=False))
    assert "snat to 192.168.100.20" not in no_snat and "snat to 192.168.100.30" in no_snat


def test_devices_and_routes() -> None:
    part = project_routers(data(routes={"r1": (("172.16.0.0/16", "10.0.0.7"),)}), "h1")["r1"]
    devs = {d.name: d for d in l3_plan.devices(part)}
    assert devs["qg-22222222-bb"].cidrs == {"192.168.100.20/24", "192.168.100.30/32"}
    assert devs["qr-11111111-aa"].tap == "tap11111111-aa" and devs["qr-11111111-aa"].mtu == 1450
    assert l3_plan.routes(part) == {("default", "192.168.100.1", "qg-22222222-bb"), ("172.16.0.0/16", "10.0.0.7", "")}


QR6 = "33333333-cccc-4000-8000-000000000003"


def dual_stack(ra_mode: str | None) -> L3Data:
    """r1 with an IPv6 subnet behind a second qr- and a v6 subnet on the external network."""
    v4 = data()
    qr, qg = v4.ports["r1"]
    qr6 = RouterPort(QR6, "r1", False, "fa:16:3e:00:00:03", 1450,
                     (PortAddress("2001:db8:1::1", "2001:db8:1::/64", "2001:db8:1::1", ra_mode, ("2001:db8::53",)),))
    qg = replace(qg, addresses=(*qg.addresses, PortAddress("2001:db8:ff::20", "2001:db8:ff::/64", "2001:db8:ff::1")))
    return replace(v4, ports={"r1": (qr, qg, qr6)})


def test_ipv6_is_routed_not_natted() -> None:
    part = project_routers(dual_stack("slaac"), "h1")["r1"]
    assert part.gateway is not None and part.gateway.gateway_ip6 == "2001:db8:ff::1"
    assert l3_plan.routes(part) == {("default", "192.168.100.1", "qg-22222222-bb"),
                                    ("default", "2001:db8:ff::1", "qg-22222222-bb")}
    body = l3_plan.nat_body(part)
    assert "2001:db8" not in body  # no SNAT, no v6 in the ip table at all
    assert "2001:db8:1::1/64" in next(d.cidrs for d in l3_plan.devices(part) if d.name == "qr-33333333-cc")


def test_radvd_conf_per_ra_mode() -> None:
    slaac = l3_plan.radvd_conf(project_routers(dual_stack("slaac"), "h1")["r1"])
    assert slaac.startswith("interface qr-33333333-cc\n{\n   AdvSendAdvert on;\n")
    assert "AdvLinkMTU 1450;" in slaac and "RDNSS 2001:db8::53 {};" in slaac
    assert "prefix 2001:db8:1::/64\n   {\n        AdvOnLink on;\n        AdvAutonomous on;\n   };" in slaac
    assert "AdvManagedFlag" not in slaac and "AdvOtherConfigFlag" not in slaac
    assert "qr-11111111" not in slaac  # the IPv4 interface is not advertised
    stateful = l3_plan.radvd_conf(project_routers(dual_stack("dhcpv6-stateful"), "h1")["r1"])
    assert "AdvManagedFlag on;" in stateful and "AdvAutonomous off;" in stateful and "RDNSS" not in stateful
    stateless = l3_plan.radvd_conf(project_routers(dual_stack("dhcpv6-stateless"), "h1")["r1"])
    assert "AdvOtherConfigFlag on;" in stateless and "AdvAutonomous on;" in stateless
    assert "AdvManagedFlag" not in stateless
    # No ipv6_ra_mode: still the link's router (Neutron's radvd runs), but no prefix to autoconfigure.
    bare = l3_plan.radvd_conf(project_routers(dual_stack(None), "h1")["r1"])
    assert "interface qr-33333333-cc" in bare and "prefix" not in bare


def test_no_ipv6_no_radvd() -> None:
    assert l3_plan.radvd_conf(project_routers(data(), "h1")["r1"]) == ""


def test_ipv6_extra_routes() -> None:
    part = project_routers(dual_stack("slaac"), "h1")["r1"]
    part = replace(part, routes=(Route("2001:db8:9::/64", "2001:db8:1::99"),))
    assert ("2001:db8:9::/64", "2001:db8:1::99", "") in l3_plan.routes(part)
