"""What this kernel can do, found by trying it.

Kernel configs differ (the dev/CI VMs have VXLAN and bridges but no 802.1Q
VLAN devices), and a module may be loadable on demand, so reading
``/proc/config.gz`` is not enough: :func:`probe_features` creates one
throwaway device of each kind and deletes it again.  It works inside the
given namespace under names nothing else uses, or, when no namespace is
given, inside a throwaway namespace of its own; it never touches the
interfaces of an existing namespace.
"""

from __future__ import annotations

import os
import secrets
import struct
from collections.abc import Callable

from kaon.dataplane import DataplaneError, LinkNotFound, NetlinkError
from kaon.dataplane import netlink as nl
from kaon.dataplane import netns as _netns
from kaon.dataplane.linux_l2 import LinuxL2
from kaon.dataplane.rtmsg import (
    IFINFO,
    IFLA_IFNAME,
    IFLA_LINK,
    U32,
    VETH_INFO_PEER,
    VXLAN_ID,
    linkinfo,
)

__all__ = ["probe_features"]

IFLA_VLAN_ID = 1
_WHAT = {
    "bridge": "Linux bridge devices",
    "vxlan": "VXLAN devices",
    "veth": "veth pairs",
    "vlan": "802.1Q VLAN devices",
}


def probe_features(netns: str | None = None) -> dict[str, bool | str]:
    """``{"bridge": bool, "vxlan": bool, "veth": bool, "vlan": bool, "<kind>_detail": str ...}``.

    A ``<kind>_detail`` key is present for each kind that is not supported,
    with the kernel's own words, e.g. ``"802.1Q VLAN devices are not supported
    by this kernel (ip link add ... type vlan: Unknown device type)"``.
    """
    if netns is not None:
        return _probe_in(netns)
    scratch = f"kaon-probe-{os.getpid()}-{secrets.token_hex(3)}"
    _netns.create(scratch)
    try:
        return _probe_in(scratch)
    finally:
        _netns.delete(scratch)


def _probe_in(netns_name: str) -> dict[str, bool | str]:
    tag = secrets.token_hex(3)  # "kp" + 6 hex + 2 stays within IFNAMSIZ (15)
    br, vx, va, vb, vl = (f"kp{tag}{s}" for s in ("br", "vx", "va", "vb", "vl"))
    vni = 0x800000 + secrets.randbelow(0x7FFFFF)  # unlikely to clash with a VNI in use
    result: dict[str, bool | str] = {}
    with LinuxL2(netns_name) as l2:
        try:
            _try(result, "bridge", lambda: _add(l2, br, linkinfo("bridge")))
            _try(result, "vxlan", lambda: _add(l2, vx, linkinfo("vxlan", nl.attr(VXLAN_ID, U32.pack(vni)))))
            peer = nl.attr(VETH_INFO_PEER, IFINFO.pack(0, 0, 0, 0, 0) + nl.attr(IFLA_IFNAME, nl.strz(vb)))
            _try(result, "veth", lambda: _add(l2, va, linkinfo("veth", peer)))
            parent = br if result["bridge"] else va if result["veth"] else None
            if parent is None:
                result["vlan"] = False
                result["vlan_detail"] = (
                    "802.1Q VLAN devices could not be probed: no bridge or veth to stack on"
                )
            else:
                _try(result, "vlan", lambda: _add_vlan(l2, vl, parent))
        finally:
            for name in (vl, vx, va, br):  # vb goes with va
                l2.delete_link(name, missing_ok=True)
    return result


def _try(result: dict[str, bool | str], kind: str, create: Callable[[], None]) -> None:
    try:
        create()
    except NetlinkError as e:
        reason = e.detail or os.strerror(e.errno)
        result[kind] = False
        result[f"{kind}_detail"] = (
            f"{_WHAT[kind]} are not supported by this kernel (ip link add ... type {kind}: {reason})"
        )
    except DataplaneError as e:
        result[kind] = False
        result[f"{kind}_detail"] = f"{_WHAT[kind]} could not be created: {e}"
    else:
        result[kind] = True


def _add(l2: LinuxL2, name: str, *attrs: bytes) -> None:
    # Created down: an up VXLAN device would bind a UDP port in the namespace.
    # (_create is package-private: the probe builds devices no public method makes.)
    l2._create(name, "probe device", *attrs, mtu=None, up=False)


def _add_vlan(l2: LinuxL2, name: str, parent: str) -> None:
    link = l2.link(parent)
    if link is None:
        raise LinkNotFound(f"probe device {parent!r} vanished")
    vlan = linkinfo("vlan", nl.attr(IFLA_VLAN_ID, struct.pack("=H", 42)))
    _add(l2, name, nl.attr(IFLA_LINK, U32.pack(link.index)), vlan)
