"""rtnetlink link and neighbour messages: constants, :class:`Link`, and their codec.

Only the message types and attributes kaon uses are here; they are packed and
parsed with :mod:`struct` (see :mod:`kaon.dataplane.netlink` for why).
Numbers are from linux/if_link.h, linux/neighbour.h and linux/if.h, which
are kernel ABI and never change.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from kaon.dataplane import DataplaneError
from kaon.dataplane import netlink as nl

# linux/if_link.h, linux/neighbour.h, linux/if.h
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_NET_NS_FD = 18, 20, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VXLAN_ID, VXLAN_GROUP, VXLAN_LINK, VXLAN_LOCAL, VXLAN_LEARNING = 1, 2, 3, 4, 7
VXLAN_PROXY, VXLAN_PORT, VXLAN_GROUP6, VXLAN_LOCAL6 = 11, 15, 16, 17
VETH_INFO_PEER = 1
NDA_DST, NDA_LLADDR, NDA_IFINDEX = 1, 2, 8
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF = 0x02
IFF_UP = 0x1
AF_BRIDGE = 7

IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
NDMSG = struct.Struct("=BxxxiHBB")  # family, ifindex, state, flags, type
U32 = struct.Struct("=I")
LINK_ATTRS = frozenset((IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_IFALIAS))


@dataclass(frozen=True)
class Link:
    """One network interface as the kernel reports it."""

    name: str
    index: int
    kind: str  # IFLA_INFO_KIND: "bridge", "vxlan", "veth", "tun", ...; "" for physical and lo
    master: str | None  # the bridge it is enslaved to
    up: bool  # administratively up (IFF_UP)
    mac: str
    mtu: int
    alias: str
    vxlan_id: int | None = None
    vxlan_local: str | None = None
    vxlan_group: str | None = None
    vxlan_proxy: bool | None = None  # answers ARP/ND from its neighbour entries


@dataclass(frozen=True)
class VxlanConfig:
    # Everything ensure_vxlan() compares; a difference means delete + create
    # because the kernel cannot change the VNI or addresses of a live device.
    vni: int
    local: str | None
    group: str | None
    link: int
    port: int
    learning: bool
    proxy: bool


@dataclass(frozen=True)
class RawLink:
    name: str
    index: int
    flags: int
    master: int
    kind: str
    mac: str
    mtu: int
    alias: str
    vxlan: VxlanConfig | None


def mac_str(b: bytes | None) -> str:
    return ":".join(f"{x:02x}" for x in b) if b else ""


def mac_bytes(mac: str) -> bytes:
    try:
        b = bytes(int(x, 16) for x in mac.split(":"))
    except ValueError:
        b = b""
    if len(b) != 6:
        raise DataplaneError(f"invalid MAC address {mac!r}")
    return b


def ip_bytes(ip: str) -> tuple[int, bytes]:
    try:
        a = ipaddress.ip_address(ip)
    except ValueError:
        raise DataplaneError(f"invalid IP address {ip!r}") from None
    return (socket.AF_INET if a.version == 4 else socket.AF_INET6), a.packed


def ip_str(b: bytes | None) -> str | None:
    return str(ipaddress.ip_address(b)) if b else None


def u32(b: bytes | None) -> int:
    return U32.unpack(b[:4])[0] if b else 0


def parse_vxlan(data: bytes) -> VxlanConfig:
    a = nl.attrs(data)
    return VxlanConfig(
        vni=u32(a.get(VXLAN_ID)),
        local=ip_str(a.get(VXLAN_LOCAL) or a.get(VXLAN_LOCAL6)),
        group=ip_str(a.get(VXLAN_GROUP) or a.get(VXLAN_GROUP6)),
        link=u32(a.get(VXLAN_LINK)),
        port=struct.unpack(">H", a[VXLAN_PORT])[0] if VXLAN_PORT in a else 0,
        learning=bool(a.get(VXLAN_LEARNING, b"\0")[0]),
        proxy=bool(a.get(VXLAN_PROXY, b"\0")[0]),
    )


def parse_link(payload: bytes) -> RawLink:
    """An RTM_NEWLINK payload (ifinfomsg + attributes) as a RawLink."""
    _fam, _type, index, flags, _change = IFINFO.unpack_from(payload)
    a = nl.attrs(payload, IFINFO.size, only=LINK_ATTRS)
    kind, vx = "", None
    if IFLA_LINKINFO in a:
        info = nl.attrs(a[IFLA_LINKINFO])
        kind = nl.text(info.get(IFLA_INFO_KIND))
        if kind == "vxlan" and IFLA_INFO_DATA in info:
            vx = parse_vxlan(info[IFLA_INFO_DATA])
    return RawLink(
        name=nl.text(a.get(IFLA_IFNAME)),
        index=index,
        flags=flags,
        master=u32(a.get(IFLA_MASTER)),
        kind=kind,
        mac=mac_str(a.get(IFLA_ADDRESS)),
        mtu=u32(a.get(IFLA_MTU)),
        alias=nl.text(a.get(IFLA_IFALIAS)),
        vxlan=vx,
    )


def to_link(raw: RawLink, names: dict[int, str]) -> Link:
    vx = raw.vxlan
    return Link(
        name=raw.name,
        index=raw.index,
        kind=raw.kind,
        master=names.get(raw.master) if raw.master else None,
        up=bool(raw.flags & IFF_UP),
        mac=raw.mac,
        mtu=raw.mtu,
        alias=raw.alias,
        vxlan_id=vx.vni if vx else None,
        vxlan_local=vx.local if vx else None,
        vxlan_group=vx.group if vx else None,
        vxlan_proxy=vx.proxy if vx else None,
    )


def linkinfo(kind: str, *data: bytes) -> bytes:
    parts = [nl.attr(IFLA_INFO_KIND, nl.strz(kind))]
    if data:
        parts.append(nl.nest(IFLA_INFO_DATA, *data))
    return nl.nest(IFLA_LINKINFO, *parts)
