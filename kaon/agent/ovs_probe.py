"""The VXLAN prober's device on an Open vSwitch host (kaon.agent.probe's endpoint).

On an OVS host the VXLAN port belongs to ovs-vswitchd: its tunnel ports
take every udp/4789 datagram for ``local_ip`` (the userspace datapath before
the kernel ever sees it), so a kernel VXLAN device would send probes but
never hear the answers. The probe device is therefore an internal port of
the tunnel bridge (same name as on Linux bridge hosts, so the packet socket
is the same), and flows with the probe cookie carry its frames through the
tunnel port of each peer with the reserved VNI — the path a VM's frame takes,
on the same port, from the same address (kaon.dataplane.vxlan_probe.ovs_flows).

Every round reads br-tun's ports (a peer is probed once its tunnel port
exists: before that the agent has not wired it, and silence would say
nothing) and the probe flows, and puts back what is missing: a restarted
ovs-vswitchd loses the flows and the agent's sweep never touches them.
Only ``ovs-vsctl``/``ovs-ofctl`` runs here, never the agent's OVSDB
connection (that one is the worker's).
"""

from __future__ import annotations

import subprocess

from kaon.agent.ovs_config import OvsConfig
from kaon.agent.ovs_plan import tunnel_port_name
from kaon.dataplane import DataplaneError
from kaon.dataplane import vxlan_probe as vp
from kaon.dataplane.linux_l2 import LinuxL2
from kaon.dataplane.openflow import parse_dump

TIMEOUT = 10.0


class OvsProbeError(DataplaneError):
    pass


class OvsEndpoint:
    always = False  # no tunnel port, no probe can come in: the port is made with the first wired peer

    def __init__(self, cfg: OvsConfig, namespace: str | None) -> None:
        self.cfg = cfg
        self.namespace = namespace
        self.bridge = cfg.options.tunnel_bridge
        self._links: LinuxL2 | None = None
        self._mtu = 0  # the internal port's mtu_request as last set

    def _run(self, argv: list[str], stdin: str | None = None) -> str:
        try:
            res = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise OvsProbeError(f"{argv[0]} {argv[-1]} timed out") from exc
        if res.returncode != 0:
            raise OvsProbeError(f"{argv[0]} failed (exit {res.returncode}): {res.stderr.strip()[:300]}")
        return res.stdout

    def _vsctl(self, *args: str) -> str:
        return self._run(["ovs-vsctl", f"--db={self.cfg.ovsdb_connection}", f"--timeout={TIMEOUT:.0f}", *args])

    def _ofctl(self, *args: str, stdin: str | None = None) -> str:
        return self._run(["ovs-ofctl", "-O", "OpenFlow13", *args], stdin)

    def ensure(self, peers: set[str], mtu: int) -> set[str]:
        if not peers:
            return set()
        try:
            ports = set(self._vsctl("list-ports", self.bridge).split())
        except OvsProbeError:
            if self.bridge not in self._vsctl("list-br").split():
                return set()  # the agent has not made the tunnel bridge yet: nothing is wired to probe
            raise
        wired = {p: tunnel_port_name("vxlan", p) for p in peers}
        wired = {p: name for p, name in wired.items() if name in ports}
        if not wired:
            return set()
        # The internal port takes the largest probe frame: OVS would hold it to 1500 bytes otherwise.
        mtu = max(mtu, 1500)
        if vp.DEVICE not in ports or mtu != self._mtu:
            key, value = vp.OVS_OWNER_ID
            self._vsctl("--may-exist", "add-port", self.bridge, vp.DEVICE, "--", "set", "Interface", vp.DEVICE,
                        "type=internal", f"external_ids:{key}={value}", f"mtu_request={mtu}")
            self._mtu = mtu
        if self._links is None:
            self._links = LinuxL2(self.namespace)
        link = self._links.link(vp.DEVICE)
        if link is None:
            raise OvsProbeError(f"the internal port {vp.DEVICE} of {self.bridge} has no device in the agent's "
                                "namespace (ovs-vswitchd must run in it)")
        if not link.up:
            self._links.set_up(vp.DEVICE)
        self._flows(wired)
        return set(wired)

    def _flows(self, wired: dict[str, str]) -> None:
        """Put the probe flows on br-tun when they differ from what is there (one bundle)."""
        target = self.cfg.openflow_target(self.bridge)
        want = vp.ovs_flows(wired)
        have = parse_dump(self._ofctl("--names", "--no-stats", "dump-flows", target,
                                      f"cookie={vp.PROBE_COOKIE:#x}/-1"))
        if {(f.key, f.actions) for f in have} == {(f.key, f.actions) for f in want}:
            return
        lines = [f"delete cookie={vp.PROBE_COOKIE:#x}/-1"] + [f"add {f.add_line()}" for f in want]
        self._ofctl("--bundle", "add-flows", target, "-", stdin="\n".join(lines) + "\n")

    def close(self) -> None:
        if self._links is not None:
            self._links.close()
            self._links = None


def remove_port(cfg: OvsConfig) -> None:
    """Delete the probe's internal port and flows if the prober made them (tunnels are off now)."""
    ep = OvsEndpoint(cfg, None)
    key, value = vp.OVS_OWNER_ID
    try:
        ids = ep._vsctl("--if-exists", "get", "Interface", vp.DEVICE, f"external_ids:{key}").strip().strip('"')
        if ids == value:
            ep._vsctl("--if-exists", "del-port", vp.DEVICE)
            ep._ofctl("del-flows", cfg.openflow_target(ep.bridge), f"cookie={vp.PROBE_COOKIE:#x}/-1")
    except OvsProbeError:
        pass  # nothing to remove, or OVS is not there: the agent's own start says so
