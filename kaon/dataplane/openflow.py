"""OpenFlow programming through ``ovs-ofctl`` bundles, diffed against what is installed.

Why ``ovs-ofctl`` and not os-ken's native OpenFlow: see docs/design/ovs.md
(measured figures and the choice).  In short, one ``--bundle add-flows`` of
the delta is atomic (OpenFlow 1.4 bundle: all or nothing, never an empty
table in between), needs no controller socket or event loop in the agent,
and the delta is small in the steady state.

How a sync works (:meth:`OpenFlow.sync`):

1. ``dump-flows --names --no-stats`` reads the bridge's flows back;
2. only flows with :data:`KAON_COOKIE` are kaon's; every other flow (the
   operator's, learned ones with cookie 0) is left alone;
3. wanted flows missing or with other actions are added (an OpenFlow *add*
   replaces a flow with the same table/priority/match in place — traffic
   matching it is never dropped in between); kaon's installed flows that are
   no longer wanted are deleted with ``delete_strict`` — but only when
   ``sweep`` is true, i.e. after the agent's first full sync (before it, an
   agent that just restarted cannot tell "stale" from "not computed yet");
4. adds and deletes go in ONE bundle; nothing is sent when the delta is empty,
   so a re-apply of the same plan causes no flow churn.

Flows are compared as text in the syntax ovs-ofctl prints (see
kaon.dataplane.ovs_model), with match fields as a set.

Port names and ofport numbers: flows name ports (``in_port=tap…``,
``output:patch-int``), but ``ovs-ofctl`` resolving names costs two extra
requests to ovs-vswitchd per run (the bridge's port descriptions and its
255-table features: measured, a 45-flow bundle 5 ms with numbers, 21 ms with
names; a dump 13 ms against 50 ms). Given the bridge's ``ofports`` (from the
OVSDB cache), :meth:`OpenFlow.sync` and :meth:`OpenFlow.dump` run with
``--no-names`` and translate: names to numbers in what is sent, numbers back
to names in what is read. A flow naming a port the map does not hold (not
plugged yet, no ofport) makes that run fall back to ``--names``, where
ovs-ofctl itself resolves or refuses it.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from kaon.dataplane import DataplaneError
from kaon.dataplane.ovs_model import KAON_COOKIE, Flow

__all__ = ["Delta", "OpenFlow", "OpenFlowError", "parse_dump"]

PROTOCOL = "OpenFlow14"  # bundles need OpenFlow 1.4; bridges are made with it in their protocols
DEFAULT_PRIORITY = 32768
# A port in a match (``in_port=``) or an output action; not ``output:NXM_…[]`` (a field, in learn()).
_PORT_REF = re.compile(r"(in_port=|output:)([A-Za-z0-9_.-]+)(?=[,)\s]|$)")
# Ports OpenFlow names itself (ovs-ofctl prints and parses these by name in every mode).
RESERVED_PORTS = frozenset(("IN_PORT", "TABLE", "NORMAL", "FLOOD", "ALL", "CONTROLLER", "LOCAL", "ANY", "NONE"))


class OpenFlowError(DataplaneError):
    """ovs-ofctl could not read or program a bridge."""


@dataclass(frozen=True)
class Delta:
    added: tuple[Flow, ...]
    deleted: tuple[Flow, ...]

    def __bool__(self) -> bool:
        return bool(self.added or self.deleted)


def numbered(line: str, ofports: Mapping[str, int]) -> str | None:
    """``line`` with its port names as ofport numbers; None when it names a port ``ofports`` lacks."""
    if "in_port=" not in line and "output:" not in line:
        return line
    missing = False

    def number(m: re.Match[str]) -> str:
        nonlocal missing
        name = m.group(2)
        if name in RESERVED_PORTS or name.isdigit():
            return m.group(0)
        ofport = ofports.get(name)
        if ofport is None:
            missing = True
            return m.group(0)
        return f"{m.group(1)}{ofport}"

    out = _PORT_REF.sub(number, line)
    return None if missing else out


def _numbered_lines(lines: Iterable[str], ofports: Mapping[str, int]) -> list[str] | None:
    out = []
    for line in lines:
        n = numbered(line, ofports)
        if n is None:
            return None
        out.append(n)
    return out


def parse_dump(text: str, names: Mapping[int, str] | None = None) -> list[Flow]:
    """Flows from ``ovs-ofctl dump-flows --no-stats`` output (every cookie).

    ``names``: ofport -> port name, for a dump taken with ``--no-names``; numbers it does not hold
    stay numbers (a flow naming a port that is gone then differs from any wanted flow)."""
    flows = []
    for line in text.splitlines():
        # ovs-ofctl quotes port names that could read as something else (``in_port="vxlan-ac100002"``);
        # kaon's port names never contain quotes, so dropping them gives the names as written.
        line = line.strip().replace('"', "")
        if names and ("in_port=" in line or "output:" in line):
            line = _PORT_REF.sub(lambda m: m.group(1) + names.get(int(m.group(2)), m.group(2))
                                 if m.group(2).isdigit() else m.group(0), line)
        if not line or " actions=" not in line and not line.startswith("actions="):
            continue
        head, _, actions = line.partition("actions=")
        cookie, table, priority = 0, 0, DEFAULT_PRIORITY
        match = []
        for part in head.replace(", ", ",").strip().strip(",").split(","):
            part = part.strip()
            if not part:
                continue
            name, eq, value = part.partition("=")
            if name == "cookie":
                cookie = int(value, 16)
            elif name == "table":
                table = int(value)
            elif name == "priority":
                priority = int(value)
            elif name in ("reset_counts", "idle_timeout", "hard_timeout", "send_flow_rem", "importance"):
                continue  # flow properties, not match fields
            else:
                match.append(part if eq else name)
        flows.append(Flow(table, priority, ",".join(match), actions.strip(), cookie))
    return flows


def diff(wanted: Iterable[Flow], installed: Iterable[Flow], *, sweep: bool) -> Delta:
    """The adds and (with ``sweep``) deletes that turn kaon's installed flows into ``wanted``."""
    mine = {f.key: f for f in installed if f.cookie == KAON_COOKIE}
    want: dict[tuple[int, int, frozenset[str]], Flow] = {}
    for f in wanted:
        if f.key in want and want[f.key].actions != f.actions:
            raise OpenFlowError(f"two wanted flows with one match and different actions: {want[f.key]} / {f}")
        want[f.key] = f
    # Same key (match as a set) and same actions: installed as wanted, whatever the field order.
    # Only the delta is sorted (a stable bundle order): it is empty on a resync of an intact bridge.
    added = tuple(sorted(f for k, f in want.items() if k not in mine or mine[k].actions != f.actions))
    deleted = tuple(sorted(f for k, f in mine.items() if k not in want)) if sweep else ()
    return Delta(added, deleted)


class OpenFlow:
    """``ovs-ofctl`` against bridges of one OVS; ``target(bridge)`` names the endpoint."""

    def __init__(self, target: Callable[[str], str] | None = None, env: dict[str, str] | None = None) -> None:
        self._target = target or (lambda bridge: bridge)
        self._env = env or dict(os.environ)

    def _ofctl(self, *args: str, stdin: str | None = None) -> str:
        argv = ["ovs-ofctl", "-O", PROTOCOL, *args]
        res = subprocess.run(argv, input=stdin, env=self._env, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise OpenFlowError(f"{' '.join(argv[:6])} failed (exit {res.returncode}): {res.stderr.strip()}")
        return res.stdout

    def dump(self, bridge: str, ofports: Mapping[str, int] | None = None) -> list[Flow]:
        """Every flow of ``bridge``, ports by name: with ``ofports`` (the bridge's name -> ofport) ovs-ofctl
        prints numbers and they are named here; without, ovs-ofctl asks the bridge for its port names."""
        if ofports is None:
            return parse_dump(self._ofctl("--names", "--no-stats", "dump-flows", self._target(bridge)))
        names = {number: name for name, number in ofports.items()}
        return parse_dump(self._ofctl("--no-names", "--no-stats", "dump-flows", self._target(bridge)), names)

    def sync(self, bridge: str, wanted: Iterable[Flow], *, sweep: bool,
             installed: Iterable[Flow] | None = None, ofports: Mapping[str, int] | None = None) -> Delta:
        """Make kaon's flows on ``bridge`` equal ``wanted`` (see the module doc); returns what changed.

        ``installed``: kaon's flows the caller knows are on the bridge (what its last sync left there,
        same ovs-vswitchd): the delta is taken against them and the bridge is not read back (one
        ``ovs-ofctl`` run fewer). ``None``: read back with ``dump-flows``. ``ofports``: the bridge's
        port name -> ofport, read just before (the module doc: ovs-ofctl then resolves no name).
        """
        delta = diff(wanted, self.dump(bridge, ofports) if installed is None else installed, sweep=sweep)
        if delta:
            lines = [f.delete_line() for f in delta.deleted] + [f"add {f.add_line()}" for f in delta.added]
            sent = _numbered_lines(lines, ofports) if ofports is not None else None
            if sent is not None:
                self._ofctl("--no-names", "--bundle", "add-flows", self._target(bridge), "-",
                            stdin="\n".join(sent) + "\n")
            else:  # a port the map does not hold: ovs-ofctl resolves the names (or says which is unknown)
                self._ofctl("--names", "--bundle", "add-flows", self._target(bridge), "-",
                            stdin="\n".join(lines) + "\n")
        return delta

    def has_cookie_flows(self, bridge: str, table: int) -> bool:
        """True when kaon's flows are present in ``table`` (the canary a restarted ovs-vswitchd loses)."""
        return any(f.cookie == KAON_COOKIE and f.table == table for f in self.dump(bridge))
