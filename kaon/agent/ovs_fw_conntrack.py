"""Conntrack cleanup for the OVS firewall: what a security group change no longer allows, deleted.

The entries to delete are the nftables driver's (kaon.agent.fw_conntrack:
per stateful port, the rules it lost and the remote group members that left),
in the OVS firewall's zones (a network's local VLAN), deleted from
ovs-vswitchd's conntrack (kaon.dataplane.ovs_conntrack) once the new flows are
in. ovs-vswitchd's flush takes exact fields, no masks: a remote CIDR of up to
:data:`EXPAND` addresses is flushed address by address; a wider one drops the
remote field, deleting every entry of that port, direction, protocol and port
— the extra ones are looked up afresh on their next packet and pass the rules
again (OVS's userspace conntrack, like the kernel's, picks TCP up mid-stream).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import netaddr

from kaon.agent import fw_conntrack
from kaon.model.intent import FirewallIntent, PortIntent

__all__ = ["ConntrackCleaner", "ct_tuples", "EXPAND"]

EXPAND = 16
PROTOCOL_NUMBERS = {name: number for number, name in fw_conntrack.PROTOCOLS.items()}

Flush = Callable[[int, str], None]  # (zone, ct-orig-tuple)


def ct_tuples(flow: fw_conntrack.Flow) -> list[str]:
    """``dpctl/flush-conntrack`` original-direction tuples covering ``flow``'s entries."""
    kind = "nw" if flow.family == "ipv4" else "ipv6"
    local_end, remote_end = ("src", "dst") if flow.local_is_source else ("dst", "src")
    fields = [f"ct_{kind}_{local_end}={flow.local}"]
    # ICMP: OVS 3.1 matches an ICMP tuple only whole (id, type and code too), so an ICMP rule's
    # entries are flushed by address alone, every protocol's (looked up afresh, as above).
    if flow.protocol and flow.protocol not in ("icmp", "icmpv6"):
        fields.append(f"ct_nw_proto={PROTOCOL_NUMBERS[flow.protocol]}")
        if flow.dport is not None:
            fields.append(f"ct_tp_dst={flow.dport}")
    remotes: list[str | None] = [None]
    if flow.remote:
        net = netaddr.IPNetwork(flow.remote)
        if net.size <= EXPAND:
            remotes = [str(ip) for ip in net]
    return [",".join(fields + ([f"ct_{kind}_{remote_end}={r}"] if r else [])) for r in remotes]


class ConntrackCleaner:
    """Remembers the firewall intent last put in force; after the next one, flushes what it stopped allowing."""

    def __init__(self, flush: Flush) -> None:
        self._flush = flush
        self._applied: FirewallIntent | None = None
        self.flushed = 0  # flush calls made (tests read it)

    def after(self, new: FirewallIntent | None, ports: Mapping[str, PortIntent],
              zones: Mapping[str, int]) -> tuple[tuple[str, str], ...]:
        """Call once ``new``'s flows are in; ``zones``: network → local VLAN. Returns errors (the rules
        are in force: a surviving entry is logged, not retried)."""
        old, self._applied = self._applied, new
        if old is None or new is None or old == new:
            return ()
        errors: list[tuple[str, str]] = []
        network_of = {pid: p.network_id for pid, p in ports.items()}
        for flow in fw_conntrack.stale_flows(old, new, network_of, zones.get):
            if flow.zone is None:  # the port's network has no local VLAN here: no zone of ours holds it
                continue
            for ct_tuple in ct_tuples(flow):
                try:
                    self._flush(flow.zone, ct_tuple)
                    self.flushed += 1
                except Exception as exc:
                    errors.append(("conntrack", str(exc)))
        return tuple(errors)
