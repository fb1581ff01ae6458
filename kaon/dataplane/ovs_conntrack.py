"""Deleting connection entries from ovs-vswitchd's own conntrack (userspace datapath).

The userspace datapath (``datapath_type = netdev``) tracks connections inside
ovs-vswitchd, not in the kernel: ``conntrack -D`` never sees them. They are
deleted with ``ovs-appctl dpctl/flush-conntrack zone=N <ct-orig-tuple>``,
where the tuple may be partial (OVS ≥ 3.0: every entry matching the given
fields goes) but has no masks.
"""

from __future__ import annotations

import subprocess

from kaon.dataplane import DataplaneError
from kaon.dataplane.ovs_daemons import OvsDaemons

__all__ = ["OvsConntrackError", "dump", "flush"]


class OvsConntrackError(DataplaneError):
    pass


def _target(daemons: OvsDaemons | None) -> list[str]:
    """The control socket of *this* ovs-vswitchd (a private one's is in its rundir), else the system's."""
    if daemons is None:
        return []
    pid = daemons.pid("ovs-vswitchd")
    if pid is None:
        raise OvsConntrackError(f"no ovs-vswitchd running for {daemons.rundir}")
    return ["-t", f"{daemons.rundir}/ovs-vswitchd.{pid}.ctl"]


def flush(daemons: OvsDaemons | None, zone: int, ct_tuple: str) -> None:
    """Delete the entries of ``zone`` whose original direction matches ``ct_tuple``; none is not an error."""
    argv = ["ovs-appctl", *_target(daemons), "dpctl/flush-conntrack", f"zone={zone}", ct_tuple]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    # A tuple that names every field is looked up exactly: no such entry is "No such file or directory".
    if r.returncode != 0 and "No such file or directory" not in r.stderr:
        raise OvsConntrackError(f"{' '.join(argv[1:])}: {r.stderr.strip() or r.returncode}")


def dump(daemons: OvsDaemons | None, zone: int | None = None) -> str:
    """``dpctl/dump-conntrack`` (of one zone): what tests and operators read."""
    argv = ["ovs-appctl", *_target(daemons), "dpctl/dump-conntrack", *([f"zone={zone}"] if zone is not None else [])]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise OvsConntrackError(f"{' '.join(argv[1:])}: {r.stderr.strip() or r.returncode}")
    return r.stdout
