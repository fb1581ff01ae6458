"""``kaon doctor`` on Open vSwitch hosts (``kaon lab up --mechanism openvswitch``): the agents'
VXLAN probes travel through br-tun's tunnel ports (kaon.agent.ovs_probe), so a firewall between two
hosts that drops udp/4789 is named, both ends, with the fix; and it clears when the rule goes.

On an OVS host the userspace datapath takes udp/4789 before the host's netfilter sees it, so the
"firewall" is where a real one would be: between the hosts, in the underlay fabric's namespace (an
nftables bridge-family rule on the lab's underlay bridge), dropping h2 → h3 only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from kaon.config import load_config
from kaon.dataplane import nft
from kaon.dataplane import vxlan_probe as vp
from kaon.dataplane.openflow import OpenFlow
from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.db.agent_tables import agents
from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = [pytest.mark.needs_root]

HOSTS = ("h1", "h2", "h3")
OVS_AGENT = "Open vSwitch agent"


@pytest.fixture(scope="module")
def ovs3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("doctor-ovs"), hosts=3, mechanism="openvswitch") as s:
        yield s


def doctor_json(s: Stack) -> dict[str, Any]:
    res = subprocess.run([sys.executable, "-m", "kaon", "doctor", "--json", "--config-file", str(s.server.conf_path)],
                         capture_output=True, text=True, timeout=60)
    return dict(json.loads(res.stdout))


def stored_health(s: Stack, key: str) -> dict[str, Any]:
    """host -> ``health[key]`` of its Open vSwitch agent, as the server stored it."""
    cfg = load_config([str(s.server.conf_path)])
    engine = create_engine(cfg.database.connection)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(agents.c.host, agents.c.health).where(agents.c.agent_type == OVS_AGENT)).all()
    finally:
        engine.dispose()
    return {r.host: (r.health or {}).get(key) for r in rows}


def lines(s: Stack, check: str) -> list[str]:
    report = doctor_json(s)
    assert not any(x["check"] == check for x in report["not_checked"]), report
    return sorted(f"{f['host']}: {f['subject']}: {f['evidence']}" for f in report["findings"] if f["check"] == check)


def probe_flows(s: Stack, host: str) -> list[str]:
    d = OvsDaemons(s.lab.state()["hosts"][host]["ovs"]["rundir"])  # type: ignore[index]
    return sorted(f.add_line() for f in OpenFlow(d.mgmt, d.env()).dump("br-tun") if f.cookie == vp.PROBE_COOKIE)


def test_vxlan_blocked_between_two_ovs_hosts_is_named_and_clears(ovs3: Stack) -> None:
    net = ovs3.network("probed", "10.31.0.0/24")
    for host in HOSTS:  # a port on every host: each is the others' l2population peer
        ovs3.vm(f"o{host}", host, net["id"])
    ovs3.wait_converged()
    peers = {"h1": {"10.99.0.2": True, "10.99.0.3": True}, "h2": {"10.99.0.1": True, "10.99.0.3": True},
             "h3": {"10.99.0.1": True, "10.99.0.2": True}}
    wait_for("every tunnel answered", lambda: stored_health(ovs3, "tunnels") == peers, timeout=30, interval=0.5)
    assert lines(ovs3, "tunnels") == [] and "tunnels" in doctor_json(ovs3)["passed"]
    # The probe rides br-tun: one flow in from the tunnels, one out per peer's tunnel port, its own cookie.
    flows = probe_flows(ovs3, "h1")
    assert len(flows) == 3 and all("vxlan-0a63000" in f for f in flows if "in_port=kprobe-vx" in f), flows

    fabric = ovs3.lab.names.underlay
    table = f"{ovs3.lab.prefix.rstrip('-')}probe"
    nft.run(fabric, f"add table bridge {table}\n"
                    f"add chain bridge {table} fabric {{ type filter hook forward priority -300; }}\n"
                    f"add rule bridge {table} fabric ip saddr 10.99.0.2 ip daddr 10.99.0.3 udp dport 4789 drop\n")
    try:
        want = ["h2: VXLAN to 10.99.0.3 (h3): gets no answer on udp/4789, though h2 reports generation",
                "h3: VXLAN to 10.99.0.2 (h2): gets no answer on udp/4789, though h3 reports generation"]

        def both_named() -> list[str] | None:
            got = lines(ovs3, "tunnels")
            return got if len(got) == 2 and all(g.startswith(w) for g, w in zip(got, want, strict=True)) else None

        print("\n".join(wait_for("both ends of the blocked tunnel named", both_named, timeout=30, interval=0.5)))
        line = next(f for f in doctor_json(ovs3)["findings"] if f["check"] == "tunnels" and f["host"] == "h2")
        assert line["fix"] == ("open udp/4789 between the hosts' local_ip addresses (10.99.0.2 on h2, "
                               "10.99.0.3 on h3) in both directions")
        # h1 is not part of it: both its tunnels still answer.
        assert stored_health(ovs3, "tunnels")["h1"] == peers["h1"]
    finally:
        nft.run(fabric, f"delete table bridge {table}")
    wait_for("the tunnel answered again", lambda: lines(ovs3, "tunnels") == [], timeout=30, interval=0.5)


def test_an_underlay_link_below_the_networks_mtu_names_the_pairs_and_clears(ovs3: Stack) -> None:
    """h3's link into the fabric lowered to 1400 bytes: small probes pass, the 1500-byte ones of a
    1450-MTU VXLAN network do not; the pairs through that link are named (both ends), h1↔h2 is not."""
    net = ovs3.network("mtu", "10.32.0.0/24")
    assert net["mtu"] == 1450
    for host in HOSTS:
        ovs3.vm(f"m{host}", host, net["id"])
    ovs3.wait_converged()
    wait_for("every path carries 1450", lambda: all(
        v and all(p == {"mtu": 1450, "answered": True} for p in v.values()) and len(v) == 2
        for v in stored_health(ovs3, "tunnel_mtu").values()), timeout=30, interval=0.5)
    assert lines(ovs3, "tunnel_mtu") == []
    fabric = ovs3.lab.names.underlay
    subprocess.run(["ip", "-n", fabric, "link", "set", "ul-h3", "mtu", "1400"], check=True)
    try:
        want = [f"{a}: VXLAN to 10.99.0.{b[1]} ({b}): small probes are answered but frames of the networks' MTU "
                "1450 (1500-byte packets on udp/4789) are not"
                for a, b in (("h1", "h3"), ("h2", "h3"), ("h3", "h1"), ("h3", "h2"))]

        def pairs_named() -> list[str] | None:
            got = lines(ovs3, "tunnel_mtu")
            return got if len(got) == 4 and all(g.startswith(w) for g, w in zip(got, want, strict=True)) else None

        print("\n".join(wait_for("the pairs through h3's link named", pairs_named, timeout=30, interval=0.5)))
        for _ in range(10):  # udp/4789 itself passes: not a firewall (and the small probes never flap)
            assert lines(ovs3, "tunnels") == [] and all(all(v.values()) for v in stored_health(ovs3, "tunnels").values())
            time.sleep(0.5)
        line = next(f for f in doctor_json(ovs3)["findings"] if f["check"] == "tunnel_mtu" and f["host"] == "h1")
        assert line["fix"].startswith("raise the MTU of every link between h1 and h3 (the hosts' local_ip devices, "
                                      "switch ports, and bridges between them) to at least 1500")
    finally:
        subprocess.run(["ip", "-n", fabric, "link", "set", "ul-h3", "mtu", "1500"], check=True)
    wait_for("the paths carry 1450 again", lambda: lines(ovs3, "tunnel_mtu") == [], timeout=30, interval=0.5)


def test_a_vm_tap_on_br_int_with_another_mtu_is_named_until_set_back(ovs3: Stack) -> None:
    """The Open vSwitch agent reports the MTU of the VM devices it wires, as the Linux bridge agent does."""
    net = ovs3.network("tap-mtu", "10.33.0.0/24")
    vm = ovs3.vm("tm1", "h2", net["id"])
    ovs3.wait_converged()
    mtu = int(net["mtu"])
    wait_for("the OVS agents report device MTUs", lambda: all(
        isinstance(v, list) for v in stored_health(ovs3, "mtu").values()), timeout=20, interval=0.5)
    # A report may still carry the tap as it was plugged, before the lab set the network's MTU on it
    # (seen once in CI: "MTU 1500"): the next report (every second here) has it as it is.
    wait_for("no tap named before the change", lambda: lines(ovs3, "mtu") == [], timeout=20, interval=0.5)
    tap = vm["tap"]
    ovs3.host("h2", "ip", "link", "set", tap, "mtu", str(mtu + 50))
    try:
        want = [f"h2: port {vm['port_id']} device {tap}: MTU {mtu + 50}, its network {net['id']} has MTU {mtu}: "
                f"frames over {mtu} bytes leave it and are dropped on the way"]
        wait_for("the tap's MTU named", lambda: lines(ovs3, "mtu") == want, timeout=20, interval=0.5)
    finally:
        ovs3.host("h2", "ip", "link", "set", tap, "mtu", str(mtu))
    wait_for("the finding gone", lambda: lines(ovs3, "mtu") == [], timeout=20, interval=0.5)


def test_ovsdb_server_stopped_under_a_running_agent_is_named_and_it_recovers(ovs3: Stack) -> None:
    """h2's ovsdb-server stopped (by its pid): the agent says so in its next state report, the doctor
    (CLI and GET /v2.0/doctor) names it with the fix; started again, the agent reconnects by itself and
    wires a new VM."""
    rec = ovs3.lab.state()["hosts"]["h2"]  # type: ignore[index]
    daemons = OvsDaemons(rec["ovs"]["rundir"], netns=ovs3.lab.host_namespace("h2"))
    wait_for("h2 reports its OVSDB connected", lambda: (stored_health(ovs3, "ovsdb").get("h2") or {}).get(
        "connected") is True, timeout=20, interval=0.5)
    assert lines(ovs3, "ovsdb_lost") == []
    daemons.stop_daemon("ovsdb-server")
    try:
        want = [f"h2: ovsdb-server at {daemons.db_remote}: the Open vSwitch agent has lost its connection: it "
                "applies nothing (no port is wired, no flow changes) until ovsdb-server answers again"]
        wait_for("the lost OVSDB named", lambda: lines(ovs3, "ovsdb_lost") == want, timeout=20, interval=0.5)
        api = ovs3.api("GET", "/v2.0/doctor")["doctor"]
        found = [f for f in api["findings"] if f["check"] == "ovsdb_lost"]
        assert [f["host"] for f in found] == ["h2"] and found[0]["fix"] == (
            "start ovsdb-server on h2 (systemctl start openvswitch-switch, or ovs-ctl start); the agent reconnects "
            "and catches up by itself")
    finally:
        daemons.start()  # ovsdb-server only: ovs-vswitchd is still running and reconnects to it
    wait_for("the finding gone", lambda: lines(ovs3, "ovsdb_lost") == [], timeout=30, interval=0.5)
    net = ovs3.network("after-ovsdb", "10.34.0.0/24")
    vm = ovs3.vm("back1", "h2", net["id"])
    ovs3.wait_active(vm["port_id"], timeout=40)


def host_doctor(s: Stack, host: str) -> list[str]:
    """``kaon doctor`` on a host: the server's file and the host's openvswitch_agent.ini, as the agent reads them."""
    res = subprocess.run([sys.executable, "-m", "kaon", "doctor", "--json", "--config-file", str(s.server.conf_path),
                          "--config-file", str(s.lab.directory / f"{host}.ini")], capture_output=True, text=True,
                         timeout=60)
    report = json.loads(res.stdout)
    return sorted(f"{f['check']}: {f['subject']}: {f['evidence']} — {f['fix']}" for f in report["findings"]
                  if f["check"] in ("ovs_bridges", "ovsdb", "local_ip"))


def test_br_ex_secure_without_flows_while_the_agent_is_down_is_named(ovs3: Stack) -> None:
    """Seed 001's trap: the agent down and br-ex's flows gone (ovs-vswitchd restarted meanwhile, here
    del-flows): br-ex is fail_mode secure and drops everything. The host's doctor names it; the agent
    started again puts its flows back and the finding goes."""
    assert host_doctor(ovs3, "h3") == []
    d = OvsDaemons(ovs3.lab.state()["hosts"]["h3"]["ovs"]["rundir"])  # type: ignore[index]
    assert d.pid("ovs-vswitchd")  # it runs: only its flows on br-ex go
    ovs3.lab.stop_agents(["h3"])
    try:
        subprocess.run(["ovs-ofctl", "del-flows", d.mgmt("br-ex")], check=True, env=d.env())
        assert host_doctor(ovs3, "h3") == [
            "ovs_bridges: OVS bridge br-ex: fail_mode = secure and no flows: it drops every packet — start the OVS "
            "agent on this host, or ovs-vsctl del-fail-mode br-ex while it is down"]
    finally:
        ovs3.lab.start_agents()
    wait_for("the agent's flows back on br-ex", lambda: host_doctor(ovs3, "h3") == [], timeout=30, interval=0.5)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("doctor-mixed"), hosts=2,
               mechanism={"h1": "linuxbridge", "h2": "openvswitch"}) as s:
        yield s


def test_a_linux_bridge_host_and_an_ovs_host_probe_each_other(mixed: Stack) -> None:
    """The frames are the same on both agents: the kernel device of h1 (Linux bridge) and br-tun's
    probe port of h2 (Open vSwitch) answer each other, small and at the network's MTU."""
    net = mixed.network("mixed-probe", "10.35.0.0/24")
    for host in ("h1", "h2"):
        mixed.vm(f"x{host}", host, net["id"])
    mixed.wait_converged()

    def health() -> dict[str, Any]:
        cfg = load_config([str(mixed.server.conf_path)])
        engine = create_engine(cfg.database.connection)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(agents.c.host, agents.c.health).where(
                    agents.c.agent_type.in_(["Linux bridge agent", OVS_AGENT]))).all()
        finally:
            engine.dispose()
        return {r.host: {k: (r.health or {}).get(k) for k in ("tunnels", "tunnel_mtu")} for r in rows}

    want = {"h1": {"tunnels": {"10.99.0.2": True}, "tunnel_mtu": {"10.99.0.2": {"mtu": 1450, "answered": True}}},
            "h2": {"tunnels": {"10.99.0.1": True}, "tunnel_mtu": {"10.99.0.1": {"mtu": 1450, "answered": True}}}}
    wait_for("both ends answered", lambda: health() == want, timeout=30, interval=0.5)
    assert lines(mixed, "tunnels") == [] and lines(mixed, "tunnel_mtu") == []
