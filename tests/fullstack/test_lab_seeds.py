"""``kaon lab seed``: the seeds' scenarios in one command, checked on the wire.

Two hosts (h1 the network node with DHCP and L3, h2 compute); the three
seeds side by side in one lab, every command they print as "try" run as a
user would paste it (the lab's --prefix and --state-dir included), what each
scenario promises (an address by DHCP, the outside reached through the
router, the VM reached on tcp 22 through its floating IP and not on tcp 23),
and each seed removed again. The other security-group verdicts have tests of
their own.

On Linux bridge hosts (no 802.1Q on this kernel) seed 002 is its flat
variant, and its VLAN form and seed 001 over GRE are refused with what to do.
On Open vSwitch hosts the seeds are the field notes' own: seed 002's four
shared VLANs of two projects, seed 004's two VLANs behind two routers, seed
001 over GRE and then over VXLAN; the ``tcpdump`` each prints as "watch" runs
while the "try" commands do, and shows the 802.1Q tags and the tunnel.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaon.lab.lab import LabError
from kaon.lab.seeds import SeedOptions, run_seed
from tests.fixtures import free_port
from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = pytest.mark.needs_root


def metadata_conf() -> dict[str, dict[str, str]]:
    # Metadata served beside the API, as `kaon up` does; isolated metadata for seed 002.
    return {"DEFAULT": {"enable_isolated_metadata": "true", "metadata_proxy_shared_secret": "seeds",
                        "nova_metadata_host": "127.0.0.1", "nova_metadata_port": str(free_port())},
            "metadata": {"serve": "true"}}


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, hosts=2, extra_conf=metadata_conf()) as s:
        yield s


@pytest.fixture
def two_ovs(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, hosts=2, extra_conf=metadata_conf(), mechanism="openvswitch") as s:
        yield s


def try_commands(lines: list[str]) -> list[str]:
    """The commands a seed prints after "try:", as a user would paste them."""
    out, trying = [], False
    for line in lines:
        if line.startswith("try: "):
            trying = True
            line = line[len("try:"):]
        if trying:
            out.append(line.split("    #")[0].strip())
    return out


def watch_commands(lines: list[str]) -> list[str]:
    """The commands a seed prints after "watch:" (a tcpdump to run in another terminal)."""
    return [line[len("watch:"):].split("    #")[0].strip() for line in lines if line.startswith("watch: ")]


@contextlib.contextmanager
def watching(command: str) -> Iterator[list[str]]:
    """Run a printed tcpdump while the block runs; the list it yields holds its output lines afterwards."""
    # exec: ip netns exec execs tcpdump in turn, so the pid we stop is tcpdump's own.
    proc = subprocess.Popen(f"exec {command}", shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        said = ""
        while "listening on" not in said:  # capturing from here on
            line = proc.stderr.readline()
            assert line, f"{command!r} exited: {said}"
            said += line
        yield lines
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        lines.extend(out.splitlines())


def run_as_printed(command: str) -> subprocess.CompletedProcess[str]:
    if command.startswith("kaon "):
        command = f"{sys.executable} -m kaon {command[len('kaon '):]}"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60, env=env)


def seed_cli(s: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """``kaon lab seed ARGS`` as a user runs it against this lab."""
    return run_as_printed(f"kaon lab seed {' '.join(args)} --prefix {s.lab.prefix} --state-dir {s.lab.state_dir} "
                          f"--config-file {s.server.conf_path} --os-network-url {s.server.url}")


def passes(command: str, timeout: float = 30) -> None:
    """The command succeeds within ``timeout`` (an agent may still be applying the last change)."""
    deadline = time.monotonic() + timeout
    while True:
        r = run_as_printed(command)
        if r.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{command!r} failed ({r.returncode}): {r.stdout}{r.stderr}")
        time.sleep(0.5)


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


def test_seeds_live_side_by_side_and_every_printed_command_works(two: Stack,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="kaon.lab"):
        printed = {seed: run_seed(two.lab, seed, options=SeedOptions(flat=seed == "002"))
                   for seed in ("001", "002", "004")}
    said = [r.getMessage() for r in caplog.records if r.name == "kaon.lab"]  # progress lines (issue 14, item 5)
    assert "seed: creating network ext-net" in said and "seed 004: waiting until every host applied it" in said
    assert any(m.startswith("seed: VM ") for m in said)
    for lines in printed.values():
        commands = try_commands(lines)
        assert commands, lines
        for command in commands:
            assert "--prefix " + two.lab.prefix in command or command.startswith("ip netns exec")
            passes(command)

    # 001: the VM by DHCP, reached on tcp 22 through its floating IP, not on 23.
    vm = two.lab.vm("test-instance")
    port = two.port(vm["port_id"])
    assert vm["host"] == "h2" and vm["ips"] == [port["fixed_ips"][0]["ip_address"] + "/24"]
    fip = two.api("GET", "/v2.0/floatingips", port_id=vm["port_id"])["floatingips"][0]["floating_ip_address"]
    assert fip in printed["001"][0]
    assert tcp_reaches(two, "test-instance", fip, 22)
    assert not tcp_reaches(two, "test-instance", fip, 23, timeout=3)  # test_sg opens 22, 80, 8888 and ICMP
    # 002: from the pool .100-.150 by DHCP, the metadata route through the DHCP port.
    assert two.lab.vm("provider-instance")["ips"][0].startswith("10.10.100.1")
    # 004: the same address twice, a floating IP each.
    assert [two.lab.vm(v)["ips"] for v in ("vm01", "vm02")] == [["192.168.101.3/24"]] * 2
    assert len({line.split("floating IP ")[1] for line in printed["004"][:2]}) == 2

    # Idempotent: a second run reuses everything.
    assert run_seed(two.lab, "001") == printed["001"]
    assert len(two.api("GET", "/v2.0/routers", name="router1")["routers"]) == 1

    # Removable, one at a time; ext-net goes with the last seed that uses it.
    names = lambda: {n["name"] for n in two.api("GET", "/v2.0/networks")["networks"]}  # noqa: E731
    run_seed(two.lab, "001", delete=True)
    assert "private-net" not in names() and "ext-net" in names() and "net01" in names()
    assert not two.api("GET", "/v2.0/routers", name="router1")["routers"]
    assert not two.api("GET", "/v2.0/security-groups", name="test_sg")["security_groups"]
    passes(try_commands(printed["004"])[0])  # 004 still answers
    run_seed(two.lab, "004", delete=True)
    run_seed(two.lab, "002", delete=True)
    assert names() & {"ext-net", "pub100", "net01", "net02", "private-net"} == set()
    assert two.lab.vms() == []
    assert run_seed(two.lab, "002", delete=True) == ["seed 002: removed nothing (it was not there)"]

    # What these hosts cannot carry is refused before anything is made, saying what to do.
    r = seed_cli(two, "002")
    assert r.returncode == 1 and "802.1Q VLAN devices" in r.stderr and f"seed 002 --flat --prefix {two.lab.prefix}" \
        in r.stderr and "--mechanism openvswitch" in r.stderr, r.stderr
    with pytest.raises(LabError, match=r"gre tunnels cannot be carried by h1 \(Linux bridge agent, tunnel_types: "
                                       r"vxlan\).*--mechanism openvswitch"):
        run_seed(two.lab, "001", options=SeedOptions(tunnel_type="gre"))
    with pytest.raises(LabError, match=r"hosts h1, h2 of this lab run linuxbridge; `kaon lab down --prefix"):
        run_seed(two.lab, "004", mechanism="openvswitch")
    assert names() & {"pub100", "private-net", "net01"} == set()


@pytest.mark.parametrize("names, nodes, network_node", [("node", None, "node1"), ("h", ["h2"], "h2")])
def test_the_network_node_follows_the_option_whatever_the_host_names(
        tmp_path: Path, names: str, nodes: list[str] | None, network_node: str) -> None:
    with stack(tmp_path, hosts=2, host_names_prefix=names, network_nodes=nodes) as s:
        def hosts(agent_type: str) -> set[str]:
            return {a["host"] for a in s.api("GET", "/v2.0/agents", agent_type=agent_type)["agents"]}

        for agent_type in ("DHCP agent", "L3 agent"):
            # The role records come with the agent's first reports, just after its L2 record.
            wait_for(f"the {agent_type}", lambda t=agent_type: hosts(t), timeout=10)  # type: ignore[misc]
            assert hosts(agent_type) == {network_node}, (agent_type, hosts(agent_type))
        compute = s.lab.compute_host()
        assert compute != network_node
        lines = run_seed(s.lab, "001")  # DHCP and a router: served from the network node
        assert s.lab.vm("test-instance")["host"] == compute and "floating IP" in lines[0]
        assert s.ping("test-instance", "192.168.100.1", count=2)


def test_seeds_on_open_vswitch_are_the_field_notes_own_and_show_on_the_wire(two_ovs: Stack) -> None:
    s = two_ovs
    wait_for("the DHCP agent", lambda: s.api("GET", "/v2.0/agents", agent_type="DHCP agent")["agents"], timeout=15)
    ovs = "openvswitch"
    printed = {"001": run_seed(s.lab, "001", options=SeedOptions(tunnel_type="gre"), mechanism=ovs),
               "002": run_seed(s.lab, "002", mechanism=ovs), "004": run_seed(s.lab, "004", mechanism=ovs)}
    seen: dict[str, str] = {}
    for seed, lines in printed.items():
        (watch,) = watch_commands(lines)
        assert f"--prefix {s.lab.prefix}" in " ".join(try_commands(lines)) and watch.startswith("ip netns exec")
        with watching(watch) as captured:
            for command in try_commands(lines):
                passes(command)
        seen[seed] = "\n".join(captured)

    # 001 over GRE: private-net is a GRE network; the VM's traffic crosses the underlay in GRE.
    private = s.api("GET", "/v2.0/networks", name="private-net")["networks"][0]
    assert private["provider:network_type"] == "gre" and "private-net: gre " in printed["001"][1]
    assert "10.99.0.2 > 10.99.0.1: GREv0" in seen["001"], seen["001"]
    # 002: four shared VLANs; their 802.1Q tags on h2's provider link; a VM of each project by DHCP on each.
    for i, vlan in enumerate((100, 101, 200, 201)):
        net = s.api("GET", "/v2.0/networks", name=f"pub{vlan}")["networks"][0]
        assert (net["provider:network_type"], net["provider:physical_network"], net["provider:segmentation_id"],
                net["shared"]) == ("vlan", "default", vlan, True)
        vm = s.lab.vm(f"vm{vlan}")
        port = s.port(vm["port_id"])
        assert port["project_id"] == ("demo", "alt_demo")[i % 2] and vm["host"] == "h2"
        assert vm["ips"] == [port["fixed_ips"][0]["ip_address"] + "/24"] and vm["addressing"] == "dhcp"
        assert "802.1Q (0x8100), length" in seen["002"] and f"vlan {vlan}," in seen["002"], seen["002"]
        metadata = run_as_printed(try_commands(printed["002"])[1 + i])
        assert metadata.stdout.strip() == port["device_id"], metadata
    # 004: net01 and net02 are VLANs 101 and 102, 192.168.101.3 on both, each behind its own router.
    assert [s.lab.vm(v)["ips"] for v in ("vm01", "vm02")] == [["192.168.101.3/24"]] * 2
    tagged = [line for line in seen["004"].splitlines() if "192.168.101.3" in line]
    assert any("vlan 101," in line for line in tagged) and any("vlan 102," in line for line in tagged), seen["004"]
    for name, fip in zip(("vm01", "vm02"), [line.split("floating IP ")[1] for line in printed["004"][:2]],
                         strict=True):
        assert tcp_reaches(s, name, fip, 22)

    # Again: the same VLAN networks and VMs, the same lines; then removed, VLAN networks included.
    assert run_seed(s.lab, "002") == printed["002"]
    assert len(s.api("GET", "/v2.0/networks", name="pub100")["networks"]) == 1
    for seed in ("002", "004"):
        run_seed(s.lab, seed, delete=True)
    left = {n["name"] for n in s.api("GET", "/v2.0/networks")["networks"]}
    assert left & {"pub100", "pub101", "pub200", "pub201", "net01", "net02"} == set(), left
    assert {vm["name"] for vm in s.lab.vms()} == {"test-instance"}

    # 001 again, over VXLAN: what it made goes, and the same commands work over the other tunnel.
    run_seed(s.lab, "001", delete=True)
    r = seed_cli(s, "001", "--tunnel-type", "vxlan", "--mechanism", "openvswitch")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    with watching(watch_commands(lines)[0]) as captured:
        for command in try_commands(lines):
            passes(command)
    assert any("> 10.99.0.1.4789: VXLAN" in line for line in captured), captured
    # A network made as one type is not silently taken for another.
    with pytest.raises(LabError, match="private-net exists as vxlan .*, but this seed makes it gre"):
        run_seed(s.lab, "001", options=SeedOptions(tunnel_type="gre"))
