"""What ``kaon up`` writes into its kaon.conf (kaon.cli.node_conf): the options it runs with, edits kept."""

from __future__ import annotations

from pathlib import Path

from kaon.cli.free_port import below_ephemeral
from kaon.cli.node_conf import run_values, set_options, write_run_config
from kaon.cli.up import DEFAULTS
from kaon.config import load_config


def test_set_options_replaces_in_place_and_keeps_comments() -> None:
    text = "# mine\n[DEFAULT]\nbind_port = 9696\n# keep me\n\n[ml2]\ntype_drivers = vxlan\n"
    new = set_options(text, {"DEFAULT": {"bind_port": "9797", "state_path": "/s"}, "metadata": {"serve": "true"}})
    assert new == ("# mine\n[DEFAULT]\nbind_port = 9797\n# keep me\nstate_path = /s\n\n[ml2]\ntype_drivers = vxlan\n"
                   "\n[metadata]\nserve = true\n")


def test_section_names_match_as_neutron_reads_them() -> None:
    new = set_options("[OVS]\nbridge_mappings = a:b\n", {"ovs": {"bridge_mappings": "c:d"}})
    assert new == "[OVS]\nbridge_mappings = c:d\n"


def test_kaon_up_writes_what_it_runs_with_and_keeps_it(tmp_path: Path) -> None:
    conf = tmp_path / "kaon.conf"
    conf.write_text(DEFAULTS)
    write_run_config(conf, tmp_path, 19999)
    cfg = load_config([str(conf)])
    assert cfg.default.state_path == str(tmp_path) and cfg.default.bind_port == 19999
    assert cfg.default.transport_url == f"unix://{tmp_path / 'bus.sock'}"
    port, secret = cfg.get("DEFAULT", "nova_metadata_port"), cfg.get("DEFAULT", "metadata_proxy_shared_secret")
    assert port and int(port) > 0 and secret and len(secret) == 32
    # kept for every later start: never a port connect() may be holding then
    low, high = below_ephemeral()
    assert low <= int(port) <= high
    assert cfg.get("metadata", "serve") == "true"
    # A second start without --port keeps the port, the metadata port and the secret.
    write_run_config(conf, tmp_path, None)
    again = load_config([str(conf)])
    assert again.default.bind_port == 19999
    assert again.get("DEFAULT", "nova_metadata_port") == port
    assert again.get("DEFAULT", "metadata_proxy_shared_secret") == secret


def test_a_users_bus_and_metadata_choices_are_kept(tmp_path: Path) -> None:
    text = DEFAULTS.replace("[DEFAULT]\n", "[DEFAULT]\ntransport_url = rabbit://u:p@mq:5672/\n"
                                          "nova_metadata_port = 8775\n", 1) + "[metadata]\nserve = false\n"
    values = run_values(text, tmp_path, None)
    assert values == {"DEFAULT": {"state_path": str(tmp_path),
                                  "metadata_proxy_shared_secret": values["DEFAULT"]["metadata_proxy_shared_secret"]}}


def test_a_lab_on_a_state_dir_with_no_running_node_says_so_at_once(tmp_path: Path) -> None:
    import time

    import pytest

    from kaon.lab import Lab, LabError

    conf = tmp_path / "kaon.conf"
    conf.write_text(DEFAULTS)
    write_run_config(conf, tmp_path, 19998)
    lab = Lab("fhnone-", tmp_path)
    started = time.monotonic()
    with pytest.raises(LabError, match=f"no kaon node is running .* {tmp_path / 'bus.sock'}"):
        lab.up(3)
    assert time.monotonic() - started < 5
    assert lab.state() is None  # nothing was made or recorded


def test_vm_exec_takes_options_anywhere_before_the_double_dash() -> None:
    import argparse

    from kaon.cli import lab as lab_cli

    argv, command = lab_cli.split_command(["lab", "vm", "exec", "vm1", "--prefix", "p1-", "--", "ping", "-c1",
                                           "--", "x"])
    assert argv == ["lab", "vm", "exec", "vm1", "--prefix", "p1-"] and command == ["ping", "-c1", "--", "x"]
    parser = argparse.ArgumentParser()
    lab_cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    assert (args.name, args.prefix, args.cmd) == ("vm1", "p1-", [])
    assert lab_cli.split_command(["lab", "status", "--prefix", "p1-"]) == (["lab", "status", "--prefix", "p1-"],
                                                                           None)
