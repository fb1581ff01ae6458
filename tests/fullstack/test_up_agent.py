"""``kaon up`` runs server, identity and a local agent on the in-process bus.

The local agent is pointed at a namespace of the test's own (``[agent]
namespace``), so the machine's network is never touched. Without root the
node runs API-only and says why (tested without privileges in
tests/unit/test_agent_config.py).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kaon.lab.api_client import load_cloud, password_token
from tests.api.test_up import Up
from tests.fixtures import free_port
from tests.fullstack.stack import require_root, wait_for

pytestmark = pytest.mark.needs_root


@pytest.fixture
def aio_ns() -> Iterator[str]:
    require_root()
    name = f"kfup{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        # The agent's qdhcp-/qrouter- namespaces carry "<name>-" ([agent]
        # namespace_prefix); dnsmasq outlives the agent by design (as
        # Neutron's does), so its processes go by pid, then the namespaces.
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        for ns in [n for n in listed if n.startswith(f"{name}-")] + [name]:
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                subprocess.run(["kill", pid], check=False)
            subprocess.run(["ip", "netns", "delete", ns], check=False)


def test_kaon_up_plugs_a_port_with_its_local_agent(tmp_path: Path, aio_ns: str) -> None:
    extra = tmp_path / "aio.conf"
    extra.write_text(f"[DEFAULT]\nhost = aio\n[agent]\nnamespace = {aio_ns}\nnamespace_prefix = {aio_ns}-\n")
    up = Up(tmp_path / "state", free_port(), tmp_path / "up.log", ["--config-file", str(extra)])
    try:
        up.wait_ready(20)
        wait_for("the announcement", lambda: "Local agent" in up.output(), timeout=10)
        assert (f"Local agent    : Linux bridge agent (roles: dhcp, l3) for host aio on namespace {aio_ns}"
                in up.output())
        token, _ = password_token(load_cloud("kaon-admin", [tmp_path / "state" / "clouds.yaml"]))
        api = httpx.Client(base_url=up.url + "/v2.0", headers={"X-Auth-Token": token}, timeout=30)
        # One process, four agent records: L2, the DHCP and L3 roles of an all-in-one node, and
        # the metadata proxy those roles run (Neutron's neutron-metadata-agent row).
        wait_for("the local agents alive", lambda: sorted(
            a["agent_type"] for a in api.get("/agents").json()["agents"] if a["host"] == "aio" and a["alive"]
        ) == ["DHCP agent", "L3 agent", "Linux bridge agent", "Metadata agent"])
        rows = {a["agent_type"]: a for a in api.get("/agents").json()["agents"] if a["host"] == "aio"}
        # Neutron's zones: DHCP and L3 agents in [agent] availability_zone (default nova), the others none.
        assert rows["DHCP agent"]["availability_zone"] == rows["L3 agent"]["availability_zone"] == "nova"
        assert rows["Linux bridge agent"]["availability_zone"] is None
        assert rows["Metadata agent"]["availability_zone"] is None
        assert rows["Metadata agent"]["binary"] == "neutron-metadata-agent"
        assert {"name": "nova", "resource": "network", "state": "available"} in \
            api.get("/availability_zones").json()["availability_zones"]
        net = api.post("/networks", json={"network": {"name": "aio-net"}}).json()["network"]
        assert api.post("/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.40.0.0/24",
                                                     "ip_version": 4}}).status_code == 201
        port = api.post("/ports", json={"port": {"network_id": net["id"], "binding:host_id": "aio",
                                                 "device_owner": "compute:nova"}}).json()["port"]
        assert port["binding:vif_type"] == "bridge", port
        tap = f"tap{port['id'][:11]}"
        subprocess.run(["ip", "-n", aio_ns, "link", "add", tap, "type", "veth", "peer", "name", "vm0"], check=True)
        subprocess.run(["ip", "-n", aio_ns, "link", "set", tap, "up"], check=True)
        wait_for("port ACTIVE", lambda: api.get(f"/ports/{port['id']}").json()["port"]["status"] == "ACTIVE")
        links = subprocess.run(["ip", "-n", aio_ns, "-o", "link", "show", tap], capture_output=True, text=True)
        assert f"master brq{net['id'][:11]}" in links.stdout
        assert "Traceback" not in up.output()
        # The DHCP role served the network from a namespace of this test's own.
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{aio_ns}-qdhcp-{net['id']}" in listed
    finally:
        up.stop()
