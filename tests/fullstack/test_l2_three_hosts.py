"""Three simulated hosts; the server on PostgreSQL, the bus on RabbitMQ, one
``kaon agent`` per host (issue 4's acceptance), every scenario run twice: the
hosts as Linux bridge agents, then as Open vSwitch agents (issue 11):

* VMs on h1, h2, h3 on one VXLAN network reach each other by VXLAN unicast,
  and each host's flood entries name exactly the hosts with ports there;
* a flat provider network spans the hosts through the underlay;
* ``openstack network agent list`` shows the agents alive; a stopped agent
  turns dead after agent_down_time and binding to its host says so;
* RabbitMQ and the server restart under running agents, and later changes
  still converge.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = [pytest.mark.needs_root, pytest.mark.needs_postgres, pytest.mark.needs_cli]

VTEP = {"h1": "10.99.0.1", "h2": "10.99.0.2", "h3": "10.99.0.3"}


LB, OVS = "linuxbridge", "openvswitch"
AGENT = {LB: ("Linux bridge agent", "neutron-linuxbridge-agent", "linux-bridge", "bridge"),
         OVS: ("Open vSwitch agent", "neutron-openvswitch-agent", "open-vswitch", "ovs")}


@pytest.fixture(scope="module", params=[LB, OVS])
def three(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, postgres_server: str,
          rabbitmq: Any) -> Iterator[Stack]:
    from tests.fixtures import create_pg_database, drop_pg_database

    url = create_pg_database(postgres_server, prefix="fullstack")
    try:
        with stack(tmp_path_factory.mktemp("three-hosts"), hosts=3, db_url=url, transport_url=rabbitmq.url,
                   auth_strategy="kaon", mechanism=request.param) as s:
            yield s
    finally:
        drop_pg_database(url)


def vni(s: Stack, net: dict[str, Any]) -> int:
    return int(s.api("GET", f"/v2.0/networks/{net['id']}")["network"]["provider:segmentation_id"])


def test_vms_on_three_hosts_reach_each_other_over_vxlan_unicast(three: Stack) -> None:
    net = three.network("tenant", "10.10.0.0/24")
    vms = {h: three.vm(f"t{h}", h, net["id"], ip_address=f"10.10.0.1{h[1]}") for h in VTEP}
    # A port is ACTIVE once its own host has wired it; the other hosts learn of it
    # (l2population) a moment later, so the pings wait for every host to converge.
    three.wait_converged()
    assert three.ping("th1", "10.10.0.12", count=2)
    assert three.ping("th1", "10.10.0.13", count=2)
    assert three.ping("th3", "10.10.0.12", count=2)
    v = vni(three, net)
    for host in VTEP:
        assert three.flood_entries(host, v) == {ip for h, ip in VTEP.items() if h != host}
    # Unicast: h1 knows where h2's VM lives and answers ARP for it locally.
    if three.mechanism("h1") == OVS:
        flows = {(f.table, f.match): f.actions for f in three.ovs_flows("h1", "br-tun")}
        unicast = {m.split("dl_dst=")[1]: a for (t, m), a in flows.items() if t == 20 and "dl_dst=fa:" in m}
        assert unicast[vms["h2"]["mac"]].endswith("output:vxlan-0a630002")
        assert unicast[vms["h3"]["mac"]].endswith("output:vxlan-0a630003")
        assert any(t == 21 and m.endswith("arp_tpa=10.10.0.12") for t, m in flows), "no ARP responder entry"
        return
    fdb = three.host("h1", "bridge", "fdb", "show", "dev", f"vxlan-{v}")
    assert f"{vms['h2']['mac']} dst 10.99.0.2" in fdb and f"{vms['h3']['mac']} dst 10.99.0.3" in fdb
    neigh = three.host("h1", "ip", "neigh", "show", "dev", f"vxlan-{v}")
    assert f"10.10.0.12 lladdr {vms['h2']['mac']} PERMANENT" in neigh


def test_flood_entries_name_only_hosts_with_ports_on_the_network(three: Stack) -> None:
    net = three.network("pair", "10.11.0.0/24")
    three.vm("p1", "h1", net["id"])
    three.vm("p2", "h2", net["id"])
    three.wait_converged()
    v = vni(three, net)
    assert three.flood_entries("h1", v) == {"10.99.0.2"}
    assert three.flood_entries("h2", v) == {"10.99.0.1"}
    if three.mechanism("h3") == OVS:
        assert three.flood_entries("h3", v) == set()
    else:
        assert f"vxlan-{v}" not in three.host("h3", "ip", "-o", "link", "show")
    # A third member: everybody learns about it, the old members too.
    three.vm("p3", "h3", net["id"])
    three.wait_converged()
    assert three.flood_entries("h1", v) == {"10.99.0.2", "10.99.0.3"}
    assert three.flood_entries("h3", v) == {"10.99.0.1", "10.99.0.2"}
    three.lab.delete_vm("p3")
    three.wait_converged()
    assert three.flood_entries("h1", v) == {"10.99.0.2"}


def test_a_flat_provider_network_spans_the_hosts(three: Stack) -> None:
    net = three.network("provider-net", "192.168.100.0/24", gateway="192.168.100.1", shared=True,
                        **{"provider:network_type": "flat", "provider:physical_network": "provider"})
    three.vm("f1", "h1", net["id"], ip_address="192.168.100.21")
    three.vm("f2", "h2", net["id"], ip_address="192.168.100.22")
    three.wait_converged()
    assert three.ping("f1", "192.168.100.22", count=2)
    assert three.ping("f2", "192.168.100.1", count=2)  # the lab's outside namespace, across the provider wire
    if three.mechanism("h1") == OVS:  # eth1 is br-ex's; the provider network is translated on int-br-ex
        assert any(f.match.startswith("in_port=int-br-ex,vlan_tci=0x0000") for f in three.ovs_flows("h1", "br-int"))
    else:
        bridge = f"brq{net['id'][:11]}"
        assert f"master {bridge}" in three.host("h1", "ip", "-o", "link", "show", "eth1")


def test_the_cli_lists_the_agents_and_a_stopped_one_dies_and_refuses_binding(three: Stack, openstack_cli: Any) -> None:
    cli = openstack_cli(three.server)
    agent_type, binary, cli_type, vif_type = AGENT[three.mechanism("h1")]
    rows = cli.json("network", "agent", "list", "--agent-type", cli_type)
    assert sorted(r["Host"] for r in rows) == ["h1", "h2", "h3"]
    assert all(r["Alive"] in (True, ":-)") and r["Binary"] == binary and r["Agent Type"] == agent_type
               for r in rows)
    three.lab.stop_agents(["h3"])
    try:
        wait_for("h3's agent dead", lambda: not next(a for a in three.agents() if a["host"] == "h3")["alive"],
                 timeout=15)
        rows = cli.json("network", "agent", "list", "--host", "h3")
        assert [r["Alive"] for r in rows] in ([False], ["XXX"])
        net = three.network("late", "10.12.0.0/24")
        port = three.api("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "binding:host_id": "h3"}})["port"]
        assert port["binding:vif_type"] == "binding_failed"
        assert f"{agent_type} on host h3 was last seen" in port["binding:failure_reason"]
    finally:
        three.lab.start_agents()
    three.wait_agents(["h3"])
    # Back: its failed port binds on the agent's return.
    wait_for("port bound after the agent came back",
             lambda: three.port(port["id"])["binding:vif_type"] == vif_type, timeout=15)


def test_rabbitmq_and_server_restarts_do_not_stop_convergence(three: Stack, rabbitmq: Any) -> None:
    net = three.network("survivor", "10.13.0.0/24")
    three.vm("r1", "h1", net["id"], ip_address="10.13.0.11")
    rabbitmq.restart()
    three.server.restart()
    three.wait_agents(list(VTEP))
    r2 = three.vm("r2", "h2", net["id"], ip_address="10.13.0.12")
    assert three.ping("r1", "10.13.0.12", count=2)
    three.wait_converged()
    assert three.port(r2["port_id"])["status"] == "ACTIVE"
