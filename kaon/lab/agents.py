"""One ``kaon agent`` per lab host: its ini file, start, liveness, stop by pid.

The agent runs in the root namespace (it reaches the server and the bus on
127.0.0.1) and programs its host's devices inside the host's namespace
(``[agent] namespace``). It is started in its own session so that a Ctrl-C
on ``kaon lab up`` does not reach it, and stopped only through the pid the
lab recorded -- after checking that the process behind that pid still runs
with this host's ini file, since a pid is reused once its process is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kaon.lab.topology import PHYSICAL_INTERFACES

AGENT_TYPE = "Linux bridge agent"
L2_AGENT_TYPES = (AGENT_TYPE, "Open vSwitch agent")  # a lab host runs one of them (--mechanism)
# The roles (kaon.agent.roles) a network node plays besides L2: it hosts the
# DHCP servers and routers, as the install guide's controller does. Which
# hosts are network nodes is the lab's choice (``--network-nodes``).
NETWORK_NODE_ROLES: tuple[str, ...] = ("l3", "dhcp")


def agent_ini(host: str, namespace: str, local_ip: str, lab_prefix: str = "", network_node: bool = False) -> str:
    roles = ", ".join(NETWORK_NODE_ROLES) if network_node else ""
    mappings = ",".join(f"{physnet}:{dev}" for physnet, dev in PHYSICAL_INTERFACES.items())
    return (
        "# Written by `kaon lab up`; rewritten on every `up`.\n"
        "[DEFAULT]\n"
        f"host = {host}\n"
        "[agent]\n"
        f"namespace = {namespace}\n"
        f"roles = {roles}\n"
        # Router and DHCP namespaces carry the lab's prefix, so that labs (and
        # test runs) side by side never see, or sweep, each other's.
        f"namespace_prefix = {lab_prefix}\n"
        "[linux_bridge]\n"
        f"physical_interface_mappings = {mappings}\n"
        "[vxlan]\n"
        "enable_vxlan = true\n"
        f"local_ip = {local_ip}\n"
        "l2_population = true\n"
    )


def agent_command(server_configs: Sequence[str], ini: Path) -> list[str]:
    cmd = [sys.executable, "-m", "kaon", "agent"]
    for conf in [*server_configs, str(ini)]:
        cmd += ["--config-file", str(conf)]
    return cmd


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # The agent must import this very kaon, installed or not.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_agent(server_configs: Sequence[str], ini: Path, log: Path) -> dict[str, Any]:
    """Spawn the agent; return its record for the lab state."""
    cmd = agent_command(server_configs, ini)
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=_env(), start_new_session=True)
    record = {"pid": proc.pid, "config": str(ini), "log": str(log), "command": cmd, "started_at": time.time()}
    # Popen returns once execve has passed its point of no return, but the new
    # /proc/PID/cmdline is filled in a moment later; wait for it, so that
    # agent_alive() is true as soon as this returns.
    deadline = time.monotonic() + 2.0
    while not agent_alive(record) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return record


def _reap(pid: int) -> None:
    # Our own child (the Python API started it in this process) would stay a
    # zombie, and look alive, until waited for.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def agent_alive(record: dict[str, Any] | None) -> bool:
    """True while the recorded pid runs this agent (same ini file on its command line)."""
    if not record or not record.get("pid"):
        return False
    pid = int(record["pid"])
    _reap(pid)
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().split(b"\0")
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z" and os.fsencode(record["config"]) in argv


def stop_agent(record: dict[str, Any] | None, timeout: float = 10.0) -> bool:
    """SIGTERM the recorded agent, SIGKILL after ``timeout``; True if one was running."""
    if not agent_alive(record):
        return False
    assert record is not None
    pid = int(record["pid"])
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not agent_alive(record):
            return True
        time.sleep(0.05)
    _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while agent_alive(record) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
