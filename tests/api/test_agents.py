"""/v2.0/agents (list, show, update, delete; admin only), state reports and
liveness, and port binding through the agents: success with each driver,
every failure reason, unbinding, and retry when an agent comes (back)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select

from kaon.db.agent_tables import port_binding_levels
from kaon.errors import InvalidInput
from tests.api import core_support
from tests.api.agent_support import AGENT_CONF, ago, report, services
from tests.api.core_support import Api, Caller, neutron_error

make_api, project = core_support.make_api, core_support.project


@pytest.fixture
def api(make_api: Any) -> Api:
    return make_api(**AGENT_CONF)


# -- the agents API --------------------------------------------------------
def test_report_registers_and_admin_lists_and_shows(api: Api) -> None:
    r = report(api, "ovs", "compute", zone=None, bridge_mappings={"provider": "br-ex"}, tunnel_types=["vxlan"])
    assert r.status == "new"
    admin = api.admin()
    agents = admin.list("agents")
    assert [a["id"] for a in agents] == [r.agent_id]
    a = agents[0]
    assert a["agent_type"] == "Open vSwitch agent" and a["binary"] == "neutron-openvswitch-agent"
    assert a["topic"] == "q-agent-notifier" and a["host"] == "compute"
    assert a["admin_state_up"] is True and a["alive"] is True and a["description"] is None
    assert a["configurations"] == {"bridge_mappings": {"provider": "br-ex"}, "tunnel_types": ["vxlan"]}
    assert a["availability_zone"] is None and a["resources_synced"] is None
    # Neutron's agent times: "YYYY-MM-DD HH:MM:SS".
    assert len(a["heartbeat_timestamp"]) == 19 and a["heartbeat_timestamp"][10] == " "
    assert a["created_at"] == a["started_at"]
    assert admin.show("agents", r.agent_id) == a


def test_reports_refresh_one_row_per_type_and_host(api: Api) -> None:
    first = report(api, "dhcp", "ctl", now=ago(50), zone="nova", networks=0)
    again = report(api, "dhcp", "ctl", zone="az2", networks=3)
    assert again.agent_id == first.agent_id and again.status == "alive"
    restarted = report(api, "dhcp", "ctl", start=True)
    assert restarted.status == "alive"
    other = report(api, "l3", "ctl", zone="nova")
    assert other.agent_id != first.agent_id
    a = api.admin().show("agents", first.agent_id)
    assert a["availability_zone"] == "az2" and a["configurations"] == {}
    assert a["started_at"] > a["created_at"]
    assert len(api.admin().list("agents")) == 2


def test_a_malformed_report_is_refused(api: Api) -> None:
    svc = services(api)
    from kaon.db.engine import write_txn

    with write_txn(svc.engine) as conn, pytest.raises(InvalidInput, match="'host' must be a non-empty string"):
        svc.agents.report_state(conn, {"agent_type": "DHCP agent", "binary": "b", "topic": "t"})
    with write_txn(svc.engine) as conn, pytest.raises(InvalidInput, match="'configurations' must be an object"):
        svc.agents.report_state(conn, {"agent_type": "DHCP agent", "binary": "b", "topic": "t", "host": "h",
                                       "configurations": ["x"]})


def test_alive_follows_heartbeat_age(api: Api) -> None:
    live = report(api, "lb", "a").agent_id
    dead = report(api, "lb", "b", now=ago(120)).agent_id
    admin = api.admin()
    assert admin.show("agents", live)["alive"] is True
    assert admin.show("agents", dead)["alive"] is False
    assert [a["id"] for a in admin.list("agents", {"alive": "true"})] == [live]
    assert [a["id"] for a in admin.list("agents", {"alive": "false"})] == [dead]
    assert report(api, "lb", "b").status == "revived"
    assert admin.show("agents", dead)["alive"] is True


def test_filters_fields_and_sorting(api: Api) -> None:
    report(api, "dhcp", "h2")
    report(api, "l3", "h1")
    report(api, "ovs", "h3")
    admin = api.admin()
    assert [a["host"] for a in admin.list("agents", {"agent_type": "L3 agent"})] == ["h1"]
    assert sorted(a["host"] for a in admin.list("agents", [("host", "h1"), ("host", "h3")])) == ["h1", "h3"]
    assert [a["host"] for a in admin.list("agents", {"sort_key": "host", "sort_dir": "desc"})] == ["h3", "h2", "h1"]
    assert admin.list("agents", [("fields", "id"), ("fields", "alive"), ("host", "h2")])[0].keys() == \
        {"id", "alive"}
    neutron_error(admin.get("/v2.0/agents", params={"bogus": "1"}), 400, contains="bogus")


def test_update_admin_state_and_description(api: Api) -> None:
    agent_id = report(api, "l3", "net1").agent_id
    admin = api.admin()
    a = admin.update("agents", agent_id, admin_state_up=False, description="draining")
    assert a["admin_state_up"] is False and a["description"] == "draining"
    assert admin.list("agents", {"admin_state_up": "false"})[0]["id"] == agent_id
    neutron_error(admin.put(f"/v2.0/agents/{agent_id}", json={"agent": {"host": "x"}}), 400,
                  contains="Cannot update read-only attribute host")
    neutron_error(admin.put(f"/v2.0/agents/{agent_id}", json={"agent": {"admin_state_up": "maybe"}}), 400)


def test_delete_and_no_create(api: Api) -> None:
    agent_id = report(api, "meta", "ctl").agent_id
    admin = api.admin()
    neutron_error(admin.post("/v2.0/agents", json={"agent": {"host": "x"}}), 405, "HTTPMethodNotAllowed")
    admin.remove("agents", agent_id)
    neutron_error(admin.get(f"/v2.0/agents/{agent_id}"), 404, "AgentNotFound",
                  contains=f"Agent {agent_id} could not be found.")
    neutron_error(admin.delete(f"/v2.0/agents/{agent_id}"), 404, "AgentNotFound")
    # A later report registers it again, as a new agent.
    assert report(api, "meta", "ctl").status == "new"


def test_agents_are_invisible_to_non_admins(api: Api, project: str) -> None:
    agent_id = report(api, "dhcp", "ctl").agent_id
    member = api.member(project)
    assert member.list("agents") == []
    neutron_error(member.get(f"/v2.0/agents/{agent_id}"), 404, "AgentNotFound")
    neutron_error(member.put(f"/v2.0/agents/{agent_id}", json={"agent": {"description": "x"}}), 404)
    neutron_error(member.delete(f"/v2.0/agents/{agent_id}"), 404)
    assert api.admin().show("agents", agent_id)["description"] is None


def test_extensions_are_advertised(api: Api) -> None:
    aliases = {e["alias"] for e in api.admin().get("/v2.0/extensions").json()["extensions"]}
    assert {"agent", "binding", "dhcp_agent_scheduler", "l3_agent_scheduler", "availability_zone",
            "network_availability_zone"} <= aliases


# -- binding ---------------------------------------------------------------
def bound_port(admin: Caller, net_id: str, host: str, **attrs: Any) -> dict[str, Any]:
    return admin.port(net_id, **{"binding:host_id": host, **attrs})


def provider_net(admin: Caller, kind: str, physnet: str | None = None, seg_id: int | None = None) -> str:
    attrs: dict[str, Any] = {"provider:network_type": kind}
    if physnet:
        attrs["provider:physical_network"] = physnet
    if seg_id:
        attrs["provider:segmentation_id"] = seg_id
    return str(admin.network(**attrs)["id"])


def test_linuxbridge_binds_a_port_on_vxlan(api: Api) -> None:
    report(api, "lb", "compute", tunnel_types=["vxlan"], interface_mappings={"provider": "eth1"})
    admin = api.admin()
    net = admin.network()  # a project vxlan network
    port = bound_port(admin, net["id"], "compute")
    assert port["binding:vif_type"] == "bridge"
    assert port["binding:vif_details"] == {"port_filter": True, "connectivity": "l2",
                                           "bridge_name": f"brq{net['id'][:11]}"}
    assert port["binding:failure_reason"] is None
    assert port["status"] == "DOWN"  # until the agent reports the device up
    with api.engine.connect() as conn:
        level = conn.execute(select(port_binding_levels).where(port_binding_levels.c.port_id == port["id"])).one()
    assert (level.host, level.driver, level.level) == ("compute", "linuxbridge", 0)


def test_openvswitch_binds_a_port_on_a_flat_provider_network(api: Api) -> None:
    report(api, "ovs", "compute2", bridge_mappings={"physnet1": "br-ex"})
    admin = api.admin()
    port = bound_port(admin, provider_net(admin, "flat", "physnet1"), "compute2")
    assert port["binding:vif_type"] == "ovs"
    assert port["binding:vif_details"] == {"port_filter": True, "ovs_hybrid_plug": False,
                                           "datapath_type": "system", "bridge_name": "br-int",
                                           "connectivity": "l2"}


def test_binding_on_update_and_unbinding(api: Api) -> None:
    report(api, "ovs", "compute", tunnel_types=["vxlan"])
    admin = api.admin()
    port = admin.port(admin.network()["id"])
    assert port["binding:vif_type"] == "unbound" and port["binding:host_id"] == ""
    port = admin.update("ports", port["id"], **{"binding:host_id": "compute"})
    assert port["binding:vif_type"] == "ovs" and port["binding:vif_details"]["bridge_name"] == "br-int"
    port = admin.update("ports", port["id"], **{"binding:host_id": ""})
    assert port["binding:vif_type"] == "unbound" and port["binding:vif_details"] == {}
    assert port["binding:failure_reason"] is None
    assert api.count("ports") == 1
    with api.engine.connect() as conn:
        assert conn.execute(select(port_binding_levels)).all() == []


def test_a_bound_port_keeps_its_mac(api: Api) -> None:
    report(api, "ovs", "compute", tunnel_types=["vxlan"])
    admin = api.admin()
    port = bound_port(admin, admin.network()["id"], "compute")
    neutron_error(admin.put(f"/v2.0/ports/{port['id']}", json={"port": {"mac_address": "fa:16:3e:00:00:01"}}),
                  409, "PortBound")


def test_failure_reason_is_admin_only_and_read_only(api: Api, project: str) -> None:
    admin = api.admin()
    net = admin.network(shared=True)
    port = bound_port(admin, net["id"], "nowhere", project_id=project)
    assert port["binding:vif_type"] == "binding_failed"
    mine = api.member(project).show("ports", port["id"])
    assert "binding:failure_reason" not in mine and "binding:vif_type" not in mine
    neutron_error(admin.post("/v2.0/ports", json={"port": {"network_id": net["id"],
                                                          "binding:failure_reason": "x"}}), 400)


def failed(admin: Caller, net_id: str, host: str = "compute") -> str:
    port = bound_port(admin, net_id, host)
    assert port["binding:vif_type"] == "binding_failed" and port["binding:vif_details"] == {}
    return str(port["binding:failure_reason"])


def test_failure_no_agent_on_the_host_is_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    report(api, "ovs", "compute.example.com", tunnel_types=["vxlan"])
    admin = api.admin()
    net = admin.network()
    with caplog.at_level(logging.WARNING, logger="kaon.binding"):
        reason = failed(admin, net["id"])
    assert reason == ("host compute has no live Linux bridge agent or Open vSwitch agent "
                      "(hosts that have one: compute.example.com)")
    record = [r for r in caplog.records if r.name == "kaon.binding"][-1]
    assert record.levelno == logging.WARNING
    text = record.getMessage()
    assert text.startswith("Failed to bind port ") and " on host compute for vnic_type normal using segments [" \
        in text and "'network_type': 'vxlan'" in text and text.endswith(reason)


def test_failure_dead_agent(api: Api) -> None:
    report(api, "lb", "compute", now=ago(120), tunnel_types=["vxlan"])
    admin = api.admin()
    reason = failed(admin, admin.network()["id"])
    assert reason.startswith("Linux bridge agent on host compute was last seen 12")
    assert reason.endswith(" s ago (agent_down_time 75 s)")


def test_failure_disabled_agent(api: Api) -> None:
    agent_id = report(api, "ovs", "compute", tunnel_types=["vxlan"]).agent_id
    admin = api.admin()
    admin.update("agents", agent_id, admin_state_up=False)
    assert failed(admin, admin.network()["id"]) == \
        "Open vSwitch agent on host compute is disabled (admin_state_up is false)"


def test_failure_no_mapping_for_the_physical_network(api: Api) -> None:
    report(api, "ovs", "compute", bridge_mappings={"physnet1": "br-ex"})
    admin = api.admin()
    assert failed(admin, provider_net(admin, "vlan", "physnet2", 7)) == (
        "Open vSwitch agent on host compute has no mapping for physical network physnet2 "
        "(bridge_mappings: physnet1:br-ex)")


def test_failure_tunnel_type_not_supported(api: Api) -> None:
    report(api, "lb", "compute", interface_mappings={"physnet1": "eth1"})
    admin = api.admin()
    assert failed(admin, admin.network()["id"]) == \
        "Linux bridge agent on host compute does not support vxlan (tunnel_types: none)"


def test_failure_kernel_without_vlan(api: Api) -> None:
    report(api, "lb", "compute", interface_mappings={"physnet1": "eth1"}, kernel_features={"vlan": False})
    admin = api.admin()
    assert "cannot carry vlan segments, its kernel has no VLAN support" in \
        failed(admin, provider_net(admin, "vlan", "physnet1", 120))


def test_failure_unsupported_vnic_type(api: Api) -> None:
    report(api, "ovs", "compute", tunnel_types=["vxlan"])
    admin = api.admin()
    port = bound_port(admin, admin.network()["id"], "compute", **{"binding:vnic_type": "direct"})
    assert port["binding:vif_type"] == "binding_failed"
    assert port["binding:failure_reason"].startswith("vnic_type direct is not supported")


def test_failure_without_binding_drivers(make_api: Any) -> None:
    api = make_api(ml2={"mechanism_drivers": "l2population"})
    report(api, "ovs", "compute", tunnel_types=["vxlan"])
    admin = api.admin()
    assert failed(admin, admin.network()["id"]) == \
        "no configured mechanism driver binds ports ([ml2] mechanism_drivers: l2population)"


# -- retry -----------------------------------------------------------------
def test_failed_ports_bind_when_their_agent_revives(api: Api) -> None:
    report(api, "ovs", "compute", now=ago(300), tunnel_types=["vxlan"])
    admin = api.admin()
    net = admin.network()["id"]
    ports = [bound_port(admin, net, "compute") for _ in range(2)]
    other = bound_port(admin, net, "elsewhere")
    assert {p["binding:vif_type"] for p in (*ports, other)} == {"binding_failed"}
    result = report(api, "ovs", "compute", tunnel_types=["vxlan"])
    assert result.status == "revived"
    assert sorted(result.rebound_ports) == sorted(p["id"] for p in ports)
    for p in ports:
        now = admin.show("ports", p["id"])
        assert now["binding:vif_type"] == "ovs" and now["binding:failure_reason"] is None
        assert now["revision_number"] == p["revision_number"] + 1
    assert admin.show("ports", other["id"])["binding:vif_type"] == "binding_failed"


def test_failed_ports_bind_when_a_new_agent_registers(api: Api) -> None:
    admin = api.admin()
    port = bound_port(admin, admin.network()["id"], "compute")
    assert port["binding:vif_type"] == "binding_failed"
    result = report(api, "lb", "compute", tunnel_types=["vxlan"])
    assert result.status == "new" and result.rebound_ports == [port["id"]]
    assert admin.show("ports", port["id"])["binding:vif_type"] == "bridge"


def test_failed_ports_bind_when_a_restarted_agent_gains_a_mapping(api: Api) -> None:
    report(api, "ovs", "compute", bridge_mappings={})
    admin = api.admin()
    port = bound_port(admin, provider_net(admin, "flat", "physnet1"), "compute")
    assert port["binding:vif_type"] == "binding_failed"
    assert report(api, "ovs", "compute", bridge_mappings={}).rebound_ports == []  # same report: no retry
    result = report(api, "ovs", "compute", start=True, bridge_mappings={"physnet1": "br-ex"})
    assert result.status == "alive" and result.rebound_ports == [port["id"]]


def test_failed_ports_bind_when_an_admin_enables_the_agent(api: Api) -> None:
    agent_id = report(api, "ovs", "compute", tunnel_types=["vxlan"]).agent_id
    admin = api.admin()
    admin.update("agents", agent_id, admin_state_up=False)
    port = bound_port(admin, admin.network()["id"], "compute")
    assert port["binding:vif_type"] == "binding_failed"
    admin.update("agents", agent_id, admin_state_up=True)
    assert admin.show("ports", port["id"])["binding:vif_type"] == "ovs"


def test_a_bound_port_stays_bound_when_its_agent_dies(api: Api) -> None:
    report(api, "ovs", "compute", tunnel_types=["vxlan"])
    admin = api.admin()
    port = bound_port(admin, admin.network()["id"], "compute")
    report(api, "ovs", "compute", now=ago(500), tunnel_types=["vxlan"])
    assert admin.show("ports", port["id"])["binding:vif_type"] == "ovs"


def test_agent_type_filter_ignores_case_as_neutrons_mysql_does(api: Api) -> None:
    report(api, "dhcp", "net1")
    report(api, "l3", "net1")
    admin = api.admin()
    for asked in ("DHCP agent", "DHCP Agent", "dhcp agent"):
        assert [a["agent_type"] for a in admin.list("agents", {"agent_type": asked})] == ["DHCP agent"]
