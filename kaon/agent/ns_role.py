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


def write_if_changed(path: Path, text: str) -> bool:
    """Replace a file atomically when its text differs; whether it did (a daemon reloads only then)."""
    try:
        if path.read_text() == text:
            return False
    except OSError:
        pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
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
