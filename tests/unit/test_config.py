"""kaon.config: Neutron's ini files, read as oslo.config would, into typed options."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from kaon.config import Config, ConfigError, load_config, parse_mapping

# --- the seeds' files, as the field notes wrote them ---

# 001: a Rocky Linux build log, first attempt (commented-out lines kept).
SEED_001_ML2_A = """\
[ml2]
type_drivers = flat,vlan,vxlan
# tenant_network_types = vxlan
tenant_network_types = flat,vxlan
# mechanism_drivers = openvswitch,l2population
mechanism_drivers = openvswitch
# extension_drivers = port_security
"""

# 001: the second attempt, VLAN project networks on physnet "provider".
SEED_001_ML2_B = """\
[ml2]
type_drivers = flat,vlan,vxlan
tenant_network_types = flat,vlan,vxlan
mechanism_drivers = openvswitch
[ml2_type_vlan]
network_vlan_ranges = provider:100:200
"""

# 003: the install guide's controller neutron.conf.
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

# 003: the install guide's ml2_conf.ini, one [ml2] block per step.
SEED_003_ML2_CONF = """\
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

# 003: linuxbridge_agent.ini (placeholders left as the guide has them).
SEED_003_LINUXBRIDGE = """\
[linux_bridge]
physical_interface_mappings = provider:PROVIDER_INTERFACE_NAME
[vxlan]
enable_vxlan = true
local_ip = OVERLAY_INTERFACE_IP_ADDRESS
l2_population = true
[securitygroup]
# ...
enable_security_group = true
firewall_driver = neutron.agent.linux.iptables_firewall.IptablesFirewallDriver
"""

# 004: Quantum's plugin.ini, upper-case section name.
SEED_004_PLUGIN_INI = """\
[OVS]
tenant_network_type = vlan
network_vlan_ranges = physnet1,physnet2:100:199
bridge_mappings = physnet1:br-ex,physnet2:br-em2
"""

# 002: non-contiguous VLAN ranges, as they would read in ml2_conf.ini today.
SEED_002_ML2 = """\
[ml2]
tenant_network_types = vlan
[ml2_type_vlan]
network_vlan_ranges = default:100:101,default:200:201
"""


@pytest.fixture
def write(tmp_path: Path):
    counter = iter(range(1000))

    def make(text: str, name: str | None = None) -> str:
        path = tmp_path / (name or f"conf{next(counter)}.ini")
        path.write_text(text, encoding="utf-8")
        return str(path)

    return make


def test_defaults_without_files() -> None:
    c = load_config([])
    d = c.default
    assert (d.bind_host, d.bind_port, d.auth_strategy, d.api_workers) == ("127.0.0.1", 9696, "kaon", 1)
    assert d.base_mac == "fa:16:3e:00:00:00" and d.mac_generation_retries == 16
    assert d.allow_overlapping_ips and d.filter_validation and d.allow_bulk and d.enable_snat_by_default
    assert (d.max_dns_nameservers, d.max_subnet_host_routes, d.max_allowed_address_pair) == (5, 20, 10)
    assert (d.global_physnet_mtu, d.pagination_max_limit, d.agent_down_time) == (1500, -1, 75)
    assert d.dhcp_agents_per_network == 1 and d.network_auto_schedule and d.router_auto_schedule
    assert d.allow_automatic_dhcp_failover and not d.ipv6_pd_enabled
    assert d.default_availability_zones == () and d.transport_url == ""
    assert d.host == socket.gethostname() and d.dns_domain == "openstacklocal"
    assert d.public_url == "http://127.0.0.1:9696"
    expected_state = "/var/lib/kaon" if os.geteuid() == 0 else None
    if expected_state:
        assert d.state_path == expected_state
    assert c.database.connection == f"sqlite:///{d.state_path}/kaon.sqlite"
    assert c.ml2.type_drivers == ("local", "flat", "vlan", "gre", "vxlan", "geneve")
    assert c.ml2.project_network_types == ("local",) == c.ml2.tenant_network_types
    assert c.ml2.path_mtu == 0 and c.ml2.overlay_ip_version == 4 and dict(c.ml2.physical_network_mtus) == {}
    assert c.ml2_type_flat.flat_networks == ("*",)
    assert dict(c.ml2_type_vlan.network_vlan_ranges) == {}
    assert c.ml2_type_vxlan.vni_ranges == () and c.ml2_type_vxlan.vxlan_group is None
    assert c.ml2_type_gre.tunnel_id_ranges == () and c.ml2_type_geneve.max_header_size == 30
    assert c.quotas.default_quota == -1
    assert dict(c.quotas.limits) == {
        "network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50, "security_group": 10,
        "security_group_rule": 100, "rbac_policy": 10, "router_route": 30,
    }
    assert dict(c.keystone_authtoken) == {}


def test_config_is_frozen() -> None:
    c = load_config([])
    with pytest.raises(AttributeError):
        c.default.bind_port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        c.ml2_type_vlan.network_vlan_ranges["x"] = ()  # type: ignore[index]


def test_seed_001_first_attempt(write) -> None:
    c = load_config([write(SEED_001_ML2_A)])
    assert c.ml2.type_drivers == ("flat", "vlan", "vxlan")
    assert c.ml2.tenant_network_types == ("flat", "vxlan")
    assert c.ml2.mechanism_drivers == ("openvswitch",)
    assert c.ml2.extension_drivers == ()  # commented out


def test_seed_001_vlan_attempt(write) -> None:
    c = load_config([write(SEED_001_ML2_B)])
    assert c.ml2.project_network_types == ("flat", "vlan", "vxlan")
    assert dict(c.ml2_type_vlan.network_vlan_ranges) == {"provider": ((100, 200),)}


def test_seed_003_controller_files_merge(write) -> None:
    c = load_config([write(SEED_003_NEUTRON_CONF, "neutron.conf"), write(SEED_003_ML2_CONF, "ml2_conf.ini")])
    assert c.database.connection == "mysql+pymysql://neutron:NEUTRON_DBPASS@controller/neutron"
    assert c.default.auth_strategy == "keystone" and c.default.allow_overlapping_ips
    assert c.default.transport_url == "rabbit://openstack:RABBIT_PASS@controller"
    assert c.keystone_authtoken["password"] == "NEUTRON_PASS"
    assert c.keystone_authtoken["www_authenticate_uri"] == "http://controller:5000"
    assert len(c.keystone_authtoken) == 9
    # Options kaon does not model stay readable, never an error.
    assert c.get("DEFAULT", "core_plugin") == "ml2" and c.get("DEFAULT", "service_plugins") == "router"
    assert c.get("nova", "region_name") == "RegionOne"
    assert c.get("oslo_concurrency", "lock_path") == "/var/lib/neutron/tmp"
    assert c.get("securitygroup", "enable_ipset") == "true"
    # The repeated [ml2] blocks add up.
    assert c.ml2.type_drivers == ("flat", "vlan", "vxlan")
    assert c.ml2.project_network_types == ("vxlan",)
    assert c.ml2.mechanism_drivers == ("linuxbridge", "l2population")
    assert c.ml2.extension_drivers == ("port_security",)
    assert c.ml2_type_flat.flat_networks == ("provider",)
    assert c.ml2_type_vxlan.vni_ranges == ((1, 1000),)


def test_seed_003_agent_ini_loads_unchanged(write) -> None:
    c = load_config([write(SEED_003_LINUXBRIDGE, "linuxbridge_agent.ini")])
    assert c.get_typed("linux_bridge", "physical_interface_mappings", parse_mapping) == {
        "provider": "PROVIDER_INTERFACE_NAME"}
    assert c.get("vxlan", "local_ip") == "OVERLAY_INTERFACE_IP_ADDRESS"
    assert c.get("securitygroup", "firewall_driver").endswith("IptablesFirewallDriver")  # type: ignore[union-attr]


def test_seed_004_uppercase_section_is_lowercased(write) -> None:
    c = load_config([write(SEED_004_PLUGIN_INI)])
    assert c.get("ovs", "bridge_mappings") == "physnet1:br-ex,physnet2:br-em2"
    assert c.get("OVS", "tenant_network_type") == "vlan"
    assert "OVS" not in c.sections


def test_seed_002_non_contiguous_vlan_ranges(write) -> None:
    c = load_config([write(SEED_002_ML2)])
    assert dict(c.ml2_type_vlan.network_vlan_ranges) == {"default": ((100, 101), (200, 201))}


def test_bare_physnet_and_range_order_kept() -> None:
    c = load_config([], {"ml2_type_vlan": {"network_vlan_ranges": "physnet1, physnet2:100:199 ,physnet1:5:6"}})
    ranges = c.ml2_type_vlan.network_vlan_ranges
    assert list(ranges) == ["physnet1", "physnet2"]
    assert ranges["physnet1"] == ((5, 6),) and ranges["physnet2"] == ((100, 199),)


def test_later_file_wins_per_option(write) -> None:
    first = write("[DEFAULT]\nbind_port = 9000\nbind_host = 10.0.0.1\n")
    second = write("[DEFAULT]\nbind_port = 9001\n")
    c = load_config([first, second])
    assert (c.default.bind_host, c.default.bind_port) == ("10.0.0.1", 9001)
    assert c.files == (first, second)


def test_default_section_does_not_leak(write) -> None:
    path = write("[DEFAULT]\npath_mtu = 1400\nflat_networks = x\n[ml2]\ntype_drivers = vxlan\n")
    c = load_config([path])
    assert c.ml2.path_mtu == 0  # [DEFAULT] path_mtu is not [ml2] path_mtu
    assert c.ml2_type_flat.flat_networks == ("*",)
    assert c.get("ml2", "path_mtu") is None
    assert set(c.sections["ml2"]) == {"type_drivers"}


def test_project_network_types_wins_over_tenant(write) -> None:
    a = write("[ml2]\nproject_network_types = vlan\n")
    b = write("[ml2]\ntenant_network_types = vxlan\n")
    assert load_config([a, b]).ml2.project_network_types == ("vlan",)
    assert load_config([b, a]).ml2.project_network_types == ("vlan",)
    assert load_config([b]).ml2.project_network_types == ("vxlan",)


def test_lists_strip_whitespace_and_empty_items() -> None:
    c = load_config([], {"ml2": {"mechanism_drivers": " openvswitch , l2population,, "}})
    assert c.ml2.mechanism_drivers == ("openvswitch", "l2population")
    assert load_config([], {"ml2_type_flat.flat_networks": ""}).ml2_type_flat.flat_networks == ()


def test_comments_quotes_and_multiline(write) -> None:
    path = write("# top\n; also\n[DEFAULT]\n  # indented comment\ndns_domain = 'example.org.'\n"
                 "transport_url = \"rabbit://a:b@c\"\n[other]\nlong = one\n  two\n")
    c = load_config([path])
    assert c.default.dns_domain == "example.org."
    assert c.default.transport_url == "rabbit://a:b@c"
    assert c.get("other", "long") == "one\ntwo"


def test_substitution_of_known_options(write) -> None:
    path = write("[DEFAULT]\nstate_path = /srv/kaon\n[database]\nconnection = sqlite:///$state_path/k.db\n"
                 "[ml2]\npath_mtu = ${DEFAULT.global_physnet_mtu}\n[keystone_authtoken]\npassword = pa$word\n")
    c = load_config([path])
    assert c.database.connection == "sqlite:////srv/kaon/k.db"
    assert c.ml2.path_mtu == 1500
    assert c.keystone_authtoken["password"] == "pa$word"  # kept verbatim
    with pytest.raises(ConfigError, match=r"\$nothing"):
        load_config([], {"database": {"connection": "sqlite:///$nothing/x"}})


def test_state_path_drives_connection_and_public_url() -> None:
    c = load_config([], {"state_path": "/tmp/k", "bind_host": "0.0.0.0", "bind_port": 9797, "host": "ctl"})
    assert c.database.connection == "sqlite:////tmp/k/kaon.sqlite"
    assert c.default.public_url == "http://ctl:9797"
    assert load_config([], {"bind_host": "::1"}).default.public_url == "http://[::1]:9696"
    explicit = load_config([], {"public_url": "https://net.example.com:443/"})
    assert explicit.default.public_url == "https://net.example.com:443"


def test_overrides_forms_and_removal(write) -> None:
    path = write("[DEFAULT]\napi_workers = 4\n[ml2]\npath_mtu = 9000\n")
    c = load_config([path], {"DEFAULT": {"allow_bulk": False}, "ml2.type_drivers": ["vlan", "vxlan"],
                             "api_workers": None, "quotas": {"quota_port": 7}})
    assert c.default.allow_bulk is False and c.default.api_workers == 1
    assert c.ml2.type_drivers == ("vlan", "vxlan") and c.ml2.path_mtu == 9000
    assert c.quotas.limit("port") == 7


def test_quotas(write) -> None:
    path = write("[quotas]\ndefault_quota = 3\nquota_network = -1\nquota_widget = 9\nquota_driver = x.y.Z\n")
    q = load_config([path]).quotas
    assert q.default_quota == 3 and q.limit("network") == -1 and q.limit("widget") == 9
    assert q.limit("subnet") == 100 and q.limit("unheard_of") == 3


@pytest.mark.parametrize(
    ("section", "option", "value", "reason"),
    [
        ("DEFAULT", "bind_port", "http", "is not an integer"),
        ("DEFAULT", "bind_port", "70000", "out of range"),
        ("DEFAULT", "allow_overlapping_ips", "maybe", "is not a boolean"),
        ("DEFAULT", "auth_strategy", "ldap", "is not one of kaon, keystone, noauth"),
        ("DEFAULT", "base_mac", "fa:16:3e", "is not a MAC address"),
        ("ml2", "overlay_ip_version", "5", "is not one of 4, 6"),
        ("ml2", "physical_network_mtus", "physnet1", "Invalid mapping: 'physnet1'"),
        ("ml2", "physical_network_mtus", "physnet1:big", "is not an integer"),
        ("ml2_type_vlan", "network_vlan_ranges", "default:100", "Need exactly two values for VLAN range"),
        ("ml2_type_vlan", "network_vlan_ranges", "default:0:10", "0 is not a valid VLAN tag"),
        ("ml2_type_vlan", "network_vlan_ranges", "default:100:4095", "4095 is not a valid VLAN tag"),
        ("ml2_type_vlan", "network_vlan_ranges", "default:200:100", "End of VLAN range is less than start"),
        ("ml2_type_vlan", "network_vlan_ranges", ":1:2", "Empty physical network name"),
        ("ml2_type_vxlan", "vni_ranges", "1:16777216", "16777216 is not a valid vxlan identifier"),
        ("ml2_type_vxlan", "vni_ranges", "10", "expected <min>:<max>"),
        ("ml2_type_gre", "tunnel_id_ranges", "5:1", "End of tunnel range is less than start"),
        ("ml2_type_geneve", "vni_ranges", "0:10", "0 is not a valid geneve identifier"),
        ("quotas", "quota_network", "lots", "is not an integer"),
    ],
)
def test_invalid_values_name_file_section_option(write, section, option, value, reason) -> None:
    path = write(f"[{section}]\n{option} = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config([path])
    text = str(info.value)
    assert path in text and f"[{section}] {option}" in text and reason in text
    assert (info.value.file, info.value.section, info.value.option) == (path, section, option)


def test_override_errors_say_overrides() -> None:
    with pytest.raises(ConfigError, match=r"<overrides>: \[DEFAULT\] bind_port"):
        load_config([], {"bind_port": "x"})


def test_unreadable_and_malformed_files(write, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.ini")
    with pytest.raises(ConfigError, match="nope.ini: cannot read"):
        load_config([missing])
    with pytest.raises(ConfigError, match="no_section.ini"):
        load_config([write("bind_port = 1\n", "no_section.ini")])
    with pytest.raises(ConfigError, match="garbage.ini"):
        load_config([write("[DEFAULT]\nthis line has no separator\n", "garbage.ini")])


def test_get_typed_reports_where(write) -> None:
    path = write("[vxlan]\nl2_population = perhaps\n")
    c = load_config([path])
    from kaon.config import parse_bool

    with pytest.raises(ConfigError, match=r"\[vxlan\] l2_population"):
        c.get_typed("vxlan", "l2_population", parse_bool)
    assert c.get_typed("vxlan", "enable_vxlan", parse_bool, default=True) is True


def test_config_constructible_directly_for_tests() -> None:
    assert isinstance(Config(), Config) and Config().ml2.type_drivers[0] == "local"
