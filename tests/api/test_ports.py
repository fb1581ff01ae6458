"""/v2.0/ports: addresses (default, requested, updated), MAC addresses,
device ownership, address pairs, DHCP options, binding fields and port
security, with who may set what."""

from __future__ import annotations

import netaddr
import pytest
from sqlalchemy import update

from kaon.db.core_tables import ports as ports_table
from tests.api import core_support
from tests.api.core_support import Api, Caller, neutron_error

core_api, make_api = core_support.core_api, core_support.make_api
project, other_project = core_support.project, core_support.other_project

BINDING_ADMIN_ONLY = ("binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details")


def post_port(caller: Caller, net_id: str, **attrs):
    return caller.post("/v2.0/ports", json={"port": {"network_id": net_id, **attrs}})


def ips(port: dict) -> list[str]:
    return sorted(f["ip_address"] for f in port["fixed_ips"])


def test_defaults(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, sub = me.net_with_subnet("10.0.0.0/24")
    port = me.port(net["id"])
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.2"}]
    assert port["mac_address"].startswith("fa:16:3e:") and netaddr.valid_mac(port["mac_address"])
    assert port["status"] == "DOWN" and port["admin_state_up"] is True
    assert (port["name"], port["description"], port["device_id"], port["device_owner"]) == ("", "", "", "")
    assert port["port_security_enabled"] is True
    assert port["allowed_address_pairs"] == [] and port["extra_dhcp_opts"] == []
    assert port["binding:vnic_type"] == "normal"
    assert port["project_id"] == port["tenant_id"] == project and port["revision_number"] >= 0
    for key in BINDING_ADMIN_ONLY:
        assert key not in port
    shown = core_api.admin().show("ports", port["id"])
    assert shown["binding:vif_type"] == "unbound" and shown["binding:host_id"] == ""
    assert shown["binding:profile"] == {} and shown["binding:vif_details"] == {}
    assert me.port(net["id"])["fixed_ips"][0]["ip_address"] == "10.0.0.3"


def test_network_without_subnets_gives_no_address(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    assert me.port(me.network()["id"])["fixed_ips"] == []
    net, _ = me.net_with_subnet()
    assert me.port(net["id"], fixed_ips=[])["fixed_ips"] == []


def test_first_v4_subnet_with_room_is_used(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    small = me.subnet(net["id"], "10.0.0.0/24", allocation_pools=[{"start": "10.0.0.5", "end": "10.0.0.5"}])
    big = me.subnet(net["id"], "10.0.1.0/24")
    assert me.port(net["id"])["fixed_ips"] == [{"subnet_id": small["id"], "ip_address": "10.0.0.5"}]
    assert me.port(net["id"])["fixed_ips"] == [{"subnet_id": big["id"], "ip_address": "10.0.1.2"}]


def test_exhaustion(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet("10.0.0.0/29")  # .2 - .6
    got = [ips(me.port(net["id"]))[0] for _ in range(5)]
    assert got == [f"10.0.0.{i}" for i in range(2, 7)]
    before = core_api.footprint(project)
    err = neutron_error(post_port(me, net["id"]), 409, "IpAddressGenerationFailure")
    assert err["message"] == f"No more IP addresses available on network {net['id']}."
    assert core_api.footprint(project) == before


def test_dual_stack_defaults(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    v4 = me.subnet(net["id"], "10.0.0.0/24")
    st = me.subnet(net["id"], "2001:db8:a::/64", ipv6_address_mode="dhcpv6-stateful",
                   ipv6_ra_mode="dhcpv6-stateful")
    sl = me.subnet(net["id"], "2001:db8:b::/64", ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    ra_only = me.subnet(net["id"], "2001:db8:c::/64", ipv6_ra_mode="dhcpv6-stateless")
    port = me.port(net["id"])
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
    assert set(by_subnet) == {v4["id"], st["id"], sl["id"], ra_only["id"]}
    assert by_subnet[st["id"]] == "2001:db8:a::2"
    mac = netaddr.EUI(port["mac_address"])
    assert by_subnet[sl["id"]] == str(mac.ipv6(netaddr.IPNetwork("2001:db8:b::/64").first))
    assert by_subnet[ra_only["id"]] == str(mac.ipv6(netaddr.IPNetwork("2001:db8:c::/64").first))
    # Router interfaces get no EUI-64 addresses.
    router = me.port(net["id"], device_owner="network:router_interface", device_id="r1")
    assert {f["subnet_id"] for f in router["fixed_ips"]} == {v4["id"], st["id"]}


def test_each_family_must_get_an_address(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    me.subnet(net["id"], "10.0.0.0/24", allocation_pools=[{"start": "10.0.0.5", "end": "10.0.0.5"}])
    me.subnet(net["id"], "2001:db8::/64")
    me.port(net["id"])
    before = core_api.footprint(project)
    neutron_error(post_port(me, net["id"]), 409, "IpAddressGenerationFailure")
    assert core_api.footprint(project) == before


# --- requested addresses -------------------------------------------------------------
def test_fixed_ips_by_subnet_address_or_both(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    a = me.subnet(net["id"], "10.0.0.0/24")
    b = me.subnet(net["id"], "10.0.1.0/24")
    assert me.port(net["id"], fixed_ips=[{"subnet_id": b["id"]}])["fixed_ips"] == [
        {"subnet_id": b["id"], "ip_address": "10.0.1.2"}]
    assert me.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.77"}])["fixed_ips"] == [
        {"subnet_id": a["id"], "ip_address": "10.0.0.77"}]
    both = me.port(net["id"], fixed_ips=[{"subnet_id": a["id"], "ip_address": "10.0.0.78"},
                                         {"subnet_id": b["id"]}])
    assert ips(both) == ["10.0.0.78", "10.0.1.3"]
    # An address outside the pools but inside the subnet is fine.
    sub = me.update("subnets", a["id"], allocation_pools=[{"start": "10.0.0.100", "end": "10.0.0.110"}])
    assert sub["allocation_pools"][0]["start"] == "10.0.0.100"
    assert ips(me.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.200"}])) == ["10.0.0.200"]


@pytest.mark.parametrize("fixed, status, kind", [
    ([{"ip_address": "192.168.9.9"}], 400, "InvalidIpForNetwork"),
    ([{"ip_address": "10.0.0.0"}], 400, "InvalidIpForNetwork"),
    ([{"ip_address": "10.0.0.255"}], 400, "InvalidIpForNetwork"),
    ([{"subnet_id": "SUB", "ip_address": "10.0.1.5"}], 400, "InvalidIpForSubnet"),
    ([{"subnet_id": "SUB", "ip_address": "10.0.0.255"}], 400, "InvalidIpForSubnet"),
    ([{"subnet_id": "SUB", "ip_address": "not-an-ip"}], 400, "InvalidInput"),
    ([{"subnet_id": "not-a-uuid"}], 400, "InvalidInput"),
    ([{"subnet_id": "6d2c7f0e-31a5-4c1b-9e4f-2a7b8c9d0e1f"}], 404, "SubnetNotFound"),
    ([{"subnet_id": "OTHER"}], 400, "InvalidInput"),
    ([{"ip_address": "10.0.0.9"}, {"ip_address": "10.0.0.9"}], 400, "InvalidInput"),
    ([{"subnet_id": "SUB", "flavour": "x"}], 400, "InvalidInput"),
    ("10.0.0.9", 400, "InvalidInput"),
])
def test_invalid_fixed_ips(core_api: Api, project: str, fixed, status: int, kind: str) -> None:
    me = core_api.member(project)
    net, sub = me.net_with_subnet("10.0.0.0/24")
    _, other = me.net_with_subnet("10.0.5.0/24")
    if isinstance(fixed, list):
        fixed = [{k: {"SUB": sub["id"], "OTHER": other["id"]}.get(v, v) for k, v in f.items()} for f in fixed]
    neutron_error(post_port(me, net["id"], fixed_ips=fixed), status, kind)
    assert core_api.footprint(project)["ports"] == 0


def test_address_in_use(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet("10.0.0.0/24")
    first = me.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.9"}])
    err = neutron_error(post_port(me, net["id"], fixed_ips=[{"ip_address": "10.0.0.9"}]), 409, "IpAddressInUse")
    assert err["message"] == (f"Unable to complete operation for network {net['id']}. "
                              "The IP address 10.0.0.9 is in use.")
    assert core_api.footprint(project)["ports"] == 1
    me.remove("ports", first["id"])
    assert ips(me.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.9"}])) == ["10.0.0.9"]


def test_auto_address_subnets(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    sub = me.subnet(net["id"], "2001:db8:d::/64", ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    port = me.port(net["id"], fixed_ips=[{"subnet_id": sub["id"]}])
    eui = str(netaddr.EUI(port["mac_address"]).ipv6(netaddr.IPNetwork(sub["cidr"]).first))
    assert ips(port) == [eui]
    r = post_port(me, net["id"], fixed_ips=[{"subnet_id": sub["id"], "ip_address": "2001:db8:d::99"}])
    neutron_error(r, 400, "AllocationOnAutoAddressSubnet")
    # A new MAC is a new EUI-64 address (update_port:mac_address: admin or service).
    moved = core_api.admin(project).update("ports", port["id"], mac_address="fa:16:3e:00:00:42")
    assert ips(moved) == ["2001:db8:d:0:f816:3eff:fe00:42"]
    # Router ports may hold a fixed address there, even the subnet-router anycast one.
    rp = me.port(net["id"], device_owner="network:router_interface", device_id="r",
                 fixed_ips=[{"subnet_id": sub["id"], "ip_address": "2001:db8:d::1"}])
    assert ips(rp) == ["2001:db8:d::1"]


# --- updating addresses --------------------------------------------------------------
def test_fixed_ips_update(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network()
    a = me.subnet(net["id"], "10.0.0.0/24")
    b = me.subnet(net["id"], "10.0.1.0/24")
    port = me.port(net["id"])
    assert ips(port) == ["10.0.0.2"]
    # Add: keep the current one by naming it (or just its subnet), add another.
    upd = me.update("ports", port["id"], fixed_ips=[{"subnet_id": a["id"]}, {"subnet_id": b["id"]}])
    assert ips(upd) == ["10.0.0.2", "10.0.1.2"]
    assert upd["revision_number"] > port["revision_number"]
    upd = me.update("ports", port["id"], fixed_ips=[*upd["fixed_ips"], {"ip_address": "10.0.0.50"}])
    assert ips(upd) == ["10.0.0.2", "10.0.0.50", "10.0.1.2"]
    # Remove and change.
    upd = me.update("ports", port["id"], fixed_ips=[{"ip_address": "10.0.0.50"}, {"ip_address": "10.0.1.9"}])
    assert ips(upd) == ["10.0.0.50", "10.0.1.9"]
    # What was released can be taken by another port.
    assert ips(me.port(net["id"], fixed_ips=[{"ip_address": "10.0.0.2"}])) == ["10.0.0.2"]
    # A failed update changes nothing.
    r = me.put(f"/v2.0/ports/{port['id']}", json={"port": {"fixed_ips": [{"ip_address": "10.0.0.2"}]}})
    neutron_error(r, 409, "IpAddressInUse")
    assert ips(me.show("ports", port["id"])) == ["10.0.0.50", "10.0.1.9"]
    assert me.update("ports", port["id"], fixed_ips=[])["fixed_ips"] == []


# --- MAC addresses -----------------------------------------------------------------
def test_mac_addresses(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    port = me.port(net["id"], mac_address="FA:16:3E:AA:BB:CC")
    assert port["mac_address"] == "fa:16:3e:aa:bb:cc"
    err = neutron_error(post_port(me, net["id"], mac_address="fa:16:3e:aa:bb:cc"), 409, "MacAddressInUse")
    assert err["message"] == (f"Unable to complete operation for network {net['id']}. "
                              "The mac address fa:16:3e:aa:bb:cc is in use.")
    assert core_api.footprint(project)["ports"] == 1
    other_net, _ = me.net_with_subnet()
    assert me.port(other_net["id"], mac_address="fa:16:3e:aa:bb:cc")["mac_address"] == "fa:16:3e:aa:bb:cc"
    for bad in ("fa:16:3e:aa:bb", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "zz:16:3e:aa:bb:cc"):
        neutron_error(post_port(me, net["id"], mac_address=bad), 400, "InvalidInput")
    # Generated MACs are unique across many ports.
    macs = {me.port(net["id"])["mac_address"] for _ in range(20)}
    assert len(macs) == 20 and all(m.startswith("fa:16:3e:") for m in macs)


def test_mac_update_unbound_and_bound(core_api: Api, project: str) -> None:
    owner = core_api.member(project)
    net, _ = owner.net_with_subnet()
    port = owner.port(net["id"])
    taken = owner.port(net["id"])["mac_address"]
    # update_port:mac_address is admin (or service) only, even for the port's
    # and the network's owner; Neutron checks any attribute an update names.
    neutron_error(owner.put(f"/v2.0/ports/{port['id']}", json={"port": {"mac_address": port["mac_address"]}}),
                  403, "PolicyNotAuthorized")
    me = core_api.admin(project)
    assert me.update("ports", port["id"], mac_address="fa:16:3e:00:11:22")["mac_address"] == "fa:16:3e:00:11:22"
    neutron_error(me.put(f"/v2.0/ports/{port['id']}", json={"port": {"mac_address": taken}}), 409,
                  "MacAddressInUse")
    with core_api.engine.begin() as conn:
        conn.execute(update(ports_table).where(ports_table.c.id == port["id"]).values(binding_vif_type="ovs"))
    err = neutron_error(me.put(f"/v2.0/ports/{port['id']}", json={"port": {"mac_address": "fa:16:3e:00:11:33"}}),
                        409, "PortBound")
    assert "port is already bound, port type: ovs, old_mac fa:16:3e:00:11:22, new_mac fa:16:3e:00:11:33" in \
        err["message"]
    assert me.show("ports", port["id"])["mac_address"] == "fa:16:3e:00:11:22"
    # Setting the same MAC is not a change.
    assert me.update("ports", port["id"], mac_address="fa:16:3e:00:11:22")["mac_address"] == "fa:16:3e:00:11:22"


# --- ownership and policy ---------------------------------------------------------------
def test_device_fields(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    port = me.port(net["id"], device_id="vm-1", device_owner="compute:nova", name="p")
    assert (port["device_id"], port["device_owner"], port["name"]) == ("vm-1", "compute:nova", "p")
    upd = me.update("ports", port["id"], device_id="", device_owner="")
    assert (upd["device_id"], upd["device_owner"]) == ("", "")
    neutron_error(post_port(me, net["id"], device_id="x" * 256), 400, "InvalidInput")
    # The network's owner may use network:* owners.
    assert me.port(net["id"], device_owner="network:dhcp")["device_owner"] == "network:dhcp"


def test_shared_network_ports_of_other_projects(core_api: Api, project: str, other_project: str) -> None:
    admin = core_api.admin(project)
    net = admin.network(shared=True)
    sub = admin.subnet(net["id"], "10.0.0.0/24")
    them = core_api.member(other_project)
    port = them.port(net["id"], fixed_ips=[{"subnet_id": sub["id"]}])
    assert port["project_id"] == other_project and len(port["fixed_ips"]) == 1
    for attrs in ({"fixed_ips": [{"ip_address": "10.0.0.50"}]},
                  {"fixed_ips": [{"subnet_id": sub["id"], "ip_address": "10.0.0.50"}]},
                  {"mac_address": "fa:16:3e:12:34:56"},
                  {"device_owner": "network:dhcp"}):
        neutron_error(post_port(them, net["id"], **attrs), 403, "PolicyNotAuthorized")
        neutron_error(them.put(f"/v2.0/ports/{port['id']}", json={"port": attrs}), 403, "PolicyNotAuthorized")
    assert core_api.footprint(other_project)["ports"] == 1
    # The network owner sees and manages ports on its network; others do not see them.
    owner = core_api.member(project)
    assert owner.show("ports", port["id"])["id"] == port["id"]
    third = core_api.member("third-" + other_project)
    neutron_error(third.get(f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
    neutron_error(third.delete(f"/v2.0/ports/{port['id']}"), 404, "PortNotFound")
    assert port["id"] not in [p["id"] for p in third.list("ports")]


def test_private_network_of_another_project(core_api: Api, project: str, other_project: str) -> None:
    net, _ = core_api.member(project).net_with_subnet()
    neutron_error(post_port(core_api.member(other_project), net["id"]), 404, "NetworkNotFound")
    ext = core_api.admin(project).network(**{"router:external": True})
    neutron_error(post_port(core_api.member(other_project), ext["id"]), 404)
    assert core_api.footprint(other_project)["ports"] == 0


def test_router_owned_ports_cannot_be_deleted(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    port = me.port(net["id"], device_owner="network:router_interface", device_id="some-router")
    err = neutron_error(me.delete(f"/v2.0/ports/{port['id']}"), 409, "ServicePortInUse")
    assert err["message"] == (f"Port {port['id']} cannot be deleted directly via the port API: "
                              "has device owner network:router_interface.")
    assert me.show("ports", port["id"])["id"] == port["id"]


# --- address pairs, DHCP options, port security ------------------------------------------
def test_allowed_address_pairs(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    port = me.port(net["id"], allowed_address_pairs=[{"ip_address": "10.0.0.50"},
                                                      {"ip_address": "10.1.0.0/24", "mac_address": "fa:16:3e:01:02:03"}])
    assert port["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.50", "mac_address": port["mac_address"]},
        {"ip_address": "10.1.0.0/24", "mac_address": "fa:16:3e:01:02:03"}]
    ten = [{"ip_address": f"10.2.0.{i}"} for i in range(10)]
    assert len(me.update("ports", port["id"], allowed_address_pairs=ten)["allowed_address_pairs"]) == 10
    for bad, status, kind in (([*ten, {"ip_address": "10.2.0.99"}], 400, "AllowedAddressPairExhausted"),
                              ([{"ip_address": "10.2.0.1"}, {"ip_address": "10.2.0.1"}], 400,
                               "DuplicateAddressPairInRequest"),
                              ([{"ip_address": "ten"}], 400, "InvalidInput"),
                              ([{"mac_address": "fa:16:3e:01:02:03"}], 400, "InvalidInput")):
        neutron_error(post_port(me, net["id"], allowed_address_pairs=bad), status, kind)
        neutron_error(me.put(f"/v2.0/ports/{port['id']}", json={"port": {"allowed_address_pairs": bad}}),
                      status, kind)
    assert core_api.footprint(project)["ports"] == 1
    assert len(me.show("ports", port["id"])["allowed_address_pairs"]) == 10
    assert me.update("ports", port["id"], allowed_address_pairs=[])["allowed_address_pairs"] == []


def test_address_pairs_need_port_security(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    r = post_port(me, net["id"], port_security_enabled=False, allowed_address_pairs=[{"ip_address": "10.0.0.9"}])
    err = neutron_error(r, 409, "AddressPairAndPortSecurityRequired")
    assert err["message"] == "Port Security must be enabled in order to have allowed address pairs on a port."
    assert core_api.footprint(project)["ports"] == 0
    port = me.port(net["id"], allowed_address_pairs=[{"ip_address": "10.0.0.9"}], security_groups=[])
    r = me.put(f"/v2.0/ports/{port['id']}", json={"port": {"port_security_enabled": False}})
    neutron_error(r, 409, "AddressPairAndPortSecurityRequired")
    assert me.show("ports", port["id"])["port_security_enabled"] is True
    upd = me.update("ports", port["id"], port_security_enabled=False, allowed_address_pairs=[])
    assert upd["port_security_enabled"] is False and upd["allowed_address_pairs"] == []


def test_port_security_inherits_from_the_network(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network(port_security_enabled=False)
    me.subnet(net["id"])
    assert me.port(net["id"])["port_security_enabled"] is False
    assert me.port(net["id"], port_security_enabled=True)["port_security_enabled"] is True
    neutron_error(post_port(me, net["id"], allowed_address_pairs=[{"ip_address": "10.0.0.9"}]), 409,
                  "AddressPairAndPortSecurityRequired")


def test_extra_dhcp_opts(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    port = me.port(net["id"], extra_dhcp_opts=[
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
        {"opt_name": "tftp-server", "opt_value": "10.0.0.10"},
        {"opt_name": "tftp-server", "opt_value": "2001:db8::10", "ip_version": 6},
        {"opt_name": "router", "opt_value": ""},
        {"opt_name": "ntp-server", "opt_value": None}])

    def opts(p: dict) -> dict:
        return {(o["opt_name"], o["ip_version"]): o["opt_value"] for o in p["extra_dhcp_opts"]}

    assert opts(port) == {("bootfile-name", 4): "pxelinux.0", ("tftp-server", 4): "10.0.0.10",
                          ("tftp-server", 6): "2001:db8::10", ("router", 4): ""}
    upd = me.update("ports", port["id"], extra_dhcp_opts=[
        {"opt_name": "bootfile-name", "opt_value": "ipxe.efi"},
        {"opt_name": "tftp-server", "opt_value": None},
        {"opt_name": "domain-search", "opt_value": "example.com"}])
    assert opts(upd) == {("bootfile-name", 4): "ipxe.efi", ("tftp-server", 6): "2001:db8::10",
                         ("router", 4): "", ("domain-search", 4): "example.com"}
    for bad in ([{"opt_name": "bootfile-name"}],
                [{"opt_value": "x"}],
                [{"opt_name": "bootfile-name", "opt_value": ""}],
                [{"opt_name": "bootfile-name", "opt_value": "x", "ip_version": 5}],
                [{"opt_name": "bootfile-name", "opt_value": "x", "colour": "red"}],
                "bootfile-name=x"):
        neutron_error(me.put(f"/v2.0/ports/{port['id']}", json={"port": {"extra_dhcp_opts": bad}}), 400,
                      "InvalidInput")
        neutron_error(post_port(me, net["id"], extra_dhcp_opts=bad), 400, "InvalidInput")
    assert opts(me.show("ports", port["id"])) == opts(upd)
    assert core_api.footprint(project)["ports"] == 1


# --- binding ----------------------------------------------------------------------------
def test_binding_fields_are_admin_only(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    for attrs in ({"binding:host_id": "compute-1"}, {"binding:profile": {"a": 1}}):
        neutron_error(post_port(me, net["id"], **attrs), 403, "PolicyNotAuthorized")
    for attrs in ({"binding:vif_type": "ovs"}, {"binding:vif_details": {}}):
        neutron_error(post_port(me, net["id"], **attrs), 400)
    neutron_error(post_port(me, net["id"], **{"binding:vnic_type": "warp"}), 400, "InvalidInput")
    assert core_api.footprint(project)["ports"] == 0
    port = me.port(net["id"], **{"binding:vnic_type": "direct"})
    assert port["binding:vnic_type"] == "direct"
    neutron_error(me.put(f"/v2.0/ports/{port['id']}", json={"port": {"binding:host_id": "h"}}), 403)
    admin = core_api.admin()
    upd = admin.update("ports", port["id"], **{"binding:host_id": "compute-1", "binding:profile": {"k": "v"}})
    assert upd["binding:host_id"] == "compute-1" and upd["binding:profile"] == {"k": "v"}
    # No agent lives on compute-1: the port is not bound to anything.
    assert upd["binding:vif_type"] in ("unbound", "binding_failed")
    mine = me.show("ports", port["id"])
    for key in BINDING_ADMIN_ONLY:
        assert key not in mine
    assert me.get(f"/v2.0/ports/{port['id']}", params={"fields": "binding:host_id"}).json() == {"port": {}}
