"""``kaon up`` and what joins it by its state directory; ``kaon down`` leaves the machine as it was.

The node's local agent works in a namespace of the test's own (``[agent]
namespace``, with a namespace prefix), so nothing here touches the machine's
own interfaces; the root namespace's lists are compared as well, to show
nothing leaked there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kaon.dataplane import nft
from kaon.lab.api_client import load_cloud, password_token
from tests.api.test_up import REPO_ROOT, Up
from tests.fixtures import free_port
from tests.fullstack.stack import require_root, unique_prefix, wait_for

pytestmark = pytest.mark.needs_root


@pytest.fixture
def aio_ns() -> Iterator[str]:
    require_root()
    name = f"kfdn{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        for ns in [n for n in listed if n.startswith(f"{name}-")] + [name]:
            for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
                subprocess.run(["kill", pid], check=False)
            subprocess.run(["ip", "netns", "delete", ns], check=False)


def kaon(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_") and k != "KAON_STATE_DIR"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "kaon", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def start_up(tmp_path: Path, ns: str) -> Up:
    extra = tmp_path / "aio.conf"
    extra.write_text(f"[DEFAULT]\nhost = aio\n[agent]\nnamespace = {ns}\nnamespace_prefix = {ns}-\n")
    up = Up(tmp_path / "state", free_port(), tmp_path / "up.log", ["--config-file", str(extra)])
    up.wait_ready(20)
    return up


def api(up: Up) -> httpx.Client:
    token, _ = password_token(load_cloud("kaon-admin", [up.state / "clouds.yaml"]))
    return httpx.Client(base_url=up.url + "/v2.0", headers={"X-Auth-Token": token}, timeout=30)


def test_a_lab_on_the_state_dir_of_kaon_up_gets_live_agents(tmp_path: Path, aio_ns: str) -> None:
    up = start_up(tmp_path, aio_ns)
    prefix = unique_prefix()
    state = str(tmp_path / "state")
    try:
        # Exactly the README's commands: only the state directory ties them together.
        run = kaon("lab", "up", "--state-dir", state, "--hosts", "3", "--prefix", prefix)
        assert run.returncode == 0, run.stdout + run.stderr
        assert "agents alive" in run.stdout
        # kaon up's own agent (host aio) has the DHCP and L3 roles too: the lab says so.
        assert "note: host aio (not in the lab) runs a live DHCP agent" in run.stdout
        alive = {a["host"] for a in api(up).get("/agents", params={"agent_type": "Linux bridge agent"})
                 .json()["agents"] if a["alive"]}
        assert {"h1", "h2", "h3"} <= alive
    finally:
        kaon("lab", "down", "--state-dir", state, "--prefix", prefix)
        up.stop()


def _root_lists() -> tuple[set[str], set[str], str]:
    namespaces = set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())
    links = {line.split(":")[1].strip().split("@")[0] for line in
             subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()}
    return namespaces, links, nft.run(None, "list tables")


def _ns_lists(ns: str) -> tuple[set[str], str]:
    links = {line.split(":")[1].strip().split("@")[0] for line in
             subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True, text=True).stdout.splitlines()}
    return links, nft.run(ns, "list tables")


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for init to reap it counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_kaon_down_stops_the_node_and_leaves_the_machine_as_it_was(tmp_path: Path, aio_ns: str) -> None:
    root_before, ns_before = _root_lists(), _ns_lists(aio_ns)
    up = start_up(tmp_path, aio_ns)
    try:
        client = api(up)
        wait_for("the local agents", lambda: len([a for a in client.get("/agents").json()["agents"]
                                                  if a["host"] == "aio" and a["alive"]]) == 4)
        net = client.post("/networks", json={"network": {"name": "down-net"}}).json()["network"]
        subnet = client.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.41.0.0/24",
                                                          "ip_version": 4}}).json()["subnet"]
        router = client.post("/routers", json={"router": {"name": "down-r"}}).json()["router"]
        client.put(f"/routers/{router['id']}/add_router_interface", json={"subnet_id": subnet["id"]})
        port = client.post("/ports", json={"port": {"network_id": net["id"], "binding:host_id": "aio",
                                                    "device_owner": "compute:nova"}}).json()["port"]
        # The VM's tap is Nova's (here the test's): kaon down must leave it alone.
        tap = f"tap{port['id'][:11]}"
        subprocess.run(["ip", "-n", aio_ns, "link", "add", tap, "type", "veth", "peer", "name", "vm0"], check=True)
        subprocess.run(["ip", "-n", aio_ns, "link", "set", tap, "up"], check=True)
        wait_for("port ACTIVE", lambda: client.get(f"/ports/{port['id']}").json()["port"]["status"] == "ACTIVE",
                 timeout=30)
        listed = lambda: subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout  # noqa: E731
        wait_for("DHCP and router namespaces", lambda: f"{aio_ns}-qdhcp-{net['id']}" in listed()
                 and f"{aio_ns}-qrouter-{router['id']}" in listed(), timeout=30)
        pid_file = tmp_path / "state" / "dhcp" / "aio" / net["id"] / "pid"
        dnsmasq = int(wait_for("dnsmasq", lambda: pid_file.exists() and pid_file.read_text().strip()))
        proxy_pid = tmp_path / "state" / "l3" / "aio" / "metadata-proxy" / router["id"] / "pid"
        proxy = int(wait_for("the router's metadata proxy", lambda: proxy_pid.exists() and proxy_pid.read_text()))
        links, tables = _ns_lists(aio_ns)
        assert f"brq{net['id'][:11]}" in links and "kaon-sg" in tables

        down = kaon("down", "--state-dir", str(tmp_path / "state"))
        assert down.returncode == 0, down.stdout + down.stderr
        assert "stopped" in down.stdout and f"namespace {aio_ns}-qdhcp-{net['id']}" in down.stdout
        assert up.proc.wait(20) is not None
        wait_for("dnsmasq gone", lambda: _gone(dnsmasq), timeout=5)
        assert f"metadata proxy of {router['id']}" in down.stdout and _gone(proxy)
        # The root namespace's own links and nft tables are exactly as before. Its list of
        # namespaces is the machine's, shared with other test runs that come and go: of
        # those, kaon down must leave none of its node's (all carry this run's name).
        namespaces, root_links, root_tables = _root_lists()
        assert (root_links, root_tables) == root_before[1:]
        assert {n for n in namespaces if n.startswith(aio_ns)} == {aio_ns}
        assert {n for n in namespaces ^ root_before[0] if n.startswith(aio_ns)} == set()
        links, tables = _ns_lists(aio_ns)
        assert links == ns_before[0] | {tap, "vm0"} and tables == ns_before[1]
        # Nothing left to do the second time.
        again = kaon("down", "--state-dir", str(tmp_path / "state"))
        assert again.returncode == 0 and "no kaon node running" in again.stdout
    finally:
        up.stop()
