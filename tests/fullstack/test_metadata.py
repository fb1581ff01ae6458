"""Metadata on the wire (issue 5, item 3): a lab of two hosts whose h1 runs
the l3 and dhcp roles, ``enable_isolated_metadata = true``, a shared secret,
and kaon's metadata service (``kaon metadata``, a process of its own as Nova's
API would be) on a free port of the root namespace's 127.0.0.1.

* seed 002: a VM of another project on a shared flat provider network
  without a router, DHCP-configured, reads its instance-id through the
  proxy in the DHCP namespace (169.254.169.254:80, route pushed by DHCP);
* seed 001: a VM behind router1, DHCP-configured, reads its instance-id
  through the router namespace (nft redirect to :9697); its public-ipv4 is
  its floating IP;
* the service with another secret: the VM gets an error, not data;
* kill -9 and restart h1's agent: the listeners (its sockets) die with it
  and are back at its first sync;
* the router's :9697 is a socket of the agent process (no proxy processes).

Seed 002 runs first and removes its flat network: the lab has one physical
network, and seed 001's ext-net is flat on it too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import free_port, wait_for_port
from tests.fixtures.server import REPO_ROOT
from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = [pytest.mark.needs_root]

SECRET = "lab-secret"
URL = "http://169.254.169.254/latest/meta-data/"


class MetadataService:
    """``kaon metadata`` as a subprocess, stopped by pid."""

    def __init__(self, configs: list[Path], port: int, log: Path) -> None:
        cmd = [sys.executable, "-m", "kaon", "metadata"]
        for conf in configs:
            cmd += ["--config-file", str(conf)]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        if not wait_for_port(port, timeout=15):
            self.close()
            raise AssertionError(f"kaon metadata did not listen on {port}: {log.read_text()}")

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, int]]:
    port = free_port()
    conf = {"DEFAULT": {"enable_isolated_metadata": "true", "metadata_proxy_shared_secret": SECRET,
                        "nova_metadata_host": "127.0.0.1", "nova_metadata_port": str(port)}}
    with stack(tmp_path_factory.mktemp("md"), hosts=2, extra_conf=conf) as s:
        for kind in ("DHCP agent", "L3 agent"):
            wait_for(f"the {kind} on h1", lambda k=kind: any(
                a["alive"] for a in s.api("GET", "/v2.0/agents", agent_type=k)["agents"]))
        yield s, port


@pytest.fixture
def service(lab: tuple[Stack, int], tmp_path: Path) -> Iterator[MetadataService]:
    s, port = lab
    svc = MetadataService([s.server.conf_path], port, tmp_path / "metadata.log")
    try:
        yield svc
    finally:
        svc.close()


def wget(s: Stack, vm: str, key: str) -> subprocess.CompletedProcess[str]:
    # busybox wget as in a cirros guest (no -T: Debian 12's busybox 1.35 segfaults with it).
    r = s.lab.exec(vm, ["busybox", "wget", "-q", "-O", "-", URL + key], capture=True, timeout=20)
    return r  # type: ignore[no-any-return]


def read(s: Stack, vm: str, key: str, timeout: float = 20) -> str:
    """The value once the agent has the VM in its proxy's table (a few hundred ms after ACTIVE)."""
    r = wait_for(f"{vm} reads {key}", lambda: (r := wget(s, vm, key)).returncode == 0 and r, timeout, 0.2)
    return str(r.stdout)


def test_seed_002_metadata_through_the_dhcp_namespace(lab: tuple[Stack, int], service: MetadataService) -> None:
    s, _ = lab
    net = s.api("POST", "/v2.0/networks", {"network": {
        "name": "pub100", "shared": True, "provider:network_type": "flat",
        "provider:physical_network": "provider"}})["network"]
    try:
        s.api("POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.34.0.0/24",
                                                   "ip_version": 4}})
        other = f"p-{uuid.uuid4().hex[:8]}"
        start = time.monotonic()
        vm = s.vm("m1", "h2", net["id"], dhcp=True, project_id=other)
        assert "169.254.169.254 via 10.34.0.2" in str(s.lab.exec("m1", ["ip", "-4", "route"], capture=True).stdout)
        device_id = s.port(vm["port_id"])["device_id"]
        assert read(s, "m1", "instance-id") == device_id
        print(f"isolated metadata answered {time.monotonic() - start:.2f} s after vm create (DHCP included)")
        assert read(s, "m1", "local-ipv4") == vm["ips"][0].split("/")[0]
        assert "public-ipv4" not in read(s, "m1", "")
    finally:
        s.lab.delete_vm("m1")
        s.api("DELETE", f"/v2.0/networks/{net['id']}")


@pytest.fixture(scope="module")
def ext(lab: tuple[Stack, int]) -> dict[str, Any]:
    """Seed 001's ext-net; first asked for after seed 002's flat network is gone."""
    s, _ = lab
    net = s.api("POST", "/v2.0/networks", {"network": {
        "name": "ext-net", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "provider"}})["network"]
    s.api("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "192.168.100.0/24", "ip_version": 4, "enable_dhcp": False,
        "gateway_ip": "192.168.100.1", "allocation_pools": [{"start": "192.168.100.10", "end": "192.168.100.90"}]}})
    return dict(net)


def private_behind_router(s: Stack, ext: dict[str, Any], name: str, cidr: str) -> tuple[dict[str, Any], str]:
    """(network, router id): a DHCP subnet with seed 001's pool shape behind a new router."""
    net = s.api("POST", "/v2.0/networks", {"network": {"name": name}})["network"]
    base = cidr.rsplit(".", 1)[0]
    sub = s.api("POST", "/v2.0/subnets", {"subnet": {
        "network_id": net["id"], "cidr": cidr, "ip_version": 4,
        "allocation_pools": [{"start": f"{base}.10", "end": f"{base}.200"}]}})["subnet"]
    router = s.api("POST", "/v2.0/routers", {"router": {"name": f"{name}-router",
                                                       "external_gateway_info": {"network_id": ext["id"]}}})["router"]
    s.api("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    return net, router["id"]


def test_seed_001_metadata_through_the_router(lab: tuple[Stack, int], service: MetadataService,
                                              ext: dict[str, Any], tmp_path: Path) -> None:
    s, port = lab
    net, _ = private_behind_router(s, ext, "private-net", "10.0.0.0/24")
    vm = s.vm("i1", "h2", net["id"], dhcp=True)
    routes = str(s.lab.exec("i1", ["ip", "-4", "route"], capture=True).stdout)
    assert "169.254.169.254" not in routes and "default via 10.0.0.1" in routes  # routed: no isolated route
    device_id = s.port(vm["port_id"])["device_id"]
    start = time.monotonic()
    assert read(s, "i1", "instance-id") == device_id
    print(f"router metadata answered {time.monotonic() - start:.2f} s after the VM was ACTIVE")
    body = {"floatingip": {"floating_network_id": ext["id"], "port_id": vm["port_id"]}}
    address = s.api("POST", "/v2.0/floatingips", body)["floatingip"]["floating_ip_address"]
    assert read(s, "i1", "public-ipv4") == address
    assert read(s, "i1", "hostname") == "host-" + vm["ips"][0].split("/")[0].replace(".", "-")

    # The service with another secret than the proxies': an error reaches the VM, no data.
    service.close()
    wrong = tmp_path / "wrong.ini"
    wrong.write_text("[neutron]\nmetadata_proxy_shared_secret = not-the-lab-secret\n")
    other = MetadataService([s.server.conf_path, wrong], port, tmp_path / "metadata-wrong.log")
    try:
        r = wget(s, "i1", "instance-id")
        assert r.returncode != 0 and device_id not in r.stdout
        assert "403" in r.stderr, r.stderr
    finally:
        other.close()


def test_metadata_after_an_agent_kill_and_restart(lab: tuple[Stack, int], service: MetadataService,
                                                  ext: dict[str, Any]) -> None:
    s, _ = lab
    net, _ = private_behind_router(s, ext, "restart-net", "10.40.0.0/24")
    vm = s.vm("k1", "h2", net["id"], dhcp=True)
    device_id = s.port(vm["port_id"])["device_id"]
    assert read(s, "k1", "instance-id") == device_id
    old = int(s.lab.state()["hosts"]["h1"]["agent"]["pid"])
    os.kill(old, signal.SIGKILL)
    wait_for("h1's agent gone", lambda: not Path(f"/proc/{old}").exists() or
             Path(f"/proc/{old}/stat").read_text().split(")")[-1].split()[0] == "Z")
    assert wget(s, "k1", "instance-id").returncode != 0  # its listener died with it
    start = time.monotonic()
    s.lab.start_agents()
    assert read(s, "k1", "instance-id", timeout=30) == device_id
    print(f"metadata back {time.monotonic() - start:.2f} s after the agent restarted")


def test_the_listeners_are_the_agents_own_sockets(lab: tuple[Stack, int]) -> None:
    """No proxy process per namespace: the router's :9697 is a socket of h1's agent."""
    s, _ = lab
    agent = int(s.lab.state()["hosts"]["h1"]["agent"]["pid"])
    names = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
             if n.startswith(s.lab.prefix + "qrouter-")]
    assert names
    for ns in names:
        listening = subprocess.run(["ip", "netns", "exec", ns, "ss", "-ltnpH"], capture_output=True,
                                   text=True).stdout
        line = next(x for x in listening.splitlines() if "0.0.0.0:9697" in x)
        assert f"pid={agent}," in line, line
