"""Kill -9 an agent in the middle of plugging 300 taps and start it again:
it converges, duplicates nothing, sweeps the stale objects of its own that
were planted for it, leaves everything else alone — and VM traffic through
ports that did not change keeps flowing the whole time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kaon.agent.config import OWNER_ALIAS
from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = pytest.mark.needs_root

PORTS = 300


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, hosts=2) as s:
        yield s


def links(s: Stack, host: str) -> dict[str, str]:
    return {m.group(1): line for line in s.host(host, "ip", "-o", "link", "show").splitlines()
            if (m := re.match(r"\d+: ([^:@]+)[@:]", line))}


def plant(s: Stack, host: str) -> None:
    ns = s.lab.host_namespace(host)
    cmds = [
        # The agent's own, left over: its prefixes *and* its alias.
        ["ip", "-n", ns, "link", "add", "brqstale0000", "type", "bridge"],
        ["ip", "-n", ns, "link", "set", "brqstale0000", "alias", OWNER_ALIAS],
        ["ip", "-n", ns, "link", "add", "vxlan-1999", "type", "vxlan", "id", "1999", "dstport", "4789",
         "local", "10.99.0.1", "nolearning"],
        ["ip", "-n", ns, "link", "set", "vxlan-1999", "alias", OWNER_ALIAS],
        # Somebody else's: the same prefixes without the alias, and another bridge.
        ["ip", "-n", ns, "link", "add", "brqforeign00", "type", "bridge"],
        ["ip", "-n", ns, "link", "add", "vxlan-1998", "type", "vxlan", "id", "1998", "dstport", "4789",
         "local", "10.99.0.1", "nolearning"],
        ["ip", "-n", ns, "link", "add", "br-mine", "type", "bridge"],
    ]
    for cmd in cmds:
        subprocess.run(cmd, check=True)


def test_kill_9_mid_apply_then_restart(two: Stack) -> None:
    net = two.network("busy", "10.20.0.0/22")
    two.vm("a", "h1", net["id"], ip_address="10.20.0.11")
    two.vm("b", "h2", net["id"], ip_address="10.20.0.12")
    plant(two, "h1")
    h1 = two.lab.host_namespace("h1")
    sink = f"{two.lab.prefix}sink"
    subprocess.run(["ip", "netns", "add", sink], check=True)
    pinger = None
    try:
        # Traffic through ports that will not change, for the whole test (~12 s).
        pinger = subprocess.Popen(["ip", "netns", "exec", two.lab.vm("a")["namespace"], "ping", "-n", "-q",
                                   "-i", "0.05", "-c", "240", "10.20.0.12"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        body = {"ports": [{"network_id": net["id"], "binding:host_id": "h1", "device_owner": "compute:nova",
                           "device_id": f"vm-{i}"} for i in range(PORTS)]}
        ports = two.api("POST", "/v2.0/ports", body)["ports"]
        batch = "".join(f"link add tap{p['id'][:11]} type veth peer name s{i} netns {sink}\n"
                        f"link set tap{p['id'][:11]} up\n" for i, p in enumerate(ports))
        subprocess.run(["ip", "-n", h1, "-batch", "-"], input=batch, text=True, check=True)
        # The watcher woke the agent while the taps appeared: it is plugging them now.
        agent_pid = two.lab.state()["hosts"]["h1"]["agent"]["pid"]
        os.kill(agent_pid, signal.SIGKILL)
        active_at_kill = sum(p["status"] == "ACTIVE" for p in two.api(
            "GET", "/v2.0/ports", device_owner="compute:nova", **{"binding:host_id": "h1"})["ports"])
        two.lab.start_agents()
        wait_for("all ports ACTIVE", lambda: all(
            p["status"] == "ACTIVE" for p in two.api("GET", "/v2.0/ports", device_owner="compute:nova",
                                                    **{"binding:host_id": "h1"})["ports"]), timeout=30)
        two.wait_converged()
        wait_for("stale own objects swept", lambda: not {"brqstale0000", "vxlan-1999"} & set(links(two, "h1")),
                 timeout=15)
        seen = links(two, "h1")
        # Not ours: untouched.
        assert {"brqforeign00", "vxlan-1998", "br-mine"} <= set(seen)
        # No duplicates: one bridge and one VXLAN device for the network, every tap in it once.
        bridge = f"brq{net['id'][:11]}"
        vni = two.api("GET", "/v2.0/networks/" + net["id"])["network"]["provider:segmentation_id"]
        assert [n for n in seen if n.startswith("brq") and n != "brqforeign00"] == [bridge]
        assert [n for n in seen if n.startswith("vxlan-") and n != "vxlan-1998"] == [f"vxlan-{vni}"]
        for p in ports:
            assert f"master {bridge}" in seen[f"tap{p['id'][:11]}"]
        fdb = two.host("h1", "bridge", "fdb", "show", "dev", f"vxlan-{vni}")
        lines = [line for line in fdb.splitlines() if " dst " in line]
        assert len(lines) == len(set(lines)) and any(line.startswith("00:00:00:00:00:00 dst 10.99.0.2")
                                                     for line in lines)
        out, _ = pinger.communicate(timeout=30)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert m, out
        sent, received = int(m.group(1)), int(m.group(2))
        assert received == sent, f"lost {sent - received} of {sent} pings while the agent restarted: {out}"
        print(f"ports ACTIVE at the kill: {active_at_kill} of {PORTS + 1}; pings {received}/{sent}")
    finally:
        if pinger is not None and pinger.poll() is None:
            pinger.kill()
        subprocess.run(["ip", "netns", "delete", sink], check=False)
