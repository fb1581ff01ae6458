"""The agent's VXLAN prober between two namespaces joined by a veth (two
VTEPs): both hear each other; an nft rule in one dropping udp/4789 from the
other makes both report the other silent (the probe is real VXLAN on the
real port, unlike a ping of local_ip, which the rule lets through); without
the rule they hear each other again; the device goes when tunnels are off."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from kaon.agent.probe import VxlanProber, remove_device
from kaon.dataplane import nft
from kaon.dataplane import vxlan_probe as vp
from kaon.dataplane.linux_l2 import LinuxL2
from tests.fixtures import require
from tests.fullstack.stack import wait_for

pytestmark = pytest.mark.needs_root

A_IP, B_IP = "10.199.0.1", "10.199.0.2"


@pytest.fixture
def vteps(make_netns: Any) -> Iterator[tuple[str, str]]:
    require(os.geteuid() == 0, "needs root (network namespaces, VXLAN devices)")
    a, b = make_netns("vtep-a"), make_netns("vtep-b")
    with LinuxL2(a) as l2:
        l2.ensure_veth("ul0", "ul0", peer_netns=b)
    for ns, ip in ((a, A_IP), (b, B_IP)):
        subprocess.run(["ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "ul0"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "ul0", "up"], check=True)
    yield a, b


def test_probes_answer_until_udp_4789_is_dropped(vteps: tuple[str, str]) -> None:
    a, b = vteps
    pa = VxlanProber(A_IP, a, lambda: {B_IP}, interval=0.5)
    pb = VxlanProber(B_IP, b, lambda: {A_IP}, interval=0.5)
    pa.start()
    pb.start()
    try:
        wait_for("both answered", lambda: pa.results() == {B_IP: True} and pb.results() == {A_IP: True}, timeout=10)
        with LinuxL2(a) as l2:
            link = l2.link(vp.DEVICE)
            assert link is not None and link.alias == vp.OWNER_ALIAS
            assert l2.fdb(vp.DEVICE) == {(vp.vtep_mac(B_IP), B_IP)}
        nft.run(b, "add table inet probetest\n"
                   "add chain inet probetest input { type filter hook input priority -300; }\n"
                   f"add rule inet probetest input ip saddr {A_IP} udp dport 4789 drop\n")
        # a's requests die at b; b's requests reach a but a's answers die at b.
        wait_for("both silent", lambda: pa.results() == {B_IP: False} and pb.results() == {A_IP: False}, timeout=10)
        ping = subprocess.run(["ip", "netns", "exec", a, "ping", "-c", "1", "-W", "1", B_IP], capture_output=True)
        assert ping.returncode == 0  # what a ping of local_ip would have said
        nft.run(b, "delete table inet probetest")
        wait_for("both answered again", lambda: pa.results() == {B_IP: True} and pb.results() == {A_IP: True},
                 timeout=10)
    finally:
        pa.close()
        pb.close()
    remove_device(a)
    with LinuxL2(a) as l2:
        assert l2.link(vp.DEVICE) is None
