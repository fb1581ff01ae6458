"""What a trace reads: the hosts' compiled intents and the labels they leave out.

The intents are what the agents make real, so a trace over them says what
the data plane does, not what the API was asked. They carry no names and no
rule ids (an agent needs neither), so :class:`World` adds them: every port
(bound or not, with its binding's outcome), the networks' names and whether
they are external, and for each security group the ids of its rules keyed
by the rule as compiled (:class:`~kaon.model.intent.FirewallRule`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from kaon.model.intent import FirewallRule, HostIntent


@dataclass(frozen=True)
class PortInfo:
    id: str
    name: str
    network_id: str
    mac: str
    ips: tuple[str, ...]
    device_owner: str
    device_id: str
    host: str  # binding:host_id ("" unbound)
    vif_type: str  # binding:vif_type ("binding_failed", "unbound", "bridge", ...)
    binding_failure: str = ""


@dataclass(frozen=True)
class NetworkInfo:
    id: str
    name: str
    external: bool
    subnets: tuple[tuple[str, str | None], ...] = ()  # (cidr, gateway_ip)


@dataclass(frozen=True)
class World:
    intents: Mapping[str, HostIntent]  # host -> its compiled intent
    ports: Mapping[str, PortInfo]  # every port, by id
    networks: Mapping[str, NetworkInfo] = field(default_factory=dict)
    router_names: Mapping[str, str] = field(default_factory=dict)
    vteps: Mapping[str, str] = field(default_factory=dict)  # host -> its tunnel endpoint address
    # (group id, rule as compiled) -> the ids of the rules that compile to it
    rule_ids: Mapping[tuple[str, FirewallRule], tuple[str, ...]] = field(default_factory=dict)

    def find_port(self, ref: str) -> list[PortInfo]:
        """The port whose id is ``ref``, else every port named ``ref``."""
        if ref in self.ports:
            return [self.ports[ref]]
        return sorted((p for p in self.ports.values() if p.name == ref), key=lambda p: p.id)

    def port_label(self, port_id: str) -> str:
        port = self.ports.get(port_id)
        return f"{port.name} ({port_id})" if port is not None and port.name else port_id

    def network_label(self, network_id: str) -> str:
        net = self.networks.get(network_id)
        return f"{net.name} ({network_id})" if net is not None and net.name else network_id

    def router_label(self, router_id: str) -> str:
        name = self.router_names.get(router_id)
        return f"{name} ({router_id})" if name else router_id
