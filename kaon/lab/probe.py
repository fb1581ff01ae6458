"""``kaon trace --probe``: send the traced packet for real, in the lab, and compare.

The sender is the lab VM whose port the trace starts from (its namespace),
or the lab's outside namespace for ``--from-external`` (the address is added
there for the probe when the namespace does not hold it). The receiver is the
lab VM holding the destination address (behind a floating IP, its fixed
address, as the trace found it), or the outside namespace when it
holds it; anything else is not probed ("cannot probe", never a guess).

* icmp: one ``ping`` (2 s); reality is "delivered" when the echo comes back.
* tcp: a ``socat`` listener at the receiver, and a ``socat`` connect (2 s).
* udp: a ``socat`` listener at the receiver that writes what it gets to a
  file; reality is "delivered" when the sender's token arrived.
* a ``--source`` the VM does not own is added to its ``eth0`` as /32 for the
  probe (a spoofing VM) and the packet is bound to it; it is removed after.

Everything started here is stopped by its pid; everything added is removed.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netaddr

from kaon.lab import ip
from kaon.lab.lab import Lab
from kaon.trace.model import Trace

WAIT = 2  # seconds a probe waits for an answer


@dataclass(frozen=True)
class ProbeResult:
    probed: bool  # False: the lab holds no sender or receiver for this trace (reason says which)
    delivered: bool
    matched: bool
    reason: str

    @property
    def summary(self) -> str:
        if not self.probed:
            return f"not probed: {self.reason}"
        real = "delivered" if self.delivered else "not delivered"
        return f"{'matches' if self.matched else 'DOES NOT MATCH'} the trace: the real packet was {real} ({self.reason})"

    def as_dict(self) -> dict[str, Any]:
        return {"probed": self.probed, "delivered": self.delivered, "matched": self.matched,
                "reason": self.reason, "summary": self.summary}


class CannotProbe(Exception):
    pass


def probe(trace: Trace, lab: Lab | None = None) -> ProbeResult:
    """Send ``trace``'s packet in ``lab`` (default: the default lab) and compare with the trace."""
    lab = lab or Lab()
    try:
        delivered, how = _send(lab, trace)
    except CannotProbe as exc:
        return ProbeResult(False, False, True, str(exc))
    return ProbeResult(True, delivered, delivered == trace.delivered, how)


def _vm_with(lab: Lab, *, port_id: str | None = None, address: str | None = None) -> dict[str, Any] | None:
    for vm in lab.vms():
        if port_id is not None and vm.get("port_id") == port_id:
            return vm
        if address is not None and any(c.split("/")[0] == address for c in vm.get("ips", ())):
            return vm
    return None


def _outside(lab: Lab) -> tuple[str, list[str]]:
    state = lab.state() or {}
    out = state.get("outside") or {}
    if not out.get("namespace"):
        raise CannotProbe("the lab has no outside namespace (is it up?)")
    return str(out["namespace"]), [c.split("/")[0] for c in out.get("addresses", ())]


def _send(lab: Lab, trace: Trace) -> tuple[bool, str]:
    q = trace.query
    src_port = trace.hops[0].ids.get("port_id") if trace.hops else None
    if q.from_port is not None:
        vm = _vm_with(lab, port_id=src_port) if src_port else None
        if vm is None:
            raise CannotProbe(f"no lab VM has the port {q.from_port}")
        sender = str(vm["namespace"])
        own = [c.split("/")[0] for c in vm.get("ips", ())]
        source = q.source if q.source and q.source not in own else None
    else:
        sender, held = _outside(lab)
        source = q.from_external if q.from_external not in held else None
    target = _vm_with(lab, address=trace.destination or q.to)  # behind a floating IP: its fixed IP
    if target is not None:
        receiver = str(target["namespace"])
    else:
        out_ns, held = _outside(lab)
        receiver = out_ns if q.to in held else ""
        if not receiver:
            raise CannotProbe(f"{q.to} is neither a lab VM's address nor the outside namespace's")
    with _borrowed(sender, source):
        if q.protocol == "icmp":
            return _ping(sender, q.to, source)
        assert q.dport is not None
        return _socat(sender, receiver, q.protocol, q.to, q.dport, source)


@contextlib.contextmanager
def _borrowed(ns: str, address: str | None) -> Iterator[None]:
    """``address`` on the namespace for the probe (a foreign source: spoofing, or an outside address)."""
    if address is None:
        yield
        return
    dev = "eth0"
    prefix = 32 if netaddr.IPAddress(address).version == 4 else 128
    ip.exec_in(ns, ["ip", "addr", "add", f"{address}/{prefix}", "dev", dev, "nodad"]
               if prefix == 128 else ["ip", "addr", "add", f"{address}/{prefix}", "dev", dev], check=True,
               capture_output=True)
    try:
        yield
    finally:
        ip.exec_in(ns, ["ip", "addr", "del", f"{address}/{prefix}", "dev", dev], capture_output=True)


def _ping(ns: str, dst: str, source: str | None) -> tuple[bool, str]:
    cmd = ["ping", "-n", "-c", "1", "-W", str(WAIT)] + (["-I", source] if source else []) + [dst]
    r = ip.exec_in(ns, cmd, capture_output=True, text=True)
    return r.returncode == 0, "ping answered" if r.returncode == 0 else "ping got no answer"


def _socat(sender: str, receiver: str, proto: str, dst: str, port: int, source: str | None) -> tuple[bool, str]:
    token = uuid.uuid4().hex
    bind = f",bind={source}" if source else ""
    family = "6" if netaddr.IPAddress(dst).version == 6 else "4"
    with tempfile.TemporaryDirectory(prefix="kaon-probe-") as tmp:
        got = Path(tmp) / "got"
        listen = (["socat", "-u", f"TCP{family}-LISTEN:{port},reuseaddr", "OPEN:/dev/null"] if proto == "tcp" else
                  ["socat", "-u", f"UDP{family}-RECV:{port},reuseaddr", f"CREATE:{got}"])
        server = subprocess.Popen(["ip", "netns", "exec", receiver, *listen], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.3)  # the listener's socket
            if proto == "tcp":
                target = f"[{dst}]" if family == "6" else dst
                r = ip.exec_in(sender, ["socat", "-u", "/dev/null",
                                        f"TCP{family}:{target}:{port},connect-timeout={WAIT}{bind}"],
                               capture_output=True, text=True, timeout=WAIT + 3)
                return r.returncode == 0, "connected" if r.returncode == 0 else "the connection failed"
            target = f"[{dst}]" if family == "6" else dst
            ip.exec_in(sender, ["socat", "-u", "-", f"UDP{family}-SENDTO:{target}:{port}{bind}"], input=token,
                       capture_output=True, text=True, timeout=WAIT + 3)
            ends = time.monotonic() + WAIT
            while time.monotonic() < ends:
                if got.exists() and token in got.read_text(errors="replace"):
                    return True, "the datagram arrived"
                time.sleep(0.1)
            return False, "the datagram did not arrive"
        finally:
            server.kill()
            server.wait()
