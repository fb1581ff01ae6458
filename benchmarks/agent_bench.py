"""Agent benchmarks (issue 4): prints figures, asserts nothing.

* port bound → ACTIVE: the tap exists (as after Nova plugged the VM), then
  ``PUT binding:host_id``; time until ``GET`` shows ``status: ACTIVE``
  (median, p95), one host;
* cold resync: ``--ports`` (1,000) bound ports on one host; kill -9 the agent
  and start a new one; time to its first full sync as the agent logs it, (a)
  with the kernel state intact, (b) after the network's bridge was deleted,
  so that every tap must be plugged again (wall time until all are);
* the agent's RSS after that.

Timings move with the machine's load; beside them, counters that do not
(``--mechanism openvswitch``): per bound port, the CPU time of the agent
(with the ``ovs-ofctl`` children it reaped) and of ovs-vswitchd, and
ovs-vswitchd's own coverage counters: OpenFlow messages it sent
(``vconn_sent``: an ``ovs-ofctl`` run that resolves port names is sent the
port list and the 255 tables' features) and received
(``ofproto_recv_openflow``), and reconfigurations (``bridge_reconfigure``:
one per OVSDB transaction that changed something). They cover the whole
sample: the port's create, its plug, the bind and what follows it.

``--mechanism openvswitch``: the host runs the Open vSwitch agent on the lab's
private OVS (kaon.lab.ovs_host, userspace datapath); a tap is plugged as
os-vif plugs it (a port of br-int with ``external_ids:iface-id``), the agent's
firewall is ``--firewall`` mapped to ``openvswitch`` unless ``noop``, and the
second resync deletes every flow of br-int (``ovs-ofctl del-flows``) instead
of the network's bridge: the agent must put them all back.

Runs as root: a real ``kaon server`` (SQLite, local bus) and a ``kaon lab``
of one host whose agent is a real ``kaon agent`` process.

    sudo .venv/bin/python benchmarks/agent_bench.py [--samples 50] [--ports 1000] [--mechanism openvswitch]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaon.dataplane.ovs_daemons import OvsDaemons  # noqa: E402
from tests.fullstack.stack import Stack, stack, wait_for  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def make_taps(s: Stack, ports: list[dict[str, Any]], sink: str) -> None:
    ns = s.lab.host_namespace("h1")
    batch = "".join(f"link add tap{p['id'][:11]} type veth peer name x{p['id'][:8]} netns {sink}\n"
                    f"link set tap{p['id'][:11]} up\n" for p in ports)
    subprocess.run(["ip", "-n", ns, "-batch", "-"], input=batch, text=True, check=True)
    if s.mechanism("h1") == "openvswitch":
        # As os-vif plugs them: ports of br-int naming their Neutron port; one ovs-vsctl run per chunk.
        ovs = host_ovs(s)
        argv = ["ovs-vsctl", f"--db={ovs.db_remote}"]
        for p in ports:
            tap = f"tap{p['id'][:11]}"
            argv += ["--", "--may-exist", "add-port", "br-int", tap, "--", "set", "Interface", tap,
                     f"external_ids:iface-id={p['id']}", f"external_ids:attached-mac={p['mac_address']}",
                     "external_ids:iface-status=active", f"external_ids:vm-uuid={p['device_id']}"]
        subprocess.run(argv, env=ovs.env(), check=True, capture_output=True, timeout=120)


def host_ovs(s: Stack) -> OvsDaemons:
    return OvsDaemons(s.lab.state()["hosts"]["h1"]["ovs"]["rundir"])  # type: ignore[index]


def ovs_ofctl(s: Stack, *args: str) -> str:
    ovs = host_ovs(s)
    return subprocess.run(["ovs-ofctl", "-O", "OpenFlow14", *args[:-1], ovs.mgmt(args[-1])], env=ovs.env(),
                          check=True, capture_output=True, text=True).stdout


COVERAGE = ("vconn_sent", "ofproto_recv_openflow", "bridge_reconfigure")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and of the children it waited for (ovs-ofctl runs of the agent)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICK


def coverage(s: Stack) -> dict[str, int]:
    """ovs-vswitchd's coverage totals (it folds its threads' counts in about once a second)."""
    ovs = host_ovs(s)
    ctl = f"{ovs.rundir}/ovs-vswitchd.{ovs.pid('ovs-vswitchd')}.ctl"
    text = subprocess.run(["ovs-appctl", "-t", ctl, "coverage/show"], env=ovs.env(), check=True,
                          capture_output=True, text=True).stdout
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] in COVERAGE:
            out[parts[0]] = int(parts[-1])
    return out


def ovs_counters(s: Stack) -> dict[str, float]:
    time.sleep(1.5)  # let ovs-vswitchd fold its counters in
    vswitchd = host_ovs(s).pid("ovs-vswitchd")
    assert vswitchd is not None
    return {**coverage(s), "agent CPU ms": cpu_seconds(agent_pid(s)) * 1000,
            "ovs-vswitchd CPU ms": cpu_seconds(vswitchd) * 1000}


def bound_to_active(s: Stack, net: dict[str, Any], samples: int, sink: str) -> list[float]:
    ovs = s.mechanism("h1") == "openvswitch"
    before = ovs_counters(s) if ovs else {}
    times = []
    for _ in range(samples):
        port = s.api("POST", "/v2.0/ports", {"port": {"network_id": net["id"], "device_owner": "compute:nova",
                                                      "device_id": str(uuid.uuid4())}})["port"]
        make_taps(s, [port], sink)
        time.sleep(0.02)  # let the tap's link events settle: we time the binding, not the plugging
        t0 = time.perf_counter()
        s.api("PUT", f"/v2.0/ports/{port['id']}", {"port": {"binding:host_id": "h1"}})
        while s.port(port["id"])["status"] != "ACTIVE":
            time.sleep(0.001)
        times.append((time.perf_counter() - t0) * 1000)
    if ovs:
        after = ovs_counters(s)
        print("per sample (create, plug, bind): " + ", ".join(
            f"{k} {(after[k] - before[k]) / samples:.1f}" for k in before))
    return times


def agent_pid(s: Stack) -> int:
    return int(s.lab.state()["hosts"]["h1"]["agent"]["pid"])


def restart_agent(s: Stack, while_down: Any = None) -> tuple[float, float]:
    """Kill -9 and start again: (first full sync as logged, wall time to it)."""
    log = Path(s.lab.state()["hosts"]["h1"]["agent"]["log"])
    os.kill(agent_pid(s), signal.SIGKILL)
    time.sleep(0.2)
    if while_down is not None:
        while_down()
    offset = log.stat().st_size if log.exists() else 0
    t0 = time.perf_counter()
    s.lab.start_agents()
    pattern = re.compile(r"first full sync done in ([0-9.]+) s")

    def logged() -> float | None:
        text = log.read_text(errors="replace")[offset:] if log.exists() else ""
        m = pattern.search(text)
        return float(m.group(1)) if m else None

    sync = wait_for("first full sync", logged, timeout=120, interval=0.02)
    return sync, time.perf_counter() - t0


def diagnose(s: Stack) -> None:
    ports = s.api("GET", "/v2.0/ports", **{"binding:host_id": "h1"})["ports"]
    print("not ACTIVE:", sum(p["status"] != "ACTIVE" for p in ports), "of", len(ports))
    print(s.api("GET", "/v2.0/host-intents"))
    print(Path(s.lab.state()["hosts"]["h1"]["agent"]["log"]).read_text()[-4000:])
    spy = Path(sys.executable).with_name("py-spy")
    if spy.exists():
        print(subprocess.run([str(spy), "dump", "--pid", str(agent_pid(s))], capture_output=True, text=True).stdout)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--firewall", default="nftables", help="[securitygroup] firewall_driver (noop: L2 alone)")
    parser.add_argument("--no-dhcp", action="store_true", help="subnets without DHCP (no DHCP port, no dnsmasq)")
    parser.add_argument("--mechanism", choices=("linuxbridge", "openvswitch"), default="linuxbridge",
                        help="the host's L2 agent")
    args = parser.parse_args()
    ovs = args.mechanism == "openvswitch"
    firewall = "openvswitch" if ovs and args.firewall != "noop" else args.firewall
    if os.geteuid() != 0:
        print("agent_bench: needs root (namespaces, bridges)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kaon-agent-bench-") as tmp, stack(Path(tmp), hosts=1, extra_conf={
            "securitygroup": {"firewall_driver": firewall}}, mechanism=args.mechanism) as s:
        sink = f"{s.lab.prefix}sink"
        subprocess.run(["ip", "netns", "add", sink], check=True)
        try:
            # Separate networks: a Linux bridge takes at most 1,024 ports (BR_MAX_PORTS).
            dhcp = {"enable_dhcp": False} if args.no_dhcp else {}
            lat = bound_to_active(s, s.network("latency", "10.127.0.0/16", **dhcp), args.samples, sink)
            net = s.network("bench", "10.128.0.0/16", **dhcp)
            print(f"port bound -> ACTIVE, {len(lat)} samples: median {statistics.median(lat):.1f} ms, "
                  f"p95 {pct(lat, 0.95):.1f} ms, min {min(lat):.1f} ms (target: median <= 50 ms)")
            made: list[dict[str, Any]] = []
            t0 = time.perf_counter()
            while len(made) < args.ports:
                n = min(200, args.ports - len(made))
                body = {"ports": [{"network_id": net["id"], "binding:host_id": "h1", "device_owner": "compute:nova",
                                   "device_id": str(uuid.uuid4())} for _ in range(n)]}
                chunk = s.api("POST", "/v2.0/ports", body)["ports"]
                make_taps(s, chunk, sink)
                made.extend(chunk)
            try:
                wait_for("all ports ACTIVE", lambda: all(
                    p["status"] == "ACTIVE" for p in s.api("GET", "/v2.0/ports", **{"binding:host_id": "h1"})["ports"]),
                    timeout=120, interval=0.5)
            except AssertionError:
                diagnose(s)
                raise
            print(f"{args.ports} ports created, plugged and ACTIVE in {time.perf_counter() - t0:.1f} s")
            total = args.ports + args.samples
            rebuilt = args.ports
            sync, wall = restart_agent(s)
            print(f"cold resync, kernel intact, {total} ports: first full sync {sync:.2f} s "
                  f"(process start to sync {wall:.2f} s; target <= 5 s)")
            if ovs:
                before = len(s.ovs_flows("h1", "br-int"))
                sync, wall = restart_agent(s, lambda: ovs_ofctl(s, "del-flows", "br-int"))
                after = len(s.ovs_flows("h1", "br-int"))
                print(f"cold resync, br-int flows deleted ({before} of kaon's): first full sync {sync:.2f} s "
                      f"(process start to sync {wall:.2f} s; target <= 5 s); kaon's flows on br-int after: {after}")
            else:
                bridge = f"brq{net['id'][:11]}"
                sync, wall = restart_agent(s, lambda: subprocess.run(
                    ["ip", "-n", s.lab.host_namespace("h1"), "link", "del", bridge], check=True))
                print(f"cold resync, bridge deleted, {rebuilt} taps re-plugged: first full sync {sync:.2f} s "
                      f"(process start to sync {wall:.2f} s; target <= 5 s)")
                plugged = sum(line.split(": ")[1].startswith("tap") for line in
                              s.host("h1", "ip", "-o", "link", "show", "master", bridge).splitlines())
                print(f"taps in {bridge} after the resync: {plugged} of {rebuilt}")
            print(f"agent RSS after the resync: {rss_mib(agent_pid(s)):.1f} MiB")
        finally:
            subprocess.run(["ip", "netns", "delete", sink], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
