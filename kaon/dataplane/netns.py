"""Named network namespaces, and running code inside one from outside it.

A named namespace is what ``ip netns add NAME`` makes: the namespace file of
some task bind-mounted on ``/var/run/netns/NAME``, so it outlives every
process in it.  These helpers are compatible with ``ip netns`` both ways.

How code runs "inside" a namespace while the process stays where it is:
``setns(CLONE_NEWNET)`` changes the namespace of the calling *thread* only.
:func:`run_in` starts a short-lived thread, moves it into the namespace, runs
the callable there and lets the thread die, so no other thread ever sees a
changed namespace.  A socket keeps the namespace it was created in for its
whole life, so :func:`open_socket` gives the process a netlink (or any)
socket bound to the namespace, usable from every thread afterwards.

Why a thread and not pyroute2's ``NetNS``: pyroute2 0.9 creates each
namespaced socket in a forked child (5-20 ms depending on the size of the
process, and fork() in a multi-threaded agent is fragile) and keeps one socket
and one asyncio loop per calling thread.  A thread plus setns costs about
0.2 ms and gives one plain socket (measured on the 2-vCPU dev VM).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from kaon.dataplane import DataplaneError, NamespaceNotFound

__all__ = ["NETNS_RUN_DIR", "create", "delete", "exists", "list_names", "open_socket", "path", "run_in"]

NETNS_RUN_DIR = "/var/run/netns"  # iproute2's directory (/var/run is /run on Debian)

_CLONE_NEWNET = 0x40000000
_MS_BIND, _MS_REC, _MS_SHARED = 4096, 16384, 1 << 20
_MNT_DETACH = 2
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_run_dir_lock = threading.Lock()

T = TypeVar("T")


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise DataplaneError(f"invalid network namespace name {name!r}")


def path(name: str) -> str:
    """The bind-mount path of namespace ``name``."""
    _check_name(name)
    return os.path.join(NETNS_RUN_DIR, name)


def _libc_call(what: str, rc: int) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise DataplaneError(f"{what}: {os.strerror(err)} (errno {err})")


def exists(name: str) -> bool:
    """True if ``name`` is a mounted namespace (a leftover empty file is not one)."""
    try:
        st = os.stat(path(name))
    except FileNotFoundError:
        return False
    # Every namespace file lives on the nsfs pseudo filesystem; a plain file
    # left behind by an interrupted create lives on the run dir's filesystem.
    return st.st_dev == os.stat("/proc/self/ns/net").st_dev


def list_names(prefix: str = "") -> list[str]:
    """Names of the namespaces whose name starts with ``prefix``, sorted."""
    try:
        names = os.listdir(NETNS_RUN_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def _ensure_run_dir() -> None:
    # iproute2's dance: the run dir must be a shared mount point so that
    # namespaces mounted later are visible in every mount namespace.
    with _run_dir_lock:
        os.makedirs(NETNS_RUN_DIR, mode=0o755, exist_ok=True)
        d = NETNS_RUN_DIR.encode()
        if _libc.mount(b"none", d, b"none", _MS_SHARED | _MS_REC, None) == 0:
            return
        # Not a mount point yet: bind it onto itself, then make it shared.
        _libc_call(f"bind-mount {NETNS_RUN_DIR}", _libc.mount(d, d, b"none", _MS_BIND | _MS_REC, None))
        _libc_call(f"share {NETNS_RUN_DIR}", _libc.mount(b"none", d, b"none", _MS_SHARED | _MS_REC, None))


def _new_namespace_on(target: str) -> None:
    # Runs in a throwaway thread: unshare() gives only this thread a new
    # namespace; the bind mount (in the shared mount namespace) pins it.
    _libc_call("unshare(CLONE_NEWNET)", _libc.unshare(_CLONE_NEWNET))
    src = b"/proc/thread-self/ns/net"
    _libc_call(
        f"bind-mount namespace on {target}", _libc.mount(src, target.encode(), b"none", _MS_BIND, None)
    )


def create(name: str) -> None:
    """Create namespace ``name`` (with ``lo`` down, like ``ip netns add``); no-op if it exists."""
    target = path(name)
    if exists(name):
        return
    _ensure_run_dir()
    try:
        os.close(os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
    except FileExistsError:
        # Either another creator won the race (then it is a namespace now, or
        # will be in a moment) or an interrupted create left an empty file,
        # which we reuse as the mount point.
        if exists(name):
            return
    try:
        _in_thread(_new_namespace_on, target)
    except DataplaneError:
        if exists(name):  # lost a race against a concurrent create
            return
        _unlink(target)
        raise


def _unlink(p: str) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass


def delete(name: str, missing_ok: bool = True) -> None:
    """Remove namespace ``name`` (its devices go when the last user leaves it)."""
    target = path(name)
    if not os.path.lexists(target):
        if missing_ok:
            return
        raise NamespaceNotFound(f"network namespace {name!r} does not exist")
    if _libc.umount2(target.encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err != errno.EINVAL:  # EINVAL: not mounted (a leftover file): just unlink it
            raise DataplaneError(f"umount {target}: {os.strerror(err)} (errno {err})")
    _unlink(target)


def _in_thread(fn: Callable[..., T], *args: object) -> T:
    value: list[T] = []
    error: list[BaseException] = []

    def main() -> None:
        try:
            value.append(fn(*args))
        except BaseException as e:  # handed to the caller's thread
            error.append(e)

    t = threading.Thread(target=main, name="kaon-netns", daemon=True)
    t.start()
    t.join()
    if error:
        raise error[0]
    return value[0]


def run_in(name: str | None, fn: Callable[..., T], *args: object) -> T:
    """Call ``fn(*args)`` with the network namespace ``name`` (None: the current one).

    Runs in a fresh thread that enters the namespace and then ends; the
    caller's thread never changes namespace.  Exceptions propagate.  Keep
    ``fn`` short: it blocks the caller until it returns.
    """
    if name is None:
        return fn(*args)
    try:
        fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NamespaceNotFound(f"network namespace {name!r} does not exist") from None

    def enter_and_call() -> T:
        _libc_call(f"setns into network namespace {name!r}", _libc.setns(fd, _CLONE_NEWNET))
        return fn(*args)

    try:
        return _in_thread(enter_and_call)
    finally:
        os.close(fd)


def open_socket(name: str | None, family: int, type: int, proto: int = 0) -> socket.socket:
    """A socket created in namespace ``name``; it stays bound to it for life."""
    return run_in(name, socket.socket, family, type | socket.SOCK_CLOEXEC, proto)
