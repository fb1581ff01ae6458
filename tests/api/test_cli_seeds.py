"""The seed documents' ``openstack`` commands, verbatim, against a live kaon server.

One ``python -m kaon server`` with ``auth_strategy = kaon`` (embedded identity)
per database (SQLite, PostgreSQL) for the whole module; the real
python-openstackclient talks to it through the ``clouds.yaml`` the server
writes (``kaon-admin``, ``kaon-demo``).

The commands come from /work/shared/seeds: 001 (ext-net, ext-subnet,
private-net, private-subnet, a VLAN provider network, ``port list --network``,
``port show``, ``quota show admin``) and 002 (four shared VLAN provider
networks on non-contiguous ranges of physnet ``default``, visible to a tenant;
a subnet with a host route to the metadata address).  Module-scoped fixtures
run the seed commands once; the tests check what the CLI printed and what
admin and demo see afterwards.

Each CLI call costs about a second, so a fixture's output is reused wherever
a fresh ``show`` would not tell us more.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures import (
    KaonServer,
    OpenStackCLI,
    create_pg_database,
    drop_pg_database,
    find_openstack,
    require,
    start_kaon_server,
)

pytestmark = pytest.mark.needs_cli

ADMIN = "kaon-admin"
DEMO = "kaon-demo"

# Seed 002: ``network_vlan_ranges = default:100:101,default:200:201``; seed 001
# and the install guide: ``provider:100:200`` (and ``flat_networks = provider``).
EXTRA_CONF = {
    "ml2_type_vlan": {"network_vlan_ranges": "provider:100:200,default:100:101,default:200:201"},
    "ml2_type_flat": {"flat_networks": "provider"},
}

PUB_SEGMENTS = (100, 101, 200, 201)

IN_USE = "There are one or more ports still in use on the network"


@dataclass
class Node:
    server: KaonServer
    cli: OpenStackCLI
    db: str
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    def admin(self, *args: str) -> Any:
        return self.cli.json(*args, cloud=ADMIN)

    def demo(self, *args: str) -> Any:
        return self.cli.json(*args, cloud=DEMO)

    def project_id(self, cloud: str) -> str:
        return str(self.tokens[cloud]["project_id"])

    def raw_get(self, cloud: str, path: str) -> httpx.Response:
        """GET on the Networking API with ``cloud``'s token (to see what the CLI hides)."""
        return httpx.get(
            self.server.url + path, headers={"X-Auth-Token": self.tokens[cloud]["id"]}, timeout=30
        )


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="pg", marks=pytest.mark.needs_postgres),
    ],
)
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    binary = find_openstack()
    require(binary, "python-openstackclient not installed (run scripts/bootstrap.sh)")
    workdir: Path = tmp_path_factory.mktemp(f"cli-seeds-{request.param}")
    db_url = None
    if request.param == "postgresql":
        db_url = create_pg_database(request.getfixturevalue("postgres_server"), prefix="cli_seeds")
    try:
        with start_kaon_server(workdir, db_url, auth_strategy="kaon", extra_conf=EXTRA_CONF) as srv:
            n = Node(srv, OpenStackCLI(srv.clouds_yaml, cloud=ADMIN, binary=binary), request.param)
            for cloud in (ADMIN, DEMO):
                n.tokens[cloud] = n.cli.json("token", "issue", cloud=cloud)
            yield n
    finally:
        if db_url is not None:
            try:
                drop_pg_database(db_url)
            except Exception:  # the cluster may be gone already
                pass


# --------------------------------------------------------------- seed fixtures
@pytest.fixture(scope="module")
def ext_net(node: Node) -> dict[str, Any]:
    """Seed 001, as admin: the flat external network and its DHCP-less subnet."""
    net = node.admin(
        "network", "create", "ext-net",
        "--external", "--provider-physical-network", "provider", "--provider-network-type", "flat",
    )  # fmt: skip
    subnet = node.admin(
        "subnet", "create", "ext-subnet", "--network", "ext-net",
        "--subnet-range", "192.168.100.0/24",
        "--allocation-pool", "start=192.168.100.10,end=192.168.100.90",
        "--gateway", "192.168.100.1", "--no-dhcp",
    )  # fmt: skip
    return {"net": net, "subnet": subnet}


@pytest.fixture(scope="module")
def private_net(node: Node) -> dict[str, Any]:
    """Seed 001, as demo: the self-service network and its subnet."""
    net = node.demo("network", "create", "private-net")
    subnet = node.demo(
        "subnet", "create", "private-subnet", "--network", "private-net",
        "--subnet-range", "10.0.0.0/24",
        "--allocation-pool", "start=10.0.0.10,end=10.0.0.200",
        "--gateway", "10.0.0.1", "--dns-nameserver", "8.8.8.8",
    )  # fmt: skip
    return {"net": net, "subnet": subnet}


@pytest.fixture(scope="module")
def vlan_net(node: Node) -> dict[str, Any]:
    """Seed 001, as admin: a VLAN provider network on segment 100 of ``provider``."""
    return node.admin(
        "network", "create", "--provider-network-type", "vlan",
        "--provider-physical-network", "provider", "--provider-segment", "100", "vlan-net",
    )  # fmt: skip


@pytest.fixture(scope="module")
def pub_nets(node: Node) -> dict[str, dict[str, Any]]:
    """Seed 002, as admin: ``quantum net-create pubNNN --provider:network_type vlan
    --provider:segmentation_id=NNN --shared`` and ``subnet-create pubNNN 10.10.NNN.0/24``,
    the pub100 subnet with the metadata host route (``--host-route
    destination=169.254.0.0/16,nexthop=10.10.100.3``)."""
    out: dict[str, dict[str, Any]] = {}
    for seg in PUB_SEGMENTS:
        name = f"pub{seg}"
        net = node.admin(
            "network", "create", name, "--share",
            "--provider-network-type", "vlan", "--provider-physical-network", "default",
            "--provider-segment", str(seg),
        )  # fmt: skip
        args = ["subnet", "create", f"{name}-subnet", "--network", name,
                "--subnet-range", f"10.10.{seg}.0/24"]  # fmt: skip
        if seg == 100:
            args += ["--host-route", "destination=169.254.0.0/16,gateway=10.10.100.3"]
        out[name] = {"net": net, "subnet": node.admin(*args)}
    return out


# --------------------------------------------------------------- helpers
def pools(subnet: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["start"], p["end"]) for p in subnet["allocation_pools"]]


def fixed_ips(port: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((ip["subnet_id"], ip["ip_address"]) for ip in port["fixed_ips"])


# --------------------------------------------------------------- seed 001
def test_ext_net_is_a_flat_external_provider_network(node: Node, ext_net: dict[str, Any]) -> None:
    net = ext_net["net"]
    assert net["name"] == "ext-net"
    assert net["router:external"] is True
    assert net["shared"] is False
    assert net["provider:network_type"] == "flat"
    assert net["provider:physical_network"] == "provider"
    assert net["provider:segmentation_id"] is None
    assert net["project_id"] == node.project_id(ADMIN)
    assert net["status"] == "ACTIVE" and net["admin_state_up"] is True
    assert net["mtu"] == 1500  # flat: no encapsulation overhead


def test_ext_subnet_has_the_seed_pool_gateway_and_no_dhcp(node: Node, ext_net: dict[str, Any]) -> None:
    sub = ext_net["subnet"]
    assert sub["name"] == "ext-subnet"
    assert sub["network_id"] == ext_net["net"]["id"]
    assert sub["cidr"] == "192.168.100.0/24"
    assert sub["ip_version"] == 4
    assert sub["gateway_ip"] == "192.168.100.1"
    assert pools(sub) == [("192.168.100.10", "192.168.100.90")]
    assert sub["enable_dhcp"] is False
    # The network now lists its subnet.
    shown = node.admin("network", "show", "ext-net")
    assert shown["subnets"] == [sub["id"]]


def test_private_net_is_a_demo_owned_tenant_network(node: Node, private_net: dict[str, Any]) -> None:
    net, sub = private_net["net"], private_net["subnet"]
    assert net["name"] == "private-net"
    assert net["project_id"] == node.project_id(DEMO)
    assert net["shared"] is False and net["router:external"] is False
    # Provider attributes are admin-only: the demo's create output hides them.
    assert net["provider:network_type"] is None
    assert net["provider:segmentation_id"] is None
    assert sub["project_id"] == node.project_id(DEMO)
    assert sub["network_id"] == net["id"]
    assert sub["cidr"] == "10.0.0.0/24"
    assert sub["gateway_ip"] == "10.0.0.1"
    assert pools(sub) == [("10.0.0.10", "10.0.0.200")]
    assert sub["dns_nameservers"] == ["8.8.8.8"]
    assert sub["enable_dhcp"] is True
    # Seed 001: ``--nic net-id=$(openstack network list --name private-net -f value -c ID)``.
    res = node.cli.ok("network", "list", "--name", "private-net", "-f", "value", "-c", "ID", cloud=DEMO)
    assert res.stdout.split() == [net["id"]]


def test_segmentation_id_is_shown_to_admin_and_hidden_from_demo(
    node: Node, private_net: dict[str, Any]
) -> None:
    as_admin = node.admin("network", "show", "-c", "provider:segmentation_id", "private-net")
    seg = as_admin["provider:segmentation_id"]
    assert isinstance(seg, int) and 1 <= seg <= 1000  # tenant_network_types = vxlan, vni_ranges 1:1000

    as_demo = node.demo("network", "show", "-c", "provider:segmentation_id", "private-net")
    # OSC prints a hidden attribute as None ...
    assert as_demo == {"provider:segmentation_id": None}
    # ... because the API leaves it out of the demo's view altogether.
    r = node.raw_get(DEMO, f"/v2.0/networks/{private_net['net']['id']}")
    assert r.status_code == 200, r.text
    body = r.json()["network"]
    assert body["name"] == "private-net"
    for attr in ("provider:network_type", "provider:physical_network", "provider:segmentation_id"):
        assert attr not in body, body
    r = node.raw_get(ADMIN, f"/v2.0/networks/{private_net['net']['id']}")
    body = r.json()["network"]
    assert body["provider:segmentation_id"] == seg
    assert body["provider:network_type"] == "vxlan"
    assert body["provider:physical_network"] is None
    assert body["mtu"] == 1450  # 1500 - VXLAN overhead


def test_vlan_provider_network_on_segment_100(node: Node, vlan_net: dict[str, Any]) -> None:
    assert vlan_net["name"] == "vlan-net"
    assert vlan_net["provider:network_type"] == "vlan"
    assert vlan_net["provider:physical_network"] == "provider"
    assert vlan_net["provider:segmentation_id"] == 100
    assert vlan_net["mtu"] == 1500
    assert vlan_net["shared"] is False
    # The same VLAN on the same physical network is taken now.
    res = node.cli.fails(
        "network", "create", "--provider-network-type", "vlan",
        "--provider-physical-network", "provider", "--provider-segment", "100", "vlan-net-2",
        cloud=ADMIN,
    )  # fmt: skip
    assert "409" in res.stderr or "Conflict" in res.stderr, res
    assert "in use" in res.stderr.lower(), res


# --------------------------------------------------------------- seed 002
def test_shared_vlan_provider_networks_on_non_contiguous_ranges(
    node: Node, pub_nets: dict[str, dict[str, Any]], vlan_net: dict[str, Any]
) -> None:
    for seg in PUB_SEGMENTS:
        net, sub = pub_nets[f"pub{seg}"]["net"], pub_nets[f"pub{seg}"]["subnet"]
        assert net["shared"] is True, net
        assert net["provider:network_type"] == "vlan"
        assert net["provider:physical_network"] == "default"
        # pub100 reuses VLAN 100 on another physical network than vlan-net: no clash.
        assert net["provider:segmentation_id"] == seg
        assert net["project_id"] == node.project_id(ADMIN)
        assert sub["cidr"] == f"10.10.{seg}.0/24"
        assert sub["gateway_ip"] == f"10.10.{seg}.1"
        assert pools(sub) == [(f"10.10.{seg}.2", f"10.10.{seg}.254")]
    routes = pub_nets["pub100"]["subnet"]["host_routes"]
    assert routes == [{"destination": "169.254.0.0/16", "nexthop": "10.10.100.3"}]
    assert pub_nets["pub101"]["subnet"]["host_routes"] == []


def test_host_routes_shown_to_the_tenant_and_added_later(node: Node, pub_nets: dict[str, dict[str, Any]]) -> None:
    shown = node.demo("subnet", "show", pub_nets["pub100"]["subnet"]["id"])
    assert shown["host_routes"] == [{"destination": "169.254.0.0/16", "nexthop": "10.10.100.3"}]
    assert shown["network_id"] == pub_nets["pub100"]["net"]["id"]
    # Seed 002's other way: ``quantum subnet-update --host-routes ...`` on an existing subnet.
    node.cli.ok("subnet", "set", "--host-route", "destination=169.254.0.0/16,gateway=10.10.101.2",
                "pub101-subnet", cloud=ADMIN)  # fmt: skip
    shown = node.demo("subnet", "show", "pub101-subnet")
    assert shown["host_routes"] == [{"destination": "169.254.0.0/16", "nexthop": "10.10.101.2"}]


def test_demo_sees_shared_and_external_networks_but_not_admin_only_ones(
    node: Node,
    ext_net: dict[str, Any],
    private_net: dict[str, Any],
    vlan_net: dict[str, Any],
    pub_nets: dict[str, dict[str, Any]],
) -> None:
    rows = {r["Name"]: r for r in node.demo("network", "list", "--long")}
    for seg in PUB_SEGMENTS:
        row = rows[f"pub{seg}"]
        assert row["Shared"] is True, row
        assert row["Project"] == node.project_id(ADMIN)
        assert row["Subnets"] == [pub_nets[f"pub{seg}"]["subnet"]["id"]]
        assert row["Network Type"] is None  # admin-only attribute
    assert "private-net" in rows and rows["private-net"]["Shared"] is False
    assert "ext-net" in rows  # external networks are readable by every project
    assert rows["ext-net"]["Router Type"] is True  # -f json: the raw router:external
    assert "vlan-net" not in rows
    # And the shared networks' subnets are visible too (``quantum net-list`` in seed 002).
    subnets = {r["Name"] for r in node.demo("subnet", "list")}
    assert {f"pub{seg}-subnet" for seg in PUB_SEGMENTS} <= subnets
    assert "private-subnet" in subnets
    res = node.cli.fails("network", "show", vlan_net["id"], cloud=DEMO)
    assert "No Network found" in res.stderr or "404" in res.stderr, res


def test_admin_network_list_filters(node: Node, pub_nets: dict[str, dict[str, Any]], ext_net: dict[str, Any]) -> None:
    external = {r["Name"] for r in node.admin("network", "list", "--external")}
    assert "ext-net" in external and "pub100" not in external
    vlans = {r["Name"] for r in node.admin("network", "list", "--provider-network-type", "vlan")}
    assert {f"pub{seg}" for seg in PUB_SEGMENTS} <= vlans
    assert "ext-net" not in vlans and "private-net" not in vlans


# --------------------------------------------------------------- ports
def test_port_create_list_show_set_delete(
    node: Node, private_net: dict[str, Any], pub_nets: dict[str, dict[str, Any]]
) -> None:
    net_id, sub_id = private_net["net"]["id"], private_net["subnet"]["id"]
    port = node.demo("port", "create", "--network", "private-net", "vm-port")
    assert port["name"] == "vm-port"
    assert port["network_id"] == net_id
    assert port["project_id"] == node.project_id(DEMO)
    assert port["admin_state_up"] is True
    assert port["mac_address"].startswith("fa:16:3e:")
    ((subnet_id, ip),) = fixed_ips(port)
    assert subnet_id == sub_id
    addr = ipaddress.ip_address(ip)
    assert ipaddress.ip_address("10.0.0.10") <= addr <= ipaddress.ip_address("10.0.0.200")

    fixed = node.demo(
        "port", "create", "--network", "private-net",
        "--fixed-ip", "subnet=private-subnet,ip-address=10.0.0.42", "fixed-port",
    )  # fmt: skip
    assert fixed_ips(fixed) == [(sub_id, "10.0.0.42")]

    # Seed 002: a tenant's port on a shared provider network (listed under that network alone).
    shared = node.demo("port", "create", "--network", "pub100", "pub-port")
    assert shared["project_id"] == node.project_id(DEMO)
    ((_, pub_ip),) = fixed_ips(shared)
    assert ipaddress.ip_address(pub_ip) in ipaddress.ip_network("10.10.100.0/24")
    assert pub_ip not in ("10.10.100.0", "10.10.100.1", "10.10.100.255")
    assert node.demo("port", "list", "--network", "pub101") == []

    # Seed 001: ``openstack port list --network private-net``.
    by_id = {r["ID"]: r for r in node.demo("port", "list", "--network", "private-net")}
    assert {port["id"], fixed["id"]} <= set(by_id)
    assert shared["id"] not in by_id
    assert by_id[port["id"]]["MAC Address"] == port["mac_address"]
    assert by_id[port["id"]]["Fixed IP Addresses"] == [{"subnet_id": sub_id, "ip_address": ip}]
    assert by_id[fixed["id"]]["Name"] == "fixed-port"

    # ``port set``: new name, and the fixed IP replaced by a chosen one.
    node.cli.ok(
        "port", "set", "--name", "vm-port-renamed",
        "--no-fixed-ip", "--fixed-ip", "subnet=private-subnet,ip-address=10.0.0.50", port["id"],
        cloud=DEMO,
    )  # fmt: skip
    shown = node.demo("port", "show", port["id"])
    assert shown["name"] == "vm-port-renamed"
    assert fixed_ips(shown) == [(sub_id, "10.0.0.50")]
    assert shown["mac_address"] == port["mac_address"]
    assert shown["revision_number"] > port["revision_number"]
    # ``port set --fixed-ip`` alone adds an address.
    node.cli.ok("port", "set", "--fixed-ip", "ip-address=10.0.0.51", "vm-port-renamed", cloud=DEMO)
    shown = node.demo("port", "show", "vm-port-renamed")
    assert fixed_ips(shown) == [(sub_id, "10.0.0.50"), (sub_id, "10.0.0.51")]
    # A fixed IP already taken is refused.
    res = node.cli.fails(
        "port", "set", "--fixed-ip", "subnet=private-subnet,ip-address=10.0.0.42", "vm-port-renamed",
        cloud=DEMO,
    )  # fmt: skip
    assert "10.0.0.42" in res.stderr and "in use" in res.stderr, res

    node.cli.ok("port", "delete", "vm-port-renamed", fixed["id"], shared["id"], cloud=DEMO)
    # Seed 001: ``openstack port show <deleted id>`` -> "No Port found for <id>".
    res = node.cli.fails("port", "show", port["id"], cloud=DEMO)
    assert f"No Port found for {port['id']}" in res.stderr, res
    remaining = {r["ID"] for r in node.demo("port", "list", "--network", "private-net")}
    assert not remaining & {port["id"], fixed["id"]}


def test_deleting_a_network_with_a_port_fails_with_network_in_use(node: Node) -> None:
    net = node.demo("network", "create", "busy-net")
    node.demo("subnet", "create", "busy-subnet", "--network", "busy-net", "--subnet-range", "10.99.0.0/24")
    port = node.demo("port", "create", "--network", "busy-net", "busy-port")
    res = node.cli.fails("network", "delete", "busy-net", cloud=DEMO)
    assert IN_USE in res.stderr, res
    assert net["id"] in res.stderr, res  # "Unable to complete operation on network <id>."
    # Still there; gone once its port is.
    assert node.demo("network", "show", "busy-net")["id"] == net["id"]
    node.cli.ok("port", "delete", port["id"], cloud=DEMO)
    node.cli.ok("network", "delete", "busy-net", cloud=DEMO)
    res = node.cli.fails("network", "show", net["id"], cloud=DEMO)
    assert "No Network found" in res.stderr, res


# --------------------------------------------------------------- seed 001: router, floating IP, security group
def test_router_floating_ip_and_security_group(
    node: Node, ext_net: dict[str, Any], private_net: dict[str, Any]
) -> None:
    ext_sub, priv_sub = ext_net["subnet"]["id"], private_net["subnet"]["id"]
    router = node.demo("router", "create", "router1")
    assert router["name"] == "router1" and router["project_id"] == node.project_id(DEMO)
    assert router["external_gateway_info"] is None
    node.cli.ok("router", "set", "router1", "--external-gateway", "ext-net", cloud=DEMO)
    node.cli.ok("router", "add", "subnet", "router1", "private-subnet", cloud=DEMO)
    shown = node.demo("router", "show", "router1")
    gw = shown["external_gateway_info"]
    assert gw["network_id"] == ext_net["net"]["id"]
    assert gw["enable_snat"] is True
    ((gw_sub, gw_ip),) = [(ip["subnet_id"], ip["ip_address"]) for ip in gw["external_fixed_ips"]]
    ext_pool = (ipaddress.ip_address("192.168.100.10"), ipaddress.ip_address("192.168.100.90"))
    assert gw_sub == ext_sub and ext_pool[0] <= ipaddress.ip_address(gw_ip) <= ext_pool[1]
    (iface,) = shown["interfaces_info"]
    assert (iface["subnet_id"], iface["ip_address"]) == (priv_sub, "10.0.0.1")  # the subnet's gateway

    # Seed 001's ``port list --network private-net`` shows the router's 10.0.0.1 port.
    rows = {r["ID"]: r for r in node.demo("port", "list", "--network", "private-net")}
    assert rows[iface["port_id"]]["Fixed IP Addresses"] == [{"subnet_id": priv_sub, "ip_address": "10.0.0.1"}]

    fip = node.demo("floating", "ip", "create", "ext-net")
    assert fip["floating_network_id"] == ext_net["net"]["id"]
    assert fip["project_id"] == node.project_id(DEMO)
    assert fip["port_id"] is None and fip["fixed_ip_address"] is None
    addr = ipaddress.ip_address(fip["floating_ip_address"])
    assert ext_pool[0] <= addr <= ext_pool[1] and str(addr) != gw_ip

    sg = node.demo(
        "security", "group", "create", "test_sg", "--description", "Test security group allowing port 8888"
    )
    assert sg["name"] == "test_sg" and sg["description"] == "Test security group allowing port 8888"
    assert sorted((r["direction"], r["ethertype"]) for r in sg["rules"]) == [
        ("egress", "IPv4"), ("egress", "IPv6"),
    ]  # fmt: skip
    for port in (22, 8888):
        rule = node.demo(
            "security", "group", "rule", "create",
            "--proto", "tcp", "--dst-port", str(port), "--remote-ip", "0.0.0.0/0", "test_sg",
        )  # fmt: skip
        assert rule["security_group_id"] == sg["id"]
        assert (rule["direction"], rule["ether_type"], rule["protocol"]) == ("ingress", "IPv4", "tcp")
        assert (rule["port_range_min"], rule["port_range_max"]) == (port, port)
        assert rule["remote_ip_prefix"] == "0.0.0.0/0"


def test_network_agent_list(node: Node) -> None:
    # Seed 001: ``openstack network agent list``; this node runs no host agents.
    rows = node.admin("network", "agent", "list")
    assert isinstance(rows, list)
    for row in rows:
        assert {"ID", "Agent Type", "Host", "Alive", "State", "Binary"} <= set(row), row


# --------------------------------------------------------------- extensions and quotas
def test_extension_list_network(node: Node) -> None:
    rows = node.admin("extension", "list", "--network")
    aliases = {r["Alias"] for r in rows}
    for alias in ("provider", "external-net", "quotas", "net-mtu", "standard-attr-description"):
        assert alias in aliases, sorted(aliases)
    assert all(r["Name"] and r["Description"] for r in rows)
    # Non-admins may list extensions too.
    assert {r["Alias"] for r in node.demo("extension", "list", "--network")} == aliases


def test_quota_show_as_admin_and_demo(node: Node) -> None:
    # The catalog has only network and identity, so plain ``quota show`` is
    # network-only already (OSC skips compute/volume not in the catalog).
    admin = {r["Resource"]: r["Limit"] for r in node.admin("quota", "show", "admin")}
    demo = {r["Resource"]: r["Limit"] for r in node.demo("quota", "show")}
    for quotas in (admin, demo):
        for resource in ("networks", "subnets", "ports"):
            assert isinstance(quotas[resource], int), quotas
        assert quotas["networks"] == 100 and quotas["subnets"] == 100 and quotas["ports"] == 500
    # Seed 001's ``openstack quota show admin`` output lists these network rows.
    assert admin["floating_ips"] == 50
