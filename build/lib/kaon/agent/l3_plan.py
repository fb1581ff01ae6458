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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import netaddr

NAT_TABLE = "kaon-nat"
METADATA_REDIRECT = 'iifname "qr-*" ip daddr 169.254.169.254 tcp dport 80 redirect to :9697'


def _v4(cidr: str) -> bool:
    return netaddr.IPNetwork(cidr).version == 4


def internal_cidrs(router: dict[str, Any]) -> list[str]:
    """The IPv4 subnets behind the router's interfaces (network addresses)."""
    nets = {str(netaddr.IPNetwork(c).cidr) for i in router["interfaces"] for c in i["cidrs"] if _v4(c)}
    return sorted(nets, key=lambda c: netaddr.IPNetwork(c))


def gateway_ip(router: dict[str, Any]) -> str | None:
    gw = router.get("gateway")
    v4 = [c for c in (gw or {}).get("cidrs", []) if _v4(c)]
    return str(netaddr.IPNetwork(v4[0]).ip) if v4 else None


def nat_body(router: dict[str, Any]) -> str:
    """The chains of the router's NAT table (nft syntax, one rule per line)."""
    gw = router.get("gateway")
    pre: list[str] = []
    post: list[str] = []
    qg = f'"{gw["device"]}"' if gw else None
    inside = internal_cidrs(router)
    inside_set = "{ " + ", ".join(inside) + " }" if inside else None
    dnat: list[str] = []
    for fip in sorted(router.get("floating_ips", []), key=lambda f: f["floating_ip"]):
        if qg is None:
            break
        dnat.append(f"ip daddr {fip['floating_ip']} dnat to {fip['fixed_ip']}")
        post.append(f"ip saddr {fip['fixed_ip']} oifname {qg} snat to {fip['floating_ip']}")
    if router["interfaces"]:
        pre.append(METADATA_REDIRECT)
    pre += dnat
    if inside_set and dnat:
        post.append(f"ip saddr {inside_set} ct status dnat oifname != {qg} masquerade")
    snat_to = gateway_ip(router)
    if router.get("enable_snat") and inside_set and snat_to:
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
    name: str  # qr-/qg- end, in the router namespace
    tap: str  # the other end, in the host namespace (L2 plugs it)
    mac: str
    mtu: int
    cidrs: frozenset[str]


def devices(router: dict[str, Any]) -> list[Device]:
    """The router's interfaces and gateway; floating IPs sit on qg- as /32s."""
    out = [Device(i["device"], i["tap"], i["mac"], int(i["mtu"]), frozenset(i["cidrs"])) for i in router["interfaces"]]
    gw = router.get("gateway")
    if gw:
        fips = {f"{f['floating_ip']}/32" for f in router.get("floating_ips", [])}
        out.append(Device(gw["device"], gw["tap"], gw["mac"], int(gw["mtu"]), frozenset(gw["cidrs"]) | fips))
    return out


def routes(router: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(destination, via, dev) the namespace should have besides connected routes."""
    out = {(r["destination"], r["nexthop"], "") for r in router.get("routes", []) if _v4(r["destination"])}
    gw = router.get("gateway")
    if gw and gw.get("gateway_ip"):
        out.add(("default", gw["gateway_ip"], gw["device"]))
    return out
