"""The inside of one router namespace: its links, addresses and routes.

Reads are one ``ip -json`` dump each; writes run only for what differs, so
calling again changes nothing. iproute2 is used rather than netlink by hand
because addresses and routes are a handful of calls per router change, not a
hot path (kaon.dataplane.linux_l2 covers the per-port L2 path). Routes the
agent adds carry ``proto static``, which is how it recognises its own when
removing stale ones (connected routes are the kernel's).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field

from kaon.dataplane import DataplaneError, netns

OWN_PROTO = "static"


@dataclass
class LinkState:
    name: str
    mac: str
    mtu: int
    up: bool
    cidrs: set[str] = field(default_factory=set)


def ip(namespace: str, *args: str, check: bool = True) -> str:
    r = subprocess.run(["ip", "-n", namespace, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise DataplaneError(f"ip -n {namespace} {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def links(namespace: str) -> dict[str, LinkState]:
    """Every link with its global-scope addresses (one dump)."""
    out: dict[str, LinkState] = {}
    for item in json.loads(ip(namespace, "-json", "addr", "show") or "[]"):
        state = LinkState(item["ifname"], item.get("address", ""), int(item.get("mtu", 0)),
                          "UP" in item.get("flags", []))
        for a in item.get("addr_info", []):
            if a.get("scope") == "global":
                state.cidrs.add(f"{a['local']}/{a['prefixlen']}")
        out[state.name] = state
    return out


def set_link(namespace: str, have: LinkState, mac: str, mtu: int) -> None:
    if have.mac != mac or have.mtu != mtu or not have.up:
        # A MAC change needs the link down on some drivers; veth takes it live.
        ip(namespace, "link", "set", "dev", have.name, "address", mac, "mtu", str(mtu), "up")


def sync_addresses(namespace: str, have: LinkState, wanted: set[str]) -> set[str]:
    """Make the link's global addresses exactly ``wanted``; the ones added."""
    for cidr in sorted(have.cidrs - wanted):
        ip(namespace, "addr", "del", cidr, "dev", have.name, check=False)
    added = wanted - have.cidrs
    for cidr in sorted(added):
        ip(namespace, "addr", "replace", cidr, "dev", have.name)
    return added


def own_routes(namespace: str) -> set[tuple[str, str, str]]:
    """(destination, via, dev) of the routes with the agent's protocol, IPv4 and IPv6."""
    out = set()
    for family in ("-4", "-6"):
        routes = json.loads(ip(namespace, "-json", family, "route", "show", "proto", OWN_PROTO) or "[]")
        out |= {(r["dst"], r.get("gateway", ""), r.get("dev", "")) for r in routes}
    return out


def _family(via: str) -> str:
    # "default" names no family: the next hop's does.
    return "-6" if ":" in via else "-4"


def sync_routes(namespace: str, wanted: set[tuple[str, str, str]]) -> None:
    """``wanted``: (destination, via, dev or '') — 'default' for the default route."""
    have = own_routes(namespace)
    for dst, via, _dev in sorted(have):
        if not any(dst == w[0] and via == w[1] for w in wanted):
            ip(namespace, _family(via), "route", "del", dst, "via", via, "proto", OWN_PROTO, check=False)
    for dst, via, dev in sorted(wanted):
        if any(dst == h[0] and via == h[1] for h in have):
            continue
        extra = ["dev", dev] if dev else []
        # A nexthop that is not (yet) on a connected subnet fails; the next sync retries.
        ip(namespace, _family(via), "route", "replace", dst, "via", via, *extra, "proto", OWN_PROTO)


def write_sysctl(namespace: str, key: str, value: str) -> None:
    """A per-namespace sysctl: /proc/sys/net follows the writing thread's namespace."""
    def write() -> None:
        with open("/proc/sys/" + key.replace(".", "/"), "w") as fh:
            fh.write(value)

    netns.run_in(namespace, write)


_children: list[subprocess.Popen[bytes]] = []


def garp(namespace: str, dev: str, address: str) -> None:
    """A gratuitous ARP for a new floating IP, best effort and not waited for."""
    # Reap the earlier ones that finished, so none stays a zombie.
    _children[:] = [c for c in _children if c.poll() is None]
    try:
        child = subprocess.Popen(["ip", "netns", "exec", namespace, "arping", "-q", "-U", "-c", "1", "-I", dev, address],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        _children.append(child)
    except OSError:
        pass  # arping missing: peers learn the MAC at their next ARP
