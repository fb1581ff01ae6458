"""The agent's options, read once from Neutron's files and option names.

``[DEFAULT] host``, ``transport_url``, ``state_path``; ``[agent]
report_interval`` (30 s), kaon's ``[agent] namespace`` (program devices in
that network namespace; the lab's simulated hosts) and ``resync_interval``;
``[linux_bridge] physical_interface_mappings``, ``bridge_mappings``;
``[vxlan] enable_vxlan``, ``local_ip``, ``l2_population``, ``vxlan_group``;
``[securitygroup] enable_security_group``, ``firewall_driver`` and kaon's
``netfilter_all_bridges`` (kaon.agent.firewall);
``[agent] availability_zone`` (``nova``) and the metadata proxy's
``nova_metadata_host``/``port``, for the agent records.

A configuration with an ``[ovs]`` section (openvswitch_agent.ini) is an Open
vSwitch agent's: ``mechanism`` is ``openvswitch`` and ``local_ip``,
``bridge_mappings``, ``l2_population`` and the tunnel types come from
Neutron's OVS names (kaon.agent.ovs_config, which reads the rest).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kaon.agent.ovs_config import ovs_config, ovs_selected
from kaon.config import Config, ConfigError, parse_bool, parse_int, parse_mapping

OWNER_ALIAS = "kaon:l2"


@dataclass(frozen=True)
class AgentConfig:
    host: str
    transport_url: str = ""
    state_path: str = ""
    namespace: str | None = None
    # Prepended to qrouter-/qdhcp- namespace names (kaon's option; empty: Neutron's names).
    namespace_prefix: str = ""
    report_interval: int = 30
    resync_interval: int = 30
    interface_mappings: dict[str, str] = field(default_factory=dict)
    bridge_mappings: dict[str, str] = field(default_factory=dict)
    enable_vxlan: bool = True
    local_ip: str | None = None
    l2_population: bool = False
    vxlan_group: str | None = None
    enable_security_group: bool = True
    firewall_driver: str = ""  # unset or "noop": no filtering, as in Neutron
    # True: bridged traffic of every bridge in the namespace reaches netfilter (the namespace-wide
    # br_netfilter sysctls = 1, as Neutron's guide asks). False: only the bridges that carry a
    # stateful port do (per bridge), and the sysctls are set to 0 — for a namespace kaon owns
    # (the default when ``[agent] namespace`` is set).
    netfilter_all_bridges: bool = True
    # [agent] availability_zone: what the DHCP and L3 agents' records say (Neutron's default).
    availability_zone: str = "nova"
    # Where the metadata proxies of the DHCP and L3 roles send requests (the Metadata agent's record).
    nova_metadata_host: str = "127.0.0.1"
    nova_metadata_port: int = 8775
    mechanism: str = "linuxbridge"  # or "openvswitch": which L2 agent this host runs
    ovs_tunnel_types: tuple[str, ...] = ()  # [agent] tunnel_types of an OVS agent

    @property
    def tunnel_types(self) -> list[str]:
        if self.mechanism == "openvswitch":
            return list(self.ovs_tunnel_types) if self.local_ip else []
        return ["vxlan"] if self.enable_vxlan and self.local_ip else []


def agent_config(cfg: Config) -> AgentConfig:
    def text(section: str, option: str) -> str | None:
        value = cfg.get(section, option)
        return value.strip() or None if value is not None else None

    def typed(section: str, option: str, parse: Callable[[str], Any], default: Any) -> Any:
        return cfg.get_typed(section, option, parse, default)

    from kaon.agent.interface_driver import interface_driver
    from kaon.agent.metadata_proxy import proxy_config

    proxy = proxy_config(cfg)
    # DHCP and router ports are plugged the way the host's L2 agent wires ports: a mismatch is refused here.
    interface_driver(cfg, "openvswitch" if ovs_selected(cfg) else "linuxbridge")
    # What every agent reads, whichever L2 mechanism it runs.
    common: dict[str, Any] = dict(
        host=text("agent", "host") or cfg.default.host,
        transport_url=cfg.default.transport_url,
        state_path=cfg.default.state_path,
        namespace=text("agent", "namespace"),
        namespace_prefix=text("agent", "namespace_prefix") or "",
        report_interval=typed("agent", "report_interval", parse_int, 30),
        resync_interval=typed("agent", "resync_interval", parse_int, 30),
        enable_security_group=typed("securitygroup", "enable_security_group", parse_bool, True),
        firewall_driver=text("securitygroup", "firewall_driver") or "",
        netfilter_all_bridges=netfilter_all_bridges(cfg),
        availability_zone=text("agent", "availability_zone") or "nova",
        nova_metadata_host=proxy.nova_metadata_host,
        nova_metadata_port=proxy.nova_metadata_port,
    )
    if ovs_selected(cfg):
        return _ovs_agent_config(cfg, common)
    local_ip = text("vxlan", "local_ip")
    enable_vxlan = typed("vxlan", "enable_vxlan", parse_bool, True)
    if enable_vxlan and not local_ip:
        # Neutron's agent refuses to start in this case too; say what to set.
        raise ConfigError("[vxlan] enable_vxlan is true but [vxlan] local_ip is not set "
                          "(set local_ip to this host's tunnel address, or enable_vxlan = false)")
    if enable_vxlan and local_ip:
        try:
            ipaddress.ip_address(local_ip)
        except ValueError:
            # The install guide's OVERLAY_INTERFACE_IP_ADDRESS left as written; whether
            # the address is on this host is checked at the agent's start (kaon.cli.agent).
            raise ConfigError(f"'{local_ip}' is not an IP address (a placeholder? set it to this host's "
                              "address on the overlay network)", file=cfg.origins.get(("vxlan", "local_ip")),
                              section="vxlan", option="local_ip") from None
    return AgentConfig(
        **common,
        interface_mappings=typed("linux_bridge", "physical_interface_mappings", parse_mapping, {}),
        bridge_mappings=typed("linux_bridge", "bridge_mappings", parse_mapping, {}),
        enable_vxlan=enable_vxlan,
        local_ip=local_ip,
        l2_population=typed("vxlan", "l2_population", parse_bool, False),
        vxlan_group=text("vxlan", "vxlan_group"),
    )


def netfilter_all_bridges(cfg: Config) -> bool:
    """``[securitygroup] netfilter_all_bridges``. Default: every bridge on the machine's own namespace
    (the host's br_netfilter sysctls are shared with whatever else bridges there), only the stateful
    ports' bridges in a namespace of kaon's own (``[agent] namespace``: the lab's hosts, the tests')."""
    own_namespace = bool((cfg.get("agent", "namespace") or "").strip())
    return bool(cfg.get_typed("securitygroup", "netfilter_all_bridges", parse_bool, not own_namespace))


def _ovs_agent_config(cfg: Config, common: dict[str, Any]) -> AgentConfig:
    """The options every manager reads, for an Open vSwitch agent (openvswitch_agent.ini's names)."""
    opts = ovs_config(cfg).options
    return AgentConfig(
        **common,
        bridge_mappings=dict(opts.bridge_mappings),
        enable_vxlan="vxlan" in opts.tunnel_types,
        local_ip=opts.local_ip,
        l2_population=opts.l2_population,
        mechanism="openvswitch",
        ovs_tunnel_types=opts.tunnel_types,
    )
