"""``kaon lab seed``: the seeds' scenarios in one command, checked on the wire.

Two hosts (h1 the network node with DHCP and L3, h2 compute); what each
scenario promises the person who runs it: an address by DHCP, the outside
reached through the router, the VM reached on tcp 22 through its floating IP.
and not on tcp 23 (test_sg opens 22, 80 and 8888). The other security-group
verdicts have tests of their own.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaon.lab.seeds import run_seed
from tests.fullstack.stack import Stack, stack

pytestmark = pytest.mark.needs_root


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, hosts=2, extra_conf={"DEFAULT": {"enable_isolated_metadata": "true"}}) as s:
        yield s


def tcp_reaches(s: Stack, vm: str, address: str, port: int, timeout: float = 5) -> bool:
    """A one-shot listener in the VM; True when the outside's connection got its greeting."""
    listener = subprocess.Popen(["ip", "netns", "exec", s.lab.vm(vm)["namespace"], "busybox", "nc", "-l", "-p",
                                 str(port), "-e", "echo", "hello"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        def attempt() -> bool:
            r = subprocess.run(["ip", "netns", "exec", s.lab.names.outside, "busybox", "nc", "-w", "1", address,
                                str(port)], capture_output=True, text=True, timeout=5)
            return "hello" in r.stdout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if attempt():
                return True
            time.sleep(0.2)
        return False
    finally:
        listener.kill()
        listener.wait()


def test_seed_001_in_one_command(two: Stack) -> None:
    lines = run_seed(two.lab, "001")
    vm = two.lab.vm("test-instance")
    port = two.port(vm["port_id"])
    assert vm["host"] == "h2" and vm["ips"] == [port["fixed_ips"][0]["ip_address"] + "/24"]  # by DHCP
    fip = two.api("GET", "/v2.0/floatingips", port_id=vm["port_id"])["floatingips"][0]["floating_ip_address"]
    assert fip in lines[0]
    assert two.ping("test-instance", "192.168.100.1", count=2)  # out through SNAT
    assert tcp_reaches(two, "test-instance", fip, 22)
    assert not tcp_reaches(two, "test-instance", fip, 23, timeout=3)  # test_sg opens 22, 80, 8888 only
    # Idempotent: a second run reuses everything.
    assert run_seed(two.lab, "001") == lines
    assert len(two.api("GET", "/v2.0/routers", name="router1")["routers"]) == 1


def test_seed_004_in_one_command(two: Stack) -> None:
    lines = run_seed(two.lab, "004")
    for n in (1, 2):
        assert two.lab.vm(f"vm{n}")["ips"] == ["192.168.101.3/24"]
        assert two.ping(f"vm{n}", "192.168.100.1", count=3)
    fips = [line.split("floating IP ")[1] for line in lines[:2]]
    assert len(set(fips)) == 2


def test_seed_002_in_one_command(two: Stack) -> None:
    run_seed(two.lab, "002")
    vm = two.lab.vm("provider-instance")
    assert vm["ips"][0].startswith("192.168.100.1")  # from the pool .100-.150, by DHCP
    routes = subprocess.run(["ip", "netns", "exec", vm["namespace"], "ip", "route"], capture_output=True,
                            text=True).stdout
    assert "169.254.169.254" in routes
    assert two.ping("provider-instance", "192.168.100.1")
