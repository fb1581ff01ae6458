"""``kaon up``'s choice of local agent and of OVS (kaon.cli.up_ovs); no root, no OVS needed.

The OVS side on the wire (a private OVS started and stopped by pid, an
operator's OVS left as it was) is tests/fullstack/test_up_ovs.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kaon.cli import up as up_cli
from kaon.cli import up_ovs
from kaon.config import Config, load_config


def cfg_of(tmp_path: Path, text: str, name: str = "extra.conf") -> Config:
    path = tmp_path / name
    path.write_text(text)
    return load_config([str(path)])


@pytest.mark.parametrize("text, name, mechanism", [
    (up_cli.DEFAULTS, "kaon.conf", "linuxbridge"),
    ("[ml2]\nmechanism_drivers = openvswitch,l2population\n", "ml2_conf.ini", "openvswitch"),
    ("[ml2]\nmechanism_drivers = l2population,openvswitch,linuxbridge\n", "ml2_conf.ini", "openvswitch"),
    ("[ml2]\nmechanism_drivers = l2population\n", "ml2_conf.ini", "linuxbridge"),
    # The files of an OVS agent win over the order of the drivers, as for `kaon agent`.
    ("[ml2]\nmechanism_drivers = linuxbridge,openvswitch\n[ovs]\nlocal_ip = 127.0.0.1\n", "x.ini", "openvswitch"),
    ("[agent]\ntunnel_types = vxlan\n", "openvswitch_agent.ini", "openvswitch"),
])
def test_the_local_agent_is_chosen_by_neutrons_options(tmp_path: Path, text: str, name: str,
                                                        mechanism: str) -> None:
    assert up_ovs.local_mechanism(cfg_of(tmp_path, text, name)) == mechanism


def test_mechanism_flag_puts_its_driver_first_and_keeps_the_file(tmp_path: Path) -> None:
    assert up_ovs.prefer("linuxbridge,openvswitch,l2population", "openvswitch") == \
        "openvswitch,linuxbridge,l2population"
    assert up_ovs.prefer("linuxbridge,l2population", "openvswitch") == "openvswitch,linuxbridge,l2population"
    conf = tmp_path / "kaon.conf"
    conf.write_text(up_cli.DEFAULTS)
    up_cli._choose_mechanism(conf, "openvswitch")
    text = conf.read_text()
    assert "mechanism_drivers = openvswitch,linuxbridge,l2population" in text
    assert text.count("mechanism_drivers") == 1 and "# Written by `kaon up`" in text  # set in place
    up_cli._choose_mechanism(conf, "linuxbridge")
    assert "mechanism_drivers = linuxbridge,openvswitch,l2population" in conf.read_text()


def test_mechanism_flag_against_files_of_the_other_agent_is_refused(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ovs_ini = tmp_path / "openvswitch_agent.ini"
    ovs_ini.write_text("[ovs]\nlocal_ip = 127.0.0.1\n")
    status = up_cli.run_up([str(ovs_ini)], str(tmp_path / "state"), None, agent=False, mechanism="linuxbridge")
    assert status == 2
    assert "--mechanism linuxbridge, but the files given make the local agent openvswitch" in capsys.readouterr().err


def test_the_agent_ini_is_written_once_and_is_an_ovs_agents(tmp_path: Path) -> None:
    path = up_ovs.write_agent_ini(tmp_path)
    assert path.name == "openvswitch_agent.ini"
    cfg = load_config([str(path)])
    assert up_ovs.local_mechanism(cfg) == "openvswitch"
    assert cfg.get("ovs", "ovsdb_connection") is None  # unset: kaon up finds or starts the OVS
    path.write_text("[ovs]\nlocal_ip = 10.0.0.5\n")
    assert up_ovs.write_agent_ini(tmp_path).read_text() == "[ovs]\nlocal_ip = 10.0.0.5\n"  # the user's edit stays


def test_an_ovs_it_is_told_to_use_is_not_replaced_by_a_private_one(tmp_path: Path) -> None:
    cfg = cfg_of(tmp_path, f"[ovs]\novsdb_connection = unix:{tmp_path}/none/db.sock\n")
    overrides, line = up_ovs.prepare(cfg, tmp_path, namespace=None)
    # Nothing started, nothing recorded: the agent's start retries it and says it is unreachable.
    assert overrides == {} and line == f"OVS at unix:{tmp_path}/none/db.sock (not answering)"
    assert not (tmp_path / "ovs.json").exists()
    assert up_ovs.clean_ovs(tmp_path) == []


def test_a_state_directory_too_deep_for_unix_sockets_gets_a_short_rundir(tmp_path: Path) -> None:
    assert up_ovs.private_rundir(tmp_path) == tmp_path / "ovs"
    deep = tmp_path / ("d" * 100)
    short = up_ovs.private_rundir(deep)
    assert short.parent == up_ovs.SHORT_ROOT and short == up_ovs.private_rundir(deep)  # stable per state dir
