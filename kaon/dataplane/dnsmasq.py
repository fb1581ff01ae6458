"""One dnsmasq per served network, inside its ``qdhcp-`` namespace.

dnsmasq daemonizes (its own session, reparented away from the agent), so it
outlives an agent restart; its pid file is the agent's record of it. A
process is the agent's only when its command line names that pid file
(``--pid-file=<state dir>/pid``), which no other dnsmasq on the machine
does — that is how a restarted agent adopts it instead of starting a
second one, and how it never signals a stranger that reused the pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from kaon.dataplane import DataplaneError

DNSMASQ = "/usr/sbin/dnsmasq"


def cmdline(pid: int) -> list[str] | None:
    """The command line of live process ``pid`` (None: gone or a zombie); the metadata proxies use it too."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # A zombie (state Z after the last ")") is dead, whatever /proc still shows.
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def running(pid_file: Path) -> tuple[int, list[str]] | None:
    """(pid, arguments) of the live dnsmasq that owns ``pid_file``, or None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    argv = cmdline(pid)
    if not argv or f"--pid-file={pid_file}" not in argv:
        return None
    return pid, argv[1:]


def start(namespace: str, args: list[str], pid_file: Path, timeout: float = 5.0) -> int:
    """Start dnsmasq in ``namespace``; its pid once the pid file names a live process."""
    pid_file.unlink(missing_ok=True)
    r = subprocess.run(["ip", "netns", "exec", namespace, DNSMASQ, *args], capture_output=True, text=True,
                       start_new_session=True, timeout=timeout)
    if r.returncode != 0:
        raise DataplaneError(f"dnsmasq in {namespace} exited {r.returncode}: {r.stderr.strip()}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = running(pid_file)
        if found is not None:
            return found[0]
        time.sleep(0.01)
    raise DataplaneError(f"dnsmasq in {namespace} wrote no pid file {pid_file}")


def reload(pid: int) -> None:
    """SIGHUP: dnsmasq rereads its hosts and options files; leases stay."""
    os.kill(pid, signal.SIGHUP)


def stop(pid_file: Path, timeout: float = 2.0) -> None:
    """Stop the dnsmasq owning ``pid_file`` (by pid, never by name); nothing if none runs."""
    found = running(pid_file)
    if found is None:
        return
    pid = found[0]
    terminate(pid, timeout)


def terminate(pid: int, timeout: float = 2.0) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` for it to go, then SIGKILL (radvd uses it too)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and cmdline(pid) is not None:
        time.sleep(0.01)
    if cmdline(pid) is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
