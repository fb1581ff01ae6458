"""A small cloud, compiled by the real compiler sections, to trace through.

    net-a (vxlan 1001, 10.0.0.0/24)   vm1 10.0.0.5 @h1, vm2 10.0.0.6 @h2 (fip 172.24.4.10),
                                      open 10.0.0.7 @h2 (port security off)
    net-b (vxlan 1002, 10.1.0.0/24)   vm3 10.1.0.5 @h1 (group "closed": no ingress)
    net-c (vxlan 1003, 10.2.0.0/24)   vm5 10.2.0.5 @h1, no router
    ext   (flat physnet "public", 172.24.4.0/24, gateway 172.24.4.1)
    r1 on h1: qr on net-a (10.0.0.1) and net-b (10.1.0.1), gateway 172.24.4.2, SNAT on
    group "web" (vm1, vm2): egress all (rule e-web), ingress icmp from anywhere (rule i-icmp),
                            ingress tcp/22 from members of "web" (rule i-ssh)
"""

from __future__ import annotations

import netaddr

from kaon.compiler.firewall_section import FirewallSection, set_name
from kaon.compiler.l2_section import L2Section
from kaon.compiler.l3_section import RoutersSection
from kaon.compiler.sections import project
from kaon.compiler.snapshot import (
    BoundPort,
    FirewallData,
    L3Data,
    PortAddress,
    PortSecurity,
    RouterPort,
    RouterRow,
    Rule,
    SegmentRow,
    Snapshot,
)
from kaon.model.intent import FirewallRule
from kaon.trace.world import NetworkInfo, PortInfo, World

VIF = "bridge"
PORTS = {  # id: (name, network, host, mac, ips, owner)
    "vm1": ("vm1", "net-a", "h1", "fa:16:3e:00:00:01", ("10.0.0.5",), "compute:nova"),
    "vm2": ("vm2", "net-a", "h2", "fa:16:3e:00:00:02", ("10.0.0.6",), "compute:nova"),
    "open": ("open", "net-a", "h2", "fa:16:3e:00:00:07", ("10.0.0.7",), "compute:nova"),
    "vm3": ("vm3", "net-b", "h1", "fa:16:3e:00:00:03", ("10.1.0.5",), "compute:nova"),
    "vm5": ("vm5", "net-c", "h1", "fa:16:3e:00:00:05", ("10.2.0.5",), "compute:nova"),
    "qr-a": ("", "net-a", "h1", "fa:16:3e:00:01:01", ("10.0.0.1",), "network:router_interface"),
    "qr-b": ("", "net-b", "h1", "fa:16:3e:00:01:02", ("10.1.0.1",), "network:router_interface"),
    "qg": ("", "ext", "h1", "fa:16:3e:00:01:03", ("172.24.4.2",), "network:router_gateway"),
}
SEGMENTS = {"net-a": ("vxlan", None, 1001), "net-b": ("vxlan", None, 1002), "net-c": ("vxlan", None, 1003),
            "ext": ("flat", "public", None)}
SUBNETS = {"net-a": ("10.0.0.0/24", "10.0.0.1"), "net-b": ("10.1.0.0/24", "10.1.0.1"),
           "net-c": ("10.2.0.0/24", "10.2.0.1"), "ext": ("172.24.4.0/24", "172.24.4.1")}
RULES = {  # rule id: (group, Rule)
    "e-web": ("web", Rule("egress", "IPv4", None, None, None, None, None)),
    "i-icmp": ("web", Rule("ingress", "IPv4", 1, None, None, "0.0.0.0/0", None)),
    "i-ssh": ("web", Rule("ingress", "IPv4", 6, 22, 22, None, "web")),
    "e-closed": ("closed", Rule("egress", "IPv4", None, None, None, None, None)),
}


def build(*, ports: dict[str, tuple[str, str, str, str, tuple[str, ...], str]] | None = None,
          security: dict[str, PortSecurity] | None = None, vteps: dict[str, str] | None = None,
          snat: bool = True, fips: tuple[tuple[str, str], ...] = (("172.24.4.10", "10.0.0.6"),),
          unbound: tuple[PortInfo, ...] = (), extra_subnets: dict[str, tuple[str, str]] | None = None,
          extra_rules: dict[str, tuple[str, Rule]] | None = None) -> World:
    ports = PORTS if ports is None else ports
    vteps = {"h1": "10.99.0.1", "h2": "10.99.0.2"} if vteps is None else vteps
    bound = tuple(BoundPort(pid, net, host, mac, True, owner, f"seg-{net}", ips)
                  for pid, (_, net, host, mac, ips, owner) in ports.items())
    segments = {f"seg-{n}": SegmentRow(f"seg-{n}", n, t, phys, sid) for n, (t, phys, sid) in SEGMENTS.items()}
    secured = {"vm1": PortSecurity(True, (), ("web",)), "vm2": PortSecurity(True, (), ("web",)),
               "open": PortSecurity(False, (), ()), "vm3": PortSecurity(True, (), ("closed",)),
               "vm5": PortSecurity(True, (), ("web",))}
    secured.update(security or {})
    all_rules = {**RULES, **(extra_rules or {})}
    rules: dict[str, list[Rule]] = {}
    for group, rule in all_rules.values():
        rules.setdefault(group, []).append(rule)
    members = {"web": tuple(ip for pid in ("vm1", "vm2", "vm5") if pid in ports for ip in ports[pid][4])}

    extra = extra_subnets or {}

    def rport(pid: str, gateway: bool) -> RouterPort:
        net = ports[pid][1]
        subnets = [SUBNETS[net], *((extra[net],) if net in extra else ())]
        return RouterPort(pid, "r1", gateway, ports[pid][3], 1450, tuple(
            PortAddress(ip, cidr, gw) for ip in ports[pid][4] for cidr, gw in subnets
            if netaddr.IPAddress(ip) in netaddr.IPNetwork(cidr)))

    snap = Snapshot(
        ports=bound, segments=segments, vteps=vteps,
        routers=L3Data(frozenset({"h1"}), (RouterRow("r1", "h1", snat),),
                       {"r1": (rport("qg", True), rport("qr-a", False), rport("qr-b", False))},
                       {"r1": fips}),
        firewall=FirewallData({k: v for k, v in secured.items() if k in ports},
                              frozenset(p.host for p in bound), {"web": True, "closed": True},
                              {k: tuple(v) for k, v in rules.items()}, members))
    intents = project(snap, [L2Section(), RoutersSection(), FirewallSection()])
    infos = {pid: PortInfo(pid, name, net, mac, ips, owner, "r1" if owner.startswith("network:router") else "",
                           host, VIF) for pid, (name, net, host, mac, ips, owner) in ports.items()}
    infos.update({p.id: p for p in unbound})
    rule_ids = {(g, _compiled(r)): (rid,) for rid, (g, r) in all_rules.items()}
    networks = {n: NetworkInfo(n, n, n == "ext", (SUBNETS[n], *((extra[n],) if n in extra else ())))
                for n in SUBNETS}
    return World(intents, infos, networks, {"r1": "router1"}, vteps, rule_ids)


def _compiled(r: Rule) -> FirewallRule:
    return FirewallRule(r.direction, r.ethertype, r.protocol, r.port_range_min, r.port_range_max,
                        r.remote_ip_prefix, set_name(r.remote_group_id, r.ethertype) if r.remote_group_id else None)
