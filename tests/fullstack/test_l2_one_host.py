"""One simulated host, the server on SQLite and on MariaDB (a private
mariadbd, as the install guide's ``mysql+pymysql://``) and the local bus (Unix socket):
VMs on a VXLAN network reach each other; networks with the same CIDR stay apart;
ports go ACTIVE when plugged and DOWN when unplugged; the intent converges.

Run with the host as a Linux bridge agent and as an Open vSwitch agent; the
checks of one agent's own devices (brq bridges, kernel features) are for it alone."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fixtures.mariadb import create_mysql_database, drop_mysql_database
from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def stacks(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Callable[[str, str], Stack]]:
    """One single-host stack per (mechanism, database), made when first asked for, all closed with the module."""
    with contextlib.ExitStack() as made:
        by_key: dict[tuple[str, str], Stack] = {}

        def get(mechanism: str, db: str = "sqlite") -> Stack:
            if (mechanism, db) not in by_key:
                db_url = None
                if db == "mariadb":
                    db_url = create_mysql_database(request.getfixturevalue("mariadb_url"), prefix="l2_one_host")
                    made.callback(drop_mysql_database, db_url)
                by_key[mechanism, db] = made.enter_context(
                    stack(tmp_path_factory.mktemp(f"one-host-{mechanism}-{db}"), hosts=1, mechanism=mechanism,
                          db_url=db_url))
            return by_key[mechanism, db]

        yield get


@pytest.fixture(params=[
    pytest.param(("linuxbridge", "sqlite"), id="linuxbridge-sqlite"),
    pytest.param(("openvswitch", "sqlite"), id="openvswitch-sqlite"),
    pytest.param(("linuxbridge", "mariadb"), id="linuxbridge-mariadb", marks=pytest.mark.needs_mariadb),
])
def one(request: pytest.FixtureRequest, stacks: Callable[[str, str], Stack]) -> Stack:
    """The scenarios that apply to both agents (and the server on MariaDB)."""
    return stacks(*request.param)


@pytest.fixture
def lb_one(stacks: Callable[[str, str], Stack]) -> Stack:
    """The Linux bridge agent's own devices (brq bridges, kernel features)."""
    return stacks("linuxbridge")


def test_two_vms_on_one_vxlan_network_ping_and_same_cidr_networks_are_apart(one: Stack) -> None:
    blue = one.network("blue", "10.0.0.0/24")
    red = one.network("red", "10.0.0.0/24")  # same CIDR, another network
    a = one.vm("a", "h1", blue["id"], ip_address="10.0.0.11")
    b = one.vm("b", "h1", blue["id"], ip_address="10.0.0.12")
    c = one.vm("c", "h1", red["id"], ip_address="10.0.0.13")
    assert one.ping("a", "10.0.0.12", count=3)
    assert one.ping("b", "10.0.0.11")
    assert not one.ping("a", "10.0.0.13", count=2)
    assert not one.ping("c", "10.0.0.11", count=2)
    body = one.wait_converged()
    assert [h["host"] for h in body["host_intents"]] == ["h1"]
    if one.mechanism("h1") == "openvswitch":
        # Each network has its own local VLAN on br-int: the same CIDR cannot meet.
        tags = {vm["tap"]: one.host("h1", "ovs-vsctl", f"--db=unix:{one.lab.state()['hosts']['h1']['ovs']['rundir']}"
                                    "/db.sock", "get", "Port", vm["tap"], "tag").strip() for vm in (a, b, c)}
        assert tags[a["tap"]] == tags[b["tap"]] != tags[c["tap"]] and "[]" not in tags.values(), tags
        return
    # What the agent built: one bridge per network, each with its own VXLAN device.
    links = one.host("h1", "ip", "-o", "link", "show")
    for net in (blue, red):
        assert f"brq{net['id'][:11]}" in links
    for vm in (a, b, c):
        assert f"{vm['tap']}@" in links and f"master brq{vm['network_id'][:11]}" in \
            next(line for line in links.splitlines() if f"{vm['tap']}@" in line)


def test_an_unplugged_tap_takes_its_port_down_and_a_replugged_one_up(one: Stack) -> None:
    net = one.network("green", "10.2.0.0/24")
    vm = one.vm("g1", "h1", net["id"])
    if one.mechanism("h1") == "linuxbridge":
        one.host("h1", "ip", "link", "set", vm["tap"], "nomaster")  # drift: the agent puts it back
        wait_for("the tap back in its bridge", lambda: f"master brq{net['id'][:11]}" in one.host(
            "h1", "ip", "-o", "link", "show", vm["tap"]), timeout=15)
    one.lab.delete_vm("g1")  # deletes the port too
    assert one.api("GET", "/v2.0/ports", id=vm["port_id"])["ports"] == []
    vm2 = one.lab.create_vm("g2", "h1", net["id"])
    one.wait_active(vm2["port_id"])
    if one.mechanism("h1") == "openvswitch":  # os-vif's unplug: the port leaves br-int, then the tap goes
        one.host("h1", "ovs-vsctl", f"--db=unix:{one.lab.state()['hosts']['h1']['ovs']['rundir']}/db.sock",
                 "del-port", "br-int", vm2["tap"])
    one.host("h1", "ip", "link", "del", vm2["tap"])  # Nova unplugged the VM
    wait_for("port DOWN", lambda: one.port(vm2["port_id"])["status"] == "DOWN", timeout=15)


def test_the_bridge_goes_when_the_last_port_leaves(lb_one: Stack) -> None:
    one = lb_one
    # Without DHCP: h1 is the lab's network node, and a DHCP port would keep the bridge.
    net = one.api("POST", "/v2.0/networks", {"network": {"name": "short-lived"}})["network"]
    one.api("POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.3.0.0/24", "ip_version": 4,
                                                 "enable_dhcp": False}})
    one.vm("s1", "h1", net["id"])
    bridge = f"brq{net['id'][:11]}"
    assert bridge in one.host("h1", "ip", "-o", "link", "show")
    one.lab.delete_vm("s1")
    wait_for("bridge swept", lambda: bridge not in one.host("h1", "ip", "-o", "link", "show"), timeout=15)
    one.wait_converged()


def test_vlan_segments_are_refused_on_a_kernel_without_8021q(lb_one: Stack) -> None:
    """The agent probed its kernel and said it has no VLAN devices; binding says so, nothing half-plugs.

    (OVS carries VLANs in userspace here: tests/fullstack/test_l2_ovs.py.)"""
    one = lb_one
    agent = one.agents()[0]
    features = agent["configurations"]["kernel_features"]
    assert features["vlan"] is False and features["vxlan"] is True and "802.1Q" in features["vlan_detail"]
    net = one.network("vlan-net", "10.5.0.0/24", **{"provider:network_type": "vlan",
                                                    "provider:physical_network": "provider",
                                                    "provider:segmentation_id": 150})
    port = one.api("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "binding:host_id": "h1"}})["port"]
    assert port["binding:vif_type"] == "binding_failed"
    assert port["binding:failure_reason"].startswith(
        "Linux bridge agent on host h1 cannot carry vlan segments, its kernel has no VLAN support: 802.1Q")


def test_binding_to_an_unknown_host_says_why(one: Stack, tmp_path: Path) -> None:
    net = one.network("nowhere", "10.4.0.0/24")
    port = one.api("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "binding:host_id": "h9"}})["port"]
    assert port["binding:vif_type"] == "binding_failed"
    assert "host h9 has no live Linux bridge agent" in port["binding:failure_reason"]
