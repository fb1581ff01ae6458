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
* both paths at once -- a VM behind a router (qrouter-) and a VM on an
  isolated tenant network (qdhcp-) -- read their metadata in a loop while
  h1's agent is killed (-9) and restarted: not one read fails; the
  restarted agent adopts the same proxy processes (a VM made after the
  restart is answered by the same pid: its table was reread, not the
  process replaced); a proxy killed by hand is started again; attaching the
  isolated network to a router (no longer isolated) stops its proxy;
  deleting the router stops the router's, deleting the network its
  namespace's.

Seed 002 runs first and removes its flat network: the lab has one physical
network, and seed 001's ext-net is flat on it too.

Every scenario runs on Linux bridge hosts and on Open vSwitch hosts (issue 11: the
network node's ports on br-int with ``interface_driver = openvswitch``, the provider
network through br-ex); one stack per mechanism for the module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import free_port, wait_for_port
from tests.fixtures.server import REPO_ROOT
from tests.fullstack.stack import LB, OVS, Stack, stack, wait_for

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


@pytest.fixture(scope="module", params=[LB, OVS])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, int]]:
    port = free_port()
    conf = {"DEFAULT": {"enable_isolated_metadata": "true", "metadata_proxy_shared_secret": SECRET,
                        "nova_metadata_host": "127.0.0.1", "nova_metadata_port": str(port)}}
    with stack(tmp_path_factory.mktemp("md"), hosts=2, extra_conf=conf, mechanism=request.param) as s:
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


class Reader:
    """Reads one VM's instance-id in a loop in a thread; every answer, timed, for the assertions."""

    def __init__(self, s: Stack, vm: str, expected: str) -> None:
        self.s, self.vm, self.expected = s, vm, expected
        self.ok: list[float] = []
        self.failed: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            r = wget(self.s, self.vm, "instance-id")
            if r.returncode == 0 and r.stdout == self.expected:
                self.ok.append(time.monotonic())
            else:
                self.failed.append((time.monotonic(), f"rc {r.returncode}: {r.stdout!r} {r.stderr!r}"))
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def listener_pid(ns: str, address: str) -> int | None:
    """The pid of the process listening on ``address`` in ``ns`` (ss -p looks up sockets' owners machine-wide)."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-ltnpH"], capture_output=True, text=True).stdout
    line = next((x for x in out.splitlines() if f" {address} " in x), None)
    if line is None or "pid=" not in line:
        return None
    return int(line.split("pid=")[1].split(",")[0])


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def proxy_of(ns: str, address: str) -> Callable[[], int | None]:
    return lambda: listener_pid(ns, address)


def test_metadata_survives_an_agent_kill_and_restart(lab: tuple[Stack, int], service: MetadataService,
                                                     ext: dict[str, Any]) -> None:
    s, _ = lab
    routed, router_id = private_behind_router(s, ext, "restart-net", "10.40.0.0/24")
    isolated = s.api("POST", "/v2.0/networks", {"network": {"name": "isolated-net"}})["network"]
    iso_subnet = s.api("POST", "/v2.0/subnets", {"subnet": {"network_id": isolated["id"], "cidr": "10.41.0.0/24",
                                                            "ip_version": 4}})["subnet"]
    qrouter, qdhcp = s.lab.prefix + "qrouter-" + router_id, s.lab.prefix + "qdhcp-" + isolated["id"]
    router_proxy, dhcp_proxy = proxy_of(qrouter, "0.0.0.0:9697"), proxy_of(qdhcp, "169.254.169.254:80")
    vms = {"k1": s.vm("k1", "h2", routed["id"], dhcp=True), "a1": s.vm("a1", "h2", isolated["id"], dhcp=True)}
    try:
        ids = {name: s.port(vm["port_id"])["device_id"] for name, vm in vms.items()}
        for name in vms:
            assert read(s, name, "instance-id") == ids[name]
        state = s.lab.state()
        assert state is not None
        agent = int(state["hosts"]["h1"]["agent"]["pid"])
        found = {"router": router_proxy(), "dhcp": dhcp_proxy()}
        pids = {k: v for k, v in found.items() if v is not None}
        assert len(pids) == 2 and agent not in pids.values(), found  # processes of their own
        for pid in pids.values():
            assert "kaon.agent.metadata_proxy_main" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()

        readers = [Reader(s, name, ids[name]) for name in vms]
        try:
            time.sleep(0.5)
            os.kill(agent, signal.SIGKILL)
            wait_for("h1's agent gone", lambda: not alive(agent))
            down = time.monotonic()
            time.sleep(2)  # metadata with no agent at all
            s.lab.start_agents()
            back = time.monotonic()
            # VMs made after the restart are answered: the new agent synced, and
            # reloaded the same processes with their addresses.
            vms["k2"] = s.vm("k2", "h2", routed["id"], dhcp=True)
            vms["a2"] = s.vm("a2", "h2", isolated["id"], dhcp=True)
            for name in ("k2", "a2"):
                ids[name] = s.port(vms[name]["port_id"])["device_id"]
                assert read(s, name, "instance-id", timeout=30) == ids[name]
        finally:
            for r in readers:
                r.stop()
        for r in readers:
            assert r.failed == [], f"{r.vm}: {len(r.failed)} failed reads, first {r.failed[:3]}"
            assert sum(down <= t <= back for t in r.ok) >= 3, f"{r.vm}: too few reads while the agent was down"
        assert {"router": router_proxy(), "dhcp": dhcp_proxy()} == pids  # adopted, not restarted
        print(f"reads through the restart: {[len(r.ok) for r in readers]}, none failed")

        # A proxy killed by hand is started again (at the agent's next resync: 5 s in the lab).
        os.kill(pids["router"], signal.SIGKILL)
        wait_for("the router's proxy gone", lambda: not alive(pids["router"]))
        start = time.monotonic()
        new = wait_for("a new router proxy", lambda: (p := router_proxy()) not in (None, pids["router"]) and p,
                       timeout=20)
        assert read(s, "k1", "instance-id") == ids["k1"]
        print(f"a killed proxy was replaced after {time.monotonic() - start:.1f} s")

        # The isolated network attached to the router: no longer isolated, its proxy stops.
        s.api("PUT", f"/v2.0/routers/{router_id}/add_router_interface", {"subnet_id": iso_subnet["id"]})
        wait_for("the DHCP namespace's proxy stopped", lambda: not alive(pids["dhcp"]), timeout=20)
        assert dhcp_proxy() is None
        assert router_proxy() == new

        # Deleting the router stops its proxy; deleting the network, its namespace's.
        for name in list(vms):
            s.lab.delete_vm(name)
            del vms[name]
        routed_subnets = s.api("GET", f"/v2.0/networks/{routed['id']}")["network"]["subnets"]
        for subnet in [iso_subnet["id"], *routed_subnets]:
            s.api("PUT", f"/v2.0/routers/{router_id}/remove_router_interface", {"subnet_id": subnet})
        s.api("DELETE", f"/v2.0/routers/{router_id}")
        wait_for("the router's proxy stopped", lambda: not alive(new), timeout=20)
    finally:
        for name in vms:
            s.lab.delete_vm(name)
        s.api("DELETE", f"/v2.0/networks/{isolated['id']}")
        s.api("DELETE", f"/v2.0/networks/{routed['id']}")


def test_an_isolated_networks_proxy_stops_with_its_network(lab: tuple[Stack, int], service: MetadataService) -> None:
    s, _ = lab
    net = s.api("POST", "/v2.0/networks", {"network": {"name": "gone-net"}})["network"]
    s.api("POST", "/v2.0/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.42.0.0/24", "ip_version": 4}})
    proxy = proxy_of(s.lab.prefix + "qdhcp-" + net["id"], "169.254.169.254:80")
    pid = wait_for("the isolated network's proxy", proxy, timeout=30)
    s.api("DELETE", f"/v2.0/networks/{net['id']}")
    wait_for("its proxy stopped", lambda: not alive(pid), timeout=20)
