"""``kaon doctor`` on facts only the agents know, in a two-host lab: a
dnsmasq killed by hand is named with its network, host and fix (the DHCP
manager reports its processes as it finds them, not as it remembers them),
and the finding goes once the agent runs it again; a VM's tap set to another
MTU than its network's by hand is named (the L2 manager reports what it
reads back) until it is set back.

The lab's resync is slow here (300 s) so that the agent does not restart
dnsmasq by itself before the doctor looks; restarting the agent — the fix
the finding names — does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = [pytest.mark.needs_root]


@pytest.fixture(scope="module")
def lab2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    conf = {"agent": {"report_interval": "1", "resync_interval": "300"}}
    with stack(tmp_path_factory.mktemp("doctor-agents"), hosts=2, extra_conf=conf) as s:
        wait_for("the DHCP agent on h1", lambda: any(
            a["alive"] for a in s.api("GET", "/v2.0/agents", agent_type="DHCP agent")["agents"]))
        yield s


def findings(s: Stack, check: str) -> list[str]:
    res = subprocess.run([sys.executable, "-m", "kaon", "doctor", "--json", "--config-file", str(s.server.conf_path)],
                         capture_output=True, text=True, timeout=60)
    report: dict[str, Any] = json.loads(res.stdout)
    assert not any(x["check"] == check for x in report["not_checked"]), report
    return [f"{f['host']}: {f['subject']}: {f['evidence']} — {f['fix']}" for f in report["findings"]
            if f["check"] == check]


def dnsmasq_pid(s: Stack, net_id: str) -> int | None:
    r = subprocess.run(["ip", "netns", "pids", f"{s.lab.prefix}qdhcp-{net_id}"], capture_output=True, text=True)
    for pid in (int(p) for p in r.stdout.split()):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "dnsmasq":
                return pid
        except OSError:
            continue
    return None


def test_a_dnsmasq_killed_by_hand_is_named_until_the_agent_runs_it_again(lab2: Stack) -> None:
    net = lab2.network("dhcp-probe", "10.22.0.0/24")
    lab2.vm("dv1", "h2", net["id"])
    lab2.wait_converged()
    pid = wait_for("dnsmasq", lambda: dnsmasq_pid(lab2, net["id"]))
    assert findings(lab2, "dnsmasq") == []
    os.kill(pid, signal.SIGKILL)  # our own lab's dnsmasq, by its exact pid
    want = (f"h1: DHCP for network {net['id']}: dnsmasq (pid {pid}) is not running though the DHCP agent serves "
            "the network: its VMs get no address — the agent starts it again at its next resync; if it keeps "
            f"dying, read dnsmasq's log in the agent's state directory (dhcp/h1/{net['id']}/log), or restart the "
            "agent on that host")
    wait_for("the dead dnsmasq named", lambda: findings(lab2, "dnsmasq") == [want], timeout=20, interval=0.5)
    lab2.lab.stop_agents(["h1"])
    lab2.lab.start_agents()
    wait_for("dnsmasq again", lambda: (p := dnsmasq_pid(lab2, net["id"])) and p != pid)
    wait_for("the finding gone", lambda: findings(lab2, "dnsmasq") == [], timeout=20, interval=0.5)


def test_a_tap_mtu_changed_by_hand_is_named_until_it_is_set_back(lab2: Stack) -> None:
    net = lab2.network("mtu-probe", "10.23.0.0/24")
    vm = lab2.vm("mv1", "h2", net["id"])
    lab2.wait_converged()
    mtu = int(lab2.api("GET", f"/v2.0/networks/{net['id']}")["network"]["mtu"])
    assert findings(lab2, "mtu") == []  # every tap the lab, DHCP and L3 made has its network's MTU
    tap = vm["tap"]
    lab2.host("h2", "ip", "link", "set", tap, "mtu", str(mtu + 50))
    want = (f"h2: port {vm['port_id']} device {tap}: MTU {mtu + 50}, its network {net['id']} has MTU {mtu}: frames "
            f"over {mtu} bytes leave it and are dropped on the way — ip link set {tap} mtu {mtu} on h2 (Nova's os-vif "
            "sets a tap to the network's MTU on plug: check the VIF's mtu), or change the network's: openstack "
            "network set --mtu N NETWORK")
    wait_for("the tap's MTU named", lambda: findings(lab2, "mtu") == [want], timeout=20, interval=0.5)
    lab2.host("h2", "ip", "link", "set", tap, "mtu", str(mtu))
    wait_for("the finding gone", lambda: findings(lab2, "mtu") == [], timeout=20, interval=0.5)
