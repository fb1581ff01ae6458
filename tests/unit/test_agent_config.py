"""The agent's options (Neutron's names) and why an agent cannot run here."""

from __future__ import annotations

from pathlib import Path

import pytest

from kaon.agent.config import agent_config
from kaon.cli import agent as agent_cli
from kaon.cli import up as up_cli
from kaon.config import ConfigError, load_config


def conf(tmp_path: Path, text: str) -> object:
    path = tmp_path / "agent.ini"
    path.write_text(text)
    return load_config([str(path)], {"DEFAULT": {"state_path": str(tmp_path)}})


def test_neutron_linuxbridge_agent_options_are_read(tmp_path: Path) -> None:
    cfg = agent_config(conf(tmp_path, """
[DEFAULT]
host = compute-1
transport_url = rabbit://kaon:secret@10.0.0.5:5672/
[agent]
report_interval = 10
[linux_bridge]
physical_interface_mappings = provider:eth1,physnet2:eth2
bridge_mappings = physnet3:br-ex
[vxlan]
enable_vxlan = true
local_ip = 10.0.0.11
l2_population = true
"""))
    assert cfg.host == "compute-1" and cfg.transport_url == "rabbit://kaon:secret@10.0.0.5:5672/"
    assert cfg.report_interval == 10 and cfg.resync_interval == 30 and cfg.namespace is None
    assert cfg.interface_mappings == {"provider": "eth1", "physnet2": "eth2"}
    assert cfg.bridge_mappings == {"physnet3": "br-ex"}
    assert cfg.local_ip == "10.0.0.11" and cfg.l2_population is True and cfg.tunnel_types == ["vxlan"]


def test_vxlan_without_local_ip_is_refused_with_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="local_ip is not set"):
        agent_config(conf(tmp_path, "[vxlan]\nenable_vxlan = true\n"))
    cfg = agent_config(conf(tmp_path, "[vxlan]\nenable_vxlan = false\n"))
    assert cfg.tunnel_types == []


def test_a_bad_mapping_names_its_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        agent_config(conf(tmp_path, "[linux_bridge]\nphysical_interface_mappings = provider\n"
                                    "[vxlan]\nenable_vxlan = false\n"))
    assert "linux_bridge" in str(err.value) and "Invalid mapping" in str(err.value)


def test_without_root_the_agent_does_not_run_and_kaon_up_says_why(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = conf(tmp_path, "[vxlan]\nlocal_ip = 127.0.0.1\n")
    monkeypatch.setattr(agent_cli.os, "geteuid", lambda: 1000)
    assert "not running as root" in str(agent_cli.agent_unavailable(agent_config(cfg)))
    facts = up_cli._local_agent(cfg, app=None)
    assert facts["agent"].startswith("not started: not running as root") and "API-only" in facts["agent"]


def test_a_missing_namespace_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = conf(tmp_path, "[vxlan]\nlocal_ip = 127.0.0.1\n[agent]\nnamespace = kaon-no-such-ns\n")
    monkeypatch.setattr(agent_cli.os, "geteuid", lambda: 0)
    assert agent_cli.agent_unavailable(agent_config(cfg)) == \
        "network namespace kaon-no-such-ns does not exist ([agent] namespace)"


def test_availability_zone_and_metadata_target_for_the_agent_records(tmp_path: Path) -> None:
    default = agent_config(conf(tmp_path, "[vxlan]\nenable_vxlan = false\n"))
    assert default.availability_zone == "nova"  # Neutron's default
    assert (default.nova_metadata_host, default.nova_metadata_port) == ("127.0.0.1", 8775)
    cfg = agent_config(conf(tmp_path, "[vxlan]\nenable_vxlan = false\n[agent]\navailability_zone = az-2\n"
                                      "[DEFAULT]\nnova_metadata_host = 10.0.0.9\nnova_metadata_port = 9775\n"))
    assert cfg.availability_zone == "az-2"
    assert (cfg.nova_metadata_host, cfg.nova_metadata_port) == ("10.0.0.9", 9775)
