"""/v2.0/subnets: CIDR, gateway, allocation pools, DNS servers, host routes,
IPv6 modes, overlap, in-use and who may change what."""

from __future__ import annotations

import pytest

from tests.api import core_support
from tests.api.core_support import Api, neutron_error

core_api, make_api = core_support.core_api, core_support.make_api
project, other_project = core_support.project, core_support.other_project


def post_subnet(api: Api, project: str, net_id: str, **attrs):
    return api.member(project).post("/v2.0/subnets", json={"subnet": {"network_id": net_id, **attrs}})


def test_ipv4_defaults(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    sub = me.subnet(net["id"], "10.1.0.0/24", name="s1")
    assert sub["name"] == "s1" and sub["network_id"] == net["id"]
    assert sub["ip_version"] == 4 and sub["cidr"] == "10.1.0.0/24"
    assert sub["gateway_ip"] == "10.1.0.1"
    assert sub["allocation_pools"] == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    assert sub["dns_nameservers"] == [] and sub["host_routes"] == []
    assert sub["enable_dhcp"] is True
    assert sub["ipv6_ra_mode"] is None and sub["ipv6_address_mode"] is None
    assert sub["subnetpool_id"] is None and sub["tags"] == [] and sub["revision_number"] == 0
    assert sub["project_id"] == sub["tenant_id"] == project
    assert me.show("subnets", sub["id"]) == sub
    assert me.show("networks", net["id"])["subnets"] == [sub["id"]]


def test_ipv6_defaults(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    sub = me.subnet(me.network()["id"], "2001:db8:1::/64")
    assert sub["ip_version"] == 6 and sub["gateway_ip"] == "2001:db8:1::1"
    # No broadcast address in IPv6: the pool runs to the last address.
    assert sub["allocation_pools"] == [{"start": "2001:db8:1::2", "end": "2001:db8:1:0:ffff:ffff:ffff:ffff"}]


@pytest.mark.parametrize("given, canonical, gateway", [
    ("10.2.0.77/24", "10.2.0.0/24", "10.2.0.1"),
    ("2001:DB8:2::5/64", "2001:db8:2::/64", "2001:db8:2::1"),
])
def test_cidr_is_canonicalised(core_api: Api, project: str, given: str, canonical: str, gateway: str) -> None:
    # Host bits are dropped, as Neutron does ("turn the CIDR into a proper subnet").
    me = core_api.member(project)
    sub = me.subnet(me.network()["id"], given)
    assert (sub["cidr"], sub["gateway_ip"]) == (canonical, gateway)


@pytest.mark.parametrize("attrs, fragment", [
    ({"cidr": "10.0.0/24", "ip_version": 4}, "Invalid input for cidr. Reason: '10.0.0/24' is not a valid IP subnet"),
    ({"cidr": "10.0.0.0", "ip_version": 4}, "is not a valid IP subnet"),
    ({"cidr": "banana/24", "ip_version": 4}, "is not a valid IP subnet"),
    ({"cidr": "10.0.0.0/24", "ip_version": 6}, "cidr '10.0.0.0/24' does not match the ip_version '6'"),
    ({"cidr": "10.0.0.0/24", "ip_version": 5}, "Invalid input for ip_version"),
    ({"cidr": "10.0.0.0/24"}, "Required attribute 'ip_version' not specified"),
    ({"ip_version": 4}, "A cidr must be specified in the absence of a subnet pool"),
    ({"cidr": "10.0.0.0/24", "ip_version": 4, "prefixlen": 24}, "cidr and prefixlen must not be supplied together"),
    ({"cidr": "0.0.0.0/0", "ip_version": 4, "enable_dhcp": False}, "0 is not allowed as CIDR prefix length"),
    ({"cidr": "::/0", "ip_version": 6, "enable_dhcp": False}, "0 is not allowed as CIDR prefix length"),
    ({"cidr": "224.0.0.0/24", "ip_version": 4}, "Multicast IP subnet is not supported if enable_dhcp is True"),
    ({"cidr": "ff00::/64", "ip_version": 6}, "Multicast IP subnet is not supported if enable_dhcp is True"),
    ({"cidr": "127.0.0.0/24", "ip_version": 4}, "Loopback IP subnet is not supported if enable_dhcp is True"),
    ({"cidr": "10.0.0.0/31", "ip_version": 4}, "incompatible with DHCP service enabled"),
    ({"cidr": "2001:db8::/127", "ip_version": 6}, "incompatible with DHCP service enabled"),
    ({"cidr": "0.0.0.0/8", "ip_version": 4}, "First IP '0.0.0.0' of network is not supported"),
])
def test_invalid_cidrs(core_api: Api, project: str, attrs: dict, fragment: str) -> None:
    net = core_api.member(project).network()
    neutron_error(post_subnet(core_api, project, net["id"], **attrs), 400, contains=fragment)
    assert core_api.count("subnets", network_id=net["id"]) == 0


def test_special_ranges_are_allowed_without_dhcp(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    assert me.subnet(net["id"], "224.0.0.0/24", enable_dhcp=False)["enable_dhcp"] is False
    assert me.subnet(net["id"], "10.9.9.8/31", enable_dhcp=False)["cidr"] == "10.9.9.8/31"
    # Turning DHCP on later runs the same checks.
    sub = me.subnet(net["id"], "127.0.0.0/24", enable_dhcp=False)
    r = me.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"enable_dhcp": True}})
    neutron_error(r, 400, contains="Loopback IP subnet is not supported")
    assert me.show("subnets", sub["id"])["enable_dhcp"] is False


# --- gateway ---------------------------------------------------------------------
@pytest.mark.parametrize("gateway, pools", [
    ("10.0.0.254", [{"start": "10.0.0.1", "end": "10.0.0.253"}]),
    (None, [{"start": "10.0.0.1", "end": "10.0.0.254"}]),
    ("10.0.0.100", [{"start": "10.0.0.1", "end": "10.0.0.99"}, {"start": "10.0.0.101", "end": "10.0.0.254"}]),
    ("192.168.77.1", [{"start": "10.0.0.1", "end": "10.0.0.254"}]),  # off-subnet gateways are allowed
])
def test_gateway_shapes_the_default_pool(core_api: Api, project: str, gateway, pools) -> None:
    me = core_api.member(project)
    sub = me.subnet(me.network()["id"], "10.0.0.0/24", gateway_ip=gateway)
    assert sub["gateway_ip"] == gateway and sub["allocation_pools"] == pools


@pytest.mark.parametrize("gateway, fragment", [
    ("10.0.0.0", "Gateway is not valid on subnet"),
    ("10.0.0.255", "Gateway is not valid on subnet"),
    ("2001:db8::1", "gateway_ip '2001:db8::1' does not match the ip_version '4'"),
    ("ten.zero", "Invalid input for gateway_ip"),
])
def test_invalid_gateways(core_api: Api, project: str, gateway: str, fragment: str) -> None:
    net = core_api.member(project).network()
    r = post_subnet(core_api, project, net["id"], cidr="10.0.0.0/24", ip_version=4, gateway_ip=gateway)
    neutron_error(r, 400, contains=fragment)
    assert core_api.count("subnets", network_id=net["id"]) == 0


# --- allocation pools --------------------------------------------------------------
def test_explicit_pools(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    pools = [{"start": "10.0.0.10", "end": "10.0.0.20"}, {"start": "10.0.0.30", "end": "10.0.0.40"}]
    sub = me.subnet(me.network()["id"], "10.0.0.0/24", allocation_pools=pools)
    assert sub["allocation_pools"] == pools and sub["gateway_ip"] == "10.0.0.1"
    v6 = me.subnet(me.network()["id"], "2001:db8::/64",
                   allocation_pools=[{"start": "2001:db8::10", "end": "2001:db8::20"}])
    assert v6["allocation_pools"] == [{"start": "2001:db8::10", "end": "2001:db8::20"}]


@pytest.mark.parametrize("pools, status, kind", [
    ([{"start": "10.0.0.200", "end": "10.0.1.5"}], 400, "OutOfBoundsAllocationPool"),
    ([{"start": "10.0.0.0", "end": "10.0.0.20"}], 400, "OutOfBoundsAllocationPool"),
    ([{"start": "10.0.0.250", "end": "10.0.0.255"}], 400, "OutOfBoundsAllocationPool"),
    ([{"start": "10.0.0.20", "end": "10.0.0.10"}], 400, "InvalidAllocationPool"),
    ([{"start": "10.0.0.2", "end": "2001:db8::2"}], 400, "InvalidAllocationPool"),
    ([{"start": "10.0.0.x", "end": "10.0.0.9"}], 400, None),
    ([{"start": "10.0.0.5"}], 400, "InvalidInput"),
    ("10.0.0.5-10.0.0.9", 400, "InvalidInput"),
    ([{"start": "10.0.0.10", "end": "10.0.0.20"}, {"start": "10.0.0.20", "end": "10.0.0.30"}], 409,
     "OverlappingAllocationPools"),
    ([{"start": "10.0.0.1", "end": "10.0.0.50"}], 409, "GatewayConflictWithAllocationPools"),
])
def test_invalid_pools(core_api: Api, project: str, pools, status: int, kind: str | None) -> None:
    net = core_api.member(project).network()
    r = post_subnet(core_api, project, net["id"], cidr="10.0.0.0/24", ip_version=4, allocation_pools=pools)
    neutron_error(r, status, kind)
    assert core_api.count("subnets", network_id=net["id"]) == 0


def test_pool_error_messages(core_api: Api, project: str) -> None:
    net = core_api.member(project).network()
    r = post_subnet(core_api, project, net["id"], cidr="10.0.0.0/24", ip_version=4,
                    allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.9"},
                                      {"start": "10.0.0.5", "end": "10.0.0.12"}])
    err = neutron_error(r, 409, "OverlappingAllocationPools")
    assert err["message"] == ("Found overlapping allocation pools: 10.0.0.2-10.0.0.9 10.0.0.5-10.0.0.12 "
                              "for subnet 10.0.0.0/24.")
    r = post_subnet(core_api, project, net["id"], cidr="10.0.0.0/24", ip_version=4,
                    allocation_pools=[{"start": "10.0.0.1", "end": "10.0.0.9"}])
    err = neutron_error(r, 409, "GatewayConflictWithAllocationPools")
    assert err["message"] == "Gateway ip 10.0.0.1 conflicts with allocation pool 10.0.0.1-10.0.0.9."


# --- DNS servers and host routes ----------------------------------------------------
def test_dns_nameservers(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    five = [f"8.8.8.{i}" for i in range(1, 6)]
    sub = me.subnet(net["id"], "10.0.0.0/24", dns_nameservers=five)
    assert sub["dns_nameservers"] == five  # order is kept
    err = neutron_error(post_subnet(core_api, project, net["id"], cidr="10.0.1.0/24", ip_version=4,
                                    dns_nameservers=[*five, "8.8.8.6"]), 400, "DNSNameServersExhausted")
    assert err["message"] == ("Unable to complete operation for new subnet. "
                              "The number of DNS nameservers exceeds the limit 5.")
    for bad, fragment in ((["8.8.8.8", "8.8.8.8"], "Duplicate nameserver '8.8.8.8'"),
                          (["dns.example.com"], "is not a valid nameserver"),
                          (["2001:4860::8888"], "dns_nameserver '2001:4860::8888' does not match the ip_version '4'")):
        r = post_subnet(core_api, project, net["id"], cidr="10.0.1.0/24", ip_version=4, dns_nameservers=bad)
        neutron_error(r, 400, contains=fragment)
    assert core_api.count("subnets", network_id=net["id"]) == 1
    # Update replaces the list; six is still too many and names the subnet.
    assert me.update("subnets", sub["id"], dns_nameservers=["1.1.1.1"])["dns_nameservers"] == ["1.1.1.1"]
    r = me.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"dns_nameservers": [*five, "8.8.8.6"]}})
    err = neutron_error(r, 400, "DNSNameServersExhausted")
    assert sub["id"] in err["message"]
    assert me.show("subnets", sub["id"])["dns_nameservers"] == ["1.1.1.1"]
    assert me.update("subnets", sub["id"], dns_nameservers=[])["dns_nameservers"] == []


def test_host_routes(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    routes = [{"destination": f"172.16.{i}.0/24", "nexthop": "10.0.0.254"} for i in range(20)]
    sub = me.subnet(net["id"], "10.0.0.0/24", host_routes=routes)
    assert sub["host_routes"] == routes
    extra = [*routes, {"destination": "172.17.0.0/24", "nexthop": "10.0.0.254"}]
    r = post_subnet(core_api, project, net["id"], cidr="10.0.1.0/24", ip_version=4, host_routes=extra)
    neutron_error(r, 400, "HostRoutesExhausted")
    for bad in ([{"destination": "172.16.0.0/24"}],
                [{"destination": "172.16.0.1/24", "nexthop": "10.0.1.1"}],
                [{"destination": "172.16.0.0/24", "nexthop": "nowhere"}],
                [{"destination": "2001:db8::/64", "nexthop": "10.0.1.1"}],
                [routes[0], routes[0]]):
        r = post_subnet(core_api, project, net["id"], cidr="10.0.1.0/24", ip_version=4, host_routes=bad)
        neutron_error(r, 400)
    assert core_api.count("subnets", network_id=net["id"]) == 1
    new = [{"destination": "0.0.0.0/0", "nexthop": "10.0.0.2"}]
    assert me.update("subnets", sub["id"], host_routes=new)["host_routes"] == new


# --- IPv6 modes -----------------------------------------------------------------------
@pytest.mark.parametrize("ra, addr", [
    ("slaac", "slaac"), ("dhcpv6-stateful", "dhcpv6-stateful"), ("dhcpv6-stateless", "dhcpv6-stateless"),
    (None, "slaac"), ("slaac", None),
])
def test_ipv6_modes_accepted(core_api: Api, project: str, ra, addr) -> None:
    me = core_api.member(project)
    sub = me.subnet(me.network()["id"], "2001:db8:5::/64", ipv6_ra_mode=ra, ipv6_address_mode=addr)
    assert (sub["ipv6_ra_mode"], sub["ipv6_address_mode"]) == (ra, addr)


@pytest.mark.parametrize("attrs, fragment", [
    ({"cidr": "2001:db8::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"},
     "ipv6_ra_mode set to 'slaac' with ipv6_address_mode set to 'dhcpv6-stateful' is not valid"),
    ({"cidr": "2001:db8::/64", "ipv6_address_mode": "slaac", "enable_dhcp": False},
     "cannot be set when enable_dhcp is set to False"),
    ({"cidr": "2001:db8::/80", "ipv6_address_mode": "slaac"}, "requires the prefix to be /64"),
    ({"cidr": "2001:db8::/80", "ipv6_ra_mode": "dhcpv6-stateless"}, "requires the prefix to be /64"),
    ({"cidr": "2001:db8::/64", "ipv6_address_mode": "dhcp"}, "Invalid input for ipv6_address_mode"),
    ({"cidr": "10.0.0.0/24", "ip_version": 4, "ipv6_ra_mode": "slaac"}, "ipv6_ra_mode is not valid when ip_version is 4"),
    ({"cidr": "10.0.0.0/24", "ip_version": 4, "ipv6_address_mode": "slaac"},
     "ipv6_address_mode is not valid when ip_version is 4"),
])
def test_ipv6_mode_rules(core_api: Api, project: str, attrs: dict, fragment: str) -> None:
    net = core_api.member(project).network()
    attrs = {"ip_version": 6, **attrs}
    neutron_error(post_subnet(core_api, project, net["id"], **attrs), 400, contains=fragment)
    assert core_api.count("subnets", network_id=net["id"]) == 0


def test_stateful_v6_on_any_prefix_and_mode_updates(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    sub = me.subnet(me.network()["id"], "2001:db8:9::/80", ipv6_address_mode="dhcpv6-stateful",
                    ipv6_ra_mode="dhcpv6-stateful")
    r = me.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"enable_dhcp": False}})
    neutron_error(r, 400, contains="Cannot disable enable_dhcp with ipv6 attributes set")
    r = me.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"ipv6_ra_mode": "slaac"}})
    neutron_error(r, 400, contains="Cannot update read-only attribute ipv6_ra_mode")
    assert me.show("subnets", sub["id"])["revision_number"] == 0


# --- overlap ------------------------------------------------------------------------
def test_overlap_refused_within_a_network_allowed_across(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    me.subnet(net["id"], "10.5.0.0/16")
    r = post_subnet(core_api, project, net["id"], cidr="10.5.3.0/24", ip_version=4)
    err = neutron_error(r, 400, "InvalidInput")
    assert err["message"] == (f"Invalid input for operation: Requested subnet with cidr: 10.5.3.0/24 for network: "
                              f"{net['id']} overlaps with another subnet.")
    assert core_api.count("subnets", network_id=net["id"]) == 1
    me.subnet(me.network()["id"], "10.5.3.0/24")


def test_overlap_across_networks_without_overlapping_ips(make_api, project: str) -> None:
    api: Api = make_api(DEFAULT={"allow_overlapping_ips": False})
    me = api.member(project)
    me.subnet(me.network()["id"], "10.5.0.0/16")
    other = me.network()
    neutron_error(post_subnet(api, project, other["id"], cidr="10.5.3.0/24", ip_version=4), 400)
    assert api.count("subnets") == 1


# --- in use ---------------------------------------------------------------------------
def test_subnet_in_use(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, sub = me.net_with_subnet()
    port = me.port(net["id"], device_owner="compute:nova")
    dhcp = me.port(net["id"], device_owner="network:dhcp")
    err = neutron_error(me.delete(f"/v2.0/subnets/{sub['id']}"), 409, "SubnetInUse")
    assert err["message"] == (f"Unable to complete operation on subnet {sub['id']}: "
                              "One or more ports have an IP allocation from this subnet.")
    assert core_api.count("subnets", id=sub["id"]) == 1
    me.remove("ports", port["id"])
    me.remove("subnets", sub["id"])
    # The DHCP port did not hold the subnet: it just lost its address.
    assert me.show("ports", dhcp["id"])["fixed_ips"] == []
    assert me.show("networks", net["id"])["subnets"] == []
    neutron_error(me.get(f"/v2.0/subnets/{sub['id']}"), 404, "SubnetNotFound")


def test_slaac_subnet_is_not_held_by_ordinary_ports(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    v4 = me.subnet(net["id"], "10.0.0.0/24")
    v6 = me.subnet(net["id"], "2001:db8:7::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    port = me.port(net["id"])
    assert {f["subnet_id"] for f in port["fixed_ips"]} == {v4["id"], v6["id"]}
    me.remove("subnets", v6["id"])
    assert [f["subnet_id"] for f in me.show("ports", port["id"])["fixed_ips"]] == [v4["id"]]


def test_new_slaac_subnet_addresses_existing_ports(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, v4 = me.net_with_subnet()
    port = me.port(net["id"])
    router = me.port(net["id"], device_owner="network:router_interface", device_id="r")
    v6 = me.subnet(net["id"], "2001:db8:8::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    shown = me.show("ports", port["id"])
    assert {f["subnet_id"] for f in shown["fixed_ips"]} == {v4["id"], v6["id"]}
    assert shown["revision_number"] > port["revision_number"]
    assert {f["subnet_id"] for f in me.show("ports", router["id"])["fixed_ips"]} == {v4["id"]}


# --- update -----------------------------------------------------------------------------
def test_update_gateway_and_pools(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    _, sub = me.net_with_subnet("10.0.0.0/24")
    upd = me.update("subnets", sub["id"], allocation_pools=[{"start": "10.0.0.100", "end": "10.0.0.200"}])
    assert upd["allocation_pools"] == [{"start": "10.0.0.100", "end": "10.0.0.200"}]
    assert upd["revision_number"] == sub["revision_number"] + 1
    assert me.update("subnets", sub["id"], gateway_ip="10.0.0.254")["gateway_ip"] == "10.0.0.254"
    assert me.update("subnets", sub["id"], gateway_ip=None)["gateway_ip"] is None
    r = me.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"gateway_ip": "10.0.0.150"}})
    neutron_error(r, 409, "GatewayConflictWithAllocationPools")
    me.update("subnets", sub["id"], gateway_ip="10.0.0.1")
    r = me.put(f"/v2.0/subnets/{sub['id']}",
               json={"subnet": {"allocation_pools": [{"start": "10.0.0.1", "end": "10.0.0.9"}]}})
    neutron_error(r, 409, "GatewayConflictWithAllocationPools")
    r = me.put(f"/v2.0/subnets/{sub['id']}",
               json={"subnet": {"allocation_pools": [{"start": "10.0.0.2", "end": "10.0.1.9"}]}})
    neutron_error(r, 400, "OutOfBoundsAllocationPool")
    r = me.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"gateway_ip": "10.0.0.255"}})
    neutron_error(r, 400, contains="Gateway is not valid on subnet")
    final = me.show("subnets", sub["id"])
    assert final["gateway_ip"] == "10.0.0.1"
    assert final["allocation_pools"] == [{"start": "10.0.0.100", "end": "10.0.0.200"}]
    for attr in ("cidr", "ip_version", "network_id"):
        r = me.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {attr: final[attr]}})
        neutron_error(r, 400, contains="Cannot update read-only attribute")


def test_new_pool_is_used_for_the_next_port(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, sub = me.net_with_subnet("10.0.0.0/24")
    assert me.port(net["id"])["fixed_ips"][0]["ip_address"] == "10.0.0.2"
    me.update("subnets", sub["id"], allocation_pools=[{"start": "10.0.0.50", "end": "10.0.0.60"}])
    assert me.port(net["id"])["fixed_ips"][0]["ip_address"] == "10.0.0.50"


# --- who may -------------------------------------------------------------------------
def test_shared_network_subnets_for_other_projects(core_api: Api, project: str, other_project: str) -> None:
    admin = core_api.admin(project)
    net = admin.network(shared=True)
    sub = admin.subnet(net["id"])
    them = core_api.member(other_project)
    assert them.show("subnets", sub["id"])["cidr"] == "10.0.0.0/24"
    assert sub["id"] in [s["id"] for s in them.list("subnets")]
    r = post_subnet(core_api, other_project, net["id"], cidr="10.0.1.0/24", ip_version=4)
    neutron_error(r, 403, "PolicyNotAuthorized")
    neutron_error(them.put(f"/v2.0/subnets/{sub['id']}", json={"subnet": {"name": "x"}}), 403)
    neutron_error(them.delete(f"/v2.0/subnets/{sub['id']}"), 403)
    assert core_api.count("subnets", network_id=net["id"]) == 1
    assert admin.show("subnets", sub["id"])["name"] == ""


def test_private_subnets_are_invisible(core_api: Api, project: str, other_project: str) -> None:
    net, sub = core_api.member(project).net_with_subnet()
    them = core_api.member(other_project)
    neutron_error(them.get(f"/v2.0/subnets/{sub['id']}"), 404, "SubnetNotFound")
    neutron_error(them.delete(f"/v2.0/subnets/{sub['id']}"), 404)
    assert sub["id"] not in [s["id"] for s in them.list("subnets")]
    r = post_subnet(core_api, other_project, net["id"], cidr="10.0.1.0/24", ip_version=4)
    neutron_error(r, 404, "NetworkNotFound")


def test_missing_network(core_api: Api, project: str) -> None:
    missing = "7d6b2c1e-0a3f-4a8e-9d5c-3b1a2f4e6c8d"
    r = post_subnet(core_api, project, missing, cidr="10.0.0.0/24", ip_version=4)
    neutron_error(r, 404, "NetworkNotFound")
    r = post_subnet(core_api, project, "not-a-uuid", cidr="10.0.0.0/24", ip_version=4)
    neutron_error(r, 400, contains="Invalid input for network_id")
    r = core_api.member(project).post("/v2.0/subnets", json={"subnet": {"cidr": "10.0.0.0/24", "ip_version": 4}})
    neutron_error(r, 400, contains="network_id")
    assert core_api.count("subnets", project_id=project) == 0


def test_shared_filter_follows_the_network(core_api: Api, project: str, other_project: str) -> None:
    """``?shared=`` on subnets filters by the network's sharing (Neutron
    does not show it as a subnet attribute)."""
    admin, member = core_api.admin(), core_api.member(project)
    shared_net = admin.network(shared=True)
    shared_sub = admin.subnet(shared_net["id"], cidr="10.31.0.0/24")
    own_sub = member.subnet(member.network()["id"], cidr="10.32.0.0/24")
    assert "shared" not in shared_sub
    for who in (admin, member):
        on = {s["id"] for s in who.get("/v2.0/subnets", params={"shared": "True"}).json()["subnets"]}
        off = {s["id"] for s in who.get("/v2.0/subnets", params={"shared": "False"}).json()["subnets"]}
        assert shared_sub["id"] in on and shared_sub["id"] not in off
        assert own_sub["id"] in off and own_sub["id"] not in on


@pytest.mark.parametrize("attrs", [
    {"cidr": "10.91.0.0/24"},
    {"cidr": "10.91.1.0/24", "gateway_ip": None, "enable_dhcp": False, "name": "s", "description": "d"},
    {"cidr": "10.91.2.0/24", "gateway_ip": "10.91.2.254", "dns_nameservers": ["10.0.0.53", "10.0.0.54"],
     "host_routes": [{"destination": "10.92.0.0/16", "nexthop": "10.91.2.9"}],
     "allocation_pools": [{"start": "10.91.2.10", "end": "10.91.2.20"}, {"start": "10.91.2.30", "end": "10.91.2.40"}]},
    {"cidr": "10.91.3.0/24", "gateway_ip": "10.91.3.100",
     "dns_publish_fixed_ip": True},
    {"cidr": "2001:db8:91::/64", "ip_version": 6, "ipv6_ra_mode": "slaac", "ipv6_address_mode": "slaac"},
    {"cidr": "10.91.4.0/31", "enable_dhcp": False},
], ids=["plain", "no-gateway-no-dhcp", "pools-dns-routes", "gateway-in-the-middle", "slaac", "slash-31"])
def test_the_create_answer_is_what_show_shows(core_api: Api, project: str, attrs: dict) -> None:
    """A create renders the subnet from the row it inserted (no read-back):
    the same attributes and values as a later show."""
    me = core_api.member(project)
    net = me.network()
    r = me.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "ip_version": 4, **attrs}})
    assert r.status_code == 201, r.text
    made = r.json()["subnet"]
    assert made == me.show("subnets", made["id"])
