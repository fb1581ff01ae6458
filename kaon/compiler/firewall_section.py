"""The ``firewall`` section of a host's intent: security groups, pre-resolved.

For every port bound on the host that a firewall filters (not ``network:*``
ports: Neutron does not filter router and DHCP ports either)::

    {"ports": {"<port id>": {"device": "tap<port[:11]>", "mac", "ips": [...],
                             "port_security": true, "stateful": bool,
                             "allowed_address_pairs": [{"ip_address": "10.0.0.0/28", "mac_address"}],
                             "security_groups": ["<group id>", ...]},
               "<port id>": {"device", "mac", "port_security": false}},   # allow all
     "groups": {"<group id>": {"stateful": bool, "rules": [
         {"direction": "ingress", "ethertype": "IPv4", "protocol": 6 | null,
          "port_range_min", "port_range_max",          # icmp: type and code
          "remote_ip_prefix": "10.0.0.0/24" | null,     # normalized to its network
          "remote_set": "sg4-<group id>" | null}]}},    # remote_group_id, as a kernel set
     "sets": {"sg4-<group id>": ["10.0.0.5", "10.0.0.16/28"], "sg6-<group id>": [...]}}

Why the rules live under ``groups`` and not copied into every port: a host
with 50 ports in a group of 1,000 rules would otherwise carry 50,000 rule
copies; the agent builds one chain per group and jumps to it from each port.

A remote group's members are the fixed IPs and allowed address pairs of
every port in that group, on any host, merged into the fewest CIDRs (an
interval set in the kernel refuses overlapping elements). The rows are
read by kaon.core.agents.snapshot (``FirewallData``, a handful of SELECTs per compile
whatever the number of ports); this is pure.
"""

from __future__ import annotations

import dataclasses

import netaddr

from kaon.compiler.snapshot import FirewallData, Rule, Snapshot
from kaon.model import names
from kaon.model.intent import (
    AddressPair,
    FirewallIntent,
    FirewallPort,
    FirewallRule,
    HostIntent,
    SecurityGroupIntent,
)

TRUSTED_PREFIX = "network:"


def set_name(group_id: str, ethertype: str) -> str:
    return f"sg{4 if ethertype == 'IPv4' else 6}-{group_id}"


class FirewallSection:
    name = "firewall"

    def hosts(self, snap: Snapshot) -> set[str]:
        return set(snap.firewall.hosts)

    def project(self, snap: Snapshot, host: str, intent: HostIntent) -> HostIntent:
        part = project_firewall(snap.firewall, host, snap)
        return dataclasses.replace(intent, firewall=part) if part is not None else intent


def project_firewall(data: FirewallData, host: str, l2: Snapshot) -> FirewallIntent | None:
    """The firewall part of ``host``'s intent (pure); None when no port there is filtered."""
    out_ports: dict[str, FirewallPort] = {}
    used: set[str] = set()
    for port in sorted(l2.ports, key=lambda p: p.id):
        sec = data.ports.get(port.id)
        if port.host != host or sec is None or port.device_owner.startswith(TRUSTED_PREFIX):
            continue
        if not sec.enabled:
            out_ports[port.id] = FirewallPort(names.tap(port.id), port.mac, False)
            continue
        groups = tuple(g for g in sec.groups if g in data.stateful)
        used.update(groups)
        out_ports[port.id] = FirewallPort(
            names.tap(port.id), port.mac, True, ips=port.ips, security_groups=groups,
            # A port's groups all share one statefulness (the API refuses a mix).
            stateful=all(data.stateful[g] for g in groups) if groups else True,
            allowed_address_pairs=tuple(AddressPair(ip, mac or port.mac) for ip, mac in sec.pairs))
    if not out_ports:
        return None
    rules = {g: tuple(_rule(r) for r in data.rules.get(g, ())) for g in sorted(used)}
    sets = {rule.remote_set: _set_members(data, rule.remote_set, rule.ethertype)
            for group_rules in rules.values() for rule in group_rules if rule.remote_set}
    return FirewallIntent(out_ports, {g: SecurityGroupIntent(data.stateful[g], rules[g]) for g in rules},
                          dict(sorted(sets.items())))


def _rule(r: Rule) -> FirewallRule:
    return FirewallRule(r.direction, r.ethertype, r.protocol, r.port_range_min, r.port_range_max,
                        r.remote_ip_prefix, set_name(r.remote_group_id, r.ethertype) if r.remote_group_id else None)


def _set_members(data: FirewallData, name: str, ethertype: str) -> tuple[str, ...]:
    version = 4 if ethertype == "IPv4" else 6
    group_id = name.split("-", 1)[1]
    return tuple(a for a in data.members.get(group_id, ()) if netaddr.IPNetwork(a).version == version)
