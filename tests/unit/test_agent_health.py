"""What an agent says of itself in its state reports (``health``), and the
VXLAN probe's frames: the last failed action of a failing pass (gone after
a good one), the agent's clock, the prober's per-peer results on the L2
record only, a manager's own facts; probe frames round-trip and nothing
else decodes as one."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from kaon.agent.manager import Outcome, PortStatus, Step
from kaon.agent.probe import intent_peers
from kaon.agent.runtime import Agent
from kaon.dataplane import vxlan_probe as vp
from kaon.dataplane.ovs_model import KAON_COOKIE
from kaon.model.intent import HostIntent, NetworkIntent
from tests.unit.test_agent_managers import CFG, FakeBus


@dataclass
class Record:
    """A manager with an agent record, whose outcome the test sets."""
    name: str
    agent_type: str
    errors: tuple[tuple[str, str], ...] = ()
    own: dict[str, Any] | None = None
    binary: str = "kaon-test"
    topic: str = "N/A"

    def update(self, intent: HostIntent) -> None:
        pass

    def mark_dirty(self) -> None:
        pass

    def apply(self, step: Step) -> Outcome:
        ports = PortStatus((), ()) if self.name == "l2" else None
        return Outcome(not self.errors, ports=ports, errors=self.errors)

    def close(self) -> None:
        pass

    def configurations(self) -> dict[str, Any]:
        return {}

    def health(self) -> dict[str, Any]:
        return dict(self.own or {})


class Prober:
    error: str | None = None

    def results(self) -> dict[str, bool]:
        return {"10.99.0.2": True, "10.99.0.3": False}

    def mtu_results(self) -> dict[str, dict[str, int | bool]]:
        return {"10.99.0.2": {"mtu": 1450, "answered": False}}


def test_reports_carry_the_clock_the_last_failure_and_the_tunnels() -> None:
    l2 = Record("l2", "Linux bridge agent", errors=(("ensure_vxlan:vxlan-7", "ensure_vxlan vxlan-7 failed: EEXIST"),))
    dhcp = Record("dhcp", "DHCP agent", own={"dnsmasq": {"n1": {"pid": 7, "running": False}}})
    agent = Agent(CFG, FakeBus(), [l2, dhcp], prober=Prober())  # type: ignore[arg-type]
    assert not agent.sync_once()
    by_type = {r["agent_type"]: r["health"] for r in agent.reports()}
    failure = {"manager": "l2", "action": "ensure_vxlan:vxlan-7", "reason": "ensure_vxlan vxlan-7 failed: EEXIST"}
    assert by_type["Linux bridge agent"]["last_failure"] == failure == by_type["DHCP agent"]["last_failure"]
    assert by_type["Linux bridge agent"]["tunnels"] == {"10.99.0.2": True, "10.99.0.3": False}
    assert by_type["Linux bridge agent"]["tunnel_mtu"] == {"10.99.0.2": {"mtu": 1450, "answered": False}}
    assert "tunnels" not in by_type["DHCP agent"] and "tunnel_probe_error" not in by_type["Linux bridge agent"]
    assert by_type["DHCP agent"]["dnsmasq"] == {"n1": {"pid": 7, "running": False}}
    assert set(by_type) == {"Linux bridge agent", "DHCP agent", "Metadata agent"}
    assert all(abs(h["time"] - time.time()) < 5 for h in by_type.values())
    l2.errors = ()
    agent.prober.error = "NetlinkError: File exists"  # type: ignore[union-attr]
    assert agent.sync_once()
    assert agent.reports()[0]["health"]["tunnel_probe_error"] == "NetlinkError: File exists"
    assert all("last_failure" not in r["health"] for r in agent.reports())


def test_probe_frames_round_trip_and_others_do_not_decode() -> None:
    frame = vp.encode(vp.REQUEST, b"12345678", "10.99.0.1", vp.vtep_mac("10.99.0.2"))
    assert len(frame) >= 60 and frame[:6] == bytes.fromhex("026b0a630002")
    probe = vp.decode(frame)
    assert probe == vp.Probe(vp.REQUEST, b"12345678", "10.99.0.1", vp.vtep_mac("10.99.0.1"))
    assert vp.decode(frame[:20]) is None
    assert vp.decode(frame[:12] + b"\x08\x00" + frame[14:]) is None  # IPv4, not a probe
    assert vp.decode(frame.replace(b"kaon-vxlan-probe", b"kaon-vxlan-prob!")) is None
    assert vp.vtep_mac("fd00::1").startswith("02:6b:") and vp.vtep_mac("fd00::1") != vp.vtep_mac("fd00::2")
    with pytest.raises(ValueError):
        vp.encode(vp.REPLY, b"short", "10.99.0.1", "02:6b:00:00:00:01")


def test_the_probe_vni_is_outside_what_ml2_can_allocate_by_default() -> None:
    assert vp.PROBE_VNI == 2**24 - 1 and not vp.DEVICE.startswith("vxlan-") and len(vp.DEVICE) <= 15


def test_intent_peers_are_the_vxlan_networks_vteps() -> None:
    def net(kind: str, peers: dict[str, Any], mtu: int = 1450) -> NetworkIntent:
        return NetworkIntent("brq1", kind, 5, None, mtu, peers)

    intent = HostIntent("h1", networks={"a": net("vxlan", {"10.99.0.2": (), "10.99.0.3": ()}),
                                        "b": net("vxlan", {"10.99.0.3": ()}, 8950),
                                        "c": net("vlan", {"10.99.0.9": ()}, 9000)})
    # Each peer with the largest MTU of the VXLAN networks shared with it: its big probe's size.
    assert intent_peers(intent) == {"10.99.0.2": 1450, "10.99.0.3": 8950}


def test_a_probe_is_padded_to_the_frame_of_a_networks_mtu() -> None:
    frame = vp.encode(vp.REQUEST, b"n" * 8, "10.99.0.1", vp.vtep_mac("10.99.0.2"), vp.frame_size(1450))
    assert len(frame) == 1464  # 1450 + Ethernet header: 1500 bytes once wrapped in VXLAN over IPv4
    probe = vp.decode(frame)
    assert probe is not None and probe.vtep == "10.99.0.1" and probe.nonce == b"n" * 8


def test_ovs_probe_flows_carry_the_probe_vni_through_each_peers_tunnel_port() -> None:
    flows = [f.add_line() for f in vp.ovs_flows({"10.99.0.3": "vxlan-0a630003", "10.99.0.2": "vxlan-0a630002"})]
    assert flows == [
        "cookie=0x6b70726f,table=0,priority=200,tun_id=0xffffff,dl_type=0x88b5,actions=output:kprobe-vx",
        "cookie=0x6b70726f,table=0,priority=200,in_port=kprobe-vx,dl_dst=02:6b:0a:63:00:02,"
        "actions=set_field:0xffffff->tun_id,output:vxlan-0a630002",
        "cookie=0x6b70726f,table=0,priority=200,in_port=kprobe-vx,dl_dst=02:6b:0a:63:00:03,"
        "actions=set_field:0xffffff->tun_id,output:vxlan-0a630003"]
    assert vp.PROBE_COOKIE != KAON_COOKIE  # the agent's flow sync and sweep never touch them
