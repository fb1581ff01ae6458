"""The ``dhcp`` section of host intents (kaon.compiler.dhcp_section), driven
through the API on SQLite and PostgreSQL: the DHCP host gets its port,
subnets, hosts and options; isolated metadata follows router interfaces."""

from __future__ import annotations

from typing import Any

import pytest

from kaon.compiler.dhcp_section import DhcpOptions, DhcpSection, hostname
from kaon.compiler.snapshot import DhcpData, DhcpServed, PortRow, SubnetRow
from kaon.core.agents.agent_rpc import AgentRpc
from kaon.model.typed_json import encode
from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, report, services
from tests.api.core_support import Api, merged

make_api, project = core_support.make_api, core_support.project


def build(make_api: Any, **default: str) -> Api:
    api = make_api(**merged(AGENT_CONF, {"DEFAULT": default}))
    for host, ip in (("h1", "10.99.0.1"), ("h2", "10.99.0.2")):
        report(api, "lb", host, tunnel_types=["vxlan"], tunneling_ip=ip, l2_population=True,
               interface_mappings={"provider": "eth1"})
    report(api, "dhcp", "h1", start=True)
    return api


def intent(api: Api, host: str) -> dict[str, Any]:
    svc = services(api)
    svc.compiler.compile_now()
    return AgentRpc(svc.engine, svc.agents, svc.compiler).get_intent({"host": host, "known_generation": None})["intent"]


def test_the_dhcp_host_gets_port_subnets_hosts_and_options(make_api: Any) -> None:
    api = build(make_api, dhcp_lease_duration="600", dnsmasq_dns_servers="192.0.2.53")
    admin = api.admin()
    net = admin.network(**{"provider:network_type": "vxlan"})
    sub = admin.subnet(net["id"], "10.0.0.0/24", dns_nameservers=["10.0.0.53"],
                       host_routes=[{"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"}])
    vm = admin.port(net["id"], **{"binding:host_id": "h2", "device_owner": "compute:nova",
                                  "extra_dhcp_opts": [{"opt_name": "domain-search", "opt_value": "example.org"}]})
    h1 = intent(api, "h1")
    part = h1["dhcp"][net["id"]]
    port = part["port"]
    assert port["cidrs"] == ["10.0.0.2/24"] and port["mtu"] == net["mtu"] == 1450
    assert port["device"] == "ns-" + port["port_id"][:11] and port["tap"] == "tap" + port["port_id"][:11]
    assert port["port_id"] in h1["ports"]  # the L2 part plugs its tap
    [s] = part["subnets"]
    assert s["id"] == sub["id"] and s["gateway_ip"] == "10.0.0.1" and s["dns_nameservers"] == ["10.0.0.53"]
    assert s["host_routes"] == [{"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"}]
    [host] = part["hosts"]
    assert host["mac"] == vm["mac_address"] and host["ip"] == "10.0.0.3" and host["hostname"] == "host-10-0-0-3"
    assert host["extra_dhcp_opts"][0]["opt_name"] == "domain-search"
    assert part["lease_duration"] == 600 and part["dns_servers"] == ["192.0.2.53"]
    assert part["isolated_metadata"] is False
    assert "dhcp" not in intent(api, "h2")


def test_isolated_metadata_only_without_a_router_interface(make_api: Any) -> None:
    api = build(make_api, enable_isolated_metadata="true")
    admin = api.admin()
    net, sub = admin.net_with_subnet("10.1.0.0/24")
    assert intent(api, "h1")["dhcp"][net["id"]]["isolated_metadata"] is True
    router = admin.create("routers", name="r")
    r = admin.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": sub["id"]})
    assert r.status_code == 200, r.text
    part = intent(api, "h1")["dhcp"][net["id"]]
    assert part["isolated_metadata"] is False and part["subnets"][0]["isolated"] is False


def test_a_network_without_dhcp_is_not_served(make_api: Any) -> None:
    api = build(make_api)
    admin = api.admin()
    net, sub = admin.net_with_subnet("10.2.0.0/24")
    assert net["id"] in intent(api, "h1")["dhcp"]
    admin.update("subnets", sub["id"], enable_dhcp=False)
    assert net["id"] not in intent(api, "h1").get("dhcp", {})


@pytest.mark.parametrize("force", [False, True])
def test_projection_is_pure(force: bool) -> None:
    def sub(sid: str, cidr: str) -> SubnetRow:
        return SubnetRow(sid, cidr, 4, cidr.replace("0/24", "1"), True)

    dhcp = PortRow("p-dhcp-000000", "n1", "fa:16:3e:00:00:02", "network:dhcp", "dhcp-n1-h1", "h1",
                   (), (("s1", "10.0.0.2"), ("s2", "10.0.1.2")))
    vm = PortRow("p-vm", "n1", "fa:16:3e:00:00:05", "compute:nova", "vm", "h2", (), (("s1", "10.0.0.5"),))
    router = PortRow("p-r", "n1", "fa:16:3e:00:00:01", "network:router_interface", "r", "h1", (),
                     (("s2", "10.0.1.1"),))
    data = DhcpData((DhcpServed("n1", "h1", "dhcp-n1-h1"),), {"n1": (sub("s1", "10.0.0.0/24"), sub("s2", "10.0.1.0/24"))},
                    {"n1": (dhcp, router, vm)}, {"n1": 1500}, frozenset({"s2"}))
    section = DhcpSection(DhcpOptions(isolated_metadata=True, force_metadata=force))
    part = encode(section.networks(data, "h1")["n1"])
    assert part["port"]["cidrs"] == ["10.0.0.2/24", "10.0.1.2/24"]
    assert [s["isolated"] for s in part["subnets"]] == [True, force]
    assert [h["ip"] for h in part["hosts"]] == ["10.0.1.1", "10.0.0.5"]
    assert section.networks(data, "h2") == {}
    assert hostname("10.0.0.5") == "host-10-0-0-5"


def test_ipv6_subnets_carry_their_address_mode_and_v4_intents_do_not(make_api: Any) -> None:
    api = build(make_api)
    admin = api.admin()
    net = admin.network(**{"provider:network_type": "vxlan"})
    v4 = admin.subnet(net["id"], "10.3.0.0/24")
    v6 = admin.subnet(net["id"], "2001:db8:3::/64", ipv6_ra_mode="dhcpv6-stateful",
                      ipv6_address_mode="dhcpv6-stateful")
    vm = admin.port(net["id"], **{"binding:host_id": "h2", "device_owner": "compute:nova"})
    part = intent(api, "h1")["dhcp"][net["id"]]
    subnets = {s["id"]: s for s in part["subnets"]}
    assert subnets[v6["id"]]["ipv6_address_mode"] == "dhcpv6-stateful"
    assert "ipv6_address_mode" not in subnets[v4["id"]]  # the IPv4 JSON is what it was
    v6_ip = next(f["ip_address"] for f in vm["fixed_ips"] if f["subnet_id"] == v6["id"])
    assert any(h["ip"] == v6_ip and h["mac"] == vm["mac_address"] for h in part["hosts"])
    assert any(c.startswith("2001:db8:3::") and c.endswith("/64") for c in part["port"]["cidrs"])
