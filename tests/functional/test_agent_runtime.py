"""The agent runtime against a real server core (in process), the local bus
and a real namespace: it converges when every hint is lost (periodic resync),
and it repairs drift nobody told it about."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from kaon.agent.config import AgentConfig
from kaon.agent.firewall import Firewall
from kaon.agent.l2_manager import LinuxBridgeManager
from kaon.agent.runtime import Agent
from kaon.bus.local import InProcessAgentBus, LocalHub
from kaon.core.agents.agent_rpc import AgentRpc
from kaon.dataplane.linux_l2 import LinuxL2
from tests.api.agent_support import AGENT_CONF, services
from tests.api.core_support import Api, build_api
from tests.fullstack.stack import require_root, wait_for

pytestmark = pytest.mark.needs_root


@pytest.fixture
def host_ns() -> Iterator[str]:
    require_root()
    name = f"kfrt{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Api, LocalHub]]:
    api = build_api(f"sqlite:///{tmp_path / 'kaon.sqlite'}", tmp_path, AGENT_CONF)
    svc = services(api)
    hub = LocalHub(socket_path=None)
    hub.start(AgentRpc(svc.engine, svc.agents, svc.compiler))
    svc.compiler.notify = None  # every hint is lost
    svc.compiler.start()
    try:
        yield api, hub
    finally:
        svc.compiler.stop()
        hub.close()
        api.close()


def test_lost_hints_and_drift_are_repaired_by_the_periodic_resync(server: tuple[Api, LocalHub],
                                                                   host_ns: str) -> None:
    api, hub = server
    cfg = replace(AgentConfig(host="rt1", local_ip="10.99.0.1", l2_population=True), namespace=host_ns,
                  resync_interval=1, report_interval=1)
    l2 = LinuxBridgeManager(cfg, LinuxL2(host_ns), {"vxlan": True, "vlan": False})
    agent = Agent(cfg, InProcessAgentBus.of(hub), [l2, Firewall(cfg)])
    agent.start()
    try:
        admin = api.admin()
        wait_for("agent registered", lambda: admin.list("agents"))
        net, _ = admin.net_with_subnet("10.50.0.0/24")
        port = admin.port(net["id"], **{"binding:host_id": "rt1", "device_owner": "compute:nova"})
        assert port["binding:vif_type"] == "bridge"
        tap = f"tap{port['id'][:11]}"
        subprocess.run(["ip", "-n", host_ns, "link", "add", tap, "type", "veth", "peer", "name", "vm0"], check=True)
        subprocess.run(["ip", "-n", host_ns, "link", "set", tap, "up"], check=True)
        wait_for("ACTIVE without a hint", lambda: admin.show("ports", port["id"])["status"] == "ACTIVE", timeout=10)
        bridge = f"brq{net['id'][:11]}"
        # Drift: somebody deletes the bridge. No hint, no link event for the tap's port: the resync repairs it.
        subprocess.run(["ip", "-n", host_ns, "link", "del", bridge], check=True)
        wait_for("bridge and tap back", lambda: f"master {bridge}" in subprocess.run(
            ["ip", "-n", host_ns, "-o", "link", "show", tap], capture_output=True, text=True).stdout, timeout=10)
        assert admin.show("ports", port["id"])["status"] == "ACTIVE"
    finally:
        agent.stop()
