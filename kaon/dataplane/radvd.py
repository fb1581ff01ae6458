"""One radvd per router with IPv6 interfaces, inside its ``qrouter-`` namespace.

As Neutron's L3 agent does (neutron/agent/linux/ra.py), router
advertisements come from radvd in the router's namespace, configured by a
file the agent writes (kaon.agent.l3_plan.radvd_conf). radvd daemonizes and
so outlives an agent restart; its pid file is the agent's record of it, and a
process is the agent's only when its command line names that pid file
(``--pidfile=<path>``) — how a restarted agent adopts it and never signals a
stranger that reused the pid (the same rule as kaon.dataplane.dnsmasq).
A changed file is a SIGHUP: radvd rereads it and advertises at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from kaon.dataplane import DataplaneError
from kaon.dataplane.dnsmasq import cmdline, terminate

RADVD = "/usr/sbin/radvd"


def command(conf: Path, pid_file: Path, log: Path) -> list[str]:
    # A log file rather than syslog: agents run in containers without one.
    return [f"--config={conf}", f"--pidfile={pid_file}", "--logmethod=logfile", f"--logfile={log}"]


def running(pid_file: Path) -> int | None:
    """The pid of the live radvd that owns ``pid_file``, or None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    argv = cmdline(pid)
    return pid if argv and f"--pidfile={pid_file}" in argv else None


def start(namespace: str, args: list[str], pid_file: Path, timeout: float = 5.0) -> int:
    """Start radvd in ``namespace``; its pid once the pid file names a live process."""
    pid_file.unlink(missing_ok=True)
    r = subprocess.run(["ip", "netns", "exec", namespace, RADVD, *args], capture_output=True, text=True,
                       start_new_session=True, timeout=timeout)
    if r.returncode != 0:
        raise DataplaneError(f"radvd in {namespace} exited {r.returncode}: {r.stderr.strip()}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = running(pid_file)
        if pid is not None:
            return pid
        time.sleep(0.01)
    raise DataplaneError(f"radvd in {namespace} wrote no pid file {pid_file}")


def reload(pid: int) -> None:
    os.kill(pid, signal.SIGHUP)


def stop(pid_file: Path, timeout: float = 2.0) -> None:
    """Stop the radvd owning ``pid_file`` (by pid, never by name); nothing if none runs."""
    pid = running(pid_file)
    if pid is None:
        return
    terminate(pid, timeout)
