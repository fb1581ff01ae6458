"""The agent's options, read once from Neutron's files and option names.

``[DEFAULT] host``, ``transport_url``, ``state_path``; ``[agent]
report_interval`` (30 s), kaon's ``[agent] namespace`` (program devices in
that network namespace; the lab's simulated hosts) and ``resync_interval``;
``[linux_bridge] physical_interface_mappings``, ``bridge_mappings``;
``[vxlan] enable_vxlan``, ``local_ip``, ``l2_population``, ``vxlan_group``;
``[securitygroup] enable_security_group``, ``firewall_driver`` (kaon.agent.firewall).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    @property
    def tunnel_types(self) -> list[str]:
        return ["vxlan"] if self.enable_vxlan and self.local_ip else []


def agent_config(cfg: Config) -> AgentConfig:
    def text(section: str, option: str) -> str | None:
        value = cfg.get(section, option)
        return value.strip() or None if value is not None else None

    def typed(section: str, option: str, parse, default):  # type: ignore[no-untyped-def]
        return cfg.get_typed(section, option, parse, default)

    local_ip = text("vxlan", "local_ip")
    enable_vxlan = typed("vxlan", "enable_vxlan", parse_bool, True)
    if enable_vxlan and not local_ip:
        # Neutron's agent refuses to start in this case too; say what to set.
        raise ConfigError("[vxlan] enable_vxlan is true but [vxlan] local_ip is not set "
                          "(set local_ip to this host's tunnel address, or enable_vxlan = false)")
    return AgentConfig(
        host=text("agent", "host") or cfg.default.host,
        transport_url=cfg.default.transport_url,
        state_path=cfg.default.state_path,
        namespace=text("agent", "namespace"),
        namespace_prefix=text("agent", "namespace_prefix") or "",
        report_interval=typed("agent", "report_interval", parse_int, 30),
        resync_interval=typed("agent", "resync_interval", parse_int, 30),
        interface_mappings=typed("linux_bridge", "physical_interface_mappings", parse_mapping, {}),
        bridge_mappings=typed("linux_bridge", "bridge_mappings", parse_mapping, {}),
        enable_vxlan=enable_vxlan,
        local_ip=local_ip,
        l2_population=typed("vxlan", "l2_population", parse_bool, False),
        vxlan_group=text("vxlan", "vxlan_group"),
        enable_security_group=typed("securitygroup", "enable_security_group", parse_bool, True),
        firewall_driver=text("securitygroup", "firewall_driver") or "",
    )
