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
interval set in the kernel refuses overlapping elements). ``read`` is a
handful of SELECTs per compile, whatever the number of ports; ``project`` is pure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import netaddr
from sqlalchemy import Connection, select

from kaon.compiler.projection import tap_name
from kaon.compiler.snapshot import LINUXBRIDGE, Snapshot
from kaon.db.agent_tables import port_binding_levels
from kaon.db.core_tables import ip_allocations, port_security_groups, ports
from kaon.db.sg_tables import security_group_rules, security_groups
from kaon.model.security_group import canonical_protocol, proto_number

TRUSTED_PREFIX = "network:"
PSG = port_security_groups


@dataclass(frozen=True)
class PortSecurity:
    enabled: bool
    pairs: tuple[tuple[str, str | None], ...]  # (ip or cidr, mac or None)
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    direction: str
    ethertype: str
    protocol: int | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None


@dataclass(frozen=True)
class FirewallData:
    ports: dict[str, PortSecurity]  # bound ports (linuxbridge), by id
    hosts: frozenset[str] = frozenset()  # the hosts those ports are bound on
    stateful: dict[str, bool] = field(default_factory=dict)  # group -> stateful
    rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)  # group -> rules
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # remote group -> addresses


def set_name(group_id: str, ethertype: str) -> str:
    return f"sg{4 if ethertype == 'IPv4' else 6}-{group_id}"


def _memberships(conn: Connection, port_ids: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for port_id, group_id in conn.execute(select(PSG.c.port_id, PSG.c.security_group_id)
                                          .where(PSG.c.port_id.in_(port_ids))):
        out[port_id].append(group_id)
    return out


def _bound_ports(conn: Connection) -> tuple[dict[str, PortSecurity], frozenset[str]]:
    bound = select(port_binding_levels.c.port_id).where(port_binding_levels.c.driver == LINUXBRIDGE,
                                                        port_binding_levels.c.level == 0)
    rows = conn.execute(select(ports.c.id, ports.c.binding_host_id, ports.c.port_security_enabled,
                               ports.c.allowed_address_pairs).where(ports.c.id.in_(bound))).all()
    groups = _memberships(conn, bound)
    return ({r.id: PortSecurity(bool(r.port_security_enabled), _pairs(r.allowed_address_pairs),
                                tuple(sorted(groups.get(r.id, ())))) for r in rows},
            frozenset(r.binding_host_id for r in rows))


def _pairs(raw: Any) -> tuple[tuple[str, str | None], ...]:
    return tuple((p["ip_address"], p.get("mac_address")) for p in (raw or []) if p.get("ip_address"))


def _rules(conn: Connection, group_ids: list[str]) -> dict[str, tuple[Rule, ...]]:
    R = security_group_rules
    out: dict[str, list[Rule]] = defaultdict(list)
    # remote_address_group_id rules are left out: kaon has no address groups (the API refuses them).
    for r in conn.execute(select(R).where(R.c.security_group_id.in_(group_ids),
                                          R.c.remote_address_group_id.is_(None)).order_by(R.c.id)):
        prefix = None if r.remote_ip_prefix is None else str(netaddr.IPNetwork(r.remote_ip_prefix).cidr)
        out[r.security_group_id].append(Rule(
            r.direction, r.ethertype, proto_number(canonical_protocol(r.protocol, r.ethertype)),
            r.port_range_min, r.port_range_max, prefix, r.remote_group_id))
    return {k: tuple(v) for k, v in out.items()}


def _members(conn: Connection, group_ids: set[str]) -> dict[str, tuple[str, ...]]:
    """Every address of every port in these groups (any host, bound or not), merged."""
    in_groups = select(PSG.c.port_id).where(PSG.c.security_group_id.in_(group_ids))
    groups = _memberships(conn, in_groups)
    addresses: dict[str, list[str]] = defaultdict(list)
    for port_id, ip in conn.execute(select(ip_allocations.c.port_id, ip_allocations.c.ip_address)
                                    .where(ip_allocations.c.port_id.in_(in_groups))):
        addresses[port_id].append(ip)
    for port_id, raw in conn.execute(select(ports.c.id, ports.c.allowed_address_pairs)
                                     .where(ports.c.id.in_(in_groups))):
        addresses[port_id].extend(ip for ip, _ in _pairs(raw))
    per_group: dict[str, list[str]] = defaultdict(list)
    for port_id, gids in groups.items():
        for gid in gids:
            if gid in group_ids:
                per_group[gid].extend(addresses.get(port_id, ()))
    return {gid: tuple(merge(per_group.get(gid, ()))) for gid in group_ids}


def merge(addresses: Any) -> list[str]:
    """The fewest CIDRs covering ``addresses``; single hosts written as bare addresses."""
    merged = netaddr.cidr_merge([netaddr.IPNetwork(a) for a in addresses])
    return [str(n.ip) if n.size == 1 else str(n) for n in merged]


class FirewallSection:
    name = "firewall"

    def read(self, conn: Connection) -> FirewallData:
        bound, hosts = _bound_ports(conn)
        group_ids = sorted({g for p in bound.values() if p.enabled for g in p.groups})
        if not group_ids:
            return FirewallData(bound, hosts)
        stateful = dict(conn.execute(select(security_groups.c.id, security_groups.c.stateful)
                                     .where(security_groups.c.id.in_(group_ids))).all())
        rules = _rules(conn, group_ids)
        remote = {r.remote_group_id for rs in rules.values() for r in rs if r.remote_group_id}
        return FirewallData(bound, hosts, {k: bool(v) for k, v in stateful.items()}, rules,
                            _members(conn, remote) if remote else {})

    def hosts(self, data: FirewallData) -> set[str]:
        return set(data.hosts)

    def project(self, data: FirewallData, host: str, l2: Snapshot) -> dict[str, Any] | None:
        return project_firewall(data, host, l2)


def project_firewall(data: FirewallData, host: str, l2: Snapshot) -> dict[str, Any]:
    """The firewall part of ``host``'s intent (pure); empty when no port there is filtered."""
    out_ports: dict[str, Any] = {}
    used: set[str] = set()
    for port in sorted(l2.ports, key=lambda p: p.id):
        sec = data.ports.get(port.id)
        if port.host != host or sec is None or port.device_owner.startswith(TRUSTED_PREFIX):
            continue
        entry: dict[str, Any] = {"device": tap_name(port.id), "mac": port.mac, "port_security": sec.enabled}
        if sec.enabled:
            groups = [g for g in sec.groups if g in data.stateful]
            used.update(groups)
            entry.update(ips=list(port.ips), security_groups=groups,
                         # A port's groups all share one statefulness (the API refuses a mix).
                         stateful=all(data.stateful[g] for g in groups) if groups else True,
                         allowed_address_pairs=[{"ip_address": ip, "mac_address": mac or port.mac}
                                                for ip, mac in sec.pairs])
        out_ports[port.id] = entry
    if not out_ports:
        return {}
    rules = {g: [_rule(r) for r in data.rules.get(g, ())] for g in sorted(used)}
    sets = {rule["remote_set"]: _set_members(data, rule["remote_set"], rule["ethertype"])
            for group_rules in rules.values() for rule in group_rules if rule["remote_set"]}
    return {"ports": out_ports, "groups": {g: {"stateful": data.stateful[g], "rules": rules[g]} for g in rules},
            "sets": dict(sorted(sets.items()))}


def _rule(r: Rule) -> dict[str, Any]:
    return {"direction": r.direction, "ethertype": r.ethertype, "protocol": r.protocol,
            "port_range_min": r.port_range_min, "port_range_max": r.port_range_max,
            "remote_ip_prefix": r.remote_ip_prefix,
            "remote_set": set_name(r.remote_group_id, r.ethertype) if r.remote_group_id else None}


def _set_members(data: FirewallData, name: str, ethertype: str) -> list[str]:
    version = 4 if ethertype == "IPv4" else 6
    group_id = name.split("-", 1)[1]
    return [a for a in data.members.get(group_id, ()) if netaddr.IPNetwork(a).version == version]
