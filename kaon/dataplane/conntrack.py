"""Deleting conntrack entries with the ``conntrack`` tool (Debian: conntrack), in a namespace."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

from kaon.dataplane import DataplaneError


class ConntrackError(DataplaneError):
    pass


def delete(namespace: str | None, args: Sequence[str]) -> None:
    """``conntrack -D args``; finding nothing to delete is not an error."""
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    r = subprocess.run([*prefix, "conntrack", "-D", *args], capture_output=True, text=True)
    # conntrack exits 1 when no entry matched ("0 flow entries have been deleted").
    if r.returncode != 0 and "flow entries have been deleted" not in r.stderr:
        raise ConntrackError(f"conntrack -D {' '.join(args)}: {r.stderr.strip() or r.returncode}")
