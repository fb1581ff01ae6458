"""Every option accounted for (kaon.config_check): the seeds' files as users write them."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from kaon.agent.config import agent_config
from kaon.cli import agent as agent_cli
from kaon.config import ConfigError, load_config
from kaon.config_check import check_files, local_ip_problem, log_findings, report

# Seed 003 (the install guide), controller: neutron.conf as written (hosts and passwords kept).
NEUTRON_CONF = """\
[database]
connection = mysql+pymysql://neutron:NEUTRON_DBPASS@controller/neutron

[DEFAULT]
core_plugin = ml2
service_plugins = router
allow_overlapping_ips = true
transport_url = rabbit://openstack:RABBIT_PASS@controller
auth_strategy = keystone
notify_nova_on_port_status_changes = true
notify_nova_on_port_data_changes = true

[keystone_authtoken]
www_authenticate_uri = http://controller:5000
auth_url = http://controller:5000
memcached_servers = controller:11211
auth_type = password

[nova]
auth_url = http://controller:5000
auth_type = password
region_name = RegionOne

[oslo_concurrency]
lock_path = /var/lib/neutron/tmp
"""

LINUXBRIDGE = """\
[linux_bridge]
physical_interface_mappings = provider:PROVIDER_INTERFACE_NAME

[vxlan]
enable_vxlan = true
local_ip = OVERLAY_INTERFACE_IP_ADDRESS
l2_population = true

[securitygroup]
enable_security_group = true
firewall_driver = neutron.agent.linux.iptables_firewall.IptablesFirewallDriver
"""

# Seed 004: the Quantum OVS plugin's plugin.ini.
PLUGIN_INI = """\
[OVS]
tenant_network_type = vlan
network_vlan_ranges = physnet1,physnet2:100:199
bridge_mappings = physnet1:br-ex,physnet2:br-em2
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def by_option(findings: list) -> dict:  # type: ignore[type-arg]
    return {(f.section, f.option): f for f in findings}


def test_options_kaon_reads_but_does_not_use_say_why_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "neutron.conf", NEUTRON_CONF)
    found = by_option(check_files([path], "server"))
    core = found[("DEFAULT", "core_plugin")]
    assert (core.level, core.file, core.line) == ("note", path, 5)
    assert "ML2" in core.message
    assert "no Nova notifier" in found[("DEFAULT", "notify_nova_on_port_status_changes")].message
    assert found[("nova", "auth_url")].line == 20 and "no Nova notifier" in found[("nova", "auth_url")].message
    assert found[("oslo_concurrency", "lock_path")].level == "note"
    # What kaon uses is not reported: the database URL, keystone_authtoken, transport_url.
    for used in (("database", "connection"), ("DEFAULT", "transport_url"), ("keystone_authtoken", "auth_url"),
                 ("DEFAULT", "allow_overlapping_ips")):
        assert used not in found


def test_options_where_neutron_would_not_read_them_are_warnings(tmp_path: Path) -> None:
    plugin = write(tmp_path, "plugin.ini", PLUGIN_INI)
    conf = write(tmp_path, "neutron.conf", "[DEFAULT]\nbind_port = 9797\nfrobnicate = 1\n[ovs]\nbridge_mappings = p:br-ex\n"
                                           "[no_such_section]\nx = 1\n")
    found = by_option(check_files([conf, plugin], "check"))
    vlan = found[("ovs", "network_vlan_ranges")]
    assert (vlan.level, vlan.file, vlan.line) == ("warning", plugin, 3)
    assert "[ml2_type_vlan] of ml2_conf.ini" in vlan.message
    assert "[ml2] tenant_network_types" in found[("ovs", "tenant_network_type")].message
    ovs = by_option([f for f in check_files([conf, plugin], "check") if f.file == conf])[("ovs", "bridge_mappings")]
    assert "[ovs] of openvswitch_agent.ini" in ovs.message
    assert found[("DEFAULT", "frobnicate")].message.startswith("unknown option")
    assert found[("no_such_section", "x")].message.startswith("unknown section")
    assert ("DEFAULT", "bind_port") not in found


def test_a_later_files_option_still_reported_at_its_own_line(tmp_path: Path) -> None:
    first = write(tmp_path, "neutron.conf", "[DEFAULT]\ncore_plugin = ml2\n")
    second = write(tmp_path, "kaon.conf", "[DEFAULT]\n\ncore_plugin = ml2\n")
    lines = sorted((f.file, f.line) for f in check_files([first, second], "server"))
    assert lines == sorted([(first, 2), (second, 3)])


def test_local_ip_placeholder_and_foreign_address_are_errors(tmp_path: Path) -> None:
    ini = write(tmp_path, "linuxbridge_agent.ini", LINUXBRIDGE)
    err = by_option(check_files([ini], "agent"))[("vxlan", "local_ip")]
    assert (err.level, err.line) == ("error", 6) and "not an IP address" in err.message
    assert local_ip_problem("192.0.2.77", addresses={"10.0.0.1"}) is not None
    assert "not an address of any interface" in str(local_ip_problem("192.0.2.77", addresses={"10.0.0.1"}))
    assert local_ip_problem("10.0.0.1", addresses={"10.0.0.1"}) is None
    assert local_ip_problem("127.0.0.1") is None  # lo is on every host
    # enable_vxlan = false: local_ip is not used, so not checked.
    off = write(tmp_path, "off.ini", "[vxlan]\nenable_vxlan = false\nlocal_ip = OVERLAY_INTERFACE_IP_ADDRESS\n")
    assert not [f for f in check_files([off], "agent") if f.level == "error"]


def test_the_agent_refuses_a_placeholder_and_an_address_not_on_the_host(tmp_path: Path) -> None:
    ini = write(tmp_path, "linuxbridge_agent.ini", LINUXBRIDGE)
    with pytest.raises(ConfigError, match="OVERLAY_INTERFACE_IP_ADDRESS' is not an IP address"):
        agent_config(load_config([ini]))
    cfg = agent_config(load_config([write(tmp_path, "a.ini", "[vxlan]\nlocal_ip = 192.0.2.254\n")]))
    why = agent_cli.agent_unavailable(cfg)
    assert why is not None and ("192.0.2.254 is not an address" in why or "not running as root" in why)


def test_config_check_command_prints_a_report_and_exits_1_on_errors(tmp_path: Path) -> None:
    conf = write(tmp_path, "neutron.conf", NEUTRON_CONF)
    ini = write(tmp_path, "linuxbridge_agent.ini", LINUXBRIDGE)
    run = subprocess.run([sys.executable, "-m", "kaon", "config", "check", conf, ini], capture_output=True,
                         text=True)
    assert run.returncode == 1, run.stderr
    assert f"error: {ini}:6: [vxlan] local_ip:" in run.stdout
    assert f"note: {conf}:5: [DEFAULT] core_plugin: not used:" in run.stdout
    assert "1 error(s)" in run.stdout.splitlines()[-1]
    clean = subprocess.run([sys.executable, "-m", "kaon", "config", "check", conf], capture_output=True, text=True)
    assert clean.returncode == 0 and "0 error(s)" in clean.stdout


def test_report_names_a_bad_value_with_its_line(tmp_path: Path) -> None:
    ml2 = write(tmp_path, "ml2_conf.ini", "[ml2_type_vlan]\n\nnetwork_vlan_ranges = default:200:100\n")
    text, status = report([ml2])
    assert status == 1 and f"error: {ml2}:3: [ml2_type_vlan] network_vlan_ranges:" in text


def test_startup_logs_each_finding_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    conf = write(tmp_path, "neutron.conf", NEUTRON_CONF)
    with caplog.at_level(logging.INFO, logger="kaon.config"):
        log_findings([conf], "server")
    messages = [r.getMessage() for r in caplog.records if r.name == "kaon.config"]
    assert sum("core_plugin" in m for m in messages) == 1
    assert any("notify_nova_on_port_data_changes" in m and "no Nova notifier" in m for m in messages)


def test_kaon_ups_own_file_and_a_lab_hosts_ini_are_clean(tmp_path: Path) -> None:
    from kaon.cli.node_conf import write_run_config
    from kaon.cli.up import DEFAULTS
    from kaon.lab.agents import agent_ini

    conf = tmp_path / "kaon.conf"
    conf.write_text(DEFAULTS)
    write_run_config(conf, tmp_path, 9797)
    ini = write(tmp_path, "h1.ini", agent_ini("h1", "kl-h1", "127.0.0.1", "kl-", network_node=True))
    assert check_files([str(conf), ini], "agent", check_host=False) == []


def test_the_http_and_login_limits_are_options_kaon_uses(tmp_path: Path) -> None:
    """The limits of docs/design/limits.md are read by the server: no finding may call them unknown or unused."""
    conf = tmp_path / "neutron.conf"
    conf.write_text(
        "[DEFAULT]\nclient_socket_timeout = 60\nmax_header_line = 8192\nrequest_head_timeout = 5\n"
        "max_connections_per_client = 64\n"
        "[oslo_middleware]\nmax_request_body_size = 65536\n"
        "[token]\nexpiration = 7200\n"
        "[security_compliance]\nlockout_failure_attempts = 3\nlockout_duration = 60\n"
    )
    assert check_files([str(conf)], "server") == []


def test_the_firewalls_br_netfilter_option_is_kaons_and_known(tmp_path: Path) -> None:
    ini = write(tmp_path, "linuxbridge_agent.ini", "[vxlan]\nlocal_ip = 127.0.0.1\n[securitygroup]\nfirewall_driver = nftables\n"
                                                   "netfilter_all_bridges = false\nnetfilter_all_bridgez = 1\n")
    found = by_option(check_files([ini], "check"))
    assert ("securitygroup", "netfilter_all_bridges") not in found
    assert found[("securitygroup", "netfilter_all_bridgez")].message.startswith("unknown option")
    # Its default follows [agent] namespace: per bridge in a namespace of kaon's own, all bridges on the machine's.
    assert agent_config(load_config([ini])).netfilter_all_bridges is False  # given
    plain = write(tmp_path, "plain.ini", "[vxlan]\nlocal_ip = 127.0.0.1\n")
    own = write(tmp_path, "own.ini", "[vxlan]\nlocal_ip = 127.0.0.1\n[agent]\nnamespace = kaon-h1\n")
    assert agent_config(load_config([plain])).netfilter_all_bridges is True
    assert agent_config(load_config([own])).netfilter_all_bridges is False
