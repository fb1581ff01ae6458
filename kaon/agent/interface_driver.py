"""``interface_driver``: how the DHCP and L3 roles attach their devices to the host's L2.

Neutron's dhcp_agent.ini / l3_agent.ini option, read here from the agent's
``[DEFAULT] interface_driver``:

* ``linuxbridge`` (Neutron's BridgeInterfaceDriver): the role makes the veth and
  leaves its ``tap`` end in the host's namespace; the Linux bridge L2 manager
  enslaves it to the network's bridge like a VM's tap. Nothing to do here.
* ``openvswitch`` (Neutron's OVSInterfaceDriver with ``ovs_use_veth``): the
  ``tap`` end becomes a port of the integration bridge with the Interface
  external ids Neutron's driver sets — ``iface-id`` (the Neutron port),
  ``attached-mac``, ``iface-status`` — so the OVS L2 manager finds it as it finds
  a VM port, gives it the network's local VLAN and reports it ACTIVE. A veth,
  not an internal port: an internal port moved into a namespace does not
  survive an ovs-vswitchd restart (shared/reference/dataplane.md §6.6).
  ``kaon-role`` names the role that plugged it, so the role removes its own
  ports once their namespace or device is gone (an OVS port outlives its
  kernel device). The namespace end gets ``tx off``: OVS's userspace datapath
  forwards a veth's CHECKSUM_PARTIAL packets with the checksum unfilled.

The interface driver must match the host's L2 agent (Neutron's would plug into
a bridge nobody forwards): a mismatch is refused at start.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from kaon.config import Config, ConfigError

if TYPE_CHECKING:  # OVSDB (ovsdbapp) is only loaded on an Open vSwitch host
    from kaon.dataplane.ovsdb import Ovsdb

LINUXBRIDGE, OPENVSWITCH = "linuxbridge", "openvswitch"
ALIASES = {
    LINUXBRIDGE: LINUXBRIDGE, "neutron.agent.linux.interface.BridgeInterfaceDriver": LINUXBRIDGE,
    OPENVSWITCH: OPENVSWITCH, "neutron.agent.linux.interface.OVSInterfaceDriver": OPENVSWITCH,
}
ROLE_KEY = "kaon-role"  # Interface external id: the role (dhcp, l3) that plugged the port


def interface_driver(cfg: Config, mechanism: str) -> str:
    """The configured driver (default: the host's L2 mechanism's); a mismatch or an unknown name is refused."""
    raw = (cfg.get("DEFAULT", "interface_driver") or "").strip()
    driver = ALIASES.get(raw, raw) if raw else mechanism
    where = {"file": cfg.origins.get(("DEFAULT", "interface_driver")), "section": "DEFAULT",
             "option": "interface_driver"}
    if driver not in (LINUXBRIDGE, OPENVSWITCH):
        raise ConfigError(f"interface_driver = {raw}: must be linuxbridge or openvswitch", **where)
    if driver != mechanism:
        raise ConfigError(f"interface_driver = {raw} on a host whose L2 agent is {mechanism}: DHCP and router "
                          f"ports must be plugged the way this host's agent wires ports; set "
                          f"interface_driver = {mechanism}", **where)
    return driver


class Plug(Protocol):
    """What a role asks of its interface driver beyond making the veth (none for linuxbridge)."""

    def plug(self, tap: str, port_id: str, mac: str, ns: str, device: str) -> None: ...

    def unplug_others(self, wanted_taps: Iterable[str]) -> None: ...


class OvsPlug:
    """``interface_driver = openvswitch`` for one role: its taps on the integration bridge."""

    def __init__(self, db: Ovsdb, bridge: str, role: str) -> None:
        self.db = db
        self.bridge = bridge
        self.role = role

    def plug(self, tap: str, port_id: str, mac: str, ns: str, device: str) -> None:
        ids = {"iface-id": port_id, "attached-mac": mac, "iface-status": "active", ROLE_KEY: self.role}
        seen = self.db.ports().get(tap)
        if seen is None or seen.bridge != self.bridge or seen.iface_external_ids != ids or not seen.ofport \
                or seen.ofport < 0:
            self.db.plug_interface(self.bridge, tap, ids)
        # Every time, not only when plugged: a veth made again (its namespace deleted by hand) keeps its
        # OVS row, and would otherwise come back with offload on. Idempotent; one run per device per sync.
        subprocess.run(["ip", "netns", "exec", ns, "ethtool", "-K", device, "tx", "off"],
                       check=True, capture_output=True)

    def unplug_others(self, wanted_taps: Iterable[str]) -> None:
        """Remove this role's ports whose tap is no longer wanted (its namespace or device went)."""
        wanted = set(wanted_taps)
        stale = sorted(name for name, p in self.db.ports().items()
                       if p.iface_external_ids.get(ROLE_KEY) == self.role and name not in wanted)
        if stale:
            self.db.delete_ports(stale)
