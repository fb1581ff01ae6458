"""kaon.cli.free_port: ports for services that bind later, outside the range connect() uses."""

from __future__ import annotations

import socket
from pathlib import Path

from kaon.cli.free_port import FALLBACK_RANGE, below_ephemeral, free_port


def test_the_range_ends_below_the_kernels_ephemeral_ports(tmp_path: Path):
    f = tmp_path / "ip_local_port_range"
    f.write_text("32768\t60999\n")
    assert below_ephemeral(f) == (10000, 32767)
    f.write_text("40000 50000\n")
    assert below_ephemeral(f) == (10000, 39999)


def test_no_room_below_or_no_file_falls_back(tmp_path: Path):
    f = tmp_path / "ip_local_port_range"
    f.write_text("1024 65535\n")  # everything ephemeral: no port is safe, take the default stretch
    assert below_ephemeral(f) == FALLBACK_RANGE
    f.write_text("garbage")
    assert below_ephemeral(f) == FALLBACK_RANGE
    assert below_ephemeral(tmp_path / "missing") == FALLBACK_RANGE


def test_free_port_is_free_and_below_this_machines_ephemeral_range():
    low, high = below_ephemeral()
    ports = {free_port() for _ in range(50)}
    assert all(low <= p <= high for p in ports), ports
    assert len(ports) > 1  # chosen at random: two services do not keep meeting on one port
    port = ports.pop()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_a_port_already_listened_on_is_never_chosen(monkeypatch):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    try:
        # The only candidate is taken: every try fails, and any free port is better than none.
        monkeypatch.setattr("kaon.cli.free_port.below_ephemeral", lambda: (busy, busy))
        assert busy not in {free_port() for _ in range(5)}
    finally:
        taken.close()
