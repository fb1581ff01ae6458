"""The lab's record of what it made: ``<state>/lab/<prefix>/lab.json``.

Written atomically (a temporary file renamed over the old one) under an
exclusive ``flock`` on ``lab.lock`` in the same directory, so several
``kaon lab vm create`` running at once (a test creating VMs from threads or
processes) never lose each other's record. Every namespace is recorded
*before* it is created, so ``down`` after an interrupted ``up`` still finds
and deletes it. Format (version 1)::

    {
      "version": 1, "prefix": "kl-", "host_names_prefix": "h",
      "config_files": ["/var/lib/kaon/kaon.conf"],
      "namespaces": ["kl-ul", "kl-pn", "kl-out", "kl-h1", "kl-vm-vm1"],
      "hosts": {"h1": {"index": 1, "namespace": "kl-h1", "local_ip": "10.99.0.1",
                       "agent": {"pid": 4242, "config": ".../h1.ini", "log": ".../h1.log",
                                 "started_at": 1700000000.0} | null}},
      "outside": {"namespace": "kl-out", "addresses": ["192.168.100.1/24", "203.0.113.1/24"]},
      "vms": {"vm1": {"name": "vm1", "host": "h1", "namespace": "kl-vm-vm1", "port_id": "...",
                      "port_created": true, "device_id": "...", "network_id": "...",
                      "mac": "fa:16:3e:..", "ips": ["10.0.0.5/24"], "gateways": ["10.0.0.1"],
                      "tap": "tap0123456789a", "mtu": 1450}}
    }
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VERSION = 1
STATE_FILE = "lab.json"
LOCK_FILE = "lab.lock"


def lab_dir(state_dir: str | os.PathLike[str], prefix: str) -> Path:
    return Path(state_dir) / "lab" / prefix


def empty_state(prefix: str, host_names_prefix: str) -> dict[str, Any]:
    return {"version": VERSION, "prefix": prefix, "host_names_prefix": host_names_prefix,
            "config_files": [], "namespaces": [], "hosts": {}, "outside": None, "vms": {}}


class StateStore:
    """Reads and writes one lab's ``lab.json``; ``edit()`` is the locked read-modify-write."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STATE_FILE

    def exists(self) -> bool:
        return self.path.exists()

    def load(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text())
        except FileNotFoundError:
            return None
        if data.get("version") != VERSION:
            raise ValueError(f"{self.path}: unknown lab state version {data.get('version')!r}")
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / LOCK_FILE, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def edit(self, default: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Lock, load (or start from ``default``), yield, save on a normal exit."""
        with self.lock():
            data = self.load()
            if data is None:
                if default is None:
                    raise FileNotFoundError(f"no lab state at {self.path} (run `kaon lab up` first)")
                data = default
            yield data
            self.save(data)

    def remove(self, keep_logs: bool = False) -> None:
        """Forget the lab: the whole directory, or all but ``*.log`` when ``keep_logs``."""
        if not self.directory.exists():
            return
        if not keep_logs:
            shutil.rmtree(self.directory, ignore_errors=True)
            return
        for item in self.directory.iterdir():
            if item.suffix != ".log":
                item.unlink(missing_ok=True)


def record_namespace(data: dict[str, Any], ns: str) -> None:
    if ns not in data["namespaces"]:
        data["namespaces"].append(ns)
