"""What the Open vSwitch agent tells ``kaon doctor`` about its host (its state report's ``health``).

Whether its OVSDB connection is up (``ovsdb``): while ovsdb-server is away
the agent retries by itself and applies nothing, and its passes only fail
after the transaction retry time; this says so at the next report.

The VM devices plugged into br-int whose MTU is not their network's: read
back from the kernel at report time (the agent never sets a VM's tap, Nova's
os-vif does), in the same shape as the Linux bridge agent's
(kaon.agent.l2_manager.mtu_mismatches), so the doctor's ``mtu`` check reads
both. The underlay's MTU is not read here: the VXLAN prober sends frames of
the networks' MTU between the VTEPs (kaon.agent.probe), which tests every
link of the path, not only this host's own.
"""

from __future__ import annotations

from typing import Any

from kaon.dataplane import DataplaneError
from kaon.dataplane.linux_l2 import LinuxL2
from kaon.dataplane.ovsdb import Ovsdb
from kaon.model.intent import HostIntent


def mtu_mismatches(intent: HostIntent, namespace: str | None) -> list[dict[str, Any]]:
    """Ports of ``intent`` whose device (in ``namespace``) has an MTU other than their network's."""
    wanted = {pid: (p, intent.networks[p.network_id].mtu) for pid, p in intent.ports.items()
              if p.network_id in intent.networks and intent.networks[p.network_id].mtu and p.device}
    if not wanted:
        return []
    try:
        with LinuxL2(namespace) as links:
            seen = links.links()
    except (OSError, DataplaneError):
        return []  # the namespace is going away: the next report says
    out = []
    for port_id, (port, mtu) in sorted(wanted.items()):
        link = seen.get(port.device)
        if link is not None and link.mtu != mtu:
            out.append({"device": port.device, "port_id": port_id, "network_id": port.network_id,
                        "mtu": link.mtu, "network_mtu": mtu})
    return out


def ovsdb_state(db: Ovsdb) -> dict[str, Any]:
    """``{remote, connected}`` of the agent's OVSDB connection (read from the IDL, no I/O).

    Never raises: a health fact that cannot be read must not cost the agent its state report."""
    try:
        connected: bool | None = db.connected()
    except Exception:  # python-ovs internals moved: say nothing rather than something wrong
        connected = None
    return {"remote": db.remote, "connected": connected}
