"""What kaon wants in Open vSwitch, as plain values (no I/O).

The OVS planner (kaon.agent.ovs_plan) produces these; kaon.dataplane.ovsdb
applies the OVSDB part in one transaction and kaon.dataplane.openflow the
flows in one OpenFlow bundle per bridge.

Ownership, as Neutron's agent and Felix keep it:

* a bridge kaon made carries ``external_ids:kaon-owner=agent``; one named in
  ``bridge_mappings`` is the operator's (``own=False``): it must exist, kaon
  sets its datapath/fail mode/protocols but never deletes it;
* a port kaon made (patch, tunnel ports) carries the same external id on its
  Port row; VM ports belong to Nova/os-vif (or the lab): kaon only sets their
  tag (:class:`PortTag`);
* every flow kaon installs carries :data:`KAON_COOKIE`; flows with another
  cookie are never modified or removed.

Flows are written in the syntax ``ovs-ofctl dump-flows -O OpenFlow14 --names``
prints back (``set_field:…->vlan_vid`` rather than ``mod_vlan_vid``,
``pop_vlan`` rather than ``strip_vlan``), so that what is installed can be
compared with what is wanted as text and a re-apply changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

__all__ = ["BridgeSpec", "Flow", "KAON_COOKIE", "OWNER_KEY", "OWNER_VALUE", "PortSpec", "PortTag"]

KAON_COOKIE = 0x6B616F6E  # "kaon"; fixed across restarts so a restarted agent recognises its flows
OWNER_KEY = "kaon-owner"
OWNER_VALUE = "agent"


def _items(d: dict[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((d or {}).items()))


@dataclass(frozen=True)
class BridgeSpec:
    name: str
    datapath_type: str = "netdev"
    fail_mode: str = "secure"
    protocols: tuple[str, ...] = ("OpenFlow10", "OpenFlow13", "OpenFlow14")
    own: bool = True  # False: the operator's bridge (bridge_mappings): must exist, never deleted
    other_config: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PortSpec:
    """A port (with its one interface) kaon creates: patch, tunnel, internal or a plugged VM port."""

    bridge: str
    name: str
    type: str = ""  # "" (system device) | internal | patch | vxlan | gre | geneve
    options: tuple[tuple[str, str], ...] = ()
    tag: int | None = None
    iface_external_ids: tuple[tuple[str, str], ...] = ()
    own: bool = True  # marks the Port row with OWNER_KEY, so a sweep may delete it

    @staticmethod
    def make(bridge: str, name: str, type: str = "", options: dict[str, str] | None = None,
             tag: int | None = None, iface_external_ids: dict[str, str] | None = None,
             own: bool = True) -> PortSpec:
        return PortSpec(bridge, name, type, _items(options), tag, _items(iface_external_ids), own)


@dataclass(frozen=True)
class PortTag:
    """The local VLAN of a port kaon does not own (a VM port): set if the port exists.

    ``network_id`` goes into the Port's ``other_config:net_uuid`` (as Neutron's
    agent records it), so a restarted agent reads its local VLANs back from
    OVSDB and keeps them: no tag and no flow changes on restart.
    """

    name: str
    tag: int
    network_id: str | None = None


_EMPTY = frozenset(("",))


@dataclass(frozen=True)
class Flow:
    table: int
    priority: int
    match: str = ""  # comma-separated fields, e.g. "in_port=patch-int,dl_vlan=5"
    actions: str = "drop"
    cookie: int = field(default=KAON_COOKIE, compare=True)

    @cached_property
    def _order(self) -> tuple[int, int, str, str, int]:
        return (self.table, self.priority, self.match, self.actions, self.cookie)

    # Ordered by the fields in turn, as ``order=True`` would, but on a tuple made once per flow: the
    # generated methods build two tuples per comparison, and sorting a 1,000-port host's 76,000 flows
    # made 1.1 million of them (0.7 s of a pass).
    def __lt__(self, other: Flow) -> bool:
        return self._order < other._order

    def __le__(self, other: Flow) -> bool:
        return self._order <= other._order

    def __gt__(self, other: Flow) -> bool:
        return self._order > other._order

    def __ge__(self, other: Flow) -> bool:
        return self._order >= other._order

    @cached_property
    def key(self) -> tuple[int, int, frozenset[str]]:
        """What OpenFlow treats as the same flow (a strict add/delete replaces/removes it).

        Cached on the instance (a frozen dataclass without slots keeps a ``__dict__``): a cold resync
        diffs tens of thousands of flows, and splitting every match again was a tenth of its time."""
        fields = frozenset(self.match.split(","))
        return (self.table, self.priority, fields - _EMPTY if "" in fields else fields)

    def add_line(self) -> str:
        match = f",{self.match}" if self.match else ""
        return f"cookie={self.cookie:#x},table={self.table},priority={self.priority}{match},actions={self.actions}"

    def delete_line(self) -> str:
        match = f",{self.match}" if self.match else ""
        return f"delete_strict cookie={self.cookie:#x}/-1,table={self.table},priority={self.priority}{match}"
