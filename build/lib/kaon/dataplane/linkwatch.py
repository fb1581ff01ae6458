"""Link events of one network namespace, delivered from a background thread.

:class:`LinkWatcher` subscribes a netlink socket, created inside the
namespace, to RTNLGRP_LINK and calls ``callback(event, ifname)``:

* ``("add", name)`` for RTM_NEWLINK: the device appeared *or changed* (up,
  down, master, mtu, ...); the callback re-reads what it cares about.
* ``("del", name)`` for RTM_DELLINK, for a device moved to another namespace,
  and for the old name of a renamed device.

Bridge-port notifications (RTM_NEWLINK/RTM_DELLINK of family AF_BRIDGE, sent
when a device joins or leaves a bridge) are not link events: a DELLINK of
that family means "no longer a bridge port", not "gone", so they are skipped.

When the kernel drops events because the socket buffer overflowed (ENOBUFS),
the watcher re-reads every link and reports ``del`` for each name it knew that
is gone and ``add`` for every name present, so the callback never misses a
device for long.  A callback that raises is logged and the watcher goes on.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import socket
import threading
from collections.abc import Callable

from kaon.dataplane import netlink as nl
from kaon.dataplane.rtmsg import IFINFO, IFLA_IFNAME

__all__ = ["LinkWatcher"]

log = logging.getLogger(__name__)
_RCVBUF = 8 << 20  # bursts of thousands of events (resync) fit without ENOBUFS
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


class LinkWatcher:
    """One watcher thread; :meth:`start` returns the idempotent stop function."""

    def __init__(
        self,
        netns: str | None,
        callback: Callable[[str, str], None],
        snapshot: Callable[[], dict[int, str]],
    ) -> None:
        self.netns = netns
        self._callback = callback
        self._snapshot = snapshot  # index -> name of every link, from another socket
        self._names: dict[int, str] = {}
        self._nl: nl.Rtnl | None = None
        self._wake_r, self._wake_w = -1, -1
        self._thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def start(self) -> Callable[[], None]:
        self._nl = nl.Rtnl(self.netns, groups=nl.RTMGRP_LINK)
        try:
            self._nl.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RCVBUF)
        except OSError:  # not root: the plain limit (net.core.rmem_max) applies
            self._nl.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
        # Subscribe first, then read the current names: a change racing with
        # the snapshot shows up as an event afterwards instead of being lost.
        self._names = self._snapshot()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(
            target=self._run, name=f"kaon-linkwatch-{self.netns or 'self'}", daemon=True
        )
        self._thread.start()
        return self.stop

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        os.write(self._wake_w, b"x")
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        if self._nl is not None:
            self._nl.close()

    def _run(self) -> None:
        assert self._nl is not None
        while not self._stopped.is_set():
            ready, _, _ = select.select([self._nl.fileno(), self._wake_r], [], [])
            if self._stopped.is_set():
                return
            if self._nl.fileno() not in ready:
                continue
            try:
                data = self._nl.recv()
            except OSError as e:
                if self._stopped.is_set():
                    return
                if e.errno == errno.ENOBUFS:
                    self._resync()
                    continue
                log.error("link watcher for namespace %s stops: %s", self.netns, e)
                return
            for msg_type, _flags, _seq, payload in nl.split(data):
                if msg_type in (nl.RTM_NEWLINK, nl.RTM_DELLINK):
                    self._on_link(msg_type, payload)

    def _on_link(self, msg_type: int, payload: bytes) -> None:
        family, _type, index, _flags, _change = IFINFO.unpack_from(payload)
        if family != socket.AF_UNSPEC:
            return  # an AF_BRIDGE port notification, see the module docstring
        name = nl.text(nl.attrs(payload, IFINFO.size).get(IFLA_IFNAME))
        if msg_type == nl.RTM_DELLINK:
            self._names.pop(index, None)
            self._emit("del", name)
            return
        old = self._names.get(index)
        self._names[index] = name
        if old is not None and old != name:
            self._emit("del", old)
        self._emit("add", name)

    def _resync(self) -> None:
        log.warning("link watcher for namespace %s lost events (ENOBUFS); re-reading all links", self.netns)
        try:
            now = self._snapshot()
        except Exception:
            log.exception("link watcher for namespace %s: re-reading links failed", self.netns)
            return
        gone = set(self._names.values()) - set(now.values())
        self._names = now
        for name in sorted(gone):
            self._emit("del", name)
        for name in sorted(now.values()):
            self._emit("add", name)

    def _emit(self, event: str, name: str) -> None:
        try:
            self._callback(event, name)
        except Exception:
            log.exception("link watcher callback failed for %s %s", event, name)
