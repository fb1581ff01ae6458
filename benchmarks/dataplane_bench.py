"""Data-plane benchmarks (issue 5): kaon next to bare-kernel baselines; prints figures, asserts nothing.

In one run, side by side (iperf3 runs alternate between kaon and its baseline, so that the load
of a shared machine hits both alike, each after the machine settled: ``settle``), median Gbit/s of
``--runs`` runs of ``--seconds`` s:

1. VM to VM across VXLAN (VM on h1 -> VM on h2, static IPs);
2. VM to outside through SNAT (VM on h2 behind a router on h1 -> 192.168.100.1);
3. item 1 with 1,000 security-group rules on the receiving VM's port;

when kaon's agents enforce security groups, each of 1-3 is also run against the same hand-built
topology with a minimal stateful firewall written by hand (``Baseline.firewall``): what any
conntrack-based security group costs on a Linux bridge, as opposed to what kaon's ruleset costs;
and with the VMs' ports in *stateless* groups (``stateful: false``, the same rules plus what
replies need; their packets are untracked), next to the same topology with a minimal stateless
firewall written by hand (bridge family, no conntrack): targets, stateless kaon >= 95% of the
bare kernel, stateful kaon >= 97% of the hand-written stateful firewall; with ``--concurrent
ROUNDS`` also those two pairs (kaon stateful / hand-written stateful, kaon stateless / bare) with
both flows at the same time, ROUNDS times: a ratio per round that the machine's noise, hitting both
flows alike, barely moves (two runs one after another each move by +-3 % on a 2-vCPU VM);

and, kaon only: 4. the wall time of one busybox udhcpc run (discover -> bound) in a lab VM;
5. the time from ``PUT /v2.0/floatingips/{id}`` with ``port_id`` until the outside's ping
(every 10 ms, ``-W 0.1``) gets its first reply from the VM.

kaon: a real ``kaon server`` and a ``kaon lab`` of two hosts (tests/fullstack/stack.py).
Baseline: the same topology made by hand with ``ip`` and nftables in namespaces of a unique
prefix, as ../shared/reference/dataplane.md sections 1 and 2 (Linux bridge + VXLAN l2pop, VM
MTU 1450; router namespace with nft SNAT); like the lab, the outside hangs off a provider bridge
reached through h1's eth1. Everything goes by exact name or pid.

    sudo .venv/bin/python benchmarks/dataplane_bench.py [--seconds 3 --runs 3 --samples 5 --quiet 5 --concurrent 0]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kaon.dataplane import nft  # noqa: E402
from kaon.lab import dhcp_client  # noqa: E402
from tests.fullstack.stack import SERVER_CONF, Stack, stack, wait_for  # noqa: E402

PORT = 5201
OUTSIDE = "192.168.100.1"
VM1, VM2 = "10.0.0.11", "10.0.0.12"
QUOTAS = {**SERVER_CONF["quotas"], "quota_security_group": "-1", "quota_security_group_rule": "-1"}


def run(*cmd: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


# ---------------------------------------------------------------- baseline by hand
class Baseline:
    """dataplane.md §1 + §2 with the lab's addresses: ul, pn, h1, h2, vm1, vm2, r1, out."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.made: list[str] = []

    def ns(self, name: str) -> str:
        full = f"{self.prefix}{name}"
        self.made.append(full)  # recorded first: close() deletes it even if "add" fails half-way
        run("ip", "netns", "add", full)
        run("ip", "-n", full, "link", "set", "lo", "up")
        return full

    def veth(self, ns_a: str, a: str, ns_b: str, b: str, master: str | None = None, mtu: int = 1500) -> None:
        run("ip", "-n", ns_a, "link", "add", a, "mtu", str(mtu), "type", "veth", "peer", "name", b, "mtu",
            str(mtu), "netns", ns_b)
        run("ip", "-n", ns_a, "link", "set", a, *(("master", master) if master else ()), "up")

    def bridge(self, ns: str, name: str) -> None:
        run("ip", "-n", ns, "link", "add", name, "type", "bridge")
        run("ip", "-n", ns, "link", "set", name, "up")

    def build(self) -> None:
        ul, pn = self.ns("ul"), self.ns("pn")
        self.bridge(ul, "br-ul")
        self.bridge(pn, "br-pn")
        for h in (1, 2):
            host = self.ns(f"h{h}")
            self.veth(ul, f"ul-h{h}", host, "eth0", master="br-ul")
            run("ip", "-n", host, "addr", "add", f"10.20.0.{h}/24", "dev", "eth0")
            run("ip", "-n", host, "link", "set", "eth0", "up")
            self.bridge(host, "brq-net1")
            run("ip", "-n", host, "link", "add", "vxlan-1001", "type", "vxlan", "id", "1001", "dstport", "4789",
                "local", f"10.20.0.{h}", "dev", "eth0", "nolearning")
            run("ip", "-n", host, "link", "set", "vxlan-1001", "master", "brq-net1", "up")
            vm = self.ns(f"vm{h}")
            self.veth(host, f"tap-vm{h}", vm, "eth0", master="brq-net1", mtu=1450)
            run("ip", "-n", vm, "link", "set", "eth0", "address", f"fa:16:3e:00:01:0{h}", "up")
            run("ip", "-n", vm, "addr", "add", f"10.0.0.1{h}/24", "dev", "eth0")
            run("ip", "-n", vm, "route", "add", "default", "via", "10.0.0.1")
        self.router()
        for h, peer, macs in ((1, 2, ["00:00:00:00:00:00", "fa:16:3e:00:01:02"]),
                              (2, 1, ["00:00:00:00:00:00", "fa:16:3e:00:01:01", "fa:16:3e:00:0f:01"])):
            for mac in macs:  # l2pop: flood entry + one per remote port
                run("bridge", "-n", f"{self.prefix}h{h}", "fdb", "append", mac, "dev", "vxlan-1001", "dst",
                    f"10.20.0.{peer}")

    def router(self) -> None:
        h1, pn = f"{self.prefix}h1", f"{self.prefix}pn"
        self.bridge(h1, "brq-ext")
        self.veth(pn, "pn-h1", h1, "eth1", master="br-pn")
        run("ip", "-n", h1, "link", "set", "eth1", "master", "brq-ext", "up")
        out = self.ns("out")
        self.veth(pn, "pn-out", out, "eth0", master="br-pn")
        run("ip", "-n", out, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
        run("ip", "-n", out, "link", "set", "eth0", "up")
        r1 = self.ns("r1")
        run("ip", "netns", "exec", r1, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        self.veth(h1, "tap-qr-r1", r1, "qr-r1", master="brq-net1", mtu=1450)
        self.veth(h1, "tap-qg-r1", r1, "qg-r1", master="brq-ext")
        run("ip", "-n", r1, "link", "set", "qr-r1", "address", "fa:16:3e:00:0f:01", "up")
        run("ip", "-n", r1, "link", "set", "qg-r1", "up")
        run("ip", "-n", r1, "addr", "add", "10.0.0.1/24", "dev", "qr-r1")
        run("ip", "-n", r1, "addr", "add", "192.168.100.10/24", "dev", "qg-r1")
        run("ip", "-n", r1, "route", "add", "default", "via", OUTSIDE, "dev", "qg-r1")
        nft.run(r1, "table ip rnat {\n chain postrouting {\n"
                    "  type nat hook postrouting priority srcnat; policy accept;\n"
                    '  ip saddr 10.0.0.0/24 oifname "qg-r1" snat to 192.168.100.10\n }\n}\n')

    def firewall(self, kind: str | None) -> None:
        """A firewall written by hand in both host namespaces: "stateful", "stateless", or none.

        stateful: what any conntrack-based security group needs on a Linux
        bridge, and nothing more: br_netfilter hands bridged IPv4 to an inet
        ``forward`` chain; replies (``ct state established,related``) pass,
        ``invalid`` drops, new flows pass if they go to a VM port and match
        an allowed protocol (tcp, icmp: the benchmark group's rules), or come
        from one; the rest drops. No anti-spoofing, no zones, no sets.

        stateless: what any security group without conntrack needs, in the
        bridge family (no conntrack in the namespace): the host's VM port
        sends from its MAC and address only (and ARP), and receives IPv4 only
        if tcp or icmp (the rules; replies need them too); the rest of the
        port's IPv4 drops. No IPv6, DHCP or ND cases."""
        for host in ("h1", "h2"):
            ns = f"{self.prefix}{host}"
            script = "table inet handfw {}\ndelete table inet handfw\ntable bridge handsl {}\ndelete table bridge handsl\n"
            if kind == "stateless":
                n = host[1]
                tap, mac, ip = f"tap-vm{n}", f"fa:16:3e:00:01:0{n}", f"10.0.0.1{n}"
                script += (
                    "table bridge handsl {\n chain prerouting {\n"
                    "  type filter hook prerouting priority filter; policy accept;\n"
                    f'  iifname "{tap}" ether saddr {mac} ip saddr {ip} accept\n'
                    f'  iifname "{tap}" ether saddr {mac} ether type arp accept\n'
                    f'  iifname "{tap}" drop\n'
                    " }\n chain forward {\n"
                    "  type filter hook forward priority filter; policy accept;\n"
                    f'  oifname "{tap}" ether type ip meta l4proto {{ tcp, icmp }} accept\n'
                    f'  oifname "{tap}" ether type ip drop\n'
                    " }\n}\n")
            if kind == "stateful":
                script += (
                    "table inet handfw {\n chain forward {\n"
                    "  type filter hook forward priority 0; policy accept;\n"
                    "  ct state established,related accept\n  ct state invalid drop\n"
                    '  oifname "brq-net1" ip daddr { 10.0.0.11, 10.0.0.12 } meta l4proto { tcp, icmp } accept\n'
                    '  iifname "brq-net1" ip saddr { 10.0.0.11, 10.0.0.12 } accept\n'
                    '  iifname "brq-net1" ip daddr { 10.0.0.11, 10.0.0.12 } drop\n'
                    " }\n}\n")
            nft.run(ns, script)

    def close(self) -> None:
        for ns in reversed(self.made):
            run("ip", "netns", "delete", ns, check=False)


# ---------------------------------------------------------------- iperf3
def iperf_client(ns: str, address: str, seconds: int) -> float:
    """One run; Gbit/s received. Retries while the server is not listening yet."""
    for _ in range(50):
        r = run("ip", "netns", "exec", ns, "iperf3", "-c", address, "-p", str(PORT), "-t", str(seconds), "-J",
                check=False, timeout=seconds + 60)
        if (rate := received_gbit(r.stdout)) is not None:
            return rate
        time.sleep(0.2)
    raise RuntimeError(f"iperf3 from {ns} to {address}: {r.stdout[-500:]} {r.stderr[-500:]}")


def concurrent(flows: list[tuple[str, str]], seconds: int) -> list[float]:
    """iperf3 from each (client namespace, server address) at the same time; Gbit/s received each."""
    procs = [subprocess.Popen(["ip", "netns", "exec", client, "iperf3", "-c", address, "-p", str(PORT),
                               "-t", str(seconds), "-J"], stdout=subprocess.PIPE, text=True)
             for client, address in flows]
    rates = [received_gbit(proc.communicate(timeout=seconds + 60)[0]) for proc in procs]
    if None in rates:
        raise RuntimeError(f"iperf3 at once from {flows}: a client got no result")
    return [rate for rate in rates if rate is not None]


def received_gbit(report: str) -> float | None:
    """Gbit/s received, from ``iperf3 -J``'s report; None if the run did not get that far."""
    data = json.loads(report or "{}")
    if "end" in data and "sum_received" in data["end"]:
        return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9
    return None


def summary(ratios: list[float]) -> str:
    """Mean with a 95 % interval (normal approximation), the median, n."""
    mean = statistics.fmean(ratios)
    half = 1.96 * statistics.stdev(ratios) / math.sqrt(len(ratios)) if len(ratios) > 1 else math.inf
    return f"{mean:.3f} +- {half:.3f} (95 %), median {statistics.median(ratios):.3f}, n = {len(ratios)}"


def busy_fraction(window: float) -> float:
    """The share of all CPUs' time spent busy (not idle or iowait) over ``window`` seconds."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]
    total0, idle0 = sample()
    time.sleep(window)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def settle(limit: float, window: float = 0.5, busy: float = 0.2) -> float:
    """Wait (at most ``limit`` s) until the machine is quiet: a world switch of kaon's is an API
    call whose consequences (the agents' passes and status reports, conntrack clean-up, the
    server's writes) go on for a moment after the ports converged, while a hand-written world
    is one nft write. Measuring at once would charge that to kaon's data path."""
    t0 = time.monotonic()
    while busy_fraction(window) > busy and time.monotonic() < t0 + limit:
        pass
    return time.monotonic() - t0


def measure(paths: dict[str, tuple[str, str, str]], runs: int, seconds: int,
            before: dict[str, Any] | None = None, quiet: float = 0.0) -> dict[str, list[float]]:
    """paths: name -> (server ns, client ns, server address); runs alternate between the paths.
    ``before``: name -> a callable run before each of that path's runs (two names may share a
    topology and differ in what is set up on it); then up to ``quiet`` s for the machine to
    settle (every world alike)."""
    with iperf_servers(srv for srv, _, _ in paths.values()):
        results: dict[str, list[float]] = {name: [] for name in paths}
        waited: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(runs):
            for name, (_, client, address) in paths.items():
                if before and name in before:
                    before[name]()
                if quiet:
                    waited[name].append(settle(quiet))
                results[name].append(iperf_client(client, address, seconds))
        if quiet:
            print("  settled before each run (median s): " + ", ".join(
                f"{name} {statistics.median(v):.1f}" for name, v in waited.items()), flush=True)
        return results


@contextlib.contextmanager
def iperf_servers(namespaces: Iterable[str]) -> Iterator[None]:
    """An ``iperf3 -s`` in each namespace (once each) while the block runs, killed by pid after."""
    servers = [subprocess.Popen(["ip", "netns", "exec", ns, "iperf3", "-s", "-p", str(PORT)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for ns in dict.fromkeys(namespaces)]
    try:
        yield
    finally:
        for proc in servers:  # `ip netns exec` execs iperf3: this pid is the server's
            proc.kill()
            proc.wait()


# The pairs --concurrent measures: (kaon's world, the baseline's) and the target for it.
CONCURRENT = (("kaon", "baseline+fw", "kaon stateful / hand-written stateful", 0.97),
              ("kaon-stateless", "baseline", "kaon stateless / bare", 0.95))


def measure_concurrent(paths: dict[str, tuple[str, str, str]], before: dict[str, Any], rounds: int,
                       seconds: int, quiet: float) -> dict[str, list[float]]:
    """``--concurrent``: per pair of CONCURRENT, both worlds set up (kaon's and the baseline's are
    separate namespaces), then ``rounds`` times both flows at once, after the machine settled.
    Whatever else the machine does in that moment slows both alike: the ratio per round moves far
    less than that of two runs one after another. Pair label -> kaon/baseline per round."""
    out: dict[str, list[float]] = {}
    with iperf_servers(srv for srv, _, _ in paths.values()):
        for kaon_world, base_world, label, _ in CONCURRENT:
            before[kaon_world]()
            before[base_world]()
            flows = [(paths[w][1], paths[w][2]) for w in (kaon_world, base_world)]
            out[label] = []
            for _ in range(rounds):
                if quiet:
                    settle(quiet)
                k, b = concurrent(flows, seconds)
                out[label].append(k / b)
    return out


def report_concurrent(res: dict[str, list[float]], seconds: int) -> str:
    targets = {label: target for _, _, label, target in CONCURRENT}
    line = f"   concurrently (both flows at once, {seconds} s rounds): " + " | ".join(
        f"{label} {summary(ratios)} (target >= {targets[label]:.0%})" for label, ratios in res.items())
    print(line, flush=True)
    return line


def report(label: str, res: dict[str, list[float]], note: str = "") -> str:
    kaon, base = statistics.median(res["kaon"]), statistics.median(res["baseline"])
    runs = lambda v: " ".join(f"{x:.2f}" for x in v)  # noqa: E731
    line = (f"{label}: kaon {kaon:.2f} Gbit/s [{runs(res['kaon'])}] | baseline {base:.2f} Gbit/s "
            f"[{runs(res['baseline'])}] | kaon/baseline {kaon / base:.0%}")
    if "baseline+fw" in res:
        fw = statistics.median(res["baseline+fw"])
        # Also per round (kaon's run and the hand-written firewall's of the same round), which
        # cancels what drifts between rounds on a shared machine.
        paired = sorted(k / f for k, f in zip(res["kaon"], res["baseline+fw"], strict=True))
        line += (f" | baseline with a hand-written stateful firewall {fw:.2f} Gbit/s "
                 f"[{runs(res['baseline+fw'])}] ({fw / base:.0%} of baseline) | kaon/that {kaon / fw:.1%}"
                 f" (target >= 97%; per round: median {statistics.median(paired):.1%}, "
                 f"{paired[0]:.0%}-{paired[-1]:.0%})")
    if "kaon-stateless" in res:
        free = statistics.median(res["kaon-stateless"])
        line += (f" | kaon with stateless groups {free:.2f} Gbit/s [{runs(res['kaon-stateless'])}] "
                 f"| that/baseline {free / base:.1%} (target >= 95%)")
    if "baseline+slfw" in res:
        hand = statistics.median(res["baseline+slfw"])
        line += (f" | baseline with a hand-written stateless firewall {hand:.2f} Gbit/s "
                 f"[{runs(res['baseline+slfw'])}] ({hand / base:.0%} of baseline)")
        if "kaon-stateless" in res:
            line += f" | kaon stateless/that {statistics.median(res['kaon-stateless']) / hand:.0%}"
    line += note
    print(line, flush=True)
    return line


# ---------------------------------------------------------------- kaon side
def subnet(s: Stack, net_id: str, cidr: str, **attrs: Any) -> dict[str, Any]:
    body = {"network_id": net_id, "cidr": cidr, "ip_version": 4, **attrs}
    return s.api("POST", "/v2.0/subnets", {"subnet": body})["subnet"]


def security_group(s: Stack, name: str, rules: list[dict[str, Any]], stateful: bool = True) -> str:
    sg = s.api("POST", "/v2.0/security-groups", {"security_group": {"name": name,
                                                                    "stateful": stateful}})["security_group"]
    for i in range(0, len(rules), 250):
        chunk = [{"security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv4", **r}
                 for r in rules[i:i + 250]]
        s.api("POST", "/v2.0/security-group-rules", {"security_group_rules": chunk})
    return str(sg["id"])


def kaon_topology(s: Stack) -> dict[str, Any]:
    """Seed 001's shape: ext-net, private-net (DHCP on), router1; VMs a1 (h1), a2 (h2), d1 (h2, DHCP)."""
    for kind in ("L3 agent", "DHCP agent"):
        wait_for(kind, lambda k=kind: any(a["alive"] for a in s.api("GET", "/v2.0/agents", agent_type=k)["agents"]))
    ext = s.api("POST", "/v2.0/networks", {"network": {
        "name": "ext-net", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "provider"}})["network"]
    subnet(s, ext["id"], "192.168.100.0/24", enable_dhcp=False, gateway_ip=OUTSIDE,
           allocation_pools=[{"start": "192.168.100.10", "end": "192.168.100.90"}])
    net = s.api("POST", "/v2.0/networks", {"network": {"name": "private-net"}})["network"]
    sub = subnet(s, net["id"], "10.0.0.0/24", allocation_pools=[{"start": "10.0.0.100", "end": "10.0.0.200"}])
    router = s.api("POST", "/v2.0/routers", {"router": {"name": "router1",
                                                        "external_gateway_info": {"network_id": ext["id"]}}})["router"]
    s.api("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    group = security_group(s, "bench-open", OPEN)
    vms = {"a1": s.vm("a1", "h1", net["id"], ip_address=VM1, security_groups=["bench-open"]),
           "a2": s.vm("a2", "h2", net["id"], ip_address=VM2, security_groups=["bench-open"]),
           "d1": s.vm("d1", "h2", net["id"], dhcp=True, security_groups=["bench-open"])}
    wait_for("a1 pings a2", lambda: s.ping("a1", VM2), 30, interval=0.2)
    wait_for("a2 pings the outside", lambda: s.ping("a2", OUTSIDE), 30, interval=0.2)
    return {"ext": ext, "net": net, "router": router, "vms": vms, "open": group}


def nft_tables(ns: str) -> list[str]:
    if shutil.which("nft"):
        out = run("ip", "netns", "exec", ns, "nft", "list", "tables", check=False).stdout
    else:
        out = nft.run(ns, "list tables")
    return [line.split()[-1] for line in out.splitlines() if line.startswith("table ")]


def firewall_evidence(s: Stack) -> str | None:
    """Why we think the agents enforce security groups, or None."""
    def drivers(conf: Any) -> list[str]:
        if not isinstance(conf, dict):
            return []
        found = [str(v) for k, v in conf.items() if "firewall" in k.lower() and v not in (None, "", "noop")]
        return found + [d for v in conf.values() for d in drivers(v)]

    for agent in s.api("GET", "/v2.0/agents")["agents"]:
        found = drivers(agent.get("configurations"))
        if found and str(found[0]).lower() not in ("none", "false", "noop"):
            return f"agent on {agent['host']} reports firewall {found[0]}"
    for host in ("h1", "h2"):
        tables = [t for t in nft_tables(s.lab.host_namespace(host)) if "sg" in t or "firewall" in t or "fw" in t]
        if tables:
            return f"nft table {tables[0]} in {host}"
    return None


OPEN = [{"protocol": "tcp", "remote_ip_prefix": "0.0.0.0/0"}, {"protocol": "icmp", "remote_ip_prefix": "0.0.0.0/0"}]


def many_rules(count: int) -> list[dict[str, Any]]:
    """``count`` rules (tcp 20000.. from 10.0.0.0/8), then iperf3's port."""
    rules = [{"protocol": "tcp", "port_range_min": 20000 + i, "port_range_max": 20000 + i,
              "remote_ip_prefix": "10.0.0.0/8"} for i in range(count)]
    rules.append({"protocol": "tcp", "port_range_min": PORT, "port_range_max": PORT, "remote_ip_prefix": "0.0.0.0/0"})
    return rules


class Groups:
    """Which groups the benchmark VMs' ports are in; switching waits for the agents to converge."""

    def __init__(self, s: Stack, ports: dict[str, str]) -> None:
        self.s, self.ports = s, ports
        self.now: dict[str, list[str]] | None = None

    def use(self, groups: dict[str, list[str]]) -> float:
        if groups == self.now:
            return 0.0
        t0 = time.perf_counter()
        for vm, ids in groups.items():
            self.s.api("PUT", f"/v2.0/ports/{self.ports[vm]}", {"port": {"security_groups": ids}})
        self.s.wait_converged(timeout=60)
        self.now = groups
        return time.perf_counter() - t0


def dhcp_times(s: Stack, vm: str, samples: int) -> list[float]:
    ns, script = s.lab.vm(vm)["namespace"], dhcp_client.ensure_script(s.lab.directory)
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        dhcp_client.request(ns, script)  # the lab's guest DHCP path: udhcpc -q, discover -> bound
        times.append((time.perf_counter() - t0) * 1000)
    return times


def first_reply(ping: subprocess.Popen[str], t0: float) -> float:
    assert ping.stdout is not None
    for line in ping.stdout:
        if "bytes from" in line:
            return time.perf_counter() - t0
    raise RuntimeError("the outside never reached the floating IP")


def fip_times(s: Stack, ext_id: str, port_id: str, samples: int) -> list[float]:
    fip = s.api("POST", "/v2.0/floatingips", {"floatingip": {"floating_network_id": ext_id}})["floatingip"]
    out, address, times = s.lab.names.outside, fip["floating_ip_address"], []
    for _ in range(samples):
        s.wait_converged(timeout=30)
        run("ip", "-n", out, "neigh", "flush", "to", address, check=False)
        ping = subprocess.Popen(["ip", "netns", "exec", out, "ping", "-n", "-i", "0.01", "-W", "0.1", "-w", "20",
                                 address], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            time.sleep(0.05)  # the pinger runs (and fails) before the PUT
            t0 = time.perf_counter()
            s.api("PUT", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": port_id}})
            times.append(first_reply(ping, t0) * 1000)
        finally:
            ping.kill()
            ping.wait()
        s.api("PUT", f"/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
        wait_for("floating IP unreachable again", lambda: run(
            "ip", "netns", "exec", out, "ping", "-c", "1", "-W", "0.2", address, check=False).returncode != 0, 20)
    return times


def ms(values: list[float]) -> str:
    return f"median {statistics.median(values):.0f} ms (min {min(values):.0f}, max {max(values):.0f}, n={len(values)})"


# ---------------------------------------------------------------- main
def bench(s: Stack, base: Baseline, args: argparse.Namespace) -> list[str]:
    topo = kaon_topology(s)
    vm_ns = {name: s.lab.vm(name)["namespace"] for name in ("a1", "a2")}
    b = {name: f"{base.prefix}{name}" for name in ("vm1", "vm2", "out")}
    wait_for("baseline vm1 pings vm2", lambda: run("ip", "netns", "exec", b["vm1"], "ping", "-c1", "-W1", VM2,
                                                   check=False).returncode == 0, 10)
    vxlan = {"kaon": (vm_ns["a2"], vm_ns["a1"], VM2), "baseline": (b["vm2"], b["vm1"], VM2)}
    snat = {"kaon": (s.lab.names.outside, vm_ns["a2"], OUTSIDE), "baseline": (b["out"], b["vm2"], OUTSIDE)}
    # Every filtered port of the lab switches groups together (d1 too): a host's stateful port
    # turns conntrack on in its namespace for everything, the underlay's VXLAN packets included,
    # so "stateless" means a host whose ports are all stateless.
    vms = ("a1", "a2", "d1")
    groups = Groups(s, {vm: topo["vms"][vm]["port_id"] for vm in vms})
    stateful = {vm: [topo["open"]] for vm in vms}
    before: dict[str, Any] | None = None
    if firewall_evidence(s):
        # kaon filters: also measure the baseline with the least a stateful firewall needs, the
        # baseline with the least a stateless one needs, and kaon with the same ports in
        # stateless groups (untracked).
        free = security_group(s, "bench-open-stateless", OPEN, stateful=False)
        stateless = {vm: [free] for vm in vms}
        for paths in (vxlan, snat):
            paths["baseline+fw"], paths["baseline+slfw"] = paths["baseline"], paths["baseline"]
            paths["kaon-stateless"] = paths["kaon"]
        before = {"baseline": lambda: base.firewall(None), "baseline+fw": lambda: base.firewall("stateful"),
                  "baseline+slfw": lambda: base.firewall("stateless"),
                  "kaon": lambda: groups.use(stateful), "kaon-stateless": lambda: groups.use(stateless)}
    def side_by_side(label: str, paths: dict[str, tuple[str, str, str]], note: str = "") -> list[str]:
        out = [report(label, measure(paths, args.runs, args.seconds, before, args.quiet), note)]
        if args.concurrent and before is not None:
            out.append(report_concurrent(measure_concurrent(paths, before, args.concurrent, args.seconds,
                                                            args.quiet), args.seconds))
        return out

    lines = side_by_side("1. VM-to-VM across VXLAN (h1 -> h2)", vxlan)
    lines += side_by_side("2. VM to outside through SNAT (h2 -> router on h1 -> outside)", snat)
    groups.use(stateful)
    lease = dhcp_times(s, "d1", args.samples)
    fip = fip_times(s, topo["ext"]["id"], topo["vms"]["a2"]["port_id"], args.samples)
    many = security_group(s, f"bench-{args.rules}", many_rules(args.rules))
    stateful = {"a1": [topo["open"]], "a2": [many], "d1": [topo["open"]]}
    converge = groups.use(stateful)
    if before is not None:
        many_free = security_group(s, f"bench-{args.rules}-stateless", many_rules(args.rules), stateful=False)
        stateless = {"a1": [free], "a2": [many_free], "d1": [free]}  # a1's group lets iperf3's replies in
    evidence = firewall_evidence(s)
    note = f" ({evidence})" if evidence else " (security groups not enforced by this build)"
    lines += side_by_side(f"3. item 1 with {args.rules} SG rules on the receiving port (set + converged in "
                          f"{converge:.2f} s)", vxlan, note)
    base.firewall(None)
    for line in (f"4. DHCP lease, one udhcpc run discover -> bound in a lab VM on h2 (dnsmasq on h1): {ms(lease)}",
                 f"5. PUT floatingip port_id -> first ping reply from the outside: {ms(fip)}"):
        print(line, flush=True)
        lines.append(line)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=5, help="DHCP and floating IP samples")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--quiet", type=float, default=5.0,
                        help="before each run, wait up to this many seconds for the machine to settle (0: not at all)")
    parser.add_argument("--concurrent", type=int, default=0, metavar="ROUNDS",
                        help="also run kaon's and the baseline's flow at the same time, ROUNDS times per "
                             "path and pair (stateful, stateless), for ratios the machine's noise cancels in")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("dataplane_bench: needs root (namespaces, bridges, VXLAN)", file=sys.stderr)
        return 2
    for tool in ("iperf3", "busybox", "ping"):
        if not shutil.which(tool):
            print(f"dataplane_bench: needs {tool}", file=sys.stderr)
            return 2
    conf = {"quotas": QUOTAS}
    with tempfile.TemporaryDirectory(prefix="kaon-dp-bench-") as tmp, stack(Path(tmp), hosts=2,
                                                                             extra_conf=conf) as s:
        base = Baseline(f"kb{uuid.uuid4().hex[:4]}-")
        try:
            base.build()
            lines = bench(s, base, args)
        finally:
            base.close()
    print(f"\nsummary (median Gbit/s of {args.runs} x {args.seconds} s iperf3 runs):")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
