"""The lab's fixed wiring: underlay, provider network, hosts, outside.

::

    <P>ul   bridge br-ul ── ul-h1 ═ eth0 (10.99.0.1/24) <P>h1 ── ...  (underlay: VTEPs)
    <P>pn   bridge br-pn ── pn-h1 ═ eth1 (no address)   <P>h1          (physical network "provider")
                         └─ pn-out ═ eth0 <P>out 192.168.100.1/24, 203.0.113.1/24 ("outside")
            bridge br-p2 ── p2-h1 ═ eth2 (no address)   <P>h1          (physical network "default")
                         └─ p2-out ═ eth1 <P>out 10.10.100.1/24

Host ``i``'s ``eth1`` and ``eth2`` are left unaddressed and up: the Linux
bridge agent enslaves them into the ``brq`` bridge of a flat network on
``provider`` or ``default`` (``physical_interface_mappings =
provider:eth1,default:eth2``). The outside namespace holds seed 001's external
gateway (192.168.100.1), a TEST-NET address, and seed 002's provider gateway
(10.10.100.1 on ``default``, the physical network the seed names), so that
seed 002's shared provider network and seed 001's external network live side
by side (Neutron allows one flat network per physical network).
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
SECOND_PHYSICAL_NETWORK = "default"
SECOND_INTERFACE = "eth2"
# physical network -> the host interface carrying it
PHYSICAL_INTERFACES = {PHYSICAL_NETWORK: PROVIDER_INTERFACE, SECOND_PHYSICAL_NETWORK: SECOND_INTERFACE}
# physical network -> the name (before the host index) of the fabric's end of a host's link to it
FABRIC_LINKS = {PHYSICAL_NETWORK: "pn-h", SECOND_PHYSICAL_NETWORK: "p2-h"}
UNDERLAY_INTERFACE = "eth0"
OUTSIDE_ADDRESSES = ("192.168.100.1/24", "203.0.113.1/24")
OUTSIDE_SECOND_ADDRESS = "10.10.100.1/24"
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

    def link(self, network: str, index: int) -> tuple[str, str]:
        """(namespace, device): the fabric's end of host ``index``'s link to ``network`` (``underlay``
        or a physical network), where ``tcpdump -e`` sees what the host puts on that wire."""
        if network == "underlay":
            return self.underlay, f"ul-h{index}"
        return self.provider, f"{FABRIC_LINKS[network]}{index}"

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
    ip.ensure_bridge(names.provider, "br-p2")


def ensure_host(names: Names, index: int) -> str:
    """Host ``index``: its namespace, eth0 on the underlay (its local_ip), eth1 on br-pn."""
    ns = names.host(index)
    ip.ensure_netns(ns)
    ip.ensure_veth(names.underlay, f"ul-h{index}", ns, UNDERLAY_INTERFACE)
    ip.set_up(names.underlay, f"ul-h{index}", master="br-ul")
    prefixlen = ipaddress.ip_network(UNDERLAY_CIDR).prefixlen
    ip.ensure_address(ns, UNDERLAY_INTERFACE, f"{local_ip(index)}/{prefixlen}")
    ip.set_up(ns, UNDERLAY_INTERFACE)
    ip.ensure_veth(names.provider, names.link(PHYSICAL_NETWORK, index)[1], ns, PROVIDER_INTERFACE)
    ip.set_up(names.provider, names.link(PHYSICAL_NETWORK, index)[1], master="br-pn")
    ip.set_up(ns, PROVIDER_INTERFACE)
    ip.ensure_veth(names.provider, names.link(SECOND_PHYSICAL_NETWORK, index)[1], ns, SECOND_INTERFACE)
    ip.set_up(names.provider, names.link(SECOND_PHYSICAL_NETWORK, index)[1], master="br-p2")
    ip.set_up(ns, SECOND_INTERFACE)
    return ns


def ensure_outside(names: Names) -> str:
    ns = names.outside
    ip.ensure_netns(ns)
    ip.ensure_veth(names.provider, "pn-out", ns, "eth0")
    ip.set_up(names.provider, "pn-out", master="br-pn")
    for cidr in OUTSIDE_ADDRESSES:
        ip.ensure_address(ns, "eth0", cidr)
    ip.set_up(ns, "eth0")
    ip.ensure_veth(names.provider, "p2-out", ns, "eth1")
    ip.set_up(names.provider, "p2-out", master="br-p2")
    ip.ensure_address(ns, "eth1", OUTSIDE_SECOND_ADDRESS)
    ip.set_up(ns, "eth1")
    return ns
