"""What ``kaon lab seed`` checks before it makes anything, and the messages it gives (no root, no server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kaon.lab.lab import Lab, LabError
from kaon.lab.seed_needs import _carries_vlan, require_mechanism, require_vlan_ranges
from kaon.lab.seeds import SEED002_RANGES, SeedOptions, run_seed


def lab_with_server_conf(tmp_path: Path, ranges: str) -> Lab:
    conf = tmp_path / "kaon.conf"
    conf.write_text(f"[ml2_type_vlan]\nnetwork_vlan_ranges = {ranges}\n")
    return Lab("ku-", tmp_path / "state", config_files=[str(conf)])


@pytest.mark.parametrize("ranges", ["default:100:101,default:200:201", "provider:100:200,default:1:4094"])
def test_the_servers_vlan_ranges_holding_seed_002s_pass(tmp_path: Path, ranges: str) -> None:
    require_vlan_ranges(lab_with_server_conf(tmp_path, ranges), SEED002_RANGES)


def test_vlan_ranges_lacking_seed_002s_say_which_and_the_line_to_write(tmp_path: Path) -> None:
    lab = lab_with_server_conf(tmp_path, "provider:100:200,default:100:150")
    with pytest.raises(LabError) as err:
        require_vlan_ranges(lab, SEED002_RANGES)
    msg = str(err.value)
    assert "lack default:200:201:" in msg  # default:100:101 is inside default:100:150
    assert "set network_vlan_ranges = provider:100:200,default:100:150,default:100:101,default:200:201" in msg
    assert str(tmp_path / "kaon.conf") in msg


def test_a_seed_for_another_mechanism_says_how_to_remake_the_lab(tmp_path: Path) -> None:
    lab = Lab("ku-", tmp_path / "state")
    with lab.store.edit({"version": 1, "hosts": {}, "vms": {}, "namespaces": []}) as state:
        state["hosts"] = {"h1": {"index": 1, "mechanism": "openvswitch"}, "h2": {"index": 2}}
    with pytest.raises(LabError, match=r"--mechanism openvswitch: hosts h2 of this lab run linuxbridge; "
                                       r"`kaon lab down --prefix ku- --state-dir .*` then `kaon lab up --hosts 2 "
                                       r"--mechanism openvswitch --prefix ku- --state-dir "):
        require_mechanism(lab, "openvswitch", f" --prefix ku- --state-dir {tmp_path / 'state'}")
    with lab.store.edit() as state:
        state["hosts"]["h2"]["mechanism"] = "openvswitch"
    require_mechanism(lab, "openvswitch", "")  # every host runs it now


@pytest.mark.parametrize("agent, why", [
    ({"agent_type": "Open vSwitch agent", "configurations": {"bridge_mappings": {"default": "br-default"}}}, None),
    ({"agent_type": "Open vSwitch agent", "configurations": {"bridge_mappings": {"provider": "br-ex"}}},
     "its bridge_mappings have no 'default'"),
    ({"agent_type": "Linux bridge agent", "configurations": {"interface_mappings": {"default": "eth2"},
                                                             "kernel_features": {"vlan": False}}},
     "the Linux bridge agent has no 802.1Q VLAN devices on this kernel"),
    ({"agent_type": "Linux bridge agent", "configurations": {"interface_mappings": {"default": "eth2"},
                                                             "kernel_features": {"vlan": True}}}, None),
])
def test_which_agents_carry_vlans_of_a_physical_network(agent: dict[str, Any], why: str | None) -> None:
    assert _carries_vlan(agent, "default") == why


@pytest.mark.parametrize("seed, options, message", [
    ("002", SeedOptions(tunnel_type="gre"), "--tunnel-type is seed 001's"),
    ("001", SeedOptions(tunnel_type="ipip"), "--tunnel-type ipip: one of vxlan, gre, geneve"),
    ("004", SeedOptions(flat=True), "--flat is seed 002's"),
    ("003", SeedOptions(), "unknown seed '003'"),
])
def test_options_of_another_seed_are_refused(tmp_path: Path, seed: str, options: SeedOptions, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run_seed(Lab("ku-", tmp_path), seed, options=options)
