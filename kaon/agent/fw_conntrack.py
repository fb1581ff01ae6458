"""Which conntrack entries a security group change leaves without a rule (pure).

Neutron deletes them (its ``IpConntrackManager``) so that removing a rule
stops the flows it had allowed, not only new ones: in the tables an
established packet is accepted before any rule is looked at. Per filtered,
stateful port present before and after a change, every rule it had and no
longer has (a rule removed from one of its groups, or a group taken off the
port) gives entries by the port's addresses in its network's zone, with the
rule's protocol and destination port; a remote group that lost members
gives the entries between the port and those members, for the rules that
name that group. Deleting an entry that another rule still allows costs
nothing lasting: the flow's next packet is looked up afresh (TCP is picked
up mid-stream) and passes the rules again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import netaddr

from kaon.agent.fw_plan import zone
from kaon.model.intent import FirewallIntent, FirewallPort, FirewallRule

PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 33: "dccp", 58: "icmpv6", 132: "sctp", 136: "udplite"}
WITH_PORTS = {"tcp", "udp", "dccp", "sctp", "udplite"}


@dataclass(frozen=True, order=True)
class Flow:
    """Entries to delete: ``conntrack -D`` with :meth:`args`."""
    zone: int | None  # None: the port's network is unknown here, every zone
    family: str  # ipv4 | ipv6
    local: str  # the port's address
    local_is_source: bool  # egress: the port opened the flow
    protocol: str | None = None
    dport: int | None = None
    remote: str | None = None  # an address or CIDR at the other end

    def args(self) -> list[str]:
        local, remote = ("-s", "-d") if self.local_is_source else ("-d", "-s")
        out = ["-f", self.family]
        if self.zone is not None:
            out += ["-w", str(self.zone)]
        if self.protocol:
            out += ["-p", self.protocol]
            if self.dport is not None:
                out += ["--dport", str(self.dport)]
        out += [local, self.local]
        if self.remote:
            net = netaddr.IPNetwork(self.remote)
            out += [remote, str(net.ip)]
            if net.size > 1:
                out += [f"--mask-{'src' if remote == '-s' else 'dst'}", str(net.netmask)]
        return out


def stale_flows(old: FirewallIntent | None, new: FirewallIntent | None, network_of: Mapping[str, str],
                zone_of: Callable[[str], int | None] = zone) -> list[Flow]:
    """The entries ``new`` no longer allows that ``old`` did; ``network_of``: port id → network id;
    ``zone_of``: network id → its conntrack zone (the OVS firewall's is the network's local VLAN)."""
    if old is None or new is None or old == new:
        return []
    # Work only on what changed: a pass with one port more must not cost a walk of every port's rules.
    changed = {g for g in old.groups if old.groups[g] != new.groups.get(g)}
    shrunk = {name: _lost(members, new.sets.get(name, ()))
              for name, members in old.sets.items() if members != new.sets.get(name)}
    shrunk = {name: gone for name, gone in shrunk.items() if gone}
    out: set[Flow] = set()
    for pid, port in new.ports.items():
        was = old.ports.get(pid)
        if was is None or not (was.port_security and port.port_security) or was.stateful is False:
            continue
        if was.security_groups == port.security_groups and not changed.intersection(port.security_groups or ()) \
                and not shrunk:
            continue
        net = network_of.get(pid)
        zone_id = zone_of(net) if net else None
        before, after = _rules(old, was), _rules(new, port)
        for rule in before - after:
            out.update(_flows(zone_id, port, rule, None))
        for rule in before & after:
            for remote in shrunk.get(rule.remote_set or "", ()):
                out.update(_flows(zone_id, port, rule, remote))
    return sorted(out)


def _lost(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """Addresses ``old`` covers and ``new`` does not, as CIDRs. By address, not by element: the
    members are merged into the fewest CIDRs, so a member *joining* can replace elements
    (10.0.0.4 + 10.0.0.5 → 10.0.0.4/31) without anyone leaving."""
    gone = netaddr.IPSet(old) - netaddr.IPSet(new)
    return [str(c.ip) if c.size == 1 else str(c) for c in gone.iter_cidrs()]


def _rules(fw: FirewallIntent, port: FirewallPort) -> set[FirewallRule]:
    return {r for g in port.security_groups or () if g in fw.groups for r in fw.groups[g].rules}


def _flows(zone_id: int | None, port: FirewallPort, rule: FirewallRule, remote: str | None) -> list[Flow]:
    version = 4 if rule.ethertype == "IPv4" else 6
    proto = PROTOCOLS.get(rule.protocol) if rule.protocol else None
    # conntrack matches one destination port; a range deletes every port's entries.
    dport = rule.port_range_min if proto in WITH_PORTS and rule.port_range_max in (None, rule.port_range_min) else None
    return [Flow(zone_id, f"ipv{version}", ip, rule.direction == "egress", proto, dport, remote)
            for ip in port.ips or () if netaddr.IPAddress(ip).version == version]
