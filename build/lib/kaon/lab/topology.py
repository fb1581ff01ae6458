"""The lab's fixed wiring: underlay, provider network, hosts, outside.

::

    <P>ul   bridge br-ul ── ul-h1 ═ eth0 (10.99.0.1/24) <P>h1 ── ...  (underlay: VTEPs)
    <P>pn   bridge br-pn ── pn-h1 ═ eth1 (no address)   <P>h1          (physical network "provider")
                         └─ pn-out ═ eth0 <P>out 192.168.100.1/24, 203.0.113.1/24 ("outside")

Host ``i``'s ``eth1`` is left unaddressed and up: the Linux bridge agent
enslaves it into the ``brq`` bridge of a flat network on ``provider``
(``physical_interface_mappings = provider:eth1``). The outside namespace
holds seed 001's external gateway (192.168.100.1) and a TEST-NET address.
All names are fixed by the prefix and the host index, so every step is
idempotent and cleanup is by exact name.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from kaon.lab import ip

UNDERLAY_CIDR = "10.99.0.0/24"
PHYSICAL_NETWORK = "provider"
PROVIDER_INTERFACE = "eth1"
UNDERLAY_INTERFACE = "eth0"
OUTSIDE_ADDRESSES = ("192.168.100.1/24", "203.0.113.1/24")
MAX_HOSTS = 250


@dataclass(frozen=True)
class Names:
    """Namespace names of one lab, all derived from its prefix."""

    prefix: str

    @property
    def underlay(self) -> str:
        return f"{self.prefix}ul"

    @property
    def provider(self) -> str:
        return f"{self.prefix}pn"

    @property
    def outside(self) -> str:
        return f"{self.prefix}out"

    def host(self, index: int) -> str:
        return f"{self.prefix}h{index}"

    def vm(self, name: str) -> str:
        return f"{self.prefix}vm-{name}"

    def fixed(self) -> list[str]:
        return [self.underlay, self.provider, self.outside]


def local_ip(index: int) -> str:
    net = ipaddress.ip_network(UNDERLAY_CIDR)
    return str(net.network_address + index)


def ensure_fabric(names: Names) -> None:
    """The underlay and provider bridges, each in its own namespace."""
    ip.ensure_netns(names.underlay)
    ip.ensure_bridge(names.underlay, "br-ul")
    ip.ensure_netns(names.provider)
    ip.ensure_bridge(names.provider, "br-pn")


def ensure_host(names: Names, index: int) -> str:
    """Host ``index``: its namespace, eth0 on the underlay (its local_ip), eth1 on br-pn."""
    ns = names.host(index)
    ip.ensure_netns(ns)
    ip.ensure_veth(names.underlay, f"ul-h{index}", ns, UNDERLAY_INTERFACE)
    ip.set_up(names.underlay, f"ul-h{index}", master="br-ul")
    prefixlen = ipaddress.ip_network(UNDERLAY_CIDR).prefixlen
    ip.ensure_address(ns, UNDERLAY_INTERFACE, f"{local_ip(index)}/{prefixlen}")
    ip.set_up(ns, UNDERLAY_INTERFACE)
    ip.ensure_veth(names.provider, f"pn-h{index}", ns, PROVIDER_INTERFACE)
    ip.set_up(names.provider, f"pn-h{index}", master="br-pn")
    ip.set_up(ns, PROVIDER_INTERFACE)
    return ns


def ensure_outside(names: Names) -> str:
    ns = names.outside
    ip.ensure_netns(ns)
    ip.ensure_veth(names.provider, "pn-out", ns, "eth0")
    ip.set_up(names.provider, "pn-out", master="br-pn")
    for cidr in OUTSIDE_ADDRESSES:
        ip.ensure_address(ns, "eth0", cidr)
    ip.set_up(ns, "eth0")
    return ns
