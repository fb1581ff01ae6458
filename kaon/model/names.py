"""Device and namespace names: Neutron's conventions, written once.

Users, tools and Nova rely on these names (``ip link`` on a compute node
shows ``tap…`` and ``brq…``; ``ip netns`` shows ``qdhcp-…`` and
``qrouter-…``), so kaon spells them as Neutron does:

* a 3-character prefix plus the first 11 characters of a port or network
  UUID: ``tap``, ``qr-``, ``qg-``, ``ns-``, ``brq`` — 14 characters
  (Neutron's ``DEVICE_ID_LENGTH`` 11), within Linux's limit of 15
  (``IFNAMSIZ`` 16 with the terminating NUL; neutron-lib's
  ``DEVICE_NAME_MAX_LEN``);
* ``vxlan-<vni>`` for the VXLAN device of a network (VNI ≤ 16777215: at
  most 14 characters);
* ``<interface>.<vlan id>`` for an 802.1Q sub-interface;
* namespaces carry the whole UUID (no length limit): ``qdhcp-<network>``,
  ``qrouter-<router>``, behind an optional ``namespace_prefix`` (kaon's
  option, empty for Neutron's names) so that several simulated hosts share
  one kernel;
* Open vSwitch: ``br-int``/``br-tun``/``br-ex`` bridges, ``int-<bridge>`` and
  ``phy-<bridge>`` veth ends between br-int and a physical bridge (a name
  too long for 15 characters is cut and ends in 6 hex digits of its SHA-1,
  as Neutron's ``get_interface_name`` does), ``patch-tun``/``patch-int``
  between br-int and br-tun.

The compiler (which writes names into host intents), the ML2 driver (which
reports ``bridge_name`` in ``binding:vif_details``), the agent (which owns
what carries its prefixes) and the lab (whose VMs plug taps) all import
from here.
"""

from __future__ import annotations

import hashlib

# Linux's limit (neutron-lib's DEVICE_NAME_MAX_LEN) and the UUID characters
# Neutron keeps after a prefix (DEVICE_ID_LENGTH): 3 + 11 = 14 characters.
DEVICE_NAME_MAX_LEN = 15
UUID_CHARS = 11
HASH_CHARS = 6

TAP = "tap"  # a port's device on the host (VM side or veth end)
ROUTER_INTERFACE = "qr-"  # a router's internal interface, inside qrouter-
ROUTER_GATEWAY = "qg-"  # a router's gateway interface, inside qrouter-
DHCP_INTERFACE = "ns-"  # a DHCP port's interface, inside qdhcp-
BRIDGE = "brq"  # a network's Linux bridge
VXLAN = "vxlan-"
DHCP_NAMESPACE = "qdhcp-"
ROUTER_NAMESPACE = "qrouter-"

# Open vSwitch (the openvswitch mechanism driver and agent).
INTEGRATION_BRIDGE = "br-int"
TUNNEL_BRIDGE = "br-tun"
EXTERNAL_BRIDGE = "br-ex"
PATCH_TUN = "patch-tun"  # br-int's end of the patch to br-tun
PATCH_INT = "patch-int"  # br-tun's end of the patch to br-int
INT_VETH = "int-"  # br-int's end towards a physical bridge
PHY_VETH = "phy-"  # the physical bridge's end towards br-int


def device(prefix: str, uuid: str) -> str:
    """``prefix`` + the first 11 characters of ``uuid``, as Neutron names devices."""
    name = prefix + uuid[:UUID_CHARS]
    if len(name) > DEVICE_NAME_MAX_LEN:
        raise ValueError(f"device name {name!r} is longer than {DEVICE_NAME_MAX_LEN} characters")
    return name


def tap(port_id: str) -> str:
    return device(TAP, port_id)


def router_interface(port_id: str) -> str:
    return device(ROUTER_INTERFACE, port_id)


def router_gateway(port_id: str) -> str:
    return device(ROUTER_GATEWAY, port_id)


def dhcp_interface(port_id: str) -> str:
    return device(DHCP_INTERFACE, port_id)


def bridge(network_id: str) -> str:
    return device(BRIDGE, network_id)


def vxlan(vni: int) -> str:
    return f"{VXLAN}{vni}"


def vlan(interface: str, vid: int) -> str:
    return f"{interface}.{vid}"


def dhcp_namespace(network_id: str, prefix: str = "") -> str:
    return f"{prefix}{DHCP_NAMESPACE}{network_id}"


def router_namespace(router_id: str, prefix: str = "") -> str:
    return f"{prefix}{ROUTER_NAMESPACE}{router_id}"


def int_veth(physical_bridge: str) -> str:
    return _ovs_veth(INT_VETH, physical_bridge)


def phy_veth(physical_bridge: str) -> str:
    return _ovs_veth(PHY_VETH, physical_bridge)


def _ovs_veth(prefix: str, physical_bridge: str) -> str:
    name = prefix + physical_bridge
    if len(name) <= DEVICE_NAME_MAX_LEN:
        return name
    # Cut, and keep two long bridge names with a common start apart.
    keep = DEVICE_NAME_MAX_LEN - len(prefix) - HASH_CHARS
    return prefix + physical_bridge[:keep] + hashlib.sha1(physical_bridge.encode()).hexdigest()[:HASH_CHARS]
