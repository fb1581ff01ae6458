"""``kaon agent`` as the Open vSwitch agent: chosen and configured by openvswitch_agent.ini's names."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaon.agent.config import agent_config
from kaon.agent.ovs_config import ovs_config, ovs_selected
from kaon.cli.agent import ovs_firewall, ovs_unavailable
from kaon.config import Config, ConfigError, load_config


def conf(tmp_path: Path, text: str, name: str = "openvswitch_agent.ini") -> Config:
    path = tmp_path / name
    path.write_text(text)
    return load_config([str(path)], {"DEFAULT": {"state_path": str(tmp_path)}})


SEED_002 = """
[DEFAULT]
host = compute1
[ovs]
bridge_mappings = default:br-ex
local_ip = 10.0.0.31
datapath_type = netdev
ovsdb_connection = unix:/run/kovs/h1/db.sock
[agent]
tunnel_types = vxlan, gre
l2_population = true
arp_responder = true
vxlan_udp_port = 4790
[securitygroup]
firewall_driver = noop
"""


def test_openvswitch_agent_ini_selects_the_ovs_agent_with_neutrons_names(tmp_path: Path) -> None:
    cfg = conf(tmp_path, SEED_002)
    assert ovs_selected(cfg)
    acfg = agent_config(cfg)
    assert acfg.mechanism == "openvswitch" and acfg.host == "compute1"
    assert acfg.tunnel_types == ["vxlan", "gre"] and acfg.local_ip == "10.0.0.31"
    assert acfg.bridge_mappings == {"default": "br-ex"} and acfg.l2_population
    ocfg = ovs_config(cfg)
    o = ocfg.options
    assert o.bridge_mappings == (("default", "br-ex"),) and o.datapath_type == "netdev"
    assert o.integration_bridge == "br-int" and o.tunnel_bridge == "br-tun"
    assert o.arp_responder and o.vxlan_udp_port == 4790 and o.tunnel_types == ("vxlan", "gre")
    # ovs-vswitchd's pidfile and the bridges' OpenFlow sockets sit beside the OVSDB socket.
    assert ocfg.rundir == "/run/kovs/h1" and ocfg.openflow_target("br-int") == "unix:/run/kovs/h1/br-int.mgmt"
    assert ovs_unavailable(cfg, acfg) is None


def test_neutron_defaults_and_a_linuxbridge_file_is_not_ovs(tmp_path: Path) -> None:
    cfg = conf(tmp_path, "[ovs]\n")
    o = ovs_config(cfg).options
    assert o.datapath_type == "system" and o.tunnel_types == () and not o.l2_population
    assert ovs_config(cfg).ovsdb_connection == "unix:/var/run/openvswitch/db.sock"
    assert agent_config(cfg).tunnel_types == []
    assert not ovs_selected(conf(tmp_path, "[vxlan]\nenable_vxlan = false\n", "linuxbridge_agent.ini"))
    assert ovs_selected(conf(tmp_path, "[ovs]\nlocal_ip = 10.0.0.1\n", "host1.ini"))


@pytest.mark.parametrize(("text", "message"), [
    ("[ovs]\n[agent]\ntunnel_types = vxlan\n", r"needs \[ovs\] local_ip"),
    ("[ovs]\nlocal_ip = OVERLAY_IP\n", "is not an IP address"),
    ("[ovs]\nlocal_ip = 10.0.0.1\n[agent]\ntunnel_types = vxlan, stt\n", "unknown tunnel type.s. stt"),
    ("[ovs]\ndatapath_type = dpdk\n", "must be one of system, netdev"),
    ("[ovs]\nbridge_mappings = physnet1:br-int\n", "which is the integration or tunnel bridge"),
    ("[ovs]\nbridge_mappings = physnet1:br-a-very-long-name\n", "must be 1 to 15 characters"),
    ("[ovs]\n[agent]\nvxlan_udp_port = 70000\n", "must be 1-65535"),
])
def test_bad_ovs_options_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        agent_config(conf(tmp_path, text))


def test_interface_driver_must_match_the_hosts_l2_agent(tmp_path: Path) -> None:
    from kaon.agent.interface_driver import interface_driver

    for text, mechanism in (("", "openvswitch"), ("interface_driver = openvswitch\n", "openvswitch"),
                            ("interface_driver = neutron.agent.linux.interface.OVSInterfaceDriver\n", "openvswitch"),
                            ("interface_driver = linuxbridge\n", "linuxbridge"), ("", "linuxbridge")):
        assert interface_driver(conf(tmp_path, "[DEFAULT]\n" + text), mechanism) == mechanism
    with pytest.raises(ConfigError, match=r"\[DEFAULT\] interface_driver: interface_driver = linuxbridge on a host "
                                          "whose L2 agent is openvswitch.*set interface_driver = openvswitch"):
        agent_config(conf(tmp_path, "[DEFAULT]\ninterface_driver = linuxbridge\n[ovs]\n"))
    with pytest.raises(ConfigError, match="interface_driver = openvswitch on a host whose L2 agent is linuxbridge"):
        agent_config(conf(tmp_path, "[DEFAULT]\ninterface_driver = openvswitch\n[vxlan]\nenable_vxlan = false\n",
                          "linuxbridge_agent.ini"))
    with pytest.raises(ConfigError, match="interface_driver = ovs_bridge: must be linuxbridge or openvswitch"):
        interface_driver(conf(tmp_path, "[DEFAULT]\ninterface_driver = ovs_bridge\n"), "openvswitch")


def test_what_the_ovs_agent_cannot_do_yet_is_refused_at_start(tmp_path: Path) -> None:
    hybrid = conf(tmp_path, "[ovs]\n[securitygroup]\nfirewall_driver = iptables_hybrid\n")
    assert "iptables_hybrid's qbr bridges are not made; set openvswitch or noop" in str(
        ovs_unavailable(hybrid, agent_config(hybrid)))
    ovs_fw = conf(tmp_path, "[ovs]\n[securitygroup]\nfirewall_driver = openvswitch\n")
    assert ovs_unavailable(ovs_fw, agent_config(ovs_fw)) is None and ovs_firewall(agent_config(ovs_fw))
    assert not ovs_firewall(agent_config(conf(tmp_path, SEED_002)))
    roles = conf(tmp_path, "[ovs]\n[agent]\nroles = dhcp, l3\n[securitygroup]\nfirewall_driver = noop\n")
    assert ovs_unavailable(roles, agent_config(roles)) is None  # a network node on OVS (interface_driver)
    off = conf(tmp_path, "[ovs]\n[securitygroup]\nenable_security_group = false\nfirewall_driver = openvswitch\n")
    assert ovs_unavailable(off, agent_config(off)) is None


def test_ovs_local_ip_not_on_this_host_is_an_error_of_ovs_local_ip(tmp_path: Path) -> None:
    from kaon.config_check import check_files

    path = tmp_path / "openvswitch_agent.ini"
    path.write_text("[ovs]\nlocal_ip = 192.0.2.231\n[agent]\ntunnel_types = vxlan\n")
    errors = [f for f in check_files([str(path)], "agent") if f.level == "error"]
    assert [(f.section, f.option, f.line) for f in errors] == [("ovs", "local_ip", 2)]
    assert "192.0.2.231 is not an address of any interface" in errors[0].message


def test_kaon_up_with_an_ovs_ini_says_why_its_local_agent_does_not_run(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from kaon.cli import agent as agent_cli
    from kaon.cli import up as up_cli

    monkeypatch.setattr(agent_cli.os, "geteuid", lambda: 0)

    bridge = conf(tmp_path, "[DEFAULT]\ninterface_driver = linuxbridge\n[ovs]\n[agent]\nroles = dhcp, l3\n"
                            "[securitygroup]\nfirewall_driver = noop\n")
    facts = up_cli._local_agent(bridge, app=None)
    assert facts["agent"].startswith("not started: ") and "set interface_driver = openvswitch" in facts["agent"]
    nowhere = conf(tmp_path, f"[ovs]\novsdb_connection = unix:{tmp_path}/none/db.sock\n"
                             "[securitygroup]\nfirewall_driver = noop\n")
    facts = up_cli._local_agent(nowhere, app=None)  # retries ovsdb-server for 10 s, then says so
    assert facts["agent"].startswith(f"not started: ovsdb-server at unix:{tmp_path}/none/db.sock unreachable")
