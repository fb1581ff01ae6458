"""Kill -9 an agent in the middle of plugging 300 taps and start it again:
it converges, duplicates nothing, sweeps the stale objects of its own that
were planted for it, leaves everything else alone — and VM traffic through
ports that did not change keeps flowing the whole time.

Run on Linux bridge hosts and on Open vSwitch hosts (issue 11). What is "its
own" differs: on Linux bridge, devices with kaon's prefixes *and* its alias;
on Open vSwitch, flows with kaon's cookie and bridges/ports whose
external_ids carry kaon's owner key (Neutron's and Felix's rules). The taps
join br-int as os-vif plugs them (``external_ids:iface-id``), in one OVSDB
transaction, as Nova would for 300 VMs at once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaon.agent.config import OWNER_ALIAS
from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.dataplane.ovs_model import KAON_COOKIE, OWNER_KEY, OWNER_VALUE
from tests.fullstack.stack import LB, OVS, Stack, stack, wait_for

pytestmark = pytest.mark.needs_root

PORTS = 300
FOREIGN_COOKIE = 0x5EED


@pytest.fixture(params=[LB, OVS])
def two(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    with stack(tmp_path, hosts=2, mechanism=request.param) as s:
        yield s


def links(s: Stack, host: str) -> dict[str, str]:
    return {m.group(1): line for line in s.host(host, "ip", "-o", "link", "show").splitlines()
            if (m := re.match(r"\d+: ([^:@]+)[@:]", line))}


def ofctl(s: Stack, host: str, *args: str) -> str:
    """``ovs-ofctl`` against ``bridge``'s management socket of ``host``'s private OVS (args name the bridge)."""
    d = OvsDaemons(s.lab.state()["hosts"][host]["ovs"]["rundir"])  # type: ignore[index]
    args = tuple(d.mgmt(a[len("bridge:"):]) if a.startswith("bridge:") else a for a in args)
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", *args], env=d.env(), capture_output=True, text=True,
                          check=True).stdout


# Flows that match no frame of the test (a MAC nobody has): what they do does not matter, whose they are does.
STALE_FLOW = "table=0,priority=3,dl_src=02:00:00:00:de:ad,actions=drop"
FOREIGN_FLOW = "table=0,priority=3,dl_src=02:00:00:00:be:ef,actions=drop"


def plant_ovs(s: Stack, host: str) -> None:
    owned = f"external_ids:{OWNER_KEY}={OWNER_VALUE}"
    s.vsctl(host,
            # The agent's own, left over: a bridge and a br-int port marked kaon-owned, a flow with its cookie.
            "--", "add-br", "br-stale", "--", "set", "Bridge", "br-stale", "datapath_type=netdev", owned,
            "--", "add-port", "br-int", "kaon-stale0", "--", "set", "Interface", "kaon-stale0", "type=internal",
            "--", "set", "Port", "kaon-stale0", owned,
            # Somebody else's: a bridge and a br-int port without the mark.
            "--", "add-br", "br-mine", "--", "set", "Bridge", "br-mine", "datapath_type=netdev",
            "--", "add-port", "br-int", "foreign0", "--", "set", "Interface", "foreign0", "type=internal")
    ofctl(s, host, "add-flow", "bridge:br-int", f"cookie={KAON_COOKIE:#x},{STALE_FLOW}")
    ofctl(s, host, "add-flow", "bridge:br-int", f"cookie={FOREIGN_COOKIE:#x},{FOREIGN_FLOW}")


def planted_flows(s: Stack, host: str) -> set[str]:
    dump = ofctl(s, host, "--no-stats", "dump-flows", "bridge:br-int")
    return {name for name, mac in (("stale", "02:00:00:00:de:ad"), ("foreign", "02:00:00:00:be:ef"))
            if f"dl_src={mac}" in dump}


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


def make_taps(s: Stack, host: str, ports: list[dict[str, Any]], sink: str) -> None:
    """One veth per port, its tap end in ``host``'s namespace (up), the other in ``sink``."""
    batch = "".join(f"link add tap{p['id'][:11]} type veth peer name s{i} netns {sink}\n"
                    f"link set tap{p['id'][:11]} up\n" for i, p in enumerate(ports))
    subprocess.run(["ip", "-n", s.lab.host_namespace(host), "-batch", "-"], input=batch, text=True, check=True)


def plug_on_br_int(s: Stack, host: str, ports: list[dict[str, Any]]) -> None:
    """The taps join br-int in one OVSDB transaction, as os-vif plugs them (Neutron's external ids)."""
    args: list[str] = []
    for p in ports:
        tap = f"tap{p['id'][:11]}"
        args += ["--", "add-port", "br-int", tap, "--", "set", "Interface", tap,
                 f"external_ids:iface-id={p['id']}", f"external_ids:attached-mac={p['mac_address']}",
                 "external_ids:iface-status=active", f"external_ids:vm-uuid={p['device_id']}"]
    s.vsctl(host, *args)


def lost(out: str) -> dict[int, float]:
    """The sequence numbers ``ping -D -c N`` sent that got no reply -> the latest time (epoch) each can
    have been sent: when the next answered one was (ping sends in order)."""
    m = re.search(r"(\d+) packets transmitted", out)
    assert m, out
    sent_at = {int(seq): float(ts) - float(rtt) / 1000 for ts, seq, rtt in
               re.findall(r"^\[([\d.]+)\] .*icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms", out, re.M)}
    total = int(m.group(1))
    return {n: min((t for k, t in sent_at.items() if k > n), default=float("inf"))
            for n in range(1, total + 1) if n not in sent_at}


def at_work(s: Stack, ports: list[dict[str, Any]]) -> bool:
    """True once the OVS agent has begun on the new taps: its flow bundle (table 0 names each tap) is in.

    Its OVSDB transaction (the taps' tags) and the ACTIVE report come after: killed now, it dies
    half-way through the apply. Only table 0 is read: a dump of all br-int is slower than the apply."""
    taps = {f"tap{p['id'][:11]}" for p in ports}
    flows = ofctl(s, "h1", "--names", "--no-stats", "dump-flows", "bridge:br-int", "table=0")
    return any(t in flows for t in taps)  # as in_port=tap… or in_port="tap…" (a name with '-' is quoted)


def h1_ports(s: Stack) -> list[dict[str, Any]]:
    return list(s.api("GET", "/v2.0/ports", device_owner="compute:nova", **{"binding:host_id": "h1"})["ports"])


def test_kill_9_mid_apply_then_restart(two: Stack) -> None:
    net = two.network("busy", "10.20.0.0/22")
    a = two.vm("a", "h1", net["id"], ip_address="10.20.0.11")
    two.vm("b", "h2", net["id"], ip_address="10.20.0.12")
    ovs = two.mechanism("h1") == OVS
    if ovs:
        plant_ovs(two, "h1")
    else:
        plant(two, "h1")
    sink = f"{two.lab.prefix}sink"
    subprocess.run(["ip", "netns", "add", sink], check=True)
    pinger = None
    try:
        body = {"ports": [{"network_id": net["id"], "binding:host_id": "h1", "device_owner": "compute:nova",
                           "device_id": f"vm-{i}"} for i in range(PORTS)]}
        ports = two.api("POST", "/v2.0/ports", body)["ports"]
        if ovs:
            # On OVS a tap is plugged when it joins br-int, not when it appears; the 300 veths are made
            # before the pings start because a burst of 300 new links costs OVS's userspace datapath
            # (ovs-vswitchd's main thread forwards for veth ports and reads every link event) the odd
            # ping on this machine, with the agent SIGSTOPped as well -- nothing kaon's agent does.
            make_taps(two, "h1", ports, sink)
        # Traffic through ports that will not change, for the whole test (~12 s).
        pinger = subprocess.Popen(["ip", "netns", "exec", two.lab.vm("a")["namespace"], "ping", "-n",
                                   "-D", "-i", "0.05", "-c", "240", "10.20.0.12"],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if ovs:
            plug_on_br_int(two, "h1", ports)
            # Kill in the middle: once the agent has begun on the new taps (their flows or tags are in).
            wait_for("the agent at work on the new taps", lambda: at_work(two, ports), timeout=15, interval=0.02)
        else:
            # The watcher woke the agent while the taps appeared: it is plugging them now.
            make_taps(two, "h1", ports, sink)
        agent_pid = int(two.lab.state()["hosts"]["h1"]["agent"]["pid"])  # type: ignore[index]
        killed_at = time.time()
        os.kill(agent_pid, signal.SIGKILL)
        active_at_kill = sum(p["status"] == "ACTIVE" for p in h1_ports(two))
        tagged_at_kill = sum(tag not in (None, 4095) for name, tag in two.ovs_ports("h1").items()
                             if name.startswith("tap")) if ovs else None
        wait_for("the killed agent gone", lambda: not Path(f"/proc/{agent_pid}").exists() or
                 Path(f"/proc/{agent_pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z", timeout=10)
        two.lab.start_agents()
        wait_for("all ports ACTIVE", lambda: all(p["status"] == "ACTIVE" for p in h1_ports(two)), timeout=30)
        two.wait_converged()
        vni = two.api("GET", "/v2.0/networks/" + net["id"])["network"]["provider:segmentation_id"]
        if ovs:
            check_ovs(two, ports, a, vni)
        else:
            check_linuxbridge(two, net, ports, vni)
        out, _ = pinger.communicate(timeout=30)
        # Neither mechanism's data plane depends on the agent process: OVS keeps its flows, the kernel its
        # bridges and fdb, so not one ping may be lost from the kill on.
        missing = lost(out)
        after_kill = [n for n, latest in missing.items() if latest >= killed_at]
        assert not after_kill, f"lost pings {after_kill} after the agent was killed: {out.splitlines()[-3:]}"
        before_kill = sorted(set(missing) - set(after_kill))
        if ovs:
            # Before the kill: ovs-vswitchd adding 300 veths to its userspace datapath at once (its main
            # thread forwards for veth ports) has been seen to drop one ping (seq 1, sent as the ports
            # joined) on this shared machine; with the agent SIGSTOPped through the veth burst and the
            # plug, pings were lost too. Allowed here, bounded; the kernel bridge drops none.
            assert len(before_kill) <= 3, f"lost pings {before_kill} while the ports were plugged: {out[-300:]}"
        else:
            assert not before_kill, f"lost pings {before_kill} while the taps were plugged: {out[-300:]}"
        sent = int(re.findall(r"(\d+) packets transmitted", out)[0])
        print(f"ports ACTIVE at the kill: {active_at_kill} of {PORTS + 1} (OVS taps tagged: {tagged_at_kill}); pings lost {len(missing)} of {sent}, "
              f"none after the kill")
    finally:
        if pinger is not None and pinger.poll() is None:
            pinger.kill()
        subprocess.run(["ip", "netns", "delete", sink], check=False)


def check_linuxbridge(two: Stack, net: dict[str, Any], ports: list[dict[str, Any]], vni: int) -> None:
    wait_for("stale own objects swept", lambda: not {"brqstale0000", "vxlan-1999"} & set(links(two, "h1")),
             timeout=15)
    seen = links(two, "h1")
    # Not ours: untouched.
    assert {"brqforeign00", "vxlan-1998", "br-mine"} <= set(seen)
    # No duplicates: one bridge and one VXLAN device for the network, every tap in it once.
    bridge = f"brq{net['id'][:11]}"
    assert [n for n in seen if n.startswith("brq") and n != "brqforeign00"] == [bridge]
    assert [n for n in seen if n.startswith("vxlan-") and n != "vxlan-1998"] == [f"vxlan-{vni}"]
    for p in ports:
        assert f"master {bridge}" in seen[f"tap{p['id'][:11]}"]
    fdb = two.host("h1", "bridge", "fdb", "show", "dev", f"vxlan-{vni}")
    lines = [line for line in fdb.splitlines() if " dst " in line]
    assert len(lines) == len(set(lines)) and any(line.startswith("00:00:00:00:00:00 dst 10.99.0.2")
                                                 for line in lines)


def check_ovs(two: Stack, ports: list[dict[str, Any]], a: dict[str, Any], vni: int) -> None:
    wait_for("stale own objects swept", lambda: "br-stale" not in two.vsctl("h1", "list-br").split()
             and "kaon-stale0" not in two.ovs_ports("h1") and "stale" not in planted_flows(two, "h1"), timeout=15)
    # Not ours: untouched.
    assert "br-mine" in two.vsctl("h1", "list-br").split()
    on_int = two.ovs_ports("h1")
    assert "foreign0" in on_int and planted_flows(two, "h1") == {"foreign"}
    # No duplicates: every tap on br-int once, all of them (and the VM that was there before) on the one
    # local VLAN of the network -- a restarted agent that re-allocated would leave two tags.
    taps = [f"tap{p['id'][:11]}" for p in ports] + [a["tap"]]
    listed = two.vsctl("h1", "list-ports", "br-int").split()
    assert len(listed) == len(set(listed)) and set(taps) <= set(listed)
    tags = {on_int[t] for t in taps}
    [tag] = tags
    assert tag is not None and 0 < tag < 4095, tags
    # One tunnel port to h2, the VNI mapped once and flooded to h2 once.
    assert [p for p in two.ovs_ports("h1", "br-tun") if p.startswith("vxlan-")] == ["vxlan-0a630002"]
    tun = two.ovs_flows("h1", "br-tun")
    assert len([f for f in tun if f.table == 4 and f.match == f"tun_id={vni:#x}"]) == 1
    [flood] = [f for f in tun if f.table == 22 and f.match == f"dl_vlan={tag}"]
    assert flood.actions.split(",").count("output:vxlan-0a630002") == 1, flood
    # Every port's flows on br-int the same shape: as many flows name each tap, none half-written.
    flows = [f.add_line() for f in two.ovs_flows("h1", "br-int")]
    per_tap = {t: sum(f"={t}," in line or line.endswith(f"={t}") for line in flows) for t in taps}
    assert len(set(per_tap.values())) == 1 and next(iter(per_tap.values())) > 0, per_tap
