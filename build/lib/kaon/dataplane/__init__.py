"""Programming the Linux data plane: namespaces, links, bridges, VXLAN, FDB, neighbours.

Everything here talks to the kernel directly over rtnetlink (no subprocesses)
and works on a *named* network namespace while the calling process stays in
its own one (see :mod:`kaon.dataplane.netns` for how and why).  Every
``ensure_x`` is idempotent and every ``delete_x`` takes ``missing_ok``.

Errors: one tree, raised (never logged and swallowed)::

    DataplaneError                  any failure to read or program the kernel
    ├── NetlinkError                the kernel refused a request (.errno, .detail)
    ├── LinkNotFound                a named interface does not exist
    └── NamespaceNotFound           a named network namespace does not exist
"""

from __future__ import annotations

import os

__all__ = ["DataplaneError", "LinkNotFound", "NamespaceNotFound", "NetlinkError"]


class DataplaneError(Exception):
    """The data plane could not be read or programmed."""


class NetlinkError(DataplaneError):
    """The kernel answered a netlink request with an error.

    ``errno`` is the positive error number; ``detail`` is the kernel's extended
    ack message when it sent one (e.g. "Unknown device type"), else "".
    """

    def __init__(self, errno: int, what: str, detail: str = "") -> None:
        self.errno = errno
        self.detail = detail
        text = f"{what}: {os.strerror(errno)} (errno {errno})"
        if detail:
            text += f": {detail}"
        super().__init__(text)


class LinkNotFound(DataplaneError):
    """A named network interface does not exist (in the namespace asked about)."""


class NamespaceNotFound(DataplaneError):
    """A named network namespace does not exist."""
