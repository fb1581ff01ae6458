"""What the DHCP and L3 roles share (kaon.agent.ns_role): state files written
only when they change, and the sweep's last step on Open vSwitch hosts."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pytest

from kaon.agent.interface_driver import Plug
from kaon.agent.ns_role import unplug_stale, write_if_changed


def test_a_file_is_rewritten_only_when_its_text_changes(tmp_path: Path) -> None:
    path = tmp_path / "radvd.conf"
    assert write_if_changed(path, "a\n") is True
    assert write_if_changed(path, "a\n") is False
    assert write_if_changed(path, "b\n") is True
    assert path.read_text() == "b\n" and sorted(p.name for p in tmp_path.iterdir()) == ["radvd.conf"]


class FakePlug:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.kept: list[set[str]] = []

    def plug(self, tap: str, port_id: str, mac: str, ns: str, device: str) -> None:
        raise AssertionError("a sweep plugs nothing")

    def unplug_others(self, wanted_taps: Iterable[str]) -> None:
        if self.fail:
            raise RuntimeError("ovsdb-server is gone")
        self.kept.append(set(wanted_taps))


def test_the_sweep_unplugs_all_but_the_wanted_taps_and_says_when_it_cannot(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("kaon.test.ns_role")
    plug = FakePlug()
    typed: Plug = plug  # the fake keeps to the protocol
    assert unplug_stale(typed, iter(["tapa", "tapb"]), "router ports", log) is True
    assert plug.kept == [{"tapa", "tapb"}]
    assert unplug_stale(None, ["tapa"], "router ports", log) is True  # Linux bridge: L2 releases taps
    with caplog.at_level(logging.WARNING, logger=log.name):
        assert unplug_stale(FakePlug(fail=True), [], "DHCP ports", log) is False
    assert "cannot remove stale DHCP ports from the integration bridge: ovsdb-server is gone" in caplog.text


def test_a_mode_is_set_before_the_text_and_survives_a_leftover_tmp(tmp_path: Path) -> None:
    path = tmp_path / "table.json"
    (tmp_path / "table.json.tmp").write_text("old")  # a crash's leftover, world-readable
    (tmp_path / "table.json.tmp").chmod(0o644)
    assert write_if_changed(path, "secret", mode=0o600)
    assert path.read_text() == "secret" and path.stat().st_mode & 0o777 == 0o600
    assert not write_if_changed(path, "secret", mode=0o600)
