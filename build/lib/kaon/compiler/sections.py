"""Sections of a host's intent beyond L2: what the DHCP and L3 roles need.

A section reads its rows once per compile (in the compiler's transaction),
names the hosts it has something for, and projects one host's part — pure,
like the L2 projection. The compiler puts that part under the section's
``name`` in the host's intent (``intent["routers"]``, ``intent["dhcp"]``);
a host with nothing for a section has no such key. The L2 part of the
intent already carries every port bound to the host, DHCP and router ports
included, so a section only describes what lives inside its namespaces.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import Connection

from kaon.compiler.snapshot import Snapshot


class Section(Protocol):
    name: str

    def read(self, conn: Connection) -> Any:
        """Everything this section needs for every host, read once per compile."""

    def hosts(self, data: Any) -> set[str]:
        """The hosts that get this section."""

    def project(self, data: Any, host: str, l2: Snapshot) -> dict[str, Any] | None:
        """One host's part (None or empty: nothing for it)."""


def add_sections(intents: dict[str, dict[str, Any]], sections: list[Section], data: dict[str, Any],
                 l2: Snapshot) -> None:
    for section in sections:
        part_data = data[section.name]
        for host in sorted(section.hosts(part_data)):
            part = section.project(part_data, host, l2)
            if not part:
                continue
            intent = intents.setdefault(host, {"version": 1, "host": host, "networks": {}, "ports": {}})
            intent[section.name] = part
