"""The ``openstack network agent ...`` commands and port binding through the
real python-openstackclient, against a live kaon server (SQLite).

Agents are registered the way the bus will: state reports handed to
``Agents.report_state`` — here from the test process, on the server's own
database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.config import load_config
from kaon.core.agents.agents import Agents, ReportResult
from kaon.core.agents.dhcp_ports import DhcpPorts
from kaon.core.agents.scheduling import Scheduler
from kaon.core.l2.port_rows import PortRows
from kaon.core.l3.l3_binding import RouterPortHosts
from kaon.db.engine import make_engine, write_txn
from kaon.ml2.binding import Binder
from kaon.ml2.mech.registry import build_mechanism_drivers
from kaon.ml2.segments import TypeManager
from tests.api.agent_support import TYPES, ago
from tests.fixtures import OpenStackCLI, find_openstack, require, start_kaon_server

pytestmark = pytest.mark.needs_cli

ADMIN = "kaon-admin"
EXTRA_CONF = {
    "ml2": {"type_drivers": "flat,vlan,vxlan", "tenant_network_types": "vxlan",
            "mechanism_drivers": "linuxbridge,openvswitch"},
    "ml2_type_vxlan": {"vni_ranges": "1:1000"},
    "ml2_type_flat": {"flat_networks": "provider"},
}


class Node:
    def __init__(self, cli: OpenStackCLI, conf_path: Path) -> None:
        self.cli = cli
        cfg = load_config([str(conf_path)])
        self.engine = make_engine(cfg.database.connection)
        binder = Binder(build_mechanism_drivers(cfg), TypeManager.from_config(cfg), cfg.default.agent_down_time)
        # The server's wiring (kaon.api.app.Services), less the API services.
        scheduler = Scheduler(cfg, DhcpPorts(PortRows(cfg), binder), RouterPortHosts(binder))
        self.agents = Agents(cfg, binder, scheduler)

    def admin(self, *args: str) -> Any:
        return self.cli.json(*args, cloud=ADMIN)

    def report(self, kind: str, host: str, zone: str | None = "nova", **conf: Any) -> ReportResult:
        agent_type, binary, topic = TYPES[kind]
        now = conf.pop("now", None)
        body = {"agent_type": agent_type, "binary": binary, "topic": topic, "host": host,
                "availability_zone": zone, "configurations": conf}
        with write_txn(self.engine) as conn:
            return self.agents.report_state(conn, body, now)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    binary = find_openstack()
    require(binary, "python-openstackclient not installed (run scripts/bootstrap.sh)")
    workdir = tmp_path_factory.mktemp("cli-agents")
    with start_kaon_server(workdir, None, auth_strategy="kaon", extra_conf=EXTRA_CONF) as srv:
        n = Node(OpenStackCLI(srv.clouds_yaml, cloud=ADMIN, binary=binary), srv.conf_path)
        yield n
        n.engine.dispose()


def test_agent_list_show_set_delete(node: Node) -> None:
    ovs = node.report("ovs", "compute", zone=None, tunnel_types=["vxlan"]).agent_id
    dead = node.report("lb", "old-name", zone=None, now=ago(600)).agent_id
    rows = {r["ID"]: r for r in node.admin("network", "agent", "list")}
    assert rows[ovs]["Agent Type"] == "Open vSwitch agent" and rows[ovs]["Host"] == "compute"
    # -f json prints the values behind ":-)"/"XXX" and "UP"/"DOWN".
    assert rows[ovs]["Alive"] is True and rows[ovs]["State"] is True
    assert rows[ovs]["Binary"] == "neutron-openvswitch-agent"
    assert rows[dead]["Alive"] is False
    shown = node.admin("network", "agent", "show", ovs)
    assert shown["id"] == ovs and shown["host"] == "compute", shown
    node.cli.ok("network", "agent", "set", "--description", "drain me", "--disable", ovs, cloud=ADMIN)
    shown = node.admin("network", "agent", "show", ovs)
    assert shown["description"] == "drain me" and shown["admin_state_up"] is False, shown
    node.cli.ok("network", "agent", "delete", dead, cloud=ADMIN)
    assert dead not in {r["ID"] for r in node.admin("network", "agent", "list")}


def test_dhcp_agent_network_add_list_remove(node: Node) -> None:
    # Seed 002: ``quantum dhcp-agent-network-add <agent_id> <network_id>``, in today's words.
    a = node.report("dhcp", "net-a").agent_id
    b = node.report("dhcp", "net-b").agent_id
    net = node.admin("network", "create", "dhcp-net")
    node.admin("subnet", "create", "dhcp-sub", "--network", "dhcp-net", "--subnet-range", "10.9.0.0/24")
    hosts = [r["Host"] for r in node.admin("network", "agent", "list", "--network", net["id"])]
    assert len(hosts) == 1 and hosts[0] in ("net-a", "net-b")
    other = b if hosts == ["net-a"] else a
    node.cli.ok("network", "agent", "add", "network", "--dhcp", other, net["id"], cloud=ADMIN)
    assert sorted(r["Host"] for r in node.admin("network", "agent", "list", "--network", net["id"])) == \
        ["net-a", "net-b"]
    listed = node.admin("network", "list", "--agent", other)
    assert [n["ID"] for n in listed] == [net["id"]]
    node.cli.ok("network", "agent", "remove", "network", "--dhcp", other, net["id"], cloud=ADMIN)
    assert [r["Host"] for r in node.admin("network", "agent", "list", "--network", net["id"])] == hosts
    zones = node.admin("availability", "zone", "list", "--network", "--long")
    assert {"Zone Name": "nova", "Zone Status": "available", "Zone Resource": "network"} in \
        [{k: z[k] for k in ("Zone Name", "Zone Status", "Zone Resource")} for z in zones]


def test_l3_agent_router_add_remove(node: Node) -> None:
    agent = node.report("l3", "net-a").agent_id
    router = node.admin("router", "create", "r-cli")
    assert router["availability_zones"] == ["nova"]  # scheduled on create
    assert [r["ID"] for r in node.admin("network", "agent", "list", "--router", router["id"])] == [agent]
    node.cli.ok("network", "agent", "remove", "router", "--l3", agent, router["id"], cloud=ADMIN)
    assert node.admin("network", "agent", "list", "--router", router["id"]) == []
    node.cli.ok("network", "agent", "add", "router", "--l3", agent, router["id"], cloud=ADMIN)
    assert [r["ID"] for r in node.admin("network", "agent", "list", "--router", router["id"])] == [agent]


def test_port_binding_seen_by_the_cli(node: Node) -> None:
    node.report("lb", "compute2", tunnel_types=["vxlan"])
    node.admin("network", "create", "bind-net")
    port = node.admin("port", "create", "--network", "bind-net", "--host", "compute2", "p-bound")
    assert port["binding_vif_type"] == "bridge" and port["binding_host_id"] == "compute2"
    assert port["binding_vif_details"]["bridge_name"].startswith("brq")
    # The seed's failure: the port's host has no agent that can carry vxlan.
    failed = node.admin("port", "create", "--network", "bind-net", "--host", "compute9", "p-failed")
    assert failed["binding_vif_type"] == "binding_failed"
