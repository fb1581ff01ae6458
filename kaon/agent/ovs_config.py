"""The Open vSwitch agent's options, read from Neutron's ``openvswitch_agent.ini`` names.

``kaon agent`` runs the OVS agent when its configuration has an ``[ovs]``
section or is read from a file named openvswitch_agent.ini, the Linux bridge agent otherwise
(:func:`ovs_selected`). Options, as Neutron names them:

* ``[ovs] integration_bridge`` (br-int), ``tunnel_bridge`` (br-tun),
  ``bridge_mappings`` (physnet:bridge, the operator's bridges), ``local_ip``
  (the VTEP), ``datapath_type`` (``system`` | ``netdev``; Neutron's default is
  ``system``), ``ovsdb_connection`` (Neutron's
  default is ``tcp:127.0.0.1:6640``; kaon's is the local unix socket
  ``unix:/var/run/openvswitch/db.sock``, which needs no manager entry);
* ``[agent] tunnel_types`` (vxlan, gre, geneve), ``l2_population``,
  ``arp_responder``, ``vxlan_udp_port``;
* ``[securitygroup] firewall_driver`` — ``openvswitch`` (conntrack flows on
  br-int, kaon.agent.ovs_manager) or ``noop``; anything else (iptables_hybrid's
  qbr bridges) is refused at start (kaon.cli.agent.ovs_unavailable).
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from kaon.agent.ovs_plan import IFNAMSIZ, TUNNEL_TYPES, OvsAgentOptions
from kaon.config import Config, ConfigError, parse_bool, parse_int, parse_list, parse_mapping

__all__ = ["DATAPATH_TYPES", "DEFAULT_OVSDB", "OvsConfig", "ovs_config", "ovs_selected"]

DATAPATH_TYPES = ("system", "netdev")
DEFAULT_OVSDB = "unix:/var/run/openvswitch/db.sock"


@dataclass(frozen=True)
class OvsConfig:
    options: OvsAgentOptions
    ovsdb_connection: str = DEFAULT_OVSDB

    @property
    def rundir(self) -> str | None:
        """The directory of a unix ``ovsdb_connection``: ovs-vswitchd's pidfile and ``<br>.mgmt`` live there."""
        if self.ovsdb_connection.startswith("unix:"):
            return self.ovsdb_connection[len("unix:"):].rsplit("/", 1)[0] or "/"
        return None

    def openflow_target(self, bridge: str) -> str:
        """What ``ovs-ofctl`` is given for ``bridge``: its mgmt socket beside the OVSDB socket."""
        return f"unix:{self.rundir}/{bridge}.mgmt" if self.rundir else bridge


OVS_FILES = ("openvswitch_agent.ini", "ovs_neutron_plugin.ini")


def ovs_selected(cfg: Config) -> bool:
    """True when the configuration is an Open vSwitch agent's: an ``[ovs]`` section or Neutron's file name."""
    return "ovs" in cfg.sections or any(os.path.basename(f) in OVS_FILES for f in cfg.files)


def ovs_config(cfg: Config) -> OvsConfig:
    """Read and check the OVS agent's options; a bad value is a :class:`ConfigError` naming it."""
    def text(section: str, option: str) -> str | None:
        value = cfg.get(section, option)
        return value.strip() or None if value is not None else None

    def fail(section: str, option: str, message: str) -> ConfigError:
        return ConfigError(message, file=cfg.origins.get((section, option)), section=section, option=option)

    tunnel_types = tuple(t.lower() for t in cfg.get_typed("agent", "tunnel_types", parse_list, ()))
    unknown = [t for t in tunnel_types if t not in TUNNEL_TYPES]
    if unknown:
        raise fail("agent", "tunnel_types", f"unknown tunnel type(s) {', '.join(unknown)} "
                                            f"(the Open vSwitch agent carries {', '.join(TUNNEL_TYPES)})")
    local_ip = text("ovs", "local_ip")
    if tunnel_types and not local_ip:
        # Neutron's agent refuses to start in this case too.
        raise fail("ovs", "local_ip", f"[agent] tunnel_types = {', '.join(tunnel_types)} needs [ovs] local_ip "
                                      "(this host's tunnel address), or leave tunnel_types empty")
    if local_ip:
        try:
            ipaddress.ip_address(local_ip)
        except ValueError:
            raise fail("ovs", "local_ip", f"'{local_ip}' is not an IP address (a placeholder? set it to this "
                                          "host's address on the overlay network)") from None
    datapath = (text("ovs", "datapath_type") or "system").lower()
    if datapath not in DATAPATH_TYPES:
        raise fail("ovs", "datapath_type", f"datapath_type = {datapath}: must be one of {', '.join(DATAPATH_TYPES)}")
    br_int = text("ovs", "integration_bridge") or "br-int"
    br_tun = text("ovs", "tunnel_bridge") or "br-tun"
    mappings: dict[str, str] = cfg.get_typed("ovs", "bridge_mappings", parse_mapping, {})
    for option, name in (("integration_bridge", br_int), ("tunnel_bridge", br_tun), *(
            ("bridge_mappings", b) for b in mappings.values())):
        if not name or len(name) > IFNAMSIZ:
            raise fail("ovs", option, f"bridge name '{name}' must be 1 to {IFNAMSIZ} characters")
    clash = sorted({br_int, br_tun} & set(mappings.values()))
    if clash:
        raise fail("ovs", "bridge_mappings", f"bridge_mappings names {', '.join(clash)}, which is the "
                                             "integration or tunnel bridge; map physical networks to bridges "
                                             "of their own (e.g. br-ex)")
    if br_int == br_tun:
        raise fail("ovs", "tunnel_bridge", f"tunnel_bridge must differ from integration_bridge ({br_int})")
    udp_port = cfg.get_typed("agent", "vxlan_udp_port", parse_int, 4789)
    if not 1 <= udp_port <= 65535:
        raise fail("agent", "vxlan_udp_port", f"vxlan_udp_port = {udp_port}: must be 1-65535")
    options = OvsAgentOptions(
        integration_bridge=br_int, tunnel_bridge=br_tun, bridge_mappings=tuple(sorted(mappings.items())),
        local_ip=local_ip, tunnel_types=tunnel_types, datapath_type=datapath,
        l2_population=cfg.get_typed("agent", "l2_population", parse_bool, False),
        arp_responder=cfg.get_typed("agent", "arp_responder", parse_bool, False),
        vxlan_udp_port=udp_port)
    return OvsConfig(options, text("ovs", "ovsdb_connection") or DEFAULT_OVSDB)
