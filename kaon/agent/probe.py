"""The agent's VXLAN prober: does udp/4789 pass to each l2population peer?

One thread per agent with tunnels. It keeps the probe device
(kaon.dataplane.vxlan_probe: reserved VNI, real port 4789) and one FDB entry
per peer VTEP — the VTEPs the host intent names as peers of its VXLAN
networks — answers every probe request it receives, and every
``interval`` sends a request to each peer. :meth:`VxlanProber.results`
says, per peer probed long enough to tell, whether an answer came back in
the last few rounds; the runtime puts that in the L2 agent's state report
(``health.tunnels``) and ``kaon doctor`` names the peers that stay silent.

A request lost one way and an answer lost the other way look the same from
here; the doctor sees both ends' reports, and names both hosts.

Where the probe device comes from is the endpoint's business: on a Linux
bridge host (:class:`KernelEndpoint`) a kernel VXLAN device with one FDB
entry per peer; on an Open vSwitch host (kaon.agent.ovs_probe) an internal
port of br-tun and flows to the tunnel ports, since OVS owns udp/4789 there.
Either way the frames are sent and received by the same packet socket.

It has its own netlink socket (the L2 manager's is the worker's) and
touches only its own device, so it runs beside the worker without locks.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from kaon.dataplane import DataplaneError
from kaon.dataplane import vxlan_probe as vp
from kaon.dataplane.linux_l2 import LinuxL2
from kaon.model.intent import HostIntent

LOG = logging.getLogger("kaon.agent.probe")

ROUNDS_TO_TELL = 3  # a peer is "unreachable" after this many rounds without an answer


def intent_peers(intent: HostIntent) -> dict[str, int]:
    """The VTEPs this host's VXLAN networks have peers on (l2population's view), each with the
    largest MTU of the networks shared with it (0 when no network says)."""
    out: dict[str, int] = {}
    for n in intent.networks.values():
        if n.network_type == "vxlan":
            for vtep in n.peers:
                out[vtep] = max(out.get(vtep, 0), n.mtu or 0)
    return out


class Endpoint(Protocol):
    """Keeps the probe device (:data:`vxlan_probe.DEVICE`) able to reach ``peers``."""

    always: bool  # the device exists even without peers (it answers peers that probe this host)

    def ensure(self, peers: set[str], mtu: int) -> set[str]:
        """Make the device, taking frames of networks of ``mtu`` (0: any size), and its paths to ``peers``;
        return the peers it can send to now."""

    def close(self) -> None: ...


class KernelEndpoint:
    """A Linux bridge host's probe device: a kernel VXLAN device, one FDB entry per peer."""

    always = True

    def __init__(self, local_ip: str, namespace: str | None) -> None:
        self.local_ip = local_ip
        self.namespace = namespace
        self._driver: LinuxL2 | None = None

    def ensure(self, peers: set[str], mtu: int) -> set[str]:
        """The device (learning, so answers find their way back) and one FDB entry per peer."""
        if self._driver is None:
            self._driver = LinuxL2(self.namespace)
        drv = self._driver
        drv.ensure_vxlan(vp.DEVICE, vp.PROBE_VNI, self.local_ip, None, learning=True, proxy=False,
                         alias=vp.OWNER_ALIAS, mtu=mtu or None)
        have = drv.fdb(vp.DEVICE)
        want = {(vp.vtep_mac(p), p) for p in peers}
        for mac, dst in have - want:
            drv.fdb_del(vp.DEVICE, mac, dst)
        for mac, dst in want - have:
            drv.fdb_add(vp.DEVICE, mac, dst)
        return peers

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()


class VxlanProber:
    def __init__(self, local_ip: str, namespace: str | None, peers: Callable[[], Iterable[str]],
                 interval: float, endpoint: Endpoint | None = None) -> None:
        self.local_ip = local_ip
        self.namespace = namespace
        self.peers = peers
        self.interval = max(0.5, min(float(interval), 10.0))
        self.endpoint: Endpoint = endpoint or KernelEndpoint(local_ip, namespace)
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._since: dict[str, float] = {}  # peer -> when we first probed it
        self._answered: dict[str, float] = {}  # peer -> last answer
        self._mtu: dict[str, int] = {}  # peer -> the MTU its big probe is sized for (0: none sent)
        self._answered_big: dict[str, float] = {}  # peer -> last answer to a probe of that size
        self._mtu_since: dict[str, float] = {}  # peer -> when its big probe got its present size
        self._nonce = os.urandom(8)
        self._nonce_big = os.urandom(8)
        self.error: str | None = None  # why the last round could not run (reported; the doctor says it)

    # -- lifecycle ------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kaon-agent-probe", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self.endpoint.close()

    # -- what the state report carries ----------------------------------
    def results(self) -> dict[str, bool]:
        """Peer VTEP -> answered lately, for peers probed for at least ``ROUNDS_TO_TELL`` rounds."""
        now = time.monotonic()
        window = ROUNDS_TO_TELL * self.interval
        with self._lock:
            return {peer: now - self._answered.get(peer, -1e9) <= window
                    for peer, since in sorted(self._since.items()) if now - since >= window}

    def mtu_results(self) -> dict[str, dict[str, int | bool]]:
        """Peer VTEP -> ``{mtu, answered}`` for the frames of the shared networks' MTU: only for peers
        whose small probes are answered (a blocked port is :meth:`results`' to say) and probed long enough."""
        now = time.monotonic()
        window = ROUNDS_TO_TELL * self.interval
        answered = self.results()
        with self._lock:
            return {peer: {"mtu": mtu, "answered": now - self._answered_big.get(peer, -1e9) <= window}
                    for peer, mtu in sorted(self._mtu.items())
                    if mtu and answered.get(peer) and now - self._mtu_since.get(peer, now) >= window}

    # -- the thread -----------------------------------------------------
    def _run(self) -> None:
        next_round = 0.0
        big_due: float | None = None
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_round:
                    self._round()
                    next_round = time.monotonic() + self.interval
                    big_due = time.monotonic() + self.interval / 2
                    self.error = None
                if big_due is not None and time.monotonic() >= big_due:
                    self._round_big()
                    big_due = None
                self._receive(max(0.0, min(next_round, big_due or next_round) - time.monotonic()))
            except (OSError, DataplaneError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                # Once per distinct cause, not once per round.
                LOG.log(logging.WARNING if error != self.error else logging.DEBUG, "VXLAN probe: %s", error)
                self.error = error
                self._reset()
                self._stop.wait(self.interval)

    def _reset(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _round(self) -> None:
        listed = self.peers()
        mtus: Mapping[str, int] = listed if isinstance(listed, Mapping) else {}
        wanted = set(listed) - {self.local_ip}
        peers = self.endpoint.ensure(wanted, max((mtus.get(p, 0) for p in wanted), default=0))
        if self._sock is None and (peers or self.endpoint.always):
            # An OVS endpoint makes no device until a peer is wired (kaon.agent.ovs_probe).
            self._sock = vp.open_socket(self.namespace)
        now = time.monotonic()
        with self._lock:
            self._since = {p: self._since.get(p, now) for p in peers}
            self._answered = {p: t for p, t in self._answered.items() if p in peers}
            # A peer's big probe is judged afresh when its size changes (a network's MTU moved).
            mtu = {p: mtus.get(p, 0) for p in peers}
            same = {p for p in peers if mtu[p] == self._mtu.get(p)}
            self._answered_big = {p: t for p, t in self._answered_big.items() if p in same}
            self._mtu_since = {p: self._mtu_since[p] if p in same and p in self._mtu_since else now for p in peers}
            self._mtu = mtu
        for peer in sorted(peers):
            assert self._sock is not None
            self._sock.send(vp.encode(vp.REQUEST, self._nonce, self.local_ip, vp.vtep_mac(peer)))

    def _round_big(self) -> None:
        """The probes of the networks' MTU, half a round after the small ones: a datapath that sends
        frames in batches (OVS's userspace one) drops the rest of a batch after one too big for the
        link, and small probes in that batch would then read as a blocked port."""
        with self._lock:
            sizes = dict(self._mtu)
        for peer, mtu in sorted(sizes.items()):
            if mtu and self._sock is not None:
                self._send_big(vp.encode(vp.REQUEST, self._nonce_big, self.local_ip, vp.vtep_mac(peer),
                                         vp.frame_size(mtu)))

    def _send_big(self, frame: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.send(frame)
        except OSError as exc:  # larger than the probe device takes: the endpoint sizes it, so say why
            if exc.errno != errno.EMSGSIZE:
                raise
            LOG.debug("VXLAN probe of %d bytes refused by %s: %s", len(frame), vp.DEVICE, exc)

    def _receive(self, timeout: float) -> None:
        sock = self._sock
        if sock is None:  # no peer wired yet (an OVS host): wait out the round, do not spin
            self._stop.wait(timeout)
            return
        deadline = time.monotonic() + timeout
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], min(left, 0.5))[0]:
                if left <= 0:
                    return
                continue
            frame = sock.recv(65536)
            probe = vp.decode(frame)
            if probe is None or probe.vtep == self.local_ip:
                continue
            if probe.kind == vp.REQUEST:  # the answer as long as the question: the path back is tested too
                reply = vp.encode(vp.REPLY, probe.nonce, self.local_ip, probe.src_mac, len(frame))
                if len(frame) > 60:
                    self._send_big(reply)
                else:
                    sock.send(reply)
            elif probe.nonce in (self._nonce, self._nonce_big):
                answers = self._answered if probe.nonce == self._nonce else self._answered_big
                with self._lock:
                    if probe.vtep in self._since:
                        answers[probe.vtep] = time.monotonic()


def remove_device(namespace: str | None) -> None:
    """Delete the probe device if this agent made it (tunnels are off now)."""
    with LinuxL2(namespace) as drv:
        link = drv.link(vp.DEVICE)
        if link is not None and link.alias == vp.OWNER_ALIAS:
            drv.delete_link(vp.DEVICE)
