"""The other OpenFlow route, for comparison: os-ken (Neutron's native driver) programming the same flows.

Not a kaon dependency: run it from a scratch virtualenv with os-ken installed
(``python3 -m venv /tmp/osk && /tmp/osk/bin/pip install os-ken``) and kaon on
PYTHONPATH, as root:

    PYTHONPATH=. /tmp/osk/bin/python benchmarks/ovs_osken_bench.py

It starts a private OVS (kaon.dataplane.ovs_daemons), points the bridge at an
os-ken controller in this process, and times what ovs_flows_bench.py times for
ovs-ofctl: 2,000 flow_mods + barrier on an empty bridge; a flow-stats dump of
the 2,000; and dump + 10 changed flow_mods + barrier.  Figures in docs/design/ovs.md.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

N, RUNS, COOKIE = 2000, 5, 0x6B616F6E
OUT = os.environ.get("OSKEN_BENCH_OUT", "/tmp/osken_bench.json")

if os.environ.get("OSKEN_BENCH_APP") != "1":
    # Parent: start OVS and the controller process, wait for its figures.
    sys.path.insert(0, os.getcwd())
    from kaon.dataplane.ovs_daemons import OvsDaemons

    root = tempfile.mkdtemp(prefix="kovso-", dir="/tmp")
    ovs = OvsDaemons(root)
    ovs.start()
    try:
        ovs.wait_ready()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        vs = ["ovs-vsctl", f"--db={ovs.db_remote}"]
        subprocess.run([*vs, "add-br", "br-b", "--", "set", "bridge", "br-b", "datapath_type=netdev",
                        "fail_mode=secure", "protocols=OpenFlow13,OpenFlow14", "--", "add-port", "br-b", "p1",
                        "--", "set", "interface", "p1", "type=internal", "ofport_request=1"], check=True)
        env = {**os.environ, "OSKEN_BENCH_APP": "1"}
        app = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(port)], env=env)
        time.sleep(1.0)
        subprocess.run([*vs, "set-controller", "br-b", f"tcp:127.0.0.1:{port}"], check=True)
        try:
            app.wait(120)
        finally:
            if app.poll() is None:
                app.kill()
        with open(OUT) as f:
            res = json.load(f)
        for name, values in res.items():
            print(f"{name:20s} median {statistics.median(values):7.1f} ms  min {min(values):7.1f} ms")
    finally:
        ovs.stop()
    sys.exit(0)

from os_ken.app.ofctl import api as ofctl_api  # noqa: E402
from os_ken.base import app_manager  # noqa: E402
from os_ken.controller import ofp_event  # noqa: E402
from os_ken.controller.handler import CONFIG_DISPATCHER, set_ev_cls  # noqa: E402
from os_ken.lib import hub  # noqa: E402
from os_ken.ofproto import ofproto_v1_3  # noqa: E402


class Bench(app_manager.OSKenApp):  # type: ignore[misc]
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def features(self, ev):  # type: ignore[no-untyped-def]
        hub.spawn(self.run, ev.msg.datapath)

    def mods(self, dp, n, changed=0):  # type: ignore[no-untyped-def]
        ofp, parser = dp.ofproto, dp.ofproto_parser
        out = []
        for i in range(n):
            vni = 0x3E9 + (1 if i < changed else 0)
            match = parser.OFPMatch(vlan_vid=0x1000 | (1 + i % 4000),
                                    eth_dst=f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}")
            actions = [parser.OFPActionPopVlan(), parser.OFPActionSetField(tunnel_id=vni), parser.OFPActionOutput(1)]
            inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
            out.append(parser.OFPFlowMod(dp, cookie=COOKIE, table_id=20, priority=2, match=match, instructions=inst))
        return out

    def barrier(self, dp):  # type: ignore[no-untyped-def]
        ofctl_api.send_msg(self, dp.ofproto_parser.OFPBarrierRequest(dp), reply_cls=dp.ofproto_parser.OFPBarrierReply)

    def dump(self, dp):  # type: ignore[no-untyped-def]
        parser = dp.ofproto_parser
        req = parser.OFPFlowStatsRequest(dp, cookie=COOKIE, cookie_mask=0xFFFFFFFFFFFFFFFF)
        replies = ofctl_api.send_msg(self, req, reply_cls=parser.OFPFlowStatsReply, reply_multi=True)
        return [s for r in replies for s in r.body]

    def run(self, dp):  # type: ignore[no-untyped-def]
        ofp, parser = dp.ofproto, dp.ofproto_parser
        res: dict[str, list[float]] = {"cold 2000": [], "dump 2000": [], "delta 10": []}
        base, delta = self.mods(dp, N), self.mods(dp, 10, changed=10)
        for _ in range(RUNS):
            dp.send_msg(parser.OFPFlowMod(dp, command=ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL,
                                          out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
            self.barrier(dp)
            t = time.perf_counter()
            for m in base:
                dp.send_msg(m)
            self.barrier(dp)
            res["cold 2000"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            got = self.dump(dp)
            res["dump 2000"].append((time.perf_counter() - t) * 1000)
            assert len(got) == N, len(got)
            t = time.perf_counter()
            self.dump(dp)
            for m in delta:
                dp.send_msg(m)
            self.barrier(dp)
            res["delta 10"].append((time.perf_counter() - t) * 1000)
        with open(OUT, "w") as f:
            json.dump(res, f)
        os._exit(0)


if __name__ == "__main__":
    # Child: as Neutron's native/main.py starts it (os-ken has no manager command any more).
    from os_ken import cfg as os_ken_cfg

    os_ken_cfg.CONF(project="os_ken", args=[])
    os_ken_cfg.CONF.ofp_listen_host = "127.0.0.1"
    os_ken_cfg.CONF.ofp_tcp_listen_port = int(sys.argv[1])
    app_manager.AppManager.run_apps(["__main__", "os_ken.app.ofctl.service"])
