"""Sections of a host's intent, and the projection of a snapshot through them.

Each part of an intent is a section: L2 (``networks`` and ``ports``),
``routers`` (L3 agent), ``dhcp`` (DHCP agent), ``firewall`` (security
groups). A section names the hosts it may have something for and adds its
part to one host's intent — pure: snapshot in, intent out, no I/O, so that
"the same rows give the same intents" holds whatever order the rows were
written in, and a second backend is a new section, not new SQL.

Which hosts get an intent: every host that had one (``known_hosts``: it
keeps one, empty if need be, so that its agent sweeps what it no longer
needs), every host with a bound port (its agent must learn the port is not
there yet, e.g. while its segment is gone), and every host a section gave
something to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from kaon.compiler.snapshot import Snapshot
from kaon.model.intent import HostIntent


class Section(Protocol):
    name: str

    def hosts(self, snap: Snapshot) -> set[str]:
        """The hosts this section may have something for."""
        ...

    def project(self, snap: Snapshot, host: str, intent: HostIntent) -> HostIntent:
        """``intent`` with this section's part for ``host`` added (unchanged: nothing for it)."""
        ...


def project(snap: Snapshot, sections: Sequence[Section]) -> dict[str, HostIntent]:
    """Every host's intent, keyed and ordered by host."""
    keep = set(snap.known_hosts) | {p.host for p in snap.ports}
    candidates = set(keep).union(*(s.hosts(snap) for s in sections))
    out: dict[str, HostIntent] = {}
    for host in sorted(candidates):
        empty = HostIntent(host)
        intent = empty
        for section in sections:
            intent = section.project(snap, host, intent)
        if host in keep or intent != empty:
            out[host] = intent
    return out
