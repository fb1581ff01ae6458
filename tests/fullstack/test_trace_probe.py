"""``kaon trace --probe`` on a lab of two hosts (h1 also the network node): for every case of the
matrix the trace's verdict (from the stored intents) equals what the real packet did.

Cases: same network across hosts (icmp, tcp, udp), across a router, to the outside through SNAT,
a floating IP from the outside, blocked by a security group (no ingress rule; no rule for the port),
a spoofed source (dropped by anti-spoofing), and a spoofed source from a port without port security
(delivered on its host; across hosts the reply is lost, and the trace says why). The trace's own verdicts are asserted too, so a trace and a probe that were both wrong
the same way would still fail.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kaon.cli.main import main
from tests.fullstack.stack import Stack, stack, wait_for
from tests.fullstack.test_l3 import OUTSIDE, fip, private, subnet

pytestmark = [pytest.mark.needs_root]


@pytest.fixture(scope="module", params=["linuxbridge", "openvswitch"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The matrix on each L2 agent: two Linux bridge hosts, then two Open vSwitch hosts."""
    with stack(tmp_path_factory.mktemp(f"trace-{request.param}"), hosts=2, mechanism=request.param) as s:
        wait_for("the L3 agent on h1", lambda: any(
            a["alive"] for a in s.api("GET", "/v2.0/agents", agent_type="L3 agent")["agents"]))
        yield s


def group(s: Stack, name: str, rules: list[dict[str, Any]]) -> str:
    sg = s.api("POST", "/v2.0/security-groups", {"security_group": {"name": name}})["security_group"]
    for rule in rules:
        s.api("POST", "/v2.0/security-group-rules", {"security_group_rule": {
            "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv4",
            "remote_ip_prefix": "0.0.0.0/0", **rule}})
    return str(sg["id"])


@pytest.fixture(scope="module")
def world(lab: Stack) -> dict[str, Any]:
    s = lab
    ext = s.api("POST", "/v2.0/networks", {"network": {
        "name": "trace-ext", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "provider"}})["network"]
    subnet(s, ext["id"], "192.168.100.0/24", gateway_ip=OUTSIDE,
           allocation_pools=[{"start": "192.168.100.10", "end": "192.168.100.90"}])
    net_a, sub_a = private(s, "trace-a", "10.50.0.0/24")
    net_b, sub_b = private(s, "trace-b", "10.51.0.0/24")
    r = s.api("POST", "/v2.0/routers", {"router": {"name": "trace-r",
                                                   "external_gateway_info": {"network_id": ext["id"]}}})["router"]
    for sub in (sub_a, sub_b):
        s.api("PUT", f"/v2.0/routers/{r['id']}/add_router_interface", {"subnet_id": sub["id"]})
    open_ = group(s, "trace-open", [{"protocol": "icmp"}, {"protocol": "tcp", "port_range_min": 22,
                                                          "port_range_max": 22},
                                   {"protocol": "udp", "port_range_min": 5353, "port_range_max": 5353}])
    closed = group(s, "trace-closed", [])
    loose = s.api("POST", "/v2.0/ports", {"port": {"network_id": net_a["id"], "name": "trace-loose",
                                                   "port_security_enabled": False, "security_groups": []}})["port"]
    vms = {"va": s.vm("va", "h1", net_a["id"], security_groups=[open_]),
           "vb": s.vm("vb", "h2", net_a["id"], security_groups=[open_]),
           "vc": s.vm("vc", "h2", net_b["id"], security_groups=[open_]),
           "vd": s.vm("vd", "h2", net_a["id"], security_groups=[closed]),
           "ve": s.vm("ve", "h1", net_a["id"], port=loose["id"])}
    floating = fip(s, ext["id"], vms["vb"]["port_id"])
    s.wait_converged()
    return {"vms": vms, "fip": floating}


def addr(world: dict[str, Any], vm: str) -> str:
    return str(world["vms"][vm]["ips"][0].split("/")[0])


def trace(s: Stack, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["trace", "--config-file", str(s.server.conf_path), "--json", "--probe",
                 "--lab-prefix", s.lab.prefix, "--lab-state-dir", str(s.lab.state_dir), *argv])
    return code, json.loads(capsys.readouterr().out)


CASES = [  # (id, argv builder, delivered by the trace, the step it is dropped at)
    ("same-network-icmp", lambda w: ["--from", w["vms"]["va"]["port_id"], "--to", addr(w, "vb")], True, None),
    ("same-network-tcp", lambda w: ["--from", w["vms"]["va"]["port_id"], "--to", f"{addr(w, 'vb')}:22",
                                    "--protocol", "tcp"], True, None),
    ("same-network-udp", lambda w: ["--from", w["vms"]["va"]["port_id"], "--to", f"{addr(w, 'vb')}:5353",
                                    "--protocol", "udp"], True, None),
    ("across-a-router", lambda w: ["--from", w["vms"]["va"]["port_id"], "--to", addr(w, "vc")], True, None),
    ("outside-snat", lambda w: ["--from", w["vms"]["vc"]["port_id"], "--to", OUTSIDE], True, None),
    ("floating-ip-inbound", lambda w: ["--from-external", OUTSIDE, "--to", w["fip"]], True, None),
    ("blocked-by-sg", lambda w: ["--from", w["vms"]["va"]["port_id"], "--to", addr(w, "vd")], False, "ingress"),
    ("no-rule-for-port", lambda w: ["--from", w["vms"]["va"]["port_id"], "--to", f"{addr(w, 'vb')}:80",
                                    "--protocol", "tcp"], False, "ingress"),
    ("spoofed-source", lambda w: ["--from", w["vms"]["va"]["port_id"], "--to", addr(w, "vb"),
                                  "--source", "10.50.0.200"], False, "port-security"),
    ("port-security-off", lambda w: ["--from", w["vms"]["ve"]["port_id"], "--to", addr(w, "va"),
                                     "--source", "10.50.0.201"], True, None),
    # Across Linux bridge hosts the reply to the foreign address is lost: l2population's ARP
    # answers know no such port. OVS's ARP responder floods a miss, so there it gets back
    # (the expectation is per agent: test_trace_equals_probe).
    ("port-security-off-across-hosts", lambda w: ["--from", w["vms"]["ve"]["port_id"], "--to", addr(w, "vb"),
                                                  "--source", "10.50.0.202"], False, "reply"),
]
DELIVERED_ON_OVS = {"port-security-off-across-hosts"}


@pytest.mark.parametrize(("case", "argv", "delivered", "dropped_at"), CASES, ids=[c[0] for c in CASES])
def test_trace_equals_probe(lab: Stack, world: dict[str, Any], capsys: pytest.CaptureFixture[str],
                            case: str, argv: Any, delivered: bool, dropped_at: str | None) -> None:
    if lab.mechanism("h1") == "openvswitch" and case in DELIVERED_ON_OVS:
        delivered, dropped_at = True, None
    code, report = trace(lab, capsys, *argv(world))
    assert report["delivered"] is delivered, report["hops"]
    if dropped_at is not None:
        assert report["hops"][-1]["step"] == dropped_at, report["hops"]
    probe = report["probe"]
    assert probe["probed"] is True, probe
    assert probe["matched"] is True and probe["delivered"] is delivered, (probe, report["hops"])
    assert code == (0 if delivered else 1)


def test_lab_up_and_the_agents_first_sync_say_what_they_do(lab: Stack, world: dict[str, Any],
                                                           caplog: pytest.LogCaptureFixture,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 14, item 5: progress lines, not silence (`kaon lab up` again completes the same lab)."""
    with caplog.at_level("INFO", logger="kaon.lab"):
        code = main(["lab", "up", "--hosts", "2", "--prefix", lab.lab.prefix, "--state-dir",
                     str(lab.lab.state_dir), "--config-file", str(lab.server.conf_path),
                     "--os-network-url", lab.server.url, "--mechanism", lab.mechanism("h1")])
    capsys.readouterr()
    said = [r.getMessage() for r in caplog.records if r.name == "kaon.lab"]
    assert code == 0
    assert f"lab {lab.lab.prefix}: underlay and provider bridges" in said
    assert any(m.startswith(f"lab {lab.lab.prefix}: host h2 (namespace ") for m in said)
    assert any(m.startswith(f"lab {lab.lab.prefix}: waiting for the agents of h1, h2") for m in said)
    log = (lab.lab.directory / "h1.log").read_text()
    assert "first sync: intent generation" in log and "first sync: l2 applied in" in log
