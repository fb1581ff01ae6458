"""How fast kaon's OpenFlow route programs a netdev bridge (docs/design/ovs.md has the figures).

Starts a private ovsdb-server + ovs-vswitchd (userspace datapath) in a temporary
rundir, makes one bridge, and times kaon.dataplane.openflow.OpenFlow.sync:

* cold: 2,000 flows onto an empty bridge (one bundle);
* no-op: the same 2,000 again (dump + diff, nothing sent);
* delta: 10 of the 2,000 changed (dump + diff + a 10-flow bundle);
* for scale, ``ovs-ofctl --bundle replace-flows`` of the 2,000 (OVS's own diff);
* a bind-sized delta (45 flows naming a port) and a dump of the bridge, with port
  names resolved by ovs-ofctl (``--names``) and as ofport numbers given by
  kaon (``ofports=``, ``--no-names``), side by side.

Run as root: ``.venv/bin/python benchmarks/ovs_flows_bench.py [--runs 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial

from kaon.dataplane.openflow import PROTOCOL, OpenFlow
from kaon.dataplane.ovs_daemons import OvsDaemons
from kaon.dataplane.ovs_model import BridgeSpec, Flow, PortSpec
from kaon.dataplane.ovsdb import Ovsdb

N = 2000


def flows(n: int, changed: int = 0) -> list[Flow]:
    """l2population-like unicast entries (table 20), ``changed`` of them with another VNI."""
    out = []
    for i in range(n):
        vni = 0x3E9 + (1 if i < changed else 0)
        out.append(Flow(20, 2, f"dl_vlan={1 + i % 4000},dl_dst=fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:"
                        f"{i & 255:02x}", f"pop_vlan,set_field:{vni:#x}->tun_id,output:p1"))
    return out


def db_ofports(ovs: OvsDaemons) -> dict[str, int]:
    with Ovsdb(ovs.db_remote) as db:
        return {name: n for name, n in db.ofports().items() if n < 0xFF00}  # not the bridge's LOCAL port


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="kovsb-", dir="/tmp")
    ovs = OvsDaemons(root)
    ovs.start()
    try:
        ovs.wait_ready()
        with Ovsdb(ovs.db_remote) as db:
            db.apply([BridgeSpec("br-b")], [PortSpec.make("br-b", "p1", "internal")])
        of = OpenFlow(ovs.mgmt, ovs.env())
        base, delta = flows(N), flows(N, changed=10)
        path = os.path.join(root, "flows.txt")
        with open(path, "w") as f:
            f.write("\n".join(x.add_line() for x in base) + "\n")
        res: dict[str, list[float]] = {"cold 2000": [], "no-op 2000": [], "delta 10": [], "replace-flows 2000": [],
                                       "45 flows, names": [], "45 flows, numbers": [],
                                       "dump, names": [], "dump, numbers": []}
        ports = db_ofports(ovs)
        bind = [Flow(71, 10 + i, f"ip,in_port=p1,nw_src=10.0.0.{i}", "output:p1") for i in range(45)]
        bind2 = [Flow(71, 10 + i, f"ip,in_port=p1,nw_src=10.0.0.{i}", "drop") for i in range(45)]
        for _ in range(args.runs):
            for flows_, label, ofports in ((bind, "45 flows, names", None), (bind2, "45 flows, numbers", ports)):
                res[label].append(timed(partial(of.sync, "br-b", flows_, sweep=False, installed=(), ofports=ofports)))
            res["dump, names"].append(timed(lambda: of.dump("br-b")))
            res["dump, numbers"].append(timed(lambda: of.dump("br-b", ports)))

            subprocess.run(["ovs-ofctl", "-O", PROTOCOL, "del-flows", ovs.mgmt("br-b")], env=ovs.env(), check=True)
            res["cold 2000"].append(timed(lambda: of.sync("br-b", base, sweep=True)))
            res["no-op 2000"].append(timed(lambda: of.sync("br-b", base, sweep=True)))
            res["delta 10"].append(timed(lambda: of.sync("br-b", delta, sweep=True)))
            of.sync("br-b", base, sweep=True)
            res["replace-flows 2000"].append(timed(lambda: subprocess.run(
                ["ovs-ofctl", "-O", PROTOCOL, "--bundle", "replace-flows", ovs.mgmt("br-b"), path],
                env=ovs.env(), check=True)))
        assert len(of.dump("br-b")) == N
        for name, values in res.items():
            print(f"{name:20s} median {statistics.median(values):7.1f} ms  min {min(values):7.1f} ms")
    finally:
        ovs.stop()


if __name__ == "__main__":
    main()
