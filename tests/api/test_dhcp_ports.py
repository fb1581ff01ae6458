"""The server's ``network:dhcp`` ports (kaon.core.agents.dhcp_ports): one per
(DHCP network, DHCP agent), at the pool's first address whatever the order
of port creation, bound on the agent's host, following scheduling and subnet
changes, gone with the network. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from kaon.core.agents.scheduling import RESERVED_DHCP_PORT, dhcp_device_id
from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, report
from tests.api.core_support import Api, Caller

make_api, project = core_support.make_api, core_support.project


@pytest.fixture
def api(make_api: Any) -> Api:
    api = make_api(**AGENT_CONF)
    for host, ip in (("h1", "10.99.0.1"), ("h2", "10.99.0.2")):
        report(api, "lb", host, tunnel_types=["vxlan"], tunneling_ip=ip, l2_population=True,
               interface_mappings={"provider": "eth1"})
    return api


def dhcp_ports(admin: Caller, net_id: str) -> list[dict[str, Any]]:
    return admin.list("ports", {"network_id": net_id, "device_owner": "network:dhcp"})


def ips(port: dict[str, Any]) -> list[str]:
    return sorted(f["ip_address"] for f in port["fixed_ips"])


def test_port_at_the_pools_first_address_bound_on_the_agents_host(api: Api) -> None:
    report(api, "dhcp", "h1", start=True)
    admin = api.admin()
    net, sub = admin.net_with_subnet("10.0.0.0/24", allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.50"}])
    [port] = dhcp_ports(admin, net["id"])
    assert ips(port) == ["10.0.0.10"]
    assert port["device_id"] == dhcp_device_id(net["id"], "h1")
    assert port["binding:host_id"] == "h1" and port["binding:vif_type"] == "bridge"
    assert port["project_id"] == net["project_id"] and port["security_groups"] == []


def test_the_address_does_not_depend_on_port_order(api: Api) -> None:
    report(api, "dhcp", "h1", start=True)
    admin = api.admin()
    first, _ = admin.net_with_subnet("10.1.0.0/24")
    admin.port(first["id"])  # a VM port before the second network exists
    second = admin.network()
    admin.port(second["id"])  # no subnet yet: no address
    admin.subnet(second["id"], "10.2.0.0/24")
    vm = admin.port(second["id"])
    assert ips(dhcp_ports(admin, first["id"])[0]) == ["10.1.0.2"]
    assert ips(dhcp_ports(admin, second["id"])[0]) == ["10.2.0.2"]
    assert ips(vm) == ["10.2.0.3"]


def test_agent_arriving_later_still_gets_one_port(api: Api) -> None:
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.3.0.0/24")
    assert dhcp_ports(admin, net["id"]) == []  # no DHCP agent: no port (Neutron neither)
    report(api, "dhcp", "h2", start=True)  # registers: auto-scheduling
    [port] = dhcp_ports(admin, net["id"])
    assert ips(port) == ["10.3.0.2"] and port["binding:host_id"] == "h2"
    report(api, "dhcp", "h2", start=True)  # a restart changes nothing
    assert [p["id"] for p in dhcp_ports(admin, net["id"])] == [port["id"]]


def test_subnets_add_and_remove_addresses_and_the_last_one_deletes(api: Api) -> None:
    report(api, "dhcp", "h1", start=True)
    admin = api.admin()
    net, a = admin.net_with_subnet("10.4.0.0/24")
    b = admin.subnet(net["id"], "10.5.0.0/24", enable_dhcp=False)
    assert ips(dhcp_ports(admin, net["id"])[0]) == ["10.4.0.2"]
    admin.update("subnets", b["id"], enable_dhcp=True)
    assert ips(dhcp_ports(admin, net["id"])[0]) == ["10.4.0.2", "10.5.0.2"]
    admin.update("subnets", a["id"], enable_dhcp=False)
    assert ips(dhcp_ports(admin, net["id"])[0]) == ["10.5.0.2"]
    admin.remove("subnets", b["id"])
    assert dhcp_ports(admin, net["id"]) == []


def test_unscheduling_reserves_and_unbinds_then_another_agent_claims(api: Api) -> None:
    old = report(api, "dhcp", "h1", start=True).agent_id
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.6.0.0/24")
    [port] = dhcp_ports(admin, net["id"])
    r = admin.delete(f"/v2.0/agents/{old}/dhcp-networks/{net['id']}")
    assert r.status_code == 204, r.text
    [reserved] = dhcp_ports(admin, net["id"])
    assert reserved["id"] == port["id"] and reserved["device_id"] == RESERVED_DHCP_PORT
    assert reserved["binding:host_id"] == "" and ips(reserved) == ["10.6.0.2"]
    report(api, "dhcp", "h2", start=True)  # a new agent: auto-scheduled, it claims the reserved port
    [claimed] = dhcp_ports(admin, net["id"])
    assert claimed["id"] == port["id"] and claimed["device_id"] == dhcp_device_id(net["id"], "h2")
    assert claimed["binding:host_id"] == "h2" and ips(claimed) == ["10.6.0.2"]


def test_network_delete_takes_its_dhcp_port(api: Api) -> None:
    report(api, "dhcp", "h1", start=True)
    admin = api.admin()
    net, _ = admin.net_with_subnet("10.7.0.0/24")
    assert len(dhcp_ports(admin, net["id"])) == 1
    admin.remove("networks", net["id"])
    assert api.count("ports", network_id=net["id"]) == 0


@pytest.mark.parametrize("mode", ["slaac", "dhcpv6-stateless"])
def test_auto_address_ipv6_subnets_get_their_address_the_auto_way(api: Api, mode: str) -> None:
    """A fixed address is refused on SLAAC/stateless subnets; the DHCP port asks for none there."""
    report(api, "dhcp", "h1", start=True)
    admin = api.admin()
    net = admin.network()
    # The network's first DHCP subnet is the IPv6 one: the port is created for it.
    sub = admin.subnet(net["id"], "2001:db8::/64", ip_version=6, ipv6_ra_mode=mode, ipv6_address_mode=mode)
    [port] = dhcp_ports(admin, net["id"])
    assert [f["subnet_id"] for f in port["fixed_ips"]] == [sub["id"]]
    assert port["fixed_ips"][0]["ip_address"] != "2001:db8::2"  # not the pool's first: its EUI-64 address
    admin.subnet(net["id"], "10.3.0.0/24")
    assert "10.3.0.2" in ips(dhcp_ports(admin, net["id"])[0])


def test_a_hand_made_dhcp_port_is_left_alone(api: Api) -> None:
    """Only the ports kaon made for its DHCP agents are claimed, readdressed or deleted."""
    admin = api.admin()
    net, sub = admin.net_with_subnet("10.4.0.0/24")
    mine = admin.port(net["id"], device_owner="network:dhcp", device_id="my-own-dhcp-server")
    report(api, "dhcp", "h1", start=True)  # an agent arrives: it gets a port of its own
    admin.update("subnets", sub["id"], enable_dhcp=False)  # its port goes; mine stays
    kept = admin.show("ports", mine["id"])
    assert kept["device_id"] == "my-own-dhcp-server" and kept["binding:host_id"] == ""
    assert [p["id"] for p in dhcp_ports(admin, net["id"])] == [mine["id"]]


def test_the_dhcp_port_is_not_held_to_the_projects_port_quota(api: Api, project: str) -> None:
    """The server's own port is not the user's request: a project with no
    port quota left still gets DHCP on its new subnet (Neutron's DHCP agent
    makes the port below the API's quota check), and its own ports stay refused."""
    report(api, "dhcp", "h1", start=True)
    admin, member = api.admin(), api.member(project)
    r = admin.put(f"/v2.0/quotas/{project}", json={"quota": {"port": 0}})
    assert r.status_code == 200, r.text
    net, _ = member.net_with_subnet("10.8.0.0/24")
    [port] = dhcp_ports(admin, net["id"])
    assert port["project_id"] == project and ips(port) == ["10.8.0.2"] and port["binding:host_id"] == "h1"
    r = member.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})
    assert r.status_code == 409 and r.json()["NeutronError"]["type"] == "OverQuota", r.text
