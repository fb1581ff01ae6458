"""What one router namespace should hold, from its part of the intent (pure).

The NAT of a router is one nftables table, ``ip kaon-nat``, rewritten as a
whole in one transaction whenever its text changes (dataplane.md §2):

* prerouting: requests from the internal side to 169.254.169.254:80 are
  redirected to the metadata proxy listening on :9697 in the namespace
  (kaon.agent.metadata_proxy; REDIRECT keeps the VM's source address);
* prerouting/output: each floating IP DNATs to its fixed IP (output too, so
  the router itself reaches it);
* postrouting: a VM with a floating IP leaves as its floating IP; with
  ``enable_snat`` the internal subnets leave as the gateway IP; hairpin —
  a VM reaching another VM's floating IP is DNATed back inside, and is then
  masqueraded to the router's address there, or the other VM would answer
  it directly from its fixed IP and the first would drop the reply.

IPv6 is routed, not NATed (the table is ``ip`` only): ``routes`` adds the v6
default route via the external network's v6 gateway, and ``radvd_conf`` is
the router advertisement daemon's file for the v6 subnets behind ``qr-``
devices, in Neutron's template (neutron/agent/linux/ra.py): per device the
managed flag for ``dhcpv6-stateful``, other-config for
``dhcpv6-stateless``; a prefix with the autonomous flag for ``slaac`` and
``dhcpv6-stateless``, without it for ``dhcpv6-stateful``; no prefix for a
subnet without an ``ipv6_ra_mode`` (the router is still the default router).
"""

from __future__ import annotations

from dataclasses import dataclass

import netaddr

from kaon.model.intent import RaPrefix, RouterIntent

NAT_TABLE = "kaon-nat"
# Neutron's min_rtr_adv_interval / max_rtr_adv_interval defaults (seconds); a
# booting guest does not wait for them: radvd answers its router solicitation.
RA_INTERVALS = (30, 100)
MAX_RDNSS = 3  # radvd's limit per RDNSS line
IPV6_MIN_MTU = 1280
METADATA_REDIRECT = 'iifname "qr-*" ip daddr 169.254.169.254 tcp dport 80 redirect to :9697'


def _v4(cidr: str) -> bool:
    return bool(netaddr.IPNetwork(cidr).version == 4)


def internal_cidrs(router: RouterIntent) -> list[str]:
    """The IPv4 subnets behind the router's interfaces (network addresses)."""
    nets = {str(netaddr.IPNetwork(c).cidr) for i in router.interfaces for c in i.cidrs if _v4(c)}
    return sorted(nets, key=lambda c: netaddr.IPNetwork(c))


def gateway_ip(router: RouterIntent) -> str | None:
    v4 = [c for c in router.gateway.cidrs if _v4(c)] if router.gateway else []
    return str(netaddr.IPNetwork(v4[0]).ip) if v4 else None


def nat_body(router: RouterIntent) -> str:
    """The chains of the router's NAT table (nft syntax, one rule per line)."""
    gw = router.gateway
    pre: list[str] = []
    post: list[str] = []
    qg = f'"{gw.device}"' if gw else None
    inside = internal_cidrs(router)
    inside_set = "{ " + ", ".join(inside) + " }" if inside else None
    dnat: list[str] = []
    for fip in sorted(router.floating_ips, key=lambda f: f.floating_ip):
        if qg is None:
            break
        dnat.append(f"ip daddr {fip.floating_ip} dnat to {fip.fixed_ip}")
        post.append(f"ip saddr {fip.fixed_ip} oifname {qg} snat to {fip.floating_ip}")
    if router.interfaces:
        pre.append(METADATA_REDIRECT)
    pre += dnat
    if inside_set and dnat:
        post.append(f"ip saddr {inside_set} ct status dnat oifname != {qg} masquerade")
    snat_to = gateway_ip(router)
    if router.enable_snat and inside_set and snat_to:
        post.append(f"ip saddr {inside_set} oifname {qg} snat to {snat_to}")
    return (_chain("prerouting", "prerouting", "dstnat", pre) + _chain("output", "output", "-100", dnat)
            + _chain("postrouting", "postrouting", "srcnat", post))


def _chain(name: str, hook: str, priority: str, rules: list[str]) -> str:
    # nft 1.0.6 wants each rule on its own line (a trailing "}" after a
    # dnat target on the same line is a syntax error, dataplane.md §2).
    lines = [f"  chain {name} {{", f"    type nat hook {hook} priority {priority}; policy accept;"]
    lines += [f"    {r}" for r in rules]
    return "\n".join([*lines, "  }", ""])


@dataclass(frozen=True)
class Device:
    port_id: str
    name: str  # qr-/qg- end, in the router namespace
    tap: str  # the other end, in the host namespace (L2 plugs it)
    mac: str
    mtu: int
    cidrs: frozenset[str]


def devices(router: RouterIntent) -> list[Device]:
    """The router's interfaces and gateway; floating IPs sit on qg- as /32s."""
    out = [Device(i.port_id, i.device, i.tap, i.mac, i.mtu, frozenset(i.cidrs)) for i in router.interfaces]
    gw = router.gateway
    if gw:
        fips = {f"{f.floating_ip}/32" for f in router.floating_ips}
        out.append(Device(gw.port_id, gw.device, gw.tap, gw.mac, gw.mtu, frozenset(gw.cidrs) | fips))
    return out


def routes(router: RouterIntent) -> set[tuple[str, str, str]]:
    """(destination, via, dev) the namespace should have besides connected routes, both families."""
    out = {(r.destination, r.nexthop, "") for r in router.routes}
    gw = router.gateway
    if gw and gw.gateway_ip:
        out.add(("default", gw.gateway_ip, gw.device))
    if gw and gw.gateway_ip6:
        out.add(("default", gw.gateway_ip6, gw.device))
    return out


def radvd_conf(router: RouterIntent) -> str:
    """radvd's configuration for the router's IPv6 subnets; empty when there are none."""
    by_device: dict[str, list[RaPrefix]] = {}
    for p in router.advertise:
        by_device.setdefault(p.device, []).append(p)
    out = []
    for device, prefixes in sorted(by_device.items()):
        modes = {p.ra_mode for p in prefixes}
        lines = [f"interface {device}", "{", "   AdvSendAdvert on;",
                 f"   MinRtrAdvInterval {RA_INTERVALS[0]};", f"   MaxRtrAdvInterval {RA_INTERVALS[1]};"]
        mtu = max(p.mtu for p in prefixes)
        if mtu >= IPV6_MIN_MTU:
            lines.append(f"   AdvLinkMTU {mtu};")
        if "dhcpv6-stateless" in modes:
            lines.append("   AdvOtherConfigFlag on;")
        if "dhcpv6-stateful" in modes:
            lines.append("   AdvManagedFlag on;")
        dns = list(dict.fromkeys(d for p in prefixes if p.ra_mode == "slaac" for d in p.dns_nameservers))
        if dns:
            lines.append(f"   RDNSS {' '.join(dns[:MAX_RDNSS])} {{}};")
        for p in prefixes:
            if p.ra_mode is None:
                continue
            auto = "on" if p.ra_mode in ("slaac", "dhcpv6-stateless") else "off"
            lines += [f"   prefix {p.cidr}", "   {", "        AdvOnLink on;", f"        AdvAutonomous {auto};",
                      "   };"]
        out += [*lines, "};", ""]
    return "\n".join(out)
