"""What the two roles that own namespaces (DHCP: kaon.agent.dhcp_role, L3:
kaon.agent.l3_role) do alike: write their state files, and end a sweep on an
Open vSwitch host.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from kaon.agent.interface_driver import Plug


def write_if_changed(path: Path, text: str, mode: int | None = None) -> bool:
    """Replace a file atomically when its text differs; whether it did (a daemon reloads only then).

    ``mode`` (e.g. 0o600 for a file holding a secret) is set on the new file before it holds the text.
    """
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    if mode is None:
        tmp.write_text(text)
    else:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        os.fchmod(fd, mode)  # a leftover tmp file keeps its old mode through O_CREAT
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
    os.replace(tmp, path)
    return True


def unplug_stale(plug: Plug | None, wanted_taps: Iterable[str], what: str, log: logging.Logger) -> bool:
    """The sweep's last step: the integration bridge's ports of taps gone with their namespaces
    (or replaced) removed — an OVS port outlives its device. Whether that went well; nothing to
    do where L2 enslaves the taps (no ``plug``)."""
    if plug is None:
        return True
    try:
        plug.unplug_others(wanted_taps)
    except Exception as exc:
        log.warning("cannot remove stale %s from the integration bridge: %s", what, exc)
        return False
    return True
