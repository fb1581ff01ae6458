"""A small synchronous rtnetlink client: one socket, one lock, struct-level codec.

Why not pyroute2's IPRoute for the hot path: pyroute2 0.9 runs every request
through an asyncio loop, keeps a socket *per calling thread* (each one forked
into the namespace) and decodes every attribute of every message; a dump of
2,000 links took ~0.5 s there.  kaon only needs a handful of message types and
attributes, so it packs and parses them with :mod:`struct` directly (about ten
times faster) on one socket shared by all threads under a lock.

Messages are ``(type, flags, payload)``; attributes are built with
:func:`attr` / :func:`nest` and read with :func:`attrs` (type -> raw bytes; a
repeated type keeps the last).  Errors become :class:`NetlinkError` carrying the
kernel's extended-ack text ("Unknown device type", ...).
"""

from __future__ import annotations

import itertools
import socket
import struct
import threading
from collections.abc import Iterator

from kaon.dataplane import DataplaneError, NetlinkError, netns

# netlink core (linux/netlink.h)
NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN = 2, 3, 4
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200  # on NLMSG_ERROR
NLMSGERR_ATTR_MSG = 1
NLA_F_NESTED = 0x8000
_NLA_TYPE_MASK = 0x3FFF
SOL_NETLINK = 270
NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK = 10, 11, 12
RTMGRP_LINK = 0x1

# rtnetlink message types (linux/rtnetlink.h)
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_NLA = struct.Struct("=HH")  # nlattr: len, type
_ERR = struct.Struct("=i")
_RECV_SIZE = 1 << 16  # dump skbs are capped at 32 KiB by the kernel


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    n = _NLA.size + len(payload)
    return _NLA.pack(n, kind) + payload + b"\0" * (_align(n) - n)


def nest(kind: int, *children: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(children))


def strz(s: str) -> bytes:
    return s.encode() + b"\0"


def attrs(
    data: bytes, offset: int = 0, end: int | None = None, only: frozenset[int] | None = None
) -> dict[int, bytes]:
    """Attributes of ``data[offset:end]`` by type (flag bits masked off).

    ``only`` limits the result to those types; a link message carries about
    forty attributes, and copying just the few wanted halves a big dump's cost.
    """
    end = len(data) if end is None else end
    out: dict[int, bytes] = {}
    unpack = _NLA.unpack_from
    while offset + 4 <= end:
        n, kind = unpack(data, offset)
        if n < 4:
            break
        kind &= _NLA_TYPE_MASK
        if only is None or kind in only:
            out[kind] = data[offset + 4 : offset + n]
        offset += (n + 3) & ~3
    return out


def text(value: bytes | None) -> str:
    """A NUL-terminated string attribute as str ("" when absent)."""
    if not value:
        return ""
    return value.split(b"\0", 1)[0].decode(errors="replace")


class Rtnl:
    """A NETLINK_ROUTE socket in namespace ``netns`` (None: the current one).

    Thread-safe: a request and the reading of its answer happen under one
    lock, so concurrent callers take turns on the single socket.
    """

    def __init__(self, netns_name: str | None = None, groups: int = 0) -> None:
        self.netns = netns_name
        sock = netns.open_socket(netns_name, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        try:
            # Extended acks give the kernel's own error text; capped acks do
            # not echo our request back; strict checking makes the kernel
            # filter dumps by the header fields (e.g. one device's FDB).
            for opt in (NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK):
                sock.setsockopt(SOL_NETLINK, opt, 1)
            sock.bind((0, groups))
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._buf = bytearray(_RECV_SIZE)

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()

    def request(self, msg_type: int, flags: int, payload: bytes, what: str) -> list[tuple[int, bytes]]:
        """Send one request with NLM_F_ACK; return its replies as ``(type, payload)``.

        A dump (``flags`` has NLM_F_DUMP) returns every part; other requests
        return the replies before the ack (e.g. one RTM_NEWLINK for a get).
        Raises :class:`NetlinkError` with ``what`` in the message.
        """
        with self._lock:
            seq = next(self._seq) & 0xFFFFFFFF
            msg = _HDR.pack(_HDR.size + len(payload), msg_type, flags | NLM_F_REQUEST | NLM_F_ACK, seq, 0)
            try:
                self.sock.send(msg + payload)
                return list(self._replies(seq, what))
            except OSError as e:  # a closed socket; not the kernel refusing (NetlinkError)
                raise DataplaneError(f"{what}: netlink socket failed: {e}") from e

    def recv(self) -> bytes:
        """One datagram (for event sockets)."""
        n = self.sock.recv_into(self._buf)
        return bytes(self._buf[:n])

    def _replies(self, seq: int, what: str) -> Iterator[tuple[int, bytes]]:
        while True:
            data = self.recv()
            for msg_type, flags, mseq, payload in split(data):
                if mseq != seq:
                    continue  # a stale answer to a request abandoned mid-way
                if msg_type == NLMSG_DONE:
                    return
                if msg_type == NLMSG_ERROR:
                    (err,) = _ERR.unpack_from(payload)
                    if err:
                        raise NetlinkError(-err, what, _ack_message(payload, flags))
                    return
                if msg_type == NLMSG_OVERRUN:
                    raise DataplaneError(f"{what}: netlink overrun")
                yield msg_type, payload


def split(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """The messages in one datagram as ``(type, flags, seq, payload)``."""
    off, end = 0, len(data)
    while off + _HDR.size <= end:
        length, msg_type, flags, seq, _pid = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            break
        yield msg_type, flags, seq, data[off + _HDR.size : off + length]
        off += _align(length)


def _ack_message(payload: bytes, flags: int) -> str:
    if not flags & NLM_F_ACK_TLVS:
        return ""
    # error code + the request's header (+ its payload unless capped), then TLVs
    off = _ERR.size + _HDR.size
    if not flags & NLM_F_CAPPED:
        (orig_len,) = struct.unpack_from("=I", payload, _ERR.size)
        off = _ERR.size + _align(orig_len)
    return text(attrs(payload, off).get(NLMSGERR_ATTR_MSG))
