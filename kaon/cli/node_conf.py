"""The files of a ``kaon up`` node in its state directory, which ``kaon lab``/``agent``/``metadata``/``down`` read.

``<state>/kaon.conf`` carries what the node runs with -- ``state_path``,
``bind_port``, the bus socket (``transport_url = unix://<state>/bus.sock``)
and the metadata service's address and secret -- so that any program given
that file (or pointed at that state directory) joins this node and no other.
The user's edits are kept: only the options the node owns are set, in place,
comments and all. ``<state>/node.json`` records the running node's pid for
``kaon down``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kaon.cli.free_port import free_port

NODE_FILE = "node.json"
_HEADER = re.compile(r"^\s*\[([^\]]+)\]\s*$")


def state_dir_of(state_dir: str | None) -> Path:
    """The node's state directory: ``--state-dir``, else ``KAON_STATE_DIR``, else kaon's default."""
    from kaon.config import default_state_path

    return Path(state_dir or os.environ.get("KAON_STATE_DIR") or default_state_path()).expanduser().resolve()


def set_options(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """``text`` (an ini file) with ``values`` set: each option replaced where it is, else added to its section."""
    lines = text.splitlines()
    for section, options in values.items():
        for option, value in options.items():
            lines = _set_one(lines, section, option, value)
    return "\n".join(lines) + "\n"


def _same_section(a: str, b: str) -> bool:
    return a == b if "DEFAULT" in (a, b) else a.lower() == b.lower()


def _set_one(lines: list[str], section: str, option: str, value: str) -> list[str]:
    current, header_at, end_of_section = None, None, None
    pattern = re.compile(rf"^{re.escape(option)}\s*[=:]")
    for i, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            if current is not None and _same_section(current, section) and end_of_section is None:
                end_of_section = i
            current = header.group(1).strip()
            if _same_section(current, section) and header_at is None:
                header_at = i
            continue
        if current is not None and _same_section(current, section) and pattern.match(line):
            return [*lines[:i], f"{option} = {value}", *lines[i + 1:]]
    if header_at is None:
        return [*lines, "", f"[{section}]", f"{option} = {value}"]
    at = end_of_section if end_of_section is not None else len(lines)
    while at > header_at + 1 and not lines[at - 1].strip():
        at -= 1  # keep the blank line before the next section
    return [*lines[:at], f"{option} = {value}", *lines[at:]]


def run_values(conf_text: str, state: Path, port: int | None) -> dict[str, dict[str, str]]:
    """The options ``kaon up`` writes into ``kaon.conf`` before it starts.

    Always the state directory; the port when ``--port`` was given; the bus
    socket, metadata port and secret only when the file has none (chosen
    once, then kept, so agents started later agree with the node).
    """
    from kaon.config import load_config

    values: dict[str, dict[str, str]] = {"DEFAULT": {"state_path": str(state)}}
    if port is not None:
        values["DEFAULT"]["bind_port"] = str(port)
    tmp = state / ".kaon.conf.read"
    tmp.write_text(conf_text)
    try:
        current = load_config([str(tmp)])
    finally:
        tmp.unlink(missing_ok=True)

    def missing(section: str, option: str) -> bool:
        return current.get(section, option) is None

    if missing("DEFAULT", "transport_url"):
        values["DEFAULT"]["transport_url"] = f"unix://{state / 'bus.sock'}"
    if missing("DEFAULT", "nova_metadata_port"):
        values["DEFAULT"]["nova_metadata_host"] = "127.0.0.1"
        values["DEFAULT"]["nova_metadata_port"] = str(free_port())
    if missing("DEFAULT", "metadata_proxy_shared_secret"):
        values["DEFAULT"]["metadata_proxy_shared_secret"] = secrets.token_hex(16)
    if missing("metadata", "serve"):
        values["metadata"] = {"serve": "true"}
    return values


def write_run_config(conf: Path, state: Path, port: int | None) -> None:
    text = conf.read_text()
    new = set_options(text, run_values(text, state, port))
    if new != text:
        tmp = conf.with_name(conf.name + ".tmp")
        tmp.write_text(new)
        os.replace(tmp, conf)
    conf.chmod(0o600)  # it holds the metadata secret


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot: with the pid, names one process for good."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def write_node(state: Path, facts: Mapping[str, Any]) -> None:
    record = {"pid": os.getpid(), "start_time": _start_time(os.getpid()), "state_dir": str(state),
              "started_at": time.time(), **facts}
    tmp = state / f".{NODE_FILE}.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, state / NODE_FILE)


def read_node(state: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((state / NODE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data


def node_alive(state: Path, record: Mapping[str, Any] | None) -> bool:
    """True while the recorded process runs (same pid and start time: a pid is reused)."""
    if not record or not record.get("pid") or str(record.get("state_dir")) != str(state):
        return False
    return _start_time(int(record["pid"])) == record.get("start_time")
