"""Linux L2 devices in one network namespace: bridges, VXLAN, veth, FDB, neighbours.

:class:`LinuxL2` is what the Linux bridge agent programs through.  It is bound
to a namespace name (None: the process's own) and keeps one netlink socket for
its life.  Every method reads the one device it needs (a single RTM_GETLINK,
never a full dump) and writes only what differs, so calling it again is a
no-op: no error and no change in the kernel.  Only :meth:`LinuxL2.links`
dumps, once per call.

Interface names are kernel names (at most 15 bytes).  Failures raise
:class:`~kaon.dataplane.DataplaneError` subclasses; a device that must exist
and does not raises :class:`~kaon.dataplane.LinkNotFound`.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Callable

from kaon.dataplane import DataplaneError, LinkNotFound, NamespaceNotFound, NetlinkError, netns
from kaon.dataplane import netlink as nl
from kaon.dataplane.linkwatch import LinkWatcher
from kaon.dataplane.rtmsg import (
    AF_BRIDGE,
    IFF_UP,
    IFINFO,
    IFLA_IFALIAS,
    IFLA_IFNAME,
    IFLA_MASTER,
    IFLA_MTU,
    IFLA_NET_NS_FD,
    NDA_DST,
    NDA_IFINDEX,
    NDA_LLADDR,
    NDMSG,
    NTF_SELF,
    NUD_NOARP,
    NUD_PERMANENT,
    U32,
    VETH_INFO_PEER,
    VXLAN_GROUP,
    VXLAN_GROUP6,
    VXLAN_ID,
    VXLAN_LEARNING,
    VXLAN_LINK,
    VXLAN_LOCAL,
    VXLAN_LOCAL6,
    VXLAN_PORT,
    VXLAN_PROXY,
    Link,
    RawLink,
    VxlanConfig,
    ip_bytes,
    ip_str,
    linkinfo,
    mac_bytes,
    mac_str,
    parse_link,
    to_link,
)

__all__ = ["Link", "LinuxL2"]


def _open_netns(name: str) -> int:
    try:
        return os.open(netns.path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceNotFound(f"network namespace {name!r} does not exist") from None


IFLA_BR_NF_CALL_IPTABLES, IFLA_BR_NF_CALL_IP6TABLES = 36, 37


def _nf_call(on: bool) -> tuple[bytes, bytes]:
    value = bytes([1 if on else 0])
    return nl.attr(IFLA_BR_NF_CALL_IPTABLES, value), nl.attr(IFLA_BR_NF_CALL_IP6TABLES, value)


class LinuxL2:
    """L2 devices of namespace ``netns`` (None: the current one), over one netlink socket."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._nl = nl.Rtnl(netns)
        self._watch_stops: list[Callable[[], None]] = []

    def close(self) -> None:
        for stop in list(self._watch_stops):
            stop()
        self._nl.close()

    def __enter__(self) -> LinuxL2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ reading
    def links(self) -> dict[str, Link]:
        """Every interface of the namespace by name (one netlink dump)."""
        req = IFINFO.pack(0, 0, 0, 0, 0)
        raws = [parse_link(p) for _t, p in self._nl.request(nl.RTM_GETLINK, nl.NLM_F_DUMP, req, "dump links")]
        names = {r.index: r.name for r in raws}
        return {r.name: to_link(r, names) for r in raws}

    def link(self, name: str) -> Link | None:
        """One interface by name, or None."""
        raw = self._get(name)
        if raw is None:
            return None
        names = {}
        if raw.master:
            m = self._get_index(raw.master)
            names = {m.index: m.name} if m else {}
        return to_link(raw, names)

    def _get(self, name: str) -> RawLink | None:
        req = IFINFO.pack(0, 0, 0, 0, 0) + nl.attr(IFLA_IFNAME, nl.strz(name))
        return self._get_req(req, f"get link {name}")

    def _get_index(self, index: int) -> RawLink | None:
        return self._get_req(IFINFO.pack(0, 0, index, 0, 0), f"get link #{index}")

    def _get_req(self, req: bytes, what: str) -> RawLink | None:
        try:
            replies = self._nl.request(nl.RTM_GETLINK, 0, req, what)
        except NetlinkError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        return parse_link(replies[0][1]) if replies else None

    def _need(self, name: str) -> RawLink:
        raw = self._get(name)
        if raw is None:
            where = f" in network namespace {self.netns!r}" if self.netns else ""
            raise LinkNotFound(f"no network interface {name!r}{where}")
        return raw

    # ------------------------------------------------------------ link writes
    def _setlink(self, raw: RawLink, what: str, *attrs: bytes, up: bool | None = None) -> None:
        flags = (IFF_UP if up else 0) if up is not None else 0
        change = IFF_UP if up is not None else 0
        req = IFINFO.pack(0, 0, raw.index, flags, change) + b"".join(attrs)
        self._nl.request(nl.RTM_SETLINK, 0, req, f"{what} {raw.name}")

    def _converge(self, raw: RawLink, mtu: int | None, alias: str | None, up: bool | None) -> None:
        # One RTM_SETLINK carrying only what differs; nothing when all matches.
        attrs = []
        if mtu is not None and mtu != raw.mtu:
            attrs.append(nl.attr(IFLA_MTU, U32.pack(mtu)))
        if alias is not None and alias != raw.alias:
            attrs.append(nl.attr(IFLA_IFALIAS, alias.encode()))  # no NUL: it would be stored
        up_change = up if up is not None and up != bool(raw.flags & IFF_UP) else None
        if attrs or up_change is not None:
            self._setlink(raw, "configure", *attrs, up=up_change)

    def _create(
        self, name: str, what: str, *attrs: bytes, mtu: int | None, up: bool = True
    ) -> RawLink | None:
        """Create a device; return None when a concurrent creator won (then re-read)."""
        body = [nl.attr(IFLA_IFNAME, nl.strz(name)), *attrs]
        if mtu is not None:
            body.append(nl.attr(IFLA_MTU, U32.pack(mtu)))
        req = IFINFO.pack(0, 0, 0, IFF_UP if up else 0, IFF_UP if up else 0) + b"".join(body)
        try:
            self._nl.request(nl.RTM_NEWLINK, nl.NLM_F_CREATE | nl.NLM_F_EXCL, req, f"create {what} {name}")
        except NetlinkError as e:
            if e.errno != errno.EEXIST:
                raise
        return self._get(name)

    def _of_kind(self, name: str, kind: str) -> RawLink | None:
        raw = self._get(name)
        if raw is not None and raw.kind != kind:
            raise DataplaneError(f"{name!r} exists but is a {raw.kind or 'non-virtual'} device, not a {kind}")
        return raw

    def ensure_bridge(self, name: str, mtu: int | None = None, alias: str | None = None,
                      netfilter: bool | None = None) -> None:
        """Create bridge ``name`` if missing; set ``mtu`` and ``alias`` when given; bring it up.

        ``netfilter``: whether its IPv4/IPv6 traffic goes through br_netfilter (the bridge's own
        ``nf_call_iptables``/``ip6tables``; None: leave as is). A new bridge is created with it,
        so no packet crosses it before the setting holds."""
        raw = self._of_kind(name, "bridge")
        if raw is None:
            data = _nf_call(netfilter) if netfilter is not None else ()
            raw = self._create(name, "bridge", linkinfo("bridge", *data), mtu=mtu)
        elif netfilter is not None:
            self.set_bridge_netfilter(name, netfilter)
        self._converge(self._need_created(raw, name), mtu, alias, up=True)

    def set_bridge_netfilter(self, name: str, on: bool) -> None:
        """Bridge ``name``'s own br_netfilter switches (``ip link set NAME type bridge nf_call_iptables
        1 nf_call_ip6tables 1``). They add to the namespace-wide sysctls: with those at 1, every
        bridge's traffic goes through netfilter whatever this says."""
        raw = self._of_kind(name, "bridge")
        if raw is None:
            raise LinkNotFound(f"no bridge {name!r}")
        # RTM_NEWLINK on an existing link (no NLM_F_CREATE) changes its kind's options; RTM_SETLINK would not.
        req = IFINFO.pack(0, 0, raw.index, 0, 0) + linkinfo("bridge", *_nf_call(on))
        self._nl.request(nl.RTM_NEWLINK, 0, req, f"set netfilter of bridge {name}")

    def _need_created(self, raw: RawLink | None, name: str) -> RawLink:
        if raw is None:  # created and deleted again by someone else in between
            raise LinkNotFound(f"{name!r} vanished right after it was created")
        return raw

    def ensure_vxlan(
        self,
        name: str,
        vni: int,
        local_ip: str,
        dev: str | None,
        *,
        dstport: int = 4789,
        learning: bool = False,
        proxy: bool = True,
        group: str | None = None,
        mtu: int | None = None,
        alias: str | None = None,
    ) -> None:
        """Create VXLAN device ``name`` as asked, up.

        An existing ``name`` whose VNI, local or group address, underlay
        device, port, learning or proxy setting differs is deleted and created
        again (the kernel cannot change those on a live device).
        """
        link = self._need(dev).index if dev else 0
        local = ip_str(ip_bytes(local_ip)[1]) if local_ip else None
        remote = ip_str(ip_bytes(group)[1]) if group else None
        want = VxlanConfig(vni, local, remote, link, dstport, learning, proxy)
        raw = self._of_kind(name, "vxlan")
        if raw is not None and raw.vxlan != want:
            self.delete_link(name)
            raw = None
        if raw is None:
            raw = self._create(name, "vxlan", linkinfo("vxlan", *self._vxlan_attrs(want)), mtu=mtu)
        self._converge(self._need_created(raw, name), mtu, alias, up=True)

    @staticmethod
    def _vxlan_attrs(v: VxlanConfig) -> list[bytes]:
        out = [nl.attr(VXLAN_ID, U32.pack(v.vni))]
        if v.local:
            fam, b = ip_bytes(v.local)
            out.append(nl.attr(VXLAN_LOCAL if fam == socket.AF_INET else VXLAN_LOCAL6, b))
        if v.group:
            fam, b = ip_bytes(v.group)
            out.append(nl.attr(VXLAN_GROUP if fam == socket.AF_INET else VXLAN_GROUP6, b))
        if v.link:
            out.append(nl.attr(VXLAN_LINK, U32.pack(v.link)))
        out.append(nl.attr(VXLAN_PORT, struct.pack(">H", v.port)))
        out.append(nl.attr(VXLAN_LEARNING, bytes([v.learning])))
        out.append(nl.attr(VXLAN_PROXY, bytes([v.proxy])))
        return out

    def ensure_veth(self, name: str, peer: str, peer_netns: str | None = None, *, mtu: int | None = None,
                    up: bool = True) -> None:  # fmt: skip
        """Create veth pair ``name``/``peer`` (the peer in ``peer_netns``) if ``name`` is missing.

        An existing ``name`` is kept whatever its peer is (the peer may live
        in a namespace this object cannot see); only mtu and up converge.
        """
        raw = self._of_kind(name, "veth")
        if raw is None:
            fd = _open_netns(peer_netns) if peer_netns else None
            try:
                peer_attrs = [nl.attr(IFLA_IFNAME, nl.strz(peer))]
                if fd is not None:
                    peer_attrs.append(nl.attr(IFLA_NET_NS_FD, U32.pack(fd)))
                if mtu is not None:
                    peer_attrs.append(nl.attr(IFLA_MTU, U32.pack(mtu)))
                info = nl.attr(VETH_INFO_PEER, IFINFO.pack(0, 0, 0, 0, 0) + b"".join(peer_attrs))
                raw = self._create(name, "veth", linkinfo("veth", info), mtu=mtu, up=up)
            finally:
                if fd is not None:
                    os.close(fd)
        self._converge(self._need_created(raw, name), mtu, None, up=up)

    def set_master(self, dev: str, bridge: str | None) -> None:
        """Enslave ``dev`` to ``bridge``; None releases it (nomaster)."""
        raw = self._need(dev)
        index = self._need(bridge).index if bridge is not None else 0
        if raw.master != index:
            self._setlink(raw, "set master of", nl.attr(IFLA_MASTER, U32.pack(index)))

    def set_up(self, dev: str, up: bool = True) -> None:
        self._converge(self._need(dev), None, None, up=up)

    def set_mtu(self, dev: str, mtu: int) -> None:
        self._converge(self._need(dev), mtu, None, up=None)

    def set_alias(self, dev: str, alias: str) -> None:
        self._converge(self._need(dev), None, alias, up=None)

    def delete_link(self, name: str, missing_ok: bool = True) -> None:
        req = IFINFO.pack(0, 0, 0, 0, 0) + nl.attr(IFLA_IFNAME, nl.strz(name))
        try:
            self._nl.request(nl.RTM_DELLINK, 0, req, f"delete link {name}")
        except NetlinkError as e:
            if e.errno != errno.ENODEV:
                raise
            if not missing_ok:
                raise LinkNotFound(f"no network interface {name!r} to delete") from None

    # ------------------------------------------------------------ FDB and neighbours
    def _neigh_dump(self, family: int, index: int, what: str) -> list[tuple[int, int, dict[int, bytes]]]:
        # Strict checking: the FDB dump (AF_BRIDGE) filters by the header's
        # ifindex, the neighbour dump by an NDA_IFINDEX attribute.
        if family == AF_BRIDGE:
            req = NDMSG.pack(family, index, 0, 0, 0)
        else:
            req = NDMSG.pack(family, 0, 0, 0, 0) + nl.attr(NDA_IFINDEX, U32.pack(index))
        out = []
        for _t, p in self._nl.request(nl.RTM_GETNEIGH, nl.NLM_F_DUMP, req, what):
            _fam, ifindex, state, flags, _type = NDMSG.unpack_from(p)
            if ifindex == index:
                out.append((state, flags, nl.attrs(p, NDMSG.size)))
        return out

    def fdb(self, dev: str) -> set[tuple[str, str]]:
        """``{(mac, dst)}`` of ``dev``'s own permanent FDB entries that have a destination."""
        out = set()
        for state, flags, a in self._neigh_dump(AF_BRIDGE, self._need(dev).index, f"dump fdb of {dev}"):
            if flags & NTF_SELF and state & NUD_PERMANENT and NDA_DST in a and NDA_LLADDR in a:
                out.add((mac_str(a[NDA_LLADDR]), str(ip_str(a[NDA_DST]))))
        return out

    def _fdb_req(self, dev: str, mac: str, dst: str) -> bytes:
        _fam, ip = ip_bytes(dst)
        hdr = NDMSG.pack(AF_BRIDGE, self._need(dev).index, NUD_PERMANENT | NUD_NOARP, NTF_SELF, 0)
        return hdr + nl.attr(NDA_LLADDR, mac_bytes(mac)) + nl.attr(NDA_DST, ip)

    def fdb_add(self, dev: str, mac: str, dst: str) -> None:
        """Add ``mac dst`` to VXLAN ``dev``'s FDB.

        The all-zero (flood) and multicast MACs are appended: several
        destinations each, like ``bridge fdb append``.  A unicast MAC has one
        destination, so it is replaced (``bridge fdb replace``): a MAC that
        moved to another host simply points at the new VTEP.
        """
        b = mac_bytes(mac)
        mode = nl.NLM_F_APPEND if b == bytes(6) or b[0] & 1 else nl.NLM_F_REPLACE
        self._nl.request(nl.RTM_NEWNEIGH, nl.NLM_F_CREATE | mode, self._fdb_req(dev, mac, dst),
                         f"fdb add {mac} dst {dst} dev {dev}")  # fmt: skip

    def fdb_del(self, dev: str, mac: str, dst: str) -> None:
        try:
            self._nl.request(
                nl.RTM_DELNEIGH, 0, self._fdb_req(dev, mac, dst), f"fdb del {mac} dst {dst} dev {dev}"
            )
        except NetlinkError as e:
            if e.errno != errno.ENOENT:
                raise

    def neighbours(self, dev: str) -> set[tuple[str, str]]:
        """``{(ip, mac)}`` of ``dev``'s permanent neighbour (ARP/ND) entries."""
        out = set()
        for state, _flags, a in self._neigh_dump(
            socket.AF_UNSPEC, self._need(dev).index, f"dump neighbours of {dev}"
        ):
            if state & NUD_PERMANENT and NDA_DST in a and NDA_LLADDR in a:
                out.add((str(ip_str(a[NDA_DST])), mac_str(a[NDA_LLADDR])))
        return out

    def _neigh_req(self, dev: str, ip: str, state: int, mac: str | None = None) -> bytes:
        fam, b = ip_bytes(ip)
        req = NDMSG.pack(fam, self._need(dev).index, state, 0, 0) + nl.attr(NDA_DST, b)
        return req + (nl.attr(NDA_LLADDR, mac_bytes(mac)) if mac else b"")

    def neigh_replace(self, dev: str, ip: str, mac: str) -> None:
        """Make ``ip lladdr mac`` a permanent neighbour on ``dev`` (ARP answered by VXLAN proxy)."""
        self._nl.request(nl.RTM_NEWNEIGH, nl.NLM_F_CREATE | nl.NLM_F_REPLACE,
                         self._neigh_req(dev, ip, NUD_PERMANENT, mac), f"neigh replace {ip} dev {dev}")  # fmt: skip

    def neigh_del(self, dev: str, ip: str, mac: str) -> None:
        """Delete neighbour ``ip`` on ``dev`` only if it still points at ``mac``.

        The kernel deletes by IP alone; checking the MAC first keeps a delete
        planned for an old port from removing the entry a newer port wrote.
        """
        what = f"neigh del {ip} dev {dev}"
        try:
            replies = self._nl.request(nl.RTM_GETNEIGH, 0, self._neigh_req(dev, ip, 0), what)
            if not replies or mac_str(nl.attrs(replies[0][1], NDMSG.size).get(NDA_LLADDR)) != mac_str(
                mac_bytes(mac)
            ):
                return
            self._nl.request(nl.RTM_DELNEIGH, 0, self._neigh_req(dev, ip, 0), what)
        except NetlinkError as e:
            if e.errno != errno.ENOENT:
                raise

    # ------------------------------------------------------------ events
    def watch(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        """Call ``callback(event, ifname)`` from a thread for link changes; return stop().

        See :class:`kaon.dataplane.linkwatch.LinkWatcher` for the events.
        """
        watcher = LinkWatcher(self.netns, callback, lambda: {x.index: x.name for x in self.links().values()})
        stop = watcher.start()

        def stop_and_forget() -> None:
            stop()
            if stop_and_forget in self._watch_stops:
                self._watch_stops.remove(stop_and_forget)

        self._watch_stops.append(stop_and_forget)
        return stop_and_forget
