"""The agent's side of the metadata proxy processes: start, adopt, reload, stop.

One proxy (kaon.agent.metadata_proxy_main) per namespace that serves
metadata, with its files in a directory the role owns (``<dir>/pid``,
``table.json``, ``log``) -- for DHCP ``<state>/dhcp/<host>/<network>/
metadata-proxy/``, for L3 ``<state>/l3/<host>/metadata-proxy/<router>/``.

As for dnsmasq (kaon.dataplane.dnsmasq), the pid file is the agent's record
of its proxy, and a process is that proxy only while its command line names
that pid file: a restarted agent adopts it rather than start a second one,
and never signals a stranger that reused the pid. The command line holds
what needs a new socket (namespace and its inode, address, upstream): when
it changes -- the namespace made anew, another ``nova_metadata_host`` -- the
proxy is restarted. The table (who may ask, the secret) is a file: when its
text changes the proxy rereads it on SIGHUP and keeps its socket.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kaon.agent.metadata_proxy import ProxyConfig, Table
from kaon.agent.ns_role import write_if_changed
from kaon.dataplane import DataplaneError, netns
from kaon.dataplane.dnsmasq import cmdline

LOG = logging.getLogger("kaon.agent.metadata")

MODULE = "kaon.agent.metadata_proxy_main"
PID, TABLE, LOG_FILE = "pid", "table.json", "log"
DIRECTORY = "metadata-proxy"  # the roles' name for a proxy's directory (and, for L3, for the directory of them)


def command(directory: Path, ns: str, inode: int, address: tuple[str, int], upstream: ProxyConfig) -> list[str]:
    """The arguments after the interpreter; the pid file first, so it is easy to spot in ``ps``."""
    return ["-m", MODULE, f"--pid-file={directory / PID}", f"--namespace={ns}", f"--namespace-inode={inode}",
            f"--bind={address[0]}:{address[1]}",
            f"--upstream={upstream.nova_metadata_host}:{upstream.nova_metadata_port}",
            f"--table={directory / TABLE}", f"--log-file={directory / LOG_FILE}"]


def running(directory: Path) -> tuple[int, list[str]] | None:
    """(pid, arguments after the interpreter) of the live proxy owning ``directory``'s pid file, or None."""
    pid_file = directory / PID
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    argv = cmdline(pid)
    if not argv or argv[1:3] != ["-m", MODULE] or f"--pid-file={pid_file}" not in argv:
        return None
    return pid, argv[1:]


def ensure(directory: Path, ns: str, address: tuple[str, int], upstream: ProxyConfig, table: Table) -> int:
    """A proxy for ``ns`` on ``address`` serving ``table``: adopted, reloaded, restarted or started; its pid."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = write_if_changed(directory / TABLE, table.to_json(), mode=0o600)  # it holds the shared secret
    args = command(directory, ns, os.stat(netns.path(ns)).st_ino, address, upstream)
    found = running(directory)
    if found is not None and found[1] != args:
        LOG.info("metadata proxy for %s (pid %d): new command line, restarting", ns, found[0])
        stop(directory)
        found = None
    if found is None:
        pid = start(args, directory)
        LOG.info("metadata proxy for %s started (pid %d)", ns, pid)
        return pid
    if changed:
        os.kill(found[0], signal.SIGHUP)
    return found[0]


def start(args: list[str], directory: Path, timeout: float = 10.0) -> int:
    """Run the proxy (it daemonizes once it listens); its pid."""
    (directory / PID).unlink(missing_ok=True)
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise DataplaneError(r.stderr.strip() or f"the metadata proxy exited {r.returncode}")
    found = running(directory)
    if found is None:
        raise DataplaneError(f"the metadata proxy said it listens but {directory / PID} names no proxy")
    return found[0]


def stop(directory: Path, timeout: float = 5.0) -> bool:
    """SIGTERM the proxy owning ``directory``'s pid file (SIGKILL after ``timeout``); whether one ran.

    Returns once it is gone: its socket would keep its namespace alive.
    """
    found = running(directory)
    if found is None:
        return False
    pid = found[0]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and cmdline(pid) is not None:
            time.sleep(0.01)
        if cmdline(pid) is None:
            break
    (directory / PID).unlink(missing_ok=True)
    return True
