"""/v2.0/networks: defaults, flags, provider and multi-provider attributes,
project allocation, MTU, visibility and the rules for update and delete."""

from __future__ import annotations

import pytest

from tests.api import core_support
from tests.api.core_support import Api, neutron_error

core_api, make_api = core_support.core_api, core_support.make_api
project, other_project = core_support.project, core_support.other_project

PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


def test_defaults_for_a_member(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network(name="n1")
    assert net["name"] == "n1" and net["description"] == ""
    assert net["admin_state_up"] is True and net["status"] == "ACTIVE"
    assert net["shared"] is False and net["router:external"] is False
    assert net["subnets"] == [] and net["tags"] == []
    assert net["tenant_id"] == net["project_id"] == project
    assert net["port_security_enabled"] is True
    assert net["mtu"] == 1450  # a project vxlan network
    assert net["revision_number"] == 0
    assert net["created_at"].endswith("Z") and net["updated_at"] == net["created_at"]
    assert net["availability_zone_hints"] == [] and net["is_default"] is False
    for key in PROVIDER:
        assert key not in net  # admin-only to read
    assert "segments" not in net
    assert me.show("networks", net["id"]) == net


def test_admin_sees_the_allocated_project_segment(core_api: Api, project: str) -> None:
    net = core_api.member(project).network()
    shown = core_api.admin().show("networks", net["id"])
    assert shown["provider:network_type"] == "vxlan"
    assert shown["provider:physical_network"] is None
    assert 1 <= shown["provider:segmentation_id"] <= 5000


def test_name_description_and_admin_state_round_trip(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network(name="a", description="d", admin_state_up=False)
    assert (net["name"], net["description"], net["admin_state_up"]) == ("a", "d", False)
    upd = me.update("networks", net["id"], name="b", admin_state_up=True, description="")
    assert (upd["name"], upd["description"], upd["admin_state_up"]) == ("b", "", True)
    assert upd["revision_number"] == net["revision_number"] + 1


@pytest.mark.parametrize("body, fragment", [
    ({"name": "x" * 256}, "exceeds maximum length of 255"),
    ({"admin_state_up": "maybe"}, "cannot be converted to boolean"),
    ({"mtu": "big"}, "is not an integer"),
    ({"bogus": 1}, "Unrecognized attribute(s) 'bogus'"),
    ({"id": "1f0d6f56-3cc5-4a83-8a3b-ff0b1a8d9e36"}, "not allowed in POST"),
    ({"status": "DOWN"}, "not allowed in POST"),
])
def test_invalid_create_bodies_are_400_and_write_nothing(core_api: Api, project: str, body: dict,
                                                         fragment: str) -> None:
    r = core_api.member(project).post("/v2.0/networks", json={"network": body})
    neutron_error(r, 400, contains=fragment)
    assert core_api.count("networks", project_id=project) == 0


@pytest.mark.parametrize("attr, value", [
    ("shared", True), ("router:external", True), ("provider:network_type", "vxlan"),
    ("provider:physical_network", "physnet1"), ("provider:segmentation_id", 7), ("is_default", True),
    ("segments", [{"provider:network_type": "vxlan"}]),
])
def test_member_may_not_set_admin_attributes(core_api: Api, project: str, attr: str, value: object) -> None:
    me = core_api.member(project)
    r = me.post("/v2.0/networks", json={"network": {attr: value}})
    neutron_error(r, 403, "PolicyNotAuthorized")
    assert core_api.count("networks", project_id=project) == 0
    net = me.network()
    r = me.put(f"/v2.0/networks/{net['id']}", json={"network": {attr: value}})
    neutron_error(r, 403, "PolicyNotAuthorized")
    assert me.show("networks", net["id"])["revision_number"] == net["revision_number"]


def test_reader_may_not_create_update_or_delete(core_api: Api, project: str) -> None:
    net = core_api.member(project).network(name="keep")
    reader = core_api.reader(project)
    assert reader.show("networks", net["id"])["name"] == "keep"
    neutron_error(reader.post("/v2.0/networks", json={"network": {}}), 403)
    neutron_error(reader.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "x"}}), 403)
    neutron_error(reader.delete(f"/v2.0/networks/{net['id']}"), 403)
    assert core_api.count("networks", project_id=project) == 1
    assert reader.show("networks", net["id"])["name"] == "keep"


def test_project_id_for_another_project_needs_admin(core_api: Api, project: str, other_project: str) -> None:
    r = core_api.member(project).post("/v2.0/networks", json={"network": {"project_id": other_project}})
    neutron_error(r, 400, contains="requires admin privileges")
    r = core_api.member(project).post("/v2.0/networks", json={"network": {"tenant_id": project,
                                                                          "project_id": other_project}})
    neutron_error(r, 400)
    net = core_api.admin(project).network(tenant_id=other_project)
    assert net["project_id"] == net["tenant_id"] == other_project
    assert core_api.member(other_project).show("networks", net["id"])["id"] == net["id"]
    assert core_api.count("networks", project_id=project) == 0


# --- provider networks --------------------------------------------------------
@pytest.mark.parametrize("provider, mtu", [
    ({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
      "provider:segmentation_id": 3001}, 1500),
    ({"provider:network_type": "vxlan", "provider:segmentation_id": 90001}, 1450),
    ({"provider:network_type": "gre", "provider:segmentation_id": 90001}, 1458),
    ({"provider:network_type": "geneve", "provider:segmentation_id": 90001}, 1450),
    ({"provider:network_type": "local"}, 1500),
])
def test_provider_segments_and_mtu(core_api: Api, project: str, provider: dict, mtu: int) -> None:
    admin = core_api.admin(project)
    net = admin.network(**provider)
    expected = {"provider:physical_network": None, "provider:segmentation_id": None, **provider}
    assert {k: net[k] for k in PROVIDER} == expected
    assert net["mtu"] == mtu
    # Members of the project see the network, not its segment.
    mine = core_api.member(project).show("networks", net["id"])
    assert not set(PROVIDER) & set(mine) and mine["mtu"] == mtu
    # The same segment twice: the second is refused, and nothing is written.
    if provider["provider:network_type"] != "local":
        kind = {"vlan": "VlanIdInUse"}.get(provider["provider:network_type"], "TunnelIdInUse")
        before = core_api.count("networks")
        neutron_error(admin.post("/v2.0/networks", json={"network": provider}), 409, kind)
        assert core_api.count("networks") == before
    admin.remove("networks", net["id"])
    # Released on delete: it can be taken again.
    again = admin.network(**provider)
    assert again["provider:segmentation_id"] == provider.get("provider:segmentation_id")
    admin.remove("networks", again["id"])


def test_flat_network_takes_the_whole_physnet(core_api: Api, project: str) -> None:
    admin = core_api.admin(project)
    flat = {"provider:network_type": "flat", "provider:physical_network": f"flat-{project[:8]}"}
    net = admin.network(**flat)
    assert net["provider:segmentation_id"] is None and net["mtu"] == 1500
    neutron_error(admin.post("/v2.0/networks", json={"network": flat}), 409, "FlatNetworkInUse")
    admin.remove("networks", net["id"])
    admin.remove("networks", admin.network(**flat)["id"])


@pytest.mark.parametrize("provider, fragment", [
    ({"provider:network_type": "flat"}, "physical_network required for flat provider network"),
    ({"provider:network_type": "vlan", "provider:physical_network": "nope", "provider:segmentation_id": 5},
     "physical_network 'nope' unknown for VLAN provider network"),
    ({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
      "provider:segmentation_id": 4095}, "segmentation_id out of range (1 through 4094)"),
    ({"provider:network_type": "vlan", "provider:segmentation_id": 5},
     "segmentation_id requires physical_network for VLAN provider network"),
    ({"provider:network_type": "vxlan", "provider:physical_network": "physnet1"},
     "provider:physical_network specified for vxlan network"),
    ({"provider:network_type": "local", "provider:segmentation_id": 3},
     "segmentation_id prohibited for local provider network"),
    ({"provider:network_type": "ethernet"}, "network_type value 'ethernet' not supported"),
])
def test_invalid_provider_requests(core_api: Api, project: str, provider: dict, fragment: str) -> None:
    r = core_api.admin(project).post("/v2.0/networks", json={"network": provider})
    neutron_error(r, 400, contains=fragment)
    assert core_api.count("networks", project_id=project) == 0


def test_partial_vlan_takes_a_tag_from_the_range(core_api: Api, project: str) -> None:
    admin = core_api.admin(project)
    net = admin.network(**{"provider:network_type": "vlan", "provider:physical_network": "physnet1"})
    assert 100 <= net["provider:segmentation_id"] <= 199
    # physnet2 is listed without a range: provider networks only.
    r = admin.post("/v2.0/networks", json={"network": {"provider:network_type": "vlan",
                                                       "provider:physical_network": "physnet2"}})
    neutron_error(r, 503, "NoNetworkAvailable")
    assert core_api.count("networks", project_id=project) == 1


def test_multi_provider_segments(core_api: Api, project: str) -> None:
    admin = core_api.admin(project)
    segments = [
        {"provider:network_type": "vlan", "provider:physical_network": "physnet1",
         "provider:segmentation_id": 3002},
        {"provider:network_type": "vxlan"},
    ]
    net = admin.network(segments=segments)
    assert not set(PROVIDER) & set(net)
    assert net["segments"][0] == segments[0]
    assert net["segments"][1]["provider:network_type"] == "vxlan"
    assert net["segments"][1]["provider:segmentation_id"] is not None
    assert net["mtu"] == 1450  # the smallest of the segments
    assert "segments" not in core_api.member(project).show("networks", net["id"])
    # Provider attributes and segments together, or twice the same segment: 400.
    both = {"segments": segments[:1], "provider:network_type": "vxlan"}
    neutron_error(admin.post("/v2.0/networks", json={"network": both}), 400)
    dup = {"segments": [{"provider:network_type": "vxlan", "provider:segmentation_id": 4999}] * 2}
    neutron_error(admin.post("/v2.0/networks", json={"network": dup}), 400)
    r = admin.put(f"/v2.0/networks/{net['id']}", json={"network": {"segments": segments[:1]}})
    neutron_error(r, 400)
    assert core_api.count("networks", project_id=project) == 1
    admin.remove("networks", net["id"])
    assert core_api.count("network_segments", network_id=net["id"]) == 0


def test_vlan_segmentation_id_update(core_api: Api, project: str) -> None:
    admin = core_api.admin(project)
    net = admin.network(**{"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                           "provider:segmentation_id": 3010})
    upd = admin.update("networks", net["id"], **{"provider:segmentation_id": 3011})
    assert upd["provider:segmentation_id"] == 3011
    # 3010 is free again, 3011 is taken.
    other = admin.network(**{"provider:network_type": "vlan", "provider:physical_network": "physnet1",
                             "provider:segmentation_id": 3010})
    r = admin.put(f"/v2.0/networks/{other['id']}", json={"network": {"provider:segmentation_id": 3011}})
    neutron_error(r, 409, "VlanIdInUse")
    r = admin.put(f"/v2.0/networks/{net['id']}", json={"network": {"provider:network_type": "vxlan"}})
    neutron_error(r, 400)


def test_project_allocation_exhaustion_and_reuse(make_api, project: str) -> None:
    api: Api = make_api(ml2_type_vxlan={"vni_ranges": "10:12"})
    me = api.member(project)
    nets = [me.network() for _ in range(3)]
    vnis = sorted(api.admin().show("networks", n["id"])["provider:segmentation_id"] for n in nets)
    assert vnis == [10, 11, 12]
    neutron_error(me.post("/v2.0/networks", json={"network": {}}), 503, "NoNetworkAvailable",
                  "No tenant network is available for allocation")
    assert api.count("networks") == 3
    me.remove("networks", nets[1]["id"])
    again = me.network()
    assert api.admin().show("networks", again["id"])["provider:segmentation_id"] == vnis[1]
    # An admin may still name an ID outside the project ranges.
    assert api.admin().network(**{"provider:network_type": "vxlan",
                                  "provider:segmentation_id": 500})["provider:segmentation_id"] == 500


def test_project_network_types_fall_through_in_order(make_api, project: str) -> None:
    api: Api = make_api(ml2={"tenant_network_types": "vxlan,vlan"}, ml2_type_vxlan={"vni_ranges": "7:7"},
                        ml2_type_vlan={"network_vlan_ranges": "physnet1:300:300"})
    me = api.member(project)
    first, second = me.network(), me.network()
    admin = api.admin()
    assert admin.show("networks", first["id"])["provider:network_type"] == "vxlan"
    seg = admin.show("networks", second["id"])
    assert (seg["provider:network_type"], seg["provider:segmentation_id"]) == ("vlan", 300)
    assert seg["mtu"] == 1500
    neutron_error(me.post("/v2.0/networks", json={"network": {}}), 503, "NoNetworkAvailable")


# --- MTU -------------------------------------------------------------------------
def test_mtu_is_writable_up_to_the_segment_maximum(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net = me.network(mtu=1400)
    assert net["mtu"] == 1400
    assert me.update("networks", net["id"], mtu=1450)["mtu"] == 1450
    r = me.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": 1451}})
    neutron_error(r, 400, "InvalidInput", "Requested MTU is too big, maximum is 1450")
    assert me.show("networks", net["id"])["mtu"] == 1450
    r = me.post("/v2.0/networks", json={"network": {"mtu": 9000}})
    neutron_error(r, 400, contains="Requested MTU is too big, maximum is 1450")
    assert core_api.count("networks", project_id=project) == 1


def test_global_physnet_mtu_lowers_every_type(make_api, project: str) -> None:
    api: Api = make_api(DEFAULT={"global_physnet_mtu": 9000})
    admin = api.admin(project)
    assert admin.network()["mtu"] == 8950
    assert admin.network(**{"provider:network_type": "gre", "provider:segmentation_id": 5})["mtu"] == 8958
    assert admin.network(**{"provider:network_type": "flat", "provider:physical_network": "x"})["mtu"] == 9000


# --- visibility and ownership -----------------------------------------------
def test_private_network_of_another_project_is_404(core_api: Api, project: str, other_project: str) -> None:
    net = core_api.member(project).network(name="private")
    them = core_api.member(other_project)
    err = neutron_error(them.get(f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")
    assert err["message"] == f"Network {net['id']} could not be found."
    neutron_error(them.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "x"}}), 404)
    neutron_error(them.delete(f"/v2.0/networks/{net['id']}"), 404)
    assert net["id"] not in [n["id"] for n in them.list("networks")]
    assert core_api.member(project).show("networks", net["id"])["name"] == "private"


def test_shared_network_is_visible_but_not_writable(core_api: Api, project: str, other_project: str) -> None:
    net = core_api.admin(project).network(name="pub", shared=True)
    assert net["shared"] is True
    them = core_api.member(other_project)
    seen = them.show("networks", net["id"])
    assert seen["shared"] is True and seen["project_id"] == project
    assert net["id"] in [n["id"] for n in them.list("networks")]
    assert net["id"] in [n["id"] for n in them.list("networks", {"shared": "true"})]
    assert net["id"] not in [n["id"] for n in them.list("networks", {"shared": "false"})]
    neutron_error(them.put(f"/v2.0/networks/{net['id']}", json={"network": {"name": "x"}}), 403,
                  "PolicyNotAuthorized")
    neutron_error(them.delete(f"/v2.0/networks/{net['id']}"), 403, "PolicyNotAuthorized")
    assert them.show("networks", net["id"])["name"] == "pub"


def test_external_network_is_visible_to_everybody(core_api: Api, project: str, other_project: str) -> None:
    net = core_api.admin(project).network(**{"router:external": True})
    them = core_api.member(other_project)
    seen = them.show("networks", net["id"])
    assert seen["router:external"] is True and seen["shared"] is False
    assert net["id"] in [n["id"] for n in them.list("networks", {"router:external": "True"})]
    neutron_error(them.delete(f"/v2.0/networks/{net['id']}"), 403)
    # And back to internal: the other project loses sight of it.
    core_api.admin().update("networks", net["id"], **{"router:external": False})
    neutron_error(them.get(f"/v2.0/networks/{net['id']}"), 404)


def test_admin_sees_every_network(core_api: Api, project: str, other_project: str) -> None:
    a = core_api.member(project).network()
    b = core_api.member(other_project).network()
    ids = {n["id"] for n in core_api.admin().list("networks")}
    assert {a["id"], b["id"]} <= ids
    mine = {n["id"] for n in core_api.member(project).list("networks")}
    assert a["id"] in mine and b["id"] not in mine


# --- delete ------------------------------------------------------------------
def test_network_in_use(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, _ = me.net_with_subnet()
    port = me.port(net["id"], device_owner="compute:nova")
    err = neutron_error(me.delete(f"/v2.0/networks/{net['id']}"), 409, "NetworkInUse")
    assert err["message"] == (f"Unable to complete operation on network {net['id']}. "
                              "There are one or more ports still in use on the network.")
    assert core_api.footprint(project) == {"networks": 1, "subnets": 1, "ports": 1, "ip_allocations": 1}
    me.remove("ports", port["id"])
    me.remove("networks", net["id"])
    assert core_api.footprint(project) == {"networks": 0, "subnets": 0, "ports": 0, "ip_allocations": 0}
    neutron_error(me.get(f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")
    neutron_error(me.delete(f"/v2.0/networks/{net['id']}"), 404, "NetworkNotFound")


def test_delete_removes_dhcp_ports_subnets_segments_and_tags(core_api: Api, project: str) -> None:
    me = core_api.member(project)
    net, sub = me.net_with_subnet()
    dhcp = me.port(net["id"], device_owner="network:dhcp", device_id="dhcp-x")
    assert me.put(f"/v2.0/networks/{net['id']}/tags/red").status_code == 201
    assert core_api.count("network_segments", network_id=net["id"]) == 1
    me.remove("networks", net["id"])
    neutron_error(me.get(f"/v2.0/ports/{dhcp['id']}"), 404, "PortNotFound")
    neutron_error(me.get(f"/v2.0/subnets/{sub['id']}"), 404, "SubnetNotFound")
    assert core_api.footprint(project) == {"networks": 0, "subnets": 0, "ports": 0, "ip_allocations": 0}
    assert core_api.count("network_segments", network_id=net["id"]) == 0
    assert core_api.count("segment_allocations", network_id=net["id"]) == 0
    assert core_api.count("tags", resource_id=net["id"]) == 0


def test_unsharing_with_foreign_ports_is_refused(core_api: Api, project: str, other_project: str) -> None:
    admin = core_api.admin(project)
    net = admin.network(shared=True)
    admin.subnet(net["id"])
    theirs = core_api.member(other_project).port(net["id"])
    err = neutron_error(admin.put(f"/v2.0/networks/{net['id']}", json={"network": {"shared": False}}), 409,
                        "InvalidSharedSetting")
    assert err["message"] == (f"Unable to reconfigure sharing settings for network {net['id']}. "
                              "Multiple tenants are using it.")
    assert admin.show("networks", net["id"])["shared"] is True
    # The owner's own ports do not stop it.
    admin.port(net["id"])
    core_api.member(other_project).remove("ports", theirs["id"])
    assert admin.update("networks", net["id"], shared=False)["shared"] is False
    neutron_error(core_api.member(other_project).get(f"/v2.0/networks/{net['id']}"), 404)


def test_delete_by_owner_of_a_network_other_project_ports_on_it(core_api: Api, project: str,
                                                                other_project: str) -> None:
    admin = core_api.admin(project)
    net = admin.network(shared=True)
    admin.subnet(net["id"])
    core_api.member(other_project).port(net["id"])
    neutron_error(admin.delete(f"/v2.0/networks/{net['id']}"), 409, "NetworkInUse")


@pytest.mark.parametrize("version, cidr, minimum", [(4, "10.0.0.0/24", 68), (6, "2001:db8:0:1::/64", 1280)])
def test_subnet_needs_its_ip_versions_minimum_mtu(core_api: Api, project: str, version: int, cidr: str,
                                                  minimum: int) -> None:
    """tempest NetworksNegativeTest.test_{create_subnet,update_network}_mtu_below_minimum_ipv4/_ipv6."""
    me = core_api.member(project)
    low = me.network(mtu=minimum - 1)  # any non-negative MTU is accepted on its own
    assert low["mtu"] == minimum - 1
    r = me.post("/v2.0/subnets", json={"subnet": {"network_id": low["id"], "ip_version": version, "cidr": cidr}})
    neutron_error(r, 409, "NetworkMTUSubnetConflict", f"requires a minimum of {minimum}")
    assert core_api.count("subnets", network_id=low["id"]) == 0
    net = me.network(mtu=1280)
    me.subnet(net["id"], cidr=cidr, ip_version=version)
    r = me.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": minimum - 1}})
    neutron_error(r, 409, "NetworkMTUSubnetConflict")
    assert me.show("networks", net["id"])["mtu"] == 1280
    assert me.update("networks", net["id"], mtu=minimum)["mtu"] == minimum
    assert me.update("networks", low["id"], mtu=0)["mtu"] == 0  # no subnets: no minimum
    neutron_error(me.put(f"/v2.0/networks/{net['id']}", json={"network": {"mtu": -1}}), 400)


def test_subnet_changes_bump_the_network_revision(core_api: Api, project: str) -> None:
    """tempest TestRevisions.test_update_subnet_bumps_network_revision: every
    change to a subnet revises its network (Neutron's revises_on_change);
    a port does not."""
    me = core_api.member(project)
    net = me.network()
    subnet = me.subnet(net["id"])
    after_create = me.show("networks", net["id"])
    assert after_create["revision_number"] > net["revision_number"]
    assert after_create["updated_at"] >= net["updated_at"]
    me.update("subnets", subnet["id"], name="renamed")
    after_update = me.show("networks", net["id"])
    assert after_update["revision_number"] > after_create["revision_number"]
    me.port(net["id"])
    assert me.show("networks", net["id"])["revision_number"] == after_update["revision_number"]
    for port in me.list("ports", {"network_id": net["id"]}):
        me.remove("ports", port["id"])
    assert me.show("networks", net["id"])["revision_number"] == after_update["revision_number"]
    me.remove("subnets", subnet["id"])
    assert me.show("networks", net["id"])["revision_number"] > after_update["revision_number"]


@pytest.mark.parametrize("roles", ["member", "admin"])
@pytest.mark.parametrize("body", [
    {},
    {"name": "n", "description": "d", "admin_state_up": False, "port_security_enabled": False, "mtu": 1400,
     "dns_domain": "example.org."},
    {"shared": True},
    {"router:external": True, "is_default": True},
    {"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
    {"segments": [{"provider:network_type": "vxlan"}, {"provider:network_type": "vlan",
                                                       "provider:physical_network": "physnet1"}]},
], ids=["plain", "attrs", "shared", "external", "vlan", "segments"])
def test_the_create_answer_is_what_show_shows(core_api: Api, project: str, roles: str, body: dict) -> None:
    """A create renders the network from what it wrote (no read-back): the
    same attributes and values as a later show, for the caller's view."""
    admin_only = any(k.startswith(("provider:", "segments", "router:", "is_default", "shared")) for k in body)
    caller = core_api.admin(project) if roles == "admin" or admin_only else core_api.member(project)
    r = caller.post("/v2.0/networks", json={"network": body})
    assert r.status_code == 201, r.text
    made = r.json()["network"]
    assert made == caller.show("networks", made["id"])
