"""nftables through libnftables (ctypes), inside a named network namespace.

Why not the ``nft`` binary or python3-nftables: neither is installed on
every host kaon runs on, while libnftables1 comes with the kernel tooling
(and python3-nftables is only a ctypes wrapper over it, tied to the system
python). libnftables talks netlink from the calling thread, so
:func:`kaon.dataplane.netns.run_in` (a throwaway thread that setns()es)
puts it in the router's namespace without forking. One buffer is one
netlink batch: the kernel applies all of it or none of it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import secrets
import socket
import struct
import threading

from kaon.dataplane import DataplaneError, netns

_lib: ctypes.CDLL | None = None
_lock = threading.Lock()


class NftError(DataplaneError):
    pass


def _library() -> ctypes.CDLL:
    global _lib
    with _lock:
        if _lib is None:
            name = ctypes.util.find_library("nftables") or "libnftables.so.1"
            try:
                lib = ctypes.CDLL(name)
            except OSError as exc:
                raise NftError(f"libnftables is not installed ({exc}); install libnftables1") from None
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            for fn in (lib.nft_ctx_buffer_output, lib.nft_ctx_buffer_error):
                fn.argtypes = [ctypes.c_void_p]
            for fn in (lib.nft_ctx_get_output_buffer, lib.nft_ctx_get_error_buffer):
                fn.argtypes = [ctypes.c_void_p]
                fn.restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            _lib = lib
        return _lib


# nft_ctx_output_set_flags bits (libnftables.h), for callers that read back.
OUTPUT_HANDLE, OUTPUT_JSON = 1 << 3, 1 << 4


def _run_here(text: str, flags: int = 0) -> str:
    lib = _library()
    ctx = lib.nft_ctx_new(0)
    try:
        if flags:
            lib.nft_ctx_output_set_flags.argtypes = [ctypes.c_void_p, ctypes.c_uint]
            lib.nft_ctx_output_set_flags(ctx, flags)
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        rc = lib.nft_run_cmd_from_buffer(ctx, text.encode())
        out = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode()
        err = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode()
    finally:
        lib.nft_ctx_free(ctx)
    if rc != 0:
        raise NftError(f"nft failed: {err.strip() or rc}")
    return out


def run(namespace: str | None, text: str, flags: int = 0) -> str:
    """Run an nft script (one transaction) in ``namespace``; its output (``flags``: OUTPUT_*)."""
    return netns.run_in(namespace, _run_here, text, flags)


def replace_table(namespace: str | None, family: str, table: str, body: str) -> None:
    """Atomically make ``table`` exactly ``body`` (chains and rules), whatever was there.

    Declaring the table first makes the delete valid when it does not exist
    yet; all three commands go in one batch, so packets see the old table or
    the new one, never none.
    """
    run(namespace, f"table {family} {table} {{}}\ndelete table {family} {table}\n"
                   f"table {family} {table} {{\n{body}}}\n")


def list_table(namespace: str | None, family: str, table: str) -> str:
    return run(namespace, f"list table {family} {table}")


# NFT_MSG_GETGEN over NETLINK_NETFILTER (linux/netfilter/nf_tables.h, nfnetlink.h).
_NETLINK_NETFILTER, _GETGEN, _NFTA_GEN_ID, _NLMSG_ERROR = 12, (10 << 8) | 16, 1, 2


def generation(namespace: str | None) -> int:
    """The ruleset generation of ``namespace``: the kernel bumps it on every committed nftables
    transaction there, whoever makes it — unchanged since a reading means no table changed."""
    sock = netns.open_socket(namespace, socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_NETFILTER)
    try:
        sock.settimeout(2)
        sock.send(struct.pack("=LHHLLBBH", 20, _GETGEN, 1, 1, 0, socket.AF_UNSPEC, 0, 0))
        data = sock.recv(65536)
    finally:
        sock.close()
    length, kind = struct.unpack_from("=LH", data)
    if kind == _NLMSG_ERROR:
        raise NftError(f"nft generation: netlink error {-struct.unpack_from('=i', data, 16)[0]}")
    offset = 20  # nlmsghdr + nfgenmsg
    while offset + 4 <= length:
        size, attr = struct.unpack_from("=HH", data, offset)
        if attr & 0x3FFF == _NFTA_GEN_ID:
            return int(struct.unpack_from("!L", data, offset + 4)[0])
        offset += (size + 3) & ~3
    raise NftError("nft generation: no NFTA_GEN_ID in the kernel's answer")


def netdev_hooks_by_name(namespace: str | None) -> bool:
    """Whether nftables in ``namespace`` hooks a chain to a device by name — before the device exists,
    and again when it is made anew (Linux 6.16 on), on its ingress and its egress hook. Then a stateful
    port's anti-spoofing is a chain on its tap's own ingress hook, and what its MACs do not name of its
    ingress one on its egress hook (kaon.agent.fw_plan ``per_device``); before, a tap that Nova deletes
    and plugs again would take its chains with it, so the bridge's hooks are used."""
    tag = secrets.token_hex(3)
    table = f"kaon-probe-{tag}"
    try:
        run(namespace, f"table netdev {table} {{\n"
                       + "".join(f" chain {hook} {{\n  type filter hook {hook} device \"kpnd{tag}\" "
                                 "priority filter; policy accept;\n }\n" for hook in ("ingress", "egress"))
                       + "}\n")
    except NftError:
        return False
    run(namespace, f"delete table netdev {table}\n")
    return True
