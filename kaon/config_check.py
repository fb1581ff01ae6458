"""Every option accounted for: what kaon does with each line of the ini files it is given.

:func:`check_files` reads each file on its own (so an option a later file
overrides is still reported, at its own line) and returns
:class:`Finding`\\ s against the table in :mod:`kaon.config_options`:

* ``note``: an option kaon reads but does not use, and why;
* ``warning``: an option Neutron does not have, or one written in a section
  or file where Neutron would not read it (``network_vlan_ranges`` under
  ``[OVS]``; ``[ovs] bridge_mappings`` in ``neutron.conf``);
* ``error``: a file or value kaon cannot start with (a bad value of a known
  option; ``[vxlan] local_ip`` that is a placeholder or not on this host).

The programs log the findings once at start-up (:func:`log_findings`);
``kaon config check FILES...`` prints them and exits non-zero on errors.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kaon.config import ConfigError, load_config, parse_bool
from kaon.config_options import FILE_KINDS, KAON, RENAMED, TABLE, USED, places

LOG = logging.getLogger("kaon.config")

_SECTION = re.compile(r"^\[([^\]]+)\]\s*$")
_OPTION = re.compile(r"^([^\s=:#;][^=:]*?)\s*[=:](.*)$")


@dataclass(frozen=True)
class Finding:
    level: str  # "error", "warning" or "note"
    file: str
    line: int
    section: str
    option: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f"[{self.section}] {self.option}" if self.option else f"[{self.section}]" if self.section else ""
        return f"{self.level}: {where}: {what}: {self.message}" if what else f"{self.level}: {where}: {self.message}"


@dataclass(frozen=True)
class _Line:
    file: str
    line: int
    section: str
    option: str
    value: str


def _section_name(name: str) -> str:
    name = name.strip()
    return name if name == "DEFAULT" else name.lower()


def scan(path: str) -> list[_Line]:
    """Each ``option = value`` line of ``path`` with its section and line number."""
    out: list[_Line] = []
    section = ""
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            stripped = text.rstrip("\n")
            if not stripped.strip() or stripped.lstrip().startswith(("#", ";")):
                continue
            if stripped[0].isspace():
                continue  # a continuation line belongs to the option above
            header = _SECTION.match(stripped)
            if header:
                section = _section_name(header.group(1))
                continue
            option = _OPTION.match(stripped)
            if option and section:
                out.append(_Line(path, number, section, option.group(1).strip(), option.group(2).strip()))
    return out


def file_kind(path: str) -> str | None:
    """Which Neutron file ``path`` is by its name (None: a file of another name, e.g. kaon.conf)."""
    return FILE_KINDS.get(os.path.basename(path))


def _lookup(kinds: Iterable[str], section: str, option: str) -> str | None:
    """kaon's use of ``[section] option`` in one of ``kinds``: USED, a reason, or None (not there)."""
    for kind in kinds:
        options = TABLE[kind].get(section)
        if options is not None and (option in options or "*" in options):
            return options.get(option, options.get("*"))
    return None


def _where(kind: str, section: str) -> str:
    return f"[{section}] of any kaon file" if kind == KAON else f"[{section}] of {kind}"


def _classify(entry: _Line) -> Finding | None:
    kind = file_kind(entry.file)
    # A file of Neutron's name holds that file's options; any other (kaon up's
    # all-in-one kaon.conf, a lab host's ini) may hold those of every file.
    kinds = (kind, KAON) if kind else tuple(TABLE)
    use = _lookup(kinds, entry.section, entry.option)

    def finding(level: str, message: str) -> Finding:
        return Finding(level, entry.file, entry.line, entry.section, entry.option, message)

    if use is not None:
        return None if use == USED else finding("note", f"not used: {use}")
    elsewhere = [(k, s) for k, s in places(entry.option) if (k, s) != (kind, entry.section)]
    # The same section in another file first ([ovs] bridge_mappings in neutron.conf: openvswitch_agent.ini).
    elsewhere = [p for p in elsewhere if p[1] == entry.section] or elsewhere
    if entry.option in RENAMED:
        section, option, kind_ = RENAMED[entry.option]
        return finding("warning", f"an option of Neutron's past; today's Neutron reads [{section}] {option} "
                                  f"in {kind_}")
    if elsewhere:
        where = "; ".join(_where(k, s) for k, s in elsewhere)
        unused = _lookup([elsewhere[0][0]], elsewhere[0][1], entry.option)
        tail = f" (and kaon would not use it there either: {unused})" if unused else ""
        return finding("warning", f"Neutron does not read it here; it reads it in {where}{tail}")
    if any(entry.section in TABLE[k] for k in kinds):
        return finding("warning", "unknown option: Neutron has no such option in this section; ignored")
    homes = sorted(k for k in TABLE if entry.section in TABLE[k] and k != KAON)
    if homes:
        return finding("warning", f"Neutron reads [{entry.section}] from {', '.join(homes)}, not from this "
                                  f"file; ignored")
    return finding("warning", "unknown section: Neutron has no such section; ignored")


# ------------------------------------------------------------------ local_ip

def host_addresses(namespace: str | None = None) -> set[str]:
    """The addresses on this host's interfaces (in ``namespace`` when given)."""
    cmd = ["ip", "-j", "addr", "show"] if namespace is None else ["ip", "-n", namespace, "-j", "addr", "show"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {a["local"] for link in json.loads(out or "[]") for a in link.get("addr_info", []) if "local" in a}


def local_ip_problem(value: str | None, addresses: set[str] | None = None,
                     namespace: str | None = None) -> str | None:
    """Why ``[vxlan] local_ip`` cannot carry VXLAN here (one line), or None when it can.

    A placeholder left from the install guide (``OVERLAY_INTERFACE_IP_ADDRESS``)
    is not an address; an address on no interface of this host (of
    ``namespace``, for kaon's ``[agent] namespace``) makes VXLAN devices that
    can never send. Neutron's agent refuses both at start, too.
    """
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return (f"'{value.strip()}' is not an IP address (a placeholder? set it to this host's address on "
                "the overlay network)")
    found = host_addresses(namespace) if addresses is None else addresses
    if str(address) not in found:
        where = f"network namespace {namespace}" if namespace else "this host"
        return (f"{address} is not an address of any interface of {where} "
                "(VXLAN devices bound to it could never send)")
    return None


def _local_ip_findings(lines: Sequence[_Line]) -> list[Finding]:
    merged: dict[tuple[str, str], _Line] = {(e.section, e.option): e for e in lines}
    ovs = merged.get(("ovs", "local_ip"))  # the Open vSwitch agent's VTEP (openvswitch_agent.ini)
    if ovs is not None:
        namespace = merged.get(("agent", "namespace"))
        problem = local_ip_problem(ovs.value, namespace=namespace.value.strip() or None if namespace else None)
        return [Finding("error", ovs.file, ovs.line, "ovs", "local_ip", problem)] if problem else []
    entry = merged.get(("vxlan", "local_ip"))
    enabled = merged.get(("vxlan", "enable_vxlan"))
    if entry is None:
        return []
    try:
        if enabled is not None and not parse_bool(enabled.value):
            return []
    except ValueError:
        return []  # load_config reports the bad boolean
    namespace = merged.get(("agent", "namespace"))
    problem = local_ip_problem(entry.value, namespace=namespace.value.strip() or None if namespace else None)
    return [Finding("error", entry.file, entry.line, "vxlan", "local_ip", problem)] if problem else []


# ------------------------------------------------------------------ entry points

def check_files(paths: Sequence[str], service: str = "check", *, check_host: bool = True) -> list[Finding]:
    """Findings for ``paths``, given to ``service`` (server, agent, metadata, up, check).

    The programs that run an agent (agent, up) and ``check`` also check
    ``[vxlan] local_ip`` (or the OVS agent's ``[ovs] local_ip``) against this host (``check_host``).
    """
    findings: list[Finding] = []
    lines: list[_Line] = []
    for path in paths:
        try:
            lines += scan(path)
        except OSError as exc:
            findings.append(Finding("error", path, 0, "", "", f"cannot read: {exc.strerror}"))
    if findings:
        return findings
    try:
        load_config(list(paths))
    except ConfigError as exc:
        findings.append(Finding("error", exc.file or "", _line_of(lines, exc), exc.section or "",
                                exc.option or "", str(exc).rsplit(": ", 1)[-1] if exc.option else str(exc)))
    for entry in lines:
        found = _classify(entry)
        if found is not None:
            findings.append(found)
    if check_host and service in ("agent", "up", "check"):
        findings += _local_ip_findings(lines)
    order = {path: i for i, path in enumerate(paths)}
    return sorted(findings, key=lambda f: (order.get(f.file, -1), f.line))


def _line_of(lines: Sequence[_Line], exc: ConfigError) -> int:
    hits = [e.line for e in lines if e.file == exc.file and e.section == exc.section and e.option == exc.option]
    return hits[-1] if hits else 0


def log_findings(paths: Sequence[str], service: str) -> list[Finding]:
    """Log, once at start-up, what kaon does not use in ``paths``; returns the findings.

    The local_ip check is left to the agent's own start (it refuses to
    start); value errors are raised by load_config before this runs.
    """
    findings = [f for f in check_files(paths, service, check_host=False) if f.level != "error"]
    for f in findings:
        (LOG.warning if f.level == "warning" else LOG.info)("%s", f)
    return findings


def report(paths: Sequence[str], service: str = "check") -> tuple[str, int]:
    """``kaon config check``: the report's text and the exit status (1 when there are errors)."""
    findings = check_files(paths, service)
    counts = {level: sum(1 for f in findings if f.level == level) for level in ("error", "warning", "note")}
    lines = [str(f) for f in findings]
    lines.append(f"{len(paths)} file(s): {counts['error']} error(s), {counts['warning']} warning(s), "
                 f"{counts['note']} option(s) kaon reads but does not use")
    return "\n".join(lines), 1 if counts["error"] else 0
