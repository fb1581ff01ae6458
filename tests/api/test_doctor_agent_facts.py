"""kaon doctor's checks of what agents report about themselves (the
``health`` of their state reports, kaon.doctor.agent_checks and the failing
action of generation_lag): each fed through the real service and database
as the bus feeds it, named with cause and fix, and quiet once fixed."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kaon import errors
from kaon.core.agents.agent_rpc import AgentRpc
from kaon.db.agent_tables import agents
from kaon.doctor import registry
from kaon.ml2.binding import utcnow
from tests.api.agent_support import AGENT_CONF, report, services
from tests.api.core_support import Api, build_api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    made = build_api(f"sqlite:///{tmp_path / 'kaon.sqlite'}", tmp_path, AGENT_CONF)
    yield made
    made.close()


def lines(api: Api, check: str, now: dt.datetime | None = None) -> list[str]:
    svc = services(api)
    out = registry.run(svc.cfg, engine=svc.engine, kinds=[registry.DATA], only=[check], now=now)
    assert not out.not_checked, out.not_checked
    return [f.line() for f in out.findings]


def lb(api: Api, host: str, vtep: str, **health: Any) -> None:
    report(api, "lb", host, health={"time": time.time(), **health}, tunnel_types=["vxlan"], tunneling_ip=vtep)


def rpc(api: Api) -> AgentRpc:
    svc = services(api)
    return AgentRpc(svc.engine, svc.agents, svc.compiler)


def test_a_tunnel_without_answers_names_both_hosts(api: Api) -> None:
    lb(api, "h2", "10.99.0.2", tunnels={"10.99.0.3": True})
    lb(api, "h3", "10.99.0.3", tunnels={"10.99.0.2": False})
    assert lines(api, "tunnels") == [
        "h3: VXLAN to 10.99.0.2 (h2): gets no answer on udp/4789 — open udp/4789 between the hosts' local_ip "
        "addresses (10.99.0.3 on h3, 10.99.0.2 on h2) in both directions"]
    lb(api, "h3", "10.99.0.3", tunnels={"10.99.0.2": True})
    assert lines(api, "tunnels") == []


def test_a_path_that_drops_the_networks_mtu_names_the_pair_and_the_size(api: Api) -> None:
    lb(api, "h1", "10.99.0.1", tunnels={"10.99.0.3": True}, tunnel_mtu={"10.99.0.3": {"mtu": 1450, "answered": True}})
    lb(api, "h3", "10.99.0.3", tunnels={"10.99.0.1": True}, tunnel_mtu={"10.99.0.1": {"mtu": 1450, "answered": False}})
    assert lines(api, "tunnel_mtu") == [
        "h3: VXLAN to 10.99.0.1 (h1): small probes are answered but frames of the networks' MTU 1450 (1500-byte "
        "packets on udp/4789) are not: the underlay between 10.99.0.3 and 10.99.0.1 carries less: VMs' large packets "
        "(TCP bulk, big pings) are dropped — raise the MTU of every link between h3 and h1 (the hosts' local_ip "
        "devices, switch ports, and bridges between them) to at least 1500, or lower the networks' MTU to what the "
        "path carries minus 50 (openstack network set --mtu N NETWORK; VMs pick it up at their next DHCP lease)"]
    lb(api, "h3", "10.99.0.3", tunnels={"10.99.0.1": True}, tunnel_mtu={"10.99.0.1": {"mtu": 1450, "answered": True}})
    assert lines(api, "tunnel_mtu") == []


def test_a_converged_host_with_a_tunnel_down_says_so(api: Api) -> None:
    lb(api, "h1", "10.99.0.1", tunnels={"10.99.0.9": False})
    net, _ = api.admin().net_with_subnet("10.0.0.0/24")
    api.admin().port(net["id"], **{"binding:host_id": "h1", "device_owner": "compute:nova"})
    services(api).compiler.compile_now()
    gen = rpc(api)("get_intent", {"host": "h1", "known_generation": None})["generation"]
    rpc(api)("report_applied", {"host": "h1", "generation": gen})
    assert lines(api, "tunnels") == [
        f"h1: VXLAN to 10.99.0.9 (unknown host): gets no answer on udp/4789, though h1 reports generation {gen} "
        "applied (converged) — open udp/4789 between the hosts' local_ip addresses (10.99.0.1 on h1, 10.99.0.9 "
        "on unknown host) in both directions"]


def test_a_probe_that_cannot_run_is_said(api: Api) -> None:
    lb(api, "h1", "10.99.0.1", tunnels={}, tunnel_probe_error="NetlinkError: [Errno 17] File exists")
    assert lines(api, "tunnels") == [
        "h1: VXLAN probe: cannot run: NetlinkError: [Errno 17] File exists — read the agent's log on h1; the probe "
        "needs VNI 16777215 free on udp/4789 at 10.99.0.1 (kprobe-vx)"]


def test_tunnels_of_a_dead_agent_are_not_reported(api: Api) -> None:
    lb(api, "h3", "10.99.0.3", tunnels={"10.99.0.2": False})
    found = lines(api, "tunnels", now=utcnow() + dt.timedelta(seconds=600))
    assert found == []


def _dnsmasq_setup(api: Api, running: bool) -> str:
    net, _ = api.admin().net_with_subnet("10.0.0.0/24")
    report(api, "dhcp", "h1", health={"time": time.time(), "dnsmasq": {net["id"]: {"pid": 4242, "running": running}}})
    return str(net["id"])


def test_dnsmasq_not_running_for_a_served_network(api: Api) -> None:
    net_id = _dnsmasq_setup(api, running=False)
    svc = services(api)
    svc.compiler.compile_now()
    assert lines(api, "dnsmasq") == []  # the host has not applied its intent yet: generation_lag's business
    gen = rpc(api)("get_intent", {"host": "h1", "known_generation": None})["generation"]
    rpc(api)("report_applied", {"host": "h1", "generation": gen})
    assert lines(api, "dnsmasq") == [
        f"h1: DHCP for network {net_id}: dnsmasq (pid 4242) is not running though the DHCP agent serves the "
        "network: its VMs get no address — the agent starts it again at its next resync; if it keeps dying, read "
        f"dnsmasq's log in the agent's state directory (dhcp/h1/{net_id}/log), or restart the agent on that host"]
    report(api, "dhcp", "h1", health={"time": time.time(), "dnsmasq": {net_id: {"pid": 4243, "running": True}}})
    assert lines(api, "dnsmasq") == []


def test_clock_skew_beyond_agent_down_time(api: Api) -> None:
    down = int(services(api).cfg.default.agent_down_time)
    report(api, "lb", "h1", health={"time": time.time() + down + 240})
    report(api, "lb", "h2", health={"time": time.time() - 2})
    found = lines(api, "clock_skew")
    assert len(found) == 1 and found[0].startswith(f"h1: host h1: its clock is {down + 240} s ahead of the "), found
    assert found[0].endswith(f"more than agent_down_time ({down} s): agent liveness, token expiry and logs "
                             "disagree — synchronise the clocks of h1 and the servers (chrony or "
                             "systemd-timesyncd against one NTP source)")
    report(api, "lb", "h1", health={"time": time.time() - down - 100})
    assert f"its clock is {down + 100} s behind the server's" in lines(api, "clock_skew")[0]
    report(api, "lb", "h1", health={"time": time.time()})
    assert lines(api, "clock_skew") == []


def test_the_stored_health_holds_the_skew_not_the_agents_clock(api: Api) -> None:
    report(api, "lb", "h1", health={"time": time.time() + 30, "tunnels": {}})
    with services(api).engine.connect() as conn:
        health = conn.execute(select(agents.c.health).where(agents.c.host == "h1")).scalar_one()
    assert set(health) == {"clock_skew", "tunnels"} and 29 <= health["clock_skew"] <= 31


@pytest.mark.parametrize("health", [[1], {"time": "now"}, {"time": True}])
def test_a_malformed_health_is_refused(api: Api, health: Any) -> None:
    with pytest.raises(errors.InvalidInput, match="health"):
        report(api, "lb", "h1", health=health)


def test_generation_lag_names_the_failing_action(api: Api) -> None:
    failure = {"manager": "l2", "action": "ensure_vxlan:vxlan-1001",
               "reason": "ensure_vxlan vxlan-1001 failed: [Errno 17] File exists"}
    lb(api, "h1", "10.99.0.1", last_failure=failure)
    net, _ = api.admin().net_with_subnet("10.0.0.0/24")
    api.admin().port(net["id"], **{"binding:host_id": "h1", "device_owner": "compute:nova"})
    services(api).compiler.compile_now()
    found = lines(api, "generation_lag", now=utcnow() + dt.timedelta(seconds=61))
    assert len(found) == 1, found
    assert found[0].endswith("ago; its agent is alive but has not applied it; its last failed action: "
                             "ensure_vxlan:vxlan-1001 (l2): ensure_vxlan vxlan-1001 failed: [Errno 17] File exists — "
                             "fix what the failed action names on h1 (the agent retries by itself)"), found
    lb(api, "h1", "10.99.0.1")  # a pass went well: no failure reported, the generic fix again
    assert "read the agent's log on h1" in lines(api, "generation_lag", now=utcnow() + dt.timedelta(seconds=61))[0]


def test_a_device_mtu_other_than_its_networks(api: Api) -> None:
    tap = {"device": "tap5c0f", "port_id": "5c0f", "network_id": "n1", "mtu": 1500, "network_mtu": 1450}
    vx = {"device": "vxlan-1001", "port_id": None, "network_id": "n1", "mtu": 1400, "network_mtu": 1450}
    lb(api, "h1", "10.99.0.1", mtu=[tap, vx])
    assert lines(api, "mtu") == [
        "h1: port 5c0f device tap5c0f: MTU 1500, its network n1 has MTU 1450: frames over 1450 bytes leave it and "
        "are dropped on the way — ip link set tap5c0f mtu 1450 on h1 (Nova's os-vif sets a tap to the network's "
        "MTU on plug: check the VIF's mtu), or change the network's: openstack network set --mtu N NETWORK",
        "h1: device vxlan-1001: MTU 1400, its network n1 has MTU 1450: the bridge, and every port on it, is held "
        "to 1400 bytes — ip link set vxlan-1001 mtu 1450 on h1 (Nova's os-vif sets a tap to the network's MTU on "
        "plug: check the VIF's mtu), or change the network's: openstack network set --mtu N NETWORK"]
    lb(api, "h1", "10.99.0.1", mtu=[])
    assert lines(api, "mtu") == []


def test_an_ovs_agent_that_lost_its_ovsdb_server_is_named_until_it_is_back(api: Api) -> None:
    remote = "unix:/var/run/openvswitch/db.sock"
    report(api, "ovs", "h4", health={"time": time.time(), "ovsdb": {"remote": remote, "connected": True}})
    assert lines(api, "ovsdb_lost") == []
    report(api, "ovs", "h4", health={"time": time.time(), "ovsdb": {"remote": remote, "connected": False}})
    assert lines(api, "ovsdb_lost") == [
        f"h4: ovsdb-server at {remote}: the Open vSwitch agent has lost its connection: it applies nothing (no port "
        "is wired, no flow changes) until ovsdb-server answers again — start ovsdb-server on h4 (systemctl start "
        "openvswitch-switch, or ovs-ctl start); the agent reconnects and catches up by itself"]
    # A dead agent's last word is old news: active_on_dead_host and generation_lag speak of the dead.
    assert lines(api, "ovsdb_lost", now=utcnow() + dt.timedelta(seconds=600)) == []
    report(api, "ovs", "h4", health={"time": time.time(), "ovsdb": {"remote": remote, "connected": True}})
    assert lines(api, "ovsdb_lost") == []
