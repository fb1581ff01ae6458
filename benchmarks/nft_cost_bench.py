"""What the nftables firewall costs per packet, without a kaon server: prints figures, asserts nothing.

dataplane_bench.py measures throughput, kaon next to hand-written baselines, with a real server and
lab. On a shared machine its ratios drown in the noise (single runs vary by a factor of 2-4 under
load). This benchmark asks a narrower question that load barely moves: how much CPU does
netfilter take per gigabyte sent, with kaon's ruleset and with the baselines? It builds
dataplane_bench's hand-made topology (two hosts, Linux bridge + VXLAN, a router with SNAT), loads
into both host namespaces, in turn:

* ``bare``: nothing;
* ``hand-stateful`` / ``hand-stateless``: dataplane_bench's hand-written minimal firewalls;
* ``kaon-stateful`` / ``kaon-stateless``: the ruleset kaon's agent writes
  (``kaon.agent.fw_plan.build`` + ``full_script``) for the host's VM port in a group allowing tcp
  and icmp in and everything out, ``stateful`` true or false;

and runs iperf3 (VM to VM across VXLAN; VM to outside through SNAT) under ``perf record -a``,
counting the samples that fall in netfilter's functions (nf_*, nft_*, br_nf_*, conntrack) per GB
received, and all busy CPU samples (idle excluded) per GB. The worlds alternate within each round. Output per world: median Gbit/s, median
netfilter samples/GB, and with ``--symbols`` where they go.

    sudo .venv/bin/python benchmarks/nft_cost_bench.py [--runs 5 --seconds 2 --symbols 15 --compare main]

``--paired A/B`` (repeatable) measures instead how much one world costs against another with the
machine's noise cancelled: it builds the topology twice and runs world A's flow on one and world B's
on the other *at the same time*, so that whatever else the machine does in that moment slows both;
then again with the worlds swapped between the topologies (which cancels what differs between the
two copies). Per round: A/B = sqrt((a1/b1) / (a2/b2)); printed as the mean with a 95 % interval.
Two runs one after another on this 2-vCPU VM move by +-3 % each; this moves by about +-1 % in ten
rounds (an A/A pairing reads 1.00 within that).

``--compare REV`` adds the two kaon worlds again with ``kaon/agent/fw_plan.py`` as it is at git REV;
``--ablate`` (and always ``--paired``) adds kaon's stateful ruleset with only one of its tables
(bridge, inet, netdev) at a time, and with its anti-spoofing hook made an ordinary chain (not
working firewalls: a measure of what each part costs), and ``kaon-stateful-forward-hook``: kaon's
ruleset with the receiving port named by a bridge forward hook instead of by its MAC (what a host
runs whose ports ``fw_plan.by_mac`` cannot tell apart); ``kaon-stateless-forward-hook``: the
stateless ruleset with its ingress rules at that hook instead of on the tap's egress hook (the
same hosts; before session 10, any host with a stateless port). kaon's worlds run as a lab host's agent
leaves the namespace: br_netfilter per bridge (``netfilter_all_bridges = false``), anti-spoofing on
the tap's own hook and ingress by MAC where the kernel allows it; the baselines and
``--compare``'s older rulesets with the sysctls at 1.

Needs root, iperf3, and perf (Debian linux-perf; without it only throughput is printed).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import dataplane_bench as db  # noqa: E402

from kaon.agent import fw_plan  # noqa: E402
from kaon.dataplane import nft  # noqa: E402
from kaon.model.intent import SCHEMA_VERSION, HostIntent  # noqa: E402

# Netfilter's own work: hooks, br_netfilter, nf_tables, conntrack, set back ends and their hash.
NETFILTER = re.compile(r"^(__)?(nf_|nft_|br_nf|ip_sabotage|ipv[46]_conntrack|ipv[46]_confirm|hash_conntrack|"
                       r"____nf_conntrack|nf_conntrack|jhash|skb_ext|__skb_ext)")
ALL = "(everything else)"  # the samples outside netfilter, kernel and user, idle excluded
IDLE = re.compile(r"^(default_idle|pv_native_safe_halt|intel_idle|acpi_idle|cpu_idle|do_idle|poll_idle|mwait_idle|"
                  r"native_safe_halt|arch_cpu_idle|cpuidle_)")
VMS = {"h1": ("tap-vm1", "fa:16:3e:00:01:01", db.VM1), "h2": ("tap-vm2", "fa:16:3e:00:01:02", db.VM2)}
RULE = {"direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
        "port_range_max": None, "remote_ip_prefix": None, "remote_set": None}


def kaon_ruleset(host: str, stateful: bool, plan: ModuleType = fw_plan, only: str | None = None,
                 per_device: bool = False, by_mac: bool = True) -> str:
    """What kaon's agent writes on ``host`` for its VM in the benchmark's group (``plan``: a fw_plan),
    as a lab host's agent does: br_netfilter per bridge, so one tracked network and no zones,
    anti-spoofing per device where the kernel allows (``per_device``; an older ``plan`` takes
    neither); ``only``: just that family's table of it (the others empty), to see what each costs;
    ``by_mac`` False: the receiving port named by the bridge forward hook, as on a host whose ports
    fw_plan.by_mac cannot tell apart (or a kernel without per-device hooks)."""
    tap, mac, ip = VMS[host]
    rules = [{**RULE, "protocol": 6}, {**RULE, "protocol": 1},  # the group: tcp and icmp in,
             {**RULE, "direction": "egress"}, {**RULE, "direction": "egress", "ethertype": "IPv6"}]  # all out
    intent = HostIntent.from_json({
        "version": SCHEMA_VERSION, "host": host, "ports": {},
        "networks": {"net1": {"bridge": "brq-net1", "network_type": "vxlan", "segmentation_id": 1001,
                              "physical_network": None, "mtu": 1450}},
        "firewall": {"ports": {"vm": {"device": tap, "mac": mac, "ips": [ip], "port_security": True,
                                      "stateful": stateful, "security_groups": ["g"]}},
                     "groups": {"g": {"stateful": stateful, "rules": rules}}, "sets": {}}})
    try:
        more = {"bridges": {"vm": "brq-net1"}} if by_mac and "bridges" in inspect.signature(plan.build).parameters else {}
        rs = plan.build(intent.firewall, intent.networks, zones=False, per_device=per_device,
                        tracked=frozenset({tap} if stateful else ()), **more)
    except TypeError:  # fw_plan before br_netfilter per bridge
        rs = plan.build(intent.firewall, intent.networks)
    if only is not None:
        def mine(d: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
            return {k: v for k, v in d.items() if k[0] == only}
        rs = plan.Ruleset(mine(rs.hooks), mine(rs.chains), mine(rs.decls), mine(rs.elements), rs.guarded, rs.numbers)
    return str(plan.full_script(rs))


def plan_at(rev: str) -> ModuleType:
    """kaon/agent/fw_plan.py as it is at git revision ``rev``, imported under another name."""
    text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:kaon/agent/fw_plan.py"], capture_output=True,
                          text=True, check=True).stdout
    name = "fw_plan_at_" + re.sub(r"\W", "_", rev)
    module = ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(text, f"{rev}:kaon/agent/fw_plan.py", "exec"), module.__dict__)
    return module


def br_netfilter(ns: str, per_bridge: bool, bridge_on: bool) -> None:
    """The namespace's br_netfilter as kaon's agent leaves it: all bridges (the sysctls at 1), or per
    bridge (sysctls 0, ``brq-net1``'s own switch on when it carries a stateful port)."""
    db.run("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.bridge.bridge-nf-call-iptables={int(not per_bridge)}",
           f"net.bridge.bridge-nf-call-ip6tables={int(not per_bridge)}")
    db.run("ip", "-n", ns, "link", "set", "brq-net1", "type", "bridge", "nf_call_iptables", str(int(bridge_on)),
           "nf_call_ip6tables", str(int(bridge_on)))


# Ablation (not a working firewall: a measure of what a part costs): kaon's stateful ruleset with its
# anti-spoofing hook on the sending tap (netdev ingress, or bridge prerouting on a kernel without
# per-device hooks) made an ordinary chain: its rules stay, nothing reaches them.
WITHOUT: dict[str, Callable[[str], str]] = {
    "no-antispoofing-hook": lambda s: re.sub(r"\n    type filter hook (ingress device \S+|prerouting) priority filter; "
                                             r"policy accept;", "", s),
}


def worlds(base: db.Baseline, compare: str | None, ablate: bool) -> dict[str, Callable[[], None]]:
    """World name -> what sets it up on the hosts (whatever the previous world left)."""
    per_device = nft.netdev_hooks_by_name(f"{base.prefix}h1")

    def setup(kaon: bool | None = None, hand: str | None = None, plan: ModuleType = fw_plan,
              only: str | None = None, without: str | None = None, by_mac: bool = True) -> Callable[[], None]:
        def apply() -> None:
            base.firewall(hand)  # the hand-written tables, or none of them
            for host in VMS:  # kaon's tables, or none of them
                ns = f"{base.prefix}{host}"
                # The baselines and kaon's older rulesets with the sysctls at 1, as the hand-written ones
                # need and the old agent set them; kaon's as a lab host's agent leaves them.
                br_netfilter(ns, per_bridge=kaon is not None and plan is fw_plan, bridge_on=bool(kaon))
                empty = fw_plan.full_script(fw_plan.Ruleset())
                script = empty if kaon is None else kaon_ruleset(host, kaon, plan, only, per_device, by_mac)
                nft.run(ns, WITHOUT[without](script) if without else script)
        return apply

    out = {"bare": setup(), "hand-stateful": setup(hand="stateful"), "hand-stateless": setup(hand="stateless"),
           "kaon-stateful": setup(kaon=True), "kaon-stateless": setup(kaon=False)}
    if ablate:
        out |= {f"kaon-stateful:{family}": setup(kaon=True, only=family) for family in fw_plan.FAMILIES}
        out |= {f"kaon-stateful-{part}": setup(kaon=True, without=part) for part in WITHOUT}
        out["kaon-stateful-forward-hook"] = setup(kaon=True, by_mac=False)
        out["kaon-stateless-forward-hook"] = setup(kaon=False, by_mac=False)
    if compare:
        other = plan_at(compare)
        out |= {f"{compare}-stateful": setup(kaon=True, plan=other), f"{compare}-stateless": setup(kaon=False, plan=other)}
    return out


def netfilter_samples(data: Path) -> Counter[str]:
    out = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--sort", "sym", "-F", "sample,sym"],
                         capture_output=True, text=True, check=False).stdout
    found: Counter[str] = Counter()
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+\[(.)\]\s+(\S+)", line)
        if m:
            if not IDLE.match(m.group(3)):
                found[m.group(3) if m.group(2) == "k" and NETFILTER.match(m.group(3)) else ALL] += int(m.group(1))
    return found


def one_run(client: str, address: str, seconds: int, data: Path | None) -> tuple[float, float, Counter[str]]:
    """Gbit/s, GB received, netfilter samples by symbol (empty without perf)."""
    perf = None
    if data is not None:
        perf = subprocess.Popen(["perf", "record", "-a", "-q", "-o", str(data)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
    try:
        r = db.run("ip", "netns", "exec", client, "iperf3", "-c", address, "-p", str(db.PORT), "-t", str(seconds),
                   "-J", timeout=seconds + 60)
    finally:
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait()
    received = json.loads(r.stdout)["end"]["sum_received"]
    samples = netfilter_samples(data) if data is not None else Counter()
    return received["bits_per_second"] / 1e9, received["bytes"] / 1e9, samples


def paired_ratio(x1: float, y1: float, x2: float, y2: float) -> float:
    """A/B from one round of ``--paired``: A ran on copy X and B on copy Y at the same time (rates x1,
    y1), then B on X and A on Y (x2, y2). A/B on X is x1/x2, on Y y2/y1 (each compares the two
    worlds on one topology); their geometric mean cancels what differs between the two copies."""
    return math.sqrt((x1 / x2) * (y2 / y1))


def run_paired(pairs: list[tuple[str, str]], runs: int, seconds: int, quiet: float) -> None:
    """``--paired``: two copies of the topology, each pair's worlds at the same time (see the module
    docstring); prints per path and pair the ratio A/B of their throughput."""
    copies = [db.Baseline(f"kc{uuid.uuid4().hex[:4]}-"), db.Baseline(f"kd{uuid.uuid4().hex[:4]}-")]
    ends = {"vxlan": ("vm2", "vm1", db.VM2), "snat": ("out", "vm2", db.OUTSIDE)}  # server, client, address
    try:
        for copy in copies:
            copy.build()
        setups = [worlds(copy, None, ablate=True) for copy in copies]
        unknown = sorted({name for pair in pairs for name in pair} - setups[0].keys())
        if unknown:
            raise SystemExit(f"nft_cost_bench: no world {', '.join(unknown)}; worlds: {', '.join(setups[0])}")
        with db.iperf_servers(f"{c.prefix}{srv}" for srv, _, _ in ends.values() for c in copies):
            for path, (_, client, address) in ends.items():
                flows = [(f"{c.prefix}{client}", address) for c in copies]
                for ns, _ in flows:  # neighbours and FDB before the first round
                    db.run("ip", "netns", "exec", ns, "ping", "-c", "2", "-W", "1", address, check=False)
                for a, b in pairs:
                    ratios = []
                    for _ in range(runs):
                        setups[0][a]()
                        setups[1][b]()
                        db.settle(quiet)
                        x1, y1 = db.concurrent(flows, seconds)
                        setups[0][b]()
                        setups[1][a]()
                        db.settle(quiet)
                        x2, y2 = db.concurrent(flows, seconds)
                        ratios.append(paired_ratio(x1, y1, x2, y2))
                    print(f"{path:5} {a} / {b}: {db.summary(ratios)}  [{' '.join(f'{r:.3f}' for r in ratios)}]",
                          flush=True)
    finally:
        for copy in copies:
            copy.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=2)
    parser.add_argument("--symbols", type=int, default=0, help="print the top N netfilter symbols per world")
    parser.add_argument("--compare", metavar="REV", help="also the rulesets of fw_plan.py at git REV (e.g. main)")
    parser.add_argument("--ablate", action="store_true",
                        help="also kaon's stateful ruleset with only one of its tables at a time")
    parser.add_argument("--paired", action="append", default=[], metavar="A/B",
                        help="measure world A against world B with flows at the same time (repeatable), "
                             "e.g. kaon-stateful/hand-stateful")
    parser.add_argument("--quiet", type=float, default=5.0,
                        help="--paired: wait up to this many s for a quiet machine before each round's halves")
    args = parser.parse_args()
    if os.geteuid() != 0 or not shutil.which("iperf3"):
        print("nft_cost_bench: needs root and iperf3", file=sys.stderr)
        return 2
    if args.paired:
        pairs = [p.partition("/")[::2] for p in args.paired]
        if not all(a and b for a, b in pairs):
            parser.error("--paired takes A/B: two world names")
        run_paired(pairs, args.runs, args.seconds, args.quiet)
        return 0
    if not shutil.which("perf"):
        print("nft_cost_bench: no perf (Debian linux-perf): throughput only", file=sys.stderr)
    base = db.Baseline(f"kc{uuid.uuid4().hex[:4]}-")
    servers: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="kaon-nft-cost-") as tmp:
        data = Path(tmp, "perf.data") if shutil.which("perf") else None
        try:
            base.build()
            paths = {"vxlan": (f"{base.prefix}vm2", f"{base.prefix}vm1", db.VM2),
                     "snat": (f"{base.prefix}out", f"{base.prefix}vm2", db.OUTSIDE)}
            servers = [subprocess.Popen(["ip", "netns", "exec", srv, "iperf3", "-s", "-p", str(db.PORT)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                       for srv, _, _ in paths.values()]
            setups = worlds(base, args.compare, args.ablate)
            for _, client, address in paths.values():  # neighbours and FDB before the first run
                db.run("ip", "netns", "exec", client, "ping", "-c", "2", "-W", "1", address, check=False)
            gbit: dict[tuple[str, str], list[float]] = {(p, w): [] for p in paths for w in setups}
            per_gb: dict[tuple[str, str], list[float]] = {(p, w): [] for p in paths for w in setups}
            busy_gb: dict[tuple[str, str], list[float]] = {(p, w): [] for p in paths for w in setups}
            symbols: dict[tuple[str, str], Counter[str]] = {(p, w): Counter() for p in paths for w in setups}
            for _ in range(args.runs):
                for path, (_, client, address) in paths.items():
                    for world, setup in setups.items():
                        setup()
                        rate, gigabytes, samples = one_run(client, address, args.seconds, data)
                        gbit[path, world].append(rate)
                        per_gb[path, world].append((sum(samples.values()) - samples[ALL]) / gigabytes)
                        busy_gb[path, world].append(sum(samples.values()) / gigabytes)
                        del samples[ALL]
                        symbols[path, world].update({k: round(v / gigabytes) for k, v in samples.items()})
        finally:
            for proc in servers:
                proc.kill()
                proc.wait()
            base.close()
    print(f"\nmedian of {args.runs} x {args.seconds} s iperf3 runs per world, worlds alternating; "
          f"load average {os.getloadavg()[0]:.1f}")
    for path in paths:
        bare = statistics.median(per_gb[path, "bare"]) if data else 0.0
        bare_busy = statistics.median(busy_gb[path, "bare"]) if data else 0.0
        for world in setups:
            line = f"{path:5} {world:15} {statistics.median(gbit[path, world]):6.2f} Gbit/s"
            if data:
                cost = statistics.median(per_gb[path, world])
                line += (f" | netfilter {cost:5.0f} samples/GB [{' '.join(f'{v:.0f}' for v in per_gb[path, world])}]"
                         f" | above bare {cost - bare:+5.0f}")
                busy = statistics.median(busy_gb[path, world])
                line += f" | all CPU {busy:5.0f} samples/GB, above bare {busy - bare_busy:+5.0f} ({busy / bare_busy - 1:+.1%})"
            print(line)
            for sym, n in symbols[path, world].most_common(args.symbols):
                print(f"        {n // args.runs:6d}  {sym}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
