"""A private Open vSwitch (ovsdb-server + ovs-vswitchd) per host, started and stopped by pid.

Why private daemons and not the system's: a simulated host is a network
namespace, and ``ovs-vswitchd`` running *inside* it makes its internal ports
appear there and learns that namespace's routes — exactly what userspace
tunnelling needs (see shared/reference/dataplane.md §6.1).  ``OVS_RUNDIR``,
``OVS_LOGDIR`` and ``OVS_DBDIR`` point at one directory per instance, so its
sockets, pidfiles and ``<bridge>.mgmt`` files never meet another OVS on the
machine.  The datapath is the userspace one (``datapath_type = netdev``):
this kernel has no ``openvswitch`` module.

Unix socket paths are limited to 107 bytes and ``ovs-vswitchd.<pid>.ctl``
and ``<bridge>.mgmt`` live in the rundir, so :class:`OvsDaemons` refuses a
rundir too long for them instead of failing later with an obscure error.

A restarted ovs-vswitchd loses every OpenFlow flow.  :meth:`vswitchd_identity`
names the running instance (pid and process start time, which a reused pid
does not share), so a caller that remembers it can tell "same daemon" from
"restarted, re-program everything".
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kaon.dataplane import DataplaneError

__all__ = ["OvsDaemonError", "OvsDaemons", "VswitchdIdentity", "SCHEMA"]

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
_SOCK_LIMIT = 107
_LONGEST_FILE = "ovs-vswitchd.4194304.ctl"  # the longest name the daemons put in the rundir (pid_max)


class OvsDaemonError(DataplaneError):
    """A private OVS daemon could not be started, reached or stopped."""


@dataclass(frozen=True)
class VswitchdIdentity:
    """One run of ovs-vswitchd: a restart gives a new pid or a new start time."""

    pid: int
    start_ticks: int  # /proc/<pid>/stat field 22: start time since boot, in clock ticks


class OvsDaemons:
    """ovsdb-server and ovs-vswitchd for one rundir, optionally inside network namespace ``netns``."""

    def __init__(self, rundir: str | os.PathLike[str], netns: str | None = None) -> None:
        self.rundir = Path(rundir)
        self.netns = netns
        if len(str(self.rundir / _LONGEST_FILE)) > _SOCK_LIMIT:
            raise OvsDaemonError(
                f"OVS rundir {self.rundir} is too long: unix socket paths in it would exceed "
                f"{_SOCK_LIMIT} bytes; use a shorter directory")

    # -- paths and environment -------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self.rundir / "conf.db"

    @property
    def db_sock(self) -> Path:
        return self.rundir / "db.sock"

    @property
    def db_remote(self) -> str:
        """The OVSDB endpoint, as ovsdbapp and ``ovs-vsctl --db`` take it."""
        return f"unix:{self.db_sock}"

    def mgmt(self, bridge: str) -> str:
        """The OpenFlow endpoint of ``bridge``, as ``ovs-ofctl`` takes it."""
        return f"unix:{self.rundir}/{bridge}.mgmt"

    def env(self) -> dict[str, str]:
        """Environment under which the plain OVS tools talk to this instance."""
        d = str(self.rundir)
        return {**os.environ, "OVS_RUNDIR": d, "OVS_LOGDIR": d, "OVS_DBDIR": d, "OVS_SYSCONFDIR": d}

    def _pidfile(self, daemon: str) -> Path:
        return self.rundir / f"{daemon}.pid"

    def _in_ns(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def _run(self, argv: list[str], what: str) -> str:
        res = subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise OvsDaemonError(f"{what} failed (exit {res.returncode}): {res.stderr.strip()}")
        return res.stdout

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Create the database if missing, then start both daemons (each only when not running)."""
        self.rundir.mkdir(parents=True, exist_ok=True)
        if not self.db_path.exists():
            self._run(["ovsdb-tool", "create", str(self.db_path), SCHEMA], "ovsdb-tool create")
        if self.pid("ovsdb-server") is None:
            self._run(self._in_ns([
                "ovsdb-server", str(self.db_path), f"--remote=punix:{self.db_sock}",
                "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                f"--pidfile={self._pidfile('ovsdb-server')}", "--detach",
                f"--log-file={self.rundir / 'ovsdb-server.log'}"]), "starting ovsdb-server")
            self._run(["ovs-vsctl", f"--db={self.db_remote}", "--no-wait", "init"], "ovs-vsctl init")
        self.start_vswitchd()

    def start_vswitchd(self) -> None:
        if self.pid("ovs-vswitchd") is not None:
            return
        self._run(self._in_ns([
            "ovs-vswitchd", self.db_remote, f"--pidfile={self._pidfile('ovs-vswitchd')}", "--detach",
            f"--log-file={self.rundir / 'ovs-vswitchd.log'}"]), "starting ovs-vswitchd")

    def stop(self) -> None:
        """Stop ovs-vswitchd, then ovsdb-server, by the pids in their pidfiles."""
        self.stop_daemon("ovs-vswitchd")
        self.stop_daemon("ovsdb-server")

    def stop_daemon(self, daemon: str, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
        """Send ``sig`` to ``daemon`` (by its pid) and wait until it is gone; SIGKILL after ``timeout``."""
        pid = self.pid(daemon)
        if pid is None:
            return
        _signal(pid, sig)
        if not _wait_gone(pid, timeout):
            _signal(pid, signal.SIGKILL)
            if not _wait_gone(pid, timeout):
                raise OvsDaemonError(f"{daemon} (pid {pid}) did not exit")
        self._pidfile(daemon).unlink(missing_ok=True)

    # -- what is running -------------------------------------------------------

    def pid(self, daemon: str) -> int | None:
        """The pid of ``daemon`` if its pidfile names a live process of that program, else None."""
        try:
            pid = int(self._pidfile(daemon).read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except FileNotFoundError:
            return None
        # A stale pidfile whose pid was reused by another program is not our daemon.
        return pid if daemon.startswith(comm) else None

    def vswitchd_identity(self) -> VswitchdIdentity | None:
        """Which ovs-vswitchd runs now (None: none).  Compare two answers to detect a restart."""
        pid = self.pid("ovs-vswitchd")
        if pid is None:
            return None
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return None
        # Field 2 (comm) may hold spaces; the fields after its closing parenthesis are fixed.
        fields = stat[stat.rindex(")") + 2:].split()
        return VswitchdIdentity(pid, int(fields[19]))

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until ovs-vswitchd runs and has applied the database's configuration (cur_cfg >= next_cfg)."""
        deadline = time.monotonic() + timeout
        vsctl = ["ovs-vsctl", f"--db={self.db_remote}", "--timeout=2"]
        last = ""
        while time.monotonic() < deadline:
            got = subprocess.run([*vsctl, "get", "Open_vSwitch", ".", "next_cfg"], env=self.env(),
                                 capture_output=True, text=True)
            if got.returncode == 0 and self.pid("ovs-vswitchd") is not None:
                res = subprocess.run([*vsctl, "wait-until", "Open_vSwitch", ".", f"cur_cfg>={got.stdout.strip()}"],
                                     env=self.env(), capture_output=True, text=True)
                if res.returncode == 0:
                    return
                last = res.stderr.strip()
            else:
                last = got.stderr.strip() or "ovs-vswitchd is not running"
            time.sleep(0.05)
        raise OvsDaemonError(f"OVS in {self.rundir} not ready after {timeout}s: {last}")


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # A zombie still answers kill(0); its /proc state is Z.  Daemons detach, so
            # they are reaped by init, but look at the state to not wait on a zombie.
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.02)
    return False
