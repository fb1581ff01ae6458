"""Which compiled security group rule lets a packet through (the same test the agent's firewall makes)."""

from __future__ import annotations

from collections.abc import Mapping

import netaddr

from kaon.model.intent import FirewallIntent, FirewallRule

PROTO_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17}
ICMP6 = 58
ECHO_REQUEST = {4: 8, 6: 128}  # the ICMP type a ping sends


def proto_number(protocol: str, ip_version: int) -> int:
    return ICMP6 if protocol == "icmp" and ip_version == 6 else PROTO_NUMBERS[protocol]


def matches(rule: FirewallRule, *, direction: str, ip_version: int, proto: int, dport: int | None,
            remote: str, sets: Mapping[str, tuple[str, ...]]) -> bool:
    """Does ``rule`` admit the packet? ``remote``: the other end's address (the destination for
    egress, the source for ingress)."""
    if rule.direction != direction or rule.ethertype != f"IPv{ip_version}":
        return False
    if rule.protocol is not None:
        if rule.protocol != proto:
            return False
        if proto in (1, ICMP6):
            if rule.port_range_min is not None and rule.port_range_min != ECHO_REQUEST[ip_version]:
                return False
            if rule.port_range_max is not None and rule.port_range_max != 0:
                return False
        elif rule.port_range_min is not None and dport is not None:
            high = rule.port_range_max if rule.port_range_max is not None else rule.port_range_min
            if not rule.port_range_min <= dport <= high:
                return False
    address = netaddr.IPAddress(remote)
    if rule.remote_ip_prefix is not None and address not in netaddr.IPNetwork(rule.remote_ip_prefix):
        return False
    if rule.remote_set is not None:
        return any(address in netaddr.IPNetwork(m) for m in sets.get(rule.remote_set, ()))
    return True


def first_match(fw: FirewallIntent, groups: tuple[str, ...], **packet: object) -> tuple[str, FirewallRule] | None:
    """The first (group, rule) of ``groups`` that admits the packet, in the order the agent installs them."""
    for gid in groups:
        group = fw.groups.get(gid)
        for rule in group.rules if group is not None else ():
            if matches(rule, sets=fw.sets, **packet):  # type: ignore[arg-type]
                return gid, rule
    return None


def describe(rule: FirewallRule) -> str:
    proto = {1: "icmp", 6: "tcp", 17: "udp", ICMP6: "ipv6-icmp", None: "any"}.get(rule.protocol, str(rule.protocol))
    ports = ""
    if rule.port_range_min is not None and rule.protocol in (6, 17):
        high = rule.port_range_max if rule.port_range_max is not None else rule.port_range_min
        ports = f" {rule.port_range_min}" + (f"-{high}" if high != rule.port_range_min else "")
    remote = rule.remote_ip_prefix or (f"group {rule.remote_set.split('-', 1)[1]}" if rule.remote_set else "any")
    return f"{rule.direction} {rule.ethertype} {proto}{ports} remote {remote}"
