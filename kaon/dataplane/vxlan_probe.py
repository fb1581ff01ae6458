"""The VXLAN probe: frames that prove udp/4789 passes between two VTEPs.

Each agent with tunnels owns one VXLAN device, :data:`DEVICE`, on the
reserved VNI :data:`PROBE_VNI` (the last VNI there is; it must stay outside
every ``vni_ranges``), from its ``local_ip``, on the real port 4789. A probe
is an Ethernet frame of the local experimental ethertype :data:`ETHERTYPE`
sent on that device through a packet socket: the kernel wraps it in VXLAN
and UDP exactly as it wraps a VM's frame, so a firewall that drops
udp/4789 between the hosts drops the probe too.

Addressing: every VTEP has a MAC derived from its address (:func:`vtep_mac`);
the device's FDB holds one permanent entry per peer (that MAC → the peer's
address), so a request reaches one peer only. The device learns (the
kernel's VXLAN learning), so the answer to a request goes back to the VTEP it
came from even before that peer is in the responder's own peer list.

The frame's payload: ``MAGIC``, a kind (request or reply), an 8-byte nonce
and the sender's VTEP address as text, zero-padded. A reply is as long as
its request: besides the minimum-size probe (is udp/4789 open?), a prober
sends one as large as the largest frame of the networks it shares with the
peer (:func:`frame_size`; does the path carry the networks' MTU?), with a
nonce of its own.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import struct
from dataclasses import dataclass

from kaon.dataplane import netns
from kaon.dataplane.ovs_model import Flow

DEVICE = "kprobe-vx"  # not vxlan-*: L2's sweep and link watcher own that prefix
OWNER_ALIAS = "kaon:probe"
PROBE_VNI = 16777215  # 2**24 - 1, the largest VNI; reserved for probes
ETHERTYPE = 0x88B5  # IEEE 802 local experimental ethertype 1
MAGIC = b"kaon-vxlan-probe"
REQUEST, REPLY = 1, 2
ETH_HEADER = 14
_HEAD = struct.Struct(f"!6s6sH{len(MAGIC)}sB8s")


@dataclass(frozen=True)
class Probe:
    kind: int  # REQUEST | REPLY
    nonce: bytes
    vtep: str  # the sender's VTEP address
    src_mac: str


def vtep_mac(address: str) -> str:
    """A locally administered unicast MAC for a VTEP address (IPv4: its four bytes)."""
    ip = ipaddress.ip_address(address)
    tail = ip.packed if ip.version == 4 else hashlib.sha256(ip.packed).digest()[:4]
    return ":".join(f"{b:02x}" for b in (0x02, 0x6B, *tail))


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


def frame_size(mtu: int) -> int:
    """The largest frame a VM on a network of ``mtu`` sends: its IP MTU plus the Ethernet header.

    Wrapped in VXLAN over IPv4 it is an ``mtu + 50``-byte packet on udp/4789 (Neutron's overhead)."""
    return mtu + ETH_HEADER


def encode(kind: int, nonce: bytes, src_vtep: str, dst_mac: str, size: int = 60) -> bytes:
    """The Ethernet frame of a probe from ``src_vtep`` to the VTEP of ``dst_mac``, zero-padded to
    ``size`` bytes (Ethernet's minimum by default; :func:`frame_size` for a probe of the path's MTU)."""
    if len(nonce) != 8:
        raise ValueError("a probe nonce is 8 bytes")
    head = _HEAD.pack(_mac_bytes(dst_mac), _mac_bytes(vtep_mac(src_vtep)), ETHERTYPE, MAGIC, kind, nonce)
    frame = head + src_vtep.encode()
    return frame + bytes(max(0, size - len(frame)))


def decode(frame: bytes) -> Probe | None:
    """The probe in ``frame``, or None for any other frame."""
    if len(frame) < _HEAD.size:
        return None
    _dst, src, ethertype, magic, kind, nonce = _HEAD.unpack_from(frame)
    if ethertype != ETHERTYPE or magic != MAGIC or kind not in (REQUEST, REPLY):
        return None
    try:
        vtep = str(ipaddress.ip_address(frame[_HEAD.size:].rstrip(b"\0").decode()))
    except (UnicodeDecodeError, ValueError):
        return None
    return Probe(kind, nonce, vtep, ":".join(f"{b:02x}" for b in src))


def open_socket(namespace: str | None) -> socket.socket:
    """A packet socket on :data:`DEVICE` in ``namespace`` for probe frames (the device must exist)."""
    sock = netns.open_socket(namespace, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
    try:
        sock.bind((DEVICE, ETHERTYPE))
    except OSError:
        sock.close()
        raise
    return sock


# -- Open vSwitch hosts ---------------------------------------------------
# OVS owns udp/4789 on an OVS host (its tunnel ports terminate VXLAN before the
# kernel sees it), so there the probe device is an internal port of the tunnel
# bridge, and two kinds of flows carry probes as the VMs' frames are carried:
# out of that port to a peer's tunnel port with the probe VNI, and in from any
# tunnel port with the probe VNI to that port. They carry their own cookie: the
# agent's flow sync and sweep touch only kaon's (kaon.dataplane.openflow).

PROBE_COOKIE = 0x6B70726F  # "kpro"
OVS_OWNER_ID = ("kaon-owner", "probe")  # the internal port's Interface external_ids
OVS_PRIORITY = 200  # above br-tun's table 0 (in_port → resubmit) so probes never reach the VNI tables


def ovs_flows(peer_ports: dict[str, str]) -> list[Flow]:
    """br-tun's probe flows for ``peer_ports`` (peer VTEP → the name of its VXLAN tunnel port)."""
    flows = [Flow(0, OVS_PRIORITY, f"tun_id={PROBE_VNI:#x},dl_type={ETHERTYPE:#06x}", f"output:{DEVICE}",
                  PROBE_COOKIE)]
    for peer, port in sorted(peer_ports.items()):
        flows.append(Flow(0, OVS_PRIORITY, f"in_port={DEVICE},dl_dst={vtep_mac(peer)}",
                          f"set_field:{PROBE_VNI:#x}->tun_id,output:{port}", PROBE_COOKIE))
    return flows
