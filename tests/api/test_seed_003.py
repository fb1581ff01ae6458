"""Seed 003 as written (issue 12, acceptance, first bullet).

Seed 003 (/work/shared/seeds/003_*.txt) is the Neutron install guide for a
controller and a compute node. This test takes its controller ``neutron.conf``
and ``ml2_conf.ini`` blocks verbatim, points only the host names, passwords
and the database at the test's own services, starts the real
``kaon server --config-file neutron.conf --config-file ml2_conf.ini`` and runs
the guide's ``openstack`` commands with the real client:

- ``[database]``: the suite's private MariaDB, with the guide's ``neutron``
  database and its two ``GRANT ... TO 'neutron'`` accounts;
- ``transport_url``: the suite's private RabbitMQ, with the guide's
  ``openstack`` account (``rabbitmqctl add_user``, all rights on ``/``);
- ``[keystone_authtoken]``: kaon's identity playing the external Keystone on
  its own port, with the guide's ``service`` project and ``neutron`` user
  (admin role) made by the guide's own ``openstack`` commands;
- ``[nova]`` and the ``notify_nova_*`` options stay: kaon has no Nova
  notifier and says so at start-up.

A guide's controller listens on 0.0.0.0:9696 and keeps state in
/var/lib/neutron; a test may do neither, so a third file, ``host.conf``,
gives the loopback port and the state directory (the seed's files are left
as they are).
"""

from __future__ import annotations

import ipaddress
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kaon.bus.base import agent_bus
from kaon.identity.clientfiles import auth_url_of
from kaon.identity.testing import Node, make_node
from tests.fixtures.cli import OpenStackCLI
from tests.fixtures.mariadb import MariaDBServer
from tests.fixtures.net import free_port, wait_for_port
from tests.fixtures.rabbitmq import RabbitMQ
from tests.fixtures.server import KaonServer, _server_env

pytestmark = [pytest.mark.needs_cli, pytest.mark.needs_mariadb]

# Seed 003, lines 85-147: the controller's /etc/neutron/neutron.conf blocks, in
# the guide's order, pasted one after the other as a reader might: sections
# repeat ([DEFAULT] four times), which oslo.config and kaon both merge.
SEED_003_NEUTRON_CONF = """\
[database]
# ...
connection = mysql+pymysql://neutron:NEUTRON_DBPASS@controller/neutron
[DEFAULT]
# ...
core_plugin = ml2
service_plugins = router
allow_overlapping_ips = true
[DEFAULT]
# ...
transport_url = rabbit://openstack:RABBIT_PASS@controller
[DEFAULT]
# ...
auth_strategy = keystone
[keystone_authtoken]
# ...
www_authenticate_uri = http://controller:5000
auth_url = http://controller:5000
memcached_servers = controller:11211
auth_type = password
project_domain_name = default
user_domain_name = default
project_name = service
username = neutron
password = NEUTRON_PASS
[DEFAULT]
# ...
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true
[nova]
# ...
auth_url = http://controller:5000
auth_type = password
project_domain_name = default
user_domain_name = default
region_name = RegionOne
project_name = service
username = nova
password = NOVA_PASS
[oslo_concurrency]
# ...
lock_path = /var/lib/neutron/tmp
"""

# Seed 003, lines 152-187: the controller's /etc/neutron/plugins/ml2/ml2_conf.ini blocks.
SEED_003_ML2_CONF_INI = """\
[ml2]
# ...
type_drivers = flat,vlan,vxlan
[ml2]
# ...
tenant_network_types = vxlan
[ml2]
# ...
mechanism_drivers = linuxbridge,l2population
[ml2]
# ...
extension_drivers = port_security
[ml2_type_flat]
# ...
flat_networks = provider
[ml2_type_vxlan]
# ...
vni_ranges = 1:1000
[securitygroup]
# ...
enable_ipset = true
"""


@pytest.fixture
def keystone(tmp_path: Path) -> Iterator[tuple[Node, int]]:
    """kaon's identity as the guide's external Keystone on its own port; its
    catalog names the network server's port (chosen here, used by the test)."""
    import uvicorn

    network_port, identity_port = free_port(), free_port()
    node = make_node(tmp_path / "keystone", network_url=f"http://127.0.0.1:{network_port}",
                     identity_url=f"http://127.0.0.1:{identity_port}/identity")
    server = uvicorn.Server(uvicorn.Config(node.app, host="127.0.0.1", port=identity_port,
                                          log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    assert wait_for_port(identity_port, timeout=10)
    try:
        yield node, network_port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def guide_database(mariadb_server: MariaDBServer, password: str) -> None:
    """The guide's ``CREATE DATABASE neutron`` and its two GRANTs (seed 003, lines 45-50)."""
    conn = mariadb_server._root()
    try:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS neutron")
            cur.execute("CREATE DATABASE neutron")
            for host in ("localhost", "%"):
                cur.execute(f"CREATE OR REPLACE USER 'neutron'@'{host}' IDENTIFIED BY '{password}'")
                cur.execute(f"GRANT ALL PRIVILEGES ON neutron.* TO 'neutron'@'{host}'")
    finally:
        conn.close()


def drop_guide_database(mariadb_server: MariaDBServer) -> None:
    conn = mariadb_server._root()
    try:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS neutron")
            for host in ("localhost", "%"):
                cur.execute(f"DROP USER IF EXISTS 'neutron'@'{host}'")
    finally:
        conn.close()


def test_seed_003_as_written(tmp_path: Path, keystone: tuple[Node, int], mariadb_server: MariaDBServer,
                             rabbitmq: RabbitMQ, openstack_bin: str) -> None:
    node, port = keystone
    identity = node.cfg.identity_root  # http://127.0.0.1:PORT/identity
    dbpass, rabbit_pass, neutron_pass, nova_pass = (secrets.token_hex(8) for _ in range(4))

    # -- the guide's identity steps (seed 003, lines 53-57), with the real client
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {
        "admin": {"auth": {"auth_url": auth_url_of(identity), "username": "admin",
                           "password": node.passwords["admin"], "project_name": "admin",
                           "user_domain_name": "Default", "project_domain_name": "Default"},
                  "region_name": "RegionOne", "identity_api_version": 3},
    }}))
    cli = OpenStackCLI(clouds, cloud="admin", binary=openstack_bin)
    cli.ok("project", "create", "--domain", "default", "--description", "Service Project", "service")
    user = cli.json("user", "create", "--domain", "default", "--password", neutron_pass, "neutron")
    assert user["name"] == "neutron"
    cli.ok("role", "add", "--project", "service", "--user", "neutron", "admin")
    # The guide's `service create` / `endpoint create` (lines 59-67) have no
    # counterpart: kaon's identity builds its catalog from the node's addresses.
    # The network endpoints they would make are there, at the server's address:
    catalog = {e["Type"]: e for e in cli.json("catalog", "list")}
    urls = {ep["interface"]: ep["url"] for ep in catalog["network"]["Endpoints"]}
    assert urls == dict.fromkeys(("public", "internal", "admin"), f"http://127.0.0.1:{port}")

    # -- the seed's files, pointed at the test's services
    guide_database(mariadb_server, dbpass)
    rabbitmq.add_user("openstack", rabbit_pass)
    transport_url = f"rabbit://openstack:{rabbit_pass}@127.0.0.1:{rabbitmq.port}"
    identity_host = identity.removeprefix("http://")  # 127.0.0.1:PORT/identity replaces controller:5000
    neutron_conf = (
        SEED_003_NEUTRON_CONF
        .replace("neutron:NEUTRON_DBPASS@controller/neutron",
                 f"neutron:{dbpass}@127.0.0.1:{mariadb_server.port}/neutron")
        .replace("rabbit://openstack:RABBIT_PASS@controller", transport_url)
        .replace("controller:5000", identity_host)
        .replace("controller:11211", "127.0.0.1:11211")
        .replace("NEUTRON_PASS", neutron_pass)
        .replace("NOVA_PASS", nova_pass)
    )
    assert "controller" not in neutron_conf and "_PASS" not in neutron_conf
    conf_dir = tmp_path / "etc"
    (conf_dir / "plugins" / "ml2").mkdir(parents=True)
    (conf_dir / "neutron.conf").write_text(neutron_conf)
    ml2_conf = conf_dir / "plugins" / "ml2" / "ml2_conf.ini"
    ml2_conf.write_text(SEED_003_ML2_CONF_INI)
    state = tmp_path / "state"
    state.mkdir()
    host_conf = conf_dir / "host.conf"
    host_conf.write_text(f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {port}\nstate_path = {state}\n")

    files = [conf_dir / "neutron.conf", ml2_conf, host_conf]
    command = [sys.executable, "-m", "kaon", "server", *(arg for f in files for arg in ("--config-file", str(f)))]
    server = KaonServer(workdir=tmp_path, port=port, conf_path=conf_dir / "neutron.conf", state_dir=state,
                        log_path=tmp_path / "server.log", auth_strategy="keystone", conf={},
                        command=command, env=_server_env(None))
    try:
        server.start(60)
        run_guide_commands(tmp_path, node, identity, neutron_pass, openstack_bin, transport_url)
        log = server.log_tail(100_000)
    finally:
        server.stop()
        drop_guide_database(mariadb_server)
    assert "(auth_strategy=keystone, bus rabbit)" in log, log
    assert "Context impl MariaDBImpl" in log, log
    # kaon says what of the guide it does not use, once, at start-up.
    for option in ("[nova] auth_url", "[nova] password", "[DEFAULT] notify_nova_on_port_status_changes",
                   "[DEFAULT] notify_nova_on_port_data_changes"):
        assert f"{option}: not used: kaon has no Nova notifier" in log, log
    for option in ("[oslo_concurrency] lock_path", "[securitygroup] enable_ipset", "[DEFAULT] core_plugin"):
        assert f"{option}: not used: " in log, log
    assert "WARNING kaon.config" not in log, log  # nothing in the guide's files is unknown or misplaced


def in_provider_pool(address: str) -> bool:
    """In the guide's provider allocation pool, 203.0.113.101-203.0.113.250."""
    low, high = ipaddress.IPv4Address("203.0.113.101"), ipaddress.IPv4Address("203.0.113.250")
    return low <= ipaddress.IPv4Address(address) <= high


def report_compute_agent(transport_url: str, state: Path) -> None:
    """A state report over the guide's broker account, as the compute node's
    Linux bridge agent (seed 003, lines 290-300) sends it."""
    bus = agent_bus(transport_url, str(state))
    try:
        bus.call("report_state", {"report": {
            "agent_type": "Linux bridge agent", "binary": "neutron-linuxbridge-agent", "topic": "N/A",
            "host": "compute1", "start_flag": True,
            "configurations": {"interface_mappings": {"provider": "PROVIDER_INTERFACE_NAME"}}}}, timeout=30)
    finally:
        bus.close()


def run_guide_commands(tmp_path: Path, node: Node, identity: str, neutron_pass: str, openstack_bin: str,
                       transport_url: str) -> None:
    """The install guide's network commands ("launch an instance": provider and
    self-service networks, router; "verify operation": extensions, agents)."""
    clouds = tmp_path / "clouds-network.yaml"
    auth = {"auth_url": auth_url_of(identity), "user_domain_name": "default", "project_domain_name": "default"}
    clouds.write_text(yaml.safe_dump({"clouds": {
        # admin-openrc: the provider network is an administrator's.
        "admin": {"auth": {**auth, "username": "admin", "password": node.passwords["admin"],
                           "project_name": "admin"}, "region_name": "RegionOne"},
        # demo-openrc: the self-service network and the router are a member's.
        "demo": {"auth": {**auth, "username": "demo", "password": node.passwords["demo"],
                          "project_name": "demo"}, "region_name": "RegionOne"},
        # The guide's neutron service user, as keystonemiddleware logs in.
        "neutron": {"auth": {**auth, "username": "neutron", "password": neutron_pass,
                             "project_name": "service"}, "region_name": "RegionOne"},
    }}))
    admin = OpenStackCLI(clouds, cloud="admin", binary=openstack_bin)
    demo = OpenStackCLI(clouds, cloud="demo", binary=openstack_bin)

    # Verify operation: the extensions a guide's Neutron lists, and the agents.
    aliases = {e["Alias"] for e in admin.json("extension", "list", "--network")}
    assert {"router", "external-net", "provider", "port-security", "binding", "quotas"} <= aliases, aliases
    assert admin.json("network", "agent", "list") == []  # no agent started
    report_compute_agent(transport_url, tmp_path / "agent")
    (agent,) = admin.json("network", "agent", "list")
    assert (agent["Agent Type"], agent["Host"], agent["Alive"], agent["State"]) == \
        ("Linux bridge agent", "compute1", True, True), agent
    assert OpenStackCLI(clouds, cloud="neutron", binary=openstack_bin).json("network", "list") == []

    # Provider network (admin-openrc).
    net = admin.json("network", "create", "--share", "--external", "--provider-physical-network", "provider",
                     "--provider-network-type", "flat", "provider")
    assert (net["shared"], net["router:external"]) == (True, True)
    assert (net["provider:network_type"], net["provider:physical_network"]) == ("flat", "provider")
    assert net["port_security_enabled"] is True
    sub = admin.json("subnet", "create", "--network", "provider", "--allocation-pool",
                     "start=203.0.113.101,end=203.0.113.250", "--dns-nameserver", "8.8.4.4", "--gateway",
                     "203.0.113.1", "--subnet-range", "203.0.113.0/24", "provider")
    assert sub["cidr"] == "203.0.113.0/24" and sub["gateway_ip"] == "203.0.113.1"
    assert sub["allocation_pools"] == [{"start": "203.0.113.101", "end": "203.0.113.250"}]
    assert sub["dns_nameservers"] == ["8.8.4.4"] and sub["enable_dhcp"] is True

    # Self-service network (demo-openrc): a VXLAN network from vni_ranges 1:1000.
    self_net = demo.json("network", "create", "selfservice")
    self_sub = demo.json("subnet", "create", "--network", "selfservice", "--dns-nameserver", "8.8.4.4",
                         "--gateway", "172.16.1.1", "--subnet-range", "172.16.1.0/24", "selfservice")
    assert self_sub["gateway_ip"] == "172.16.1.1"
    shown = admin.json("network", "show", self_net["id"])
    assert shown["provider:network_type"] == "vxlan" and 1 <= shown["provider:segmentation_id"] <= 1000

    # Router (demo-openrc).
    router = demo.json("router", "create", "router")
    assert router["status"] == "ACTIVE"
    demo.ok("router", "add", "subnet", "router", "selfservice")
    demo.ok("router", "set", "router", "--external-gateway", "provider")
    gw = demo.json("router", "show", "router")["external_gateway_info"]
    assert gw["network_id"] == net["id"]
    (fixed,) = gw["external_fixed_ips"]
    assert fixed["subnet_id"] == sub["id"]
    assert in_provider_pool(fixed["ip_address"]), fixed

    # Verify operation: the router's ports, one on each network (admin-openrc).
    ports = admin.json("port", "list", "--router", "router", "--long")
    by_owner = {p["Device Owner"]: p for p in ports}
    assert set(by_owner) == {"network:router_interface", "network:router_gateway"}, ports
    assert by_owner["network:router_interface"]["Fixed IP Addresses"][0]["ip_address"] == "172.16.1.1"
    assert by_owner["network:router_gateway"]["Fixed IP Addresses"][0]["ip_address"] == fixed["ip_address"]
    # The demo project's own view stops at its own router and network.
    assert [n["Name"] for n in demo.json("network", "list", "--internal")] == ["selfservice"]

    # Launch an instance: the security group rules and the floating IP (demo-openrc).
    icmp = demo.json("security", "group", "rule", "create", "--proto", "icmp", "default")
    ssh = demo.json("security", "group", "rule", "create", "--proto", "tcp", "--dst-port", "22", "default")
    assert (icmp["protocol"], icmp["direction"], icmp["ether_type"]) == ("icmp", "ingress", "IPv4")
    assert (ssh["protocol"], ssh["port_range_min"], ssh["port_range_max"]) == ("tcp", 22, 22)
    fip = demo.json("floating", "ip", "create", "provider")
    assert fip["floating_network_id"] == net["id"] and fip["status"] == "DOWN"
    assert in_provider_pool(fip["floating_ip_address"]), fip
