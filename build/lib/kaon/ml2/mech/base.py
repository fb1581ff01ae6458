"""The mechanism-driver contract, and the agent facts drivers decide from.

A mechanism driver binds a port on a host to one of its network's segments
through an L2 agent of its ``agent_type`` on that host. Drivers are small
classes conforming to :class:`MechanismDriver`; ``registry.MECHANISM_DRIVERS``
maps the names ``[ml2] mechanism_drivers`` uses to them. They never touch the
database: :mod:`kaon.ml2.binding` gives them an :class:`AgentView` and a
segment and asks whether they can bind it, and why not.

A refusal is a phrase that completes "<agent type> on host <host> ...",
e.g. ``"has no mapping for physical network provider (bridge_mappings: none)"``,
so that the reason a port failed to bind reads as one sentence a person can
act on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kaon.ml2.segments import Segment

VNIC_NORMAL = "normal"
LOCAL, FLAT, VLAN = "local", "flat", "vlan"
PHYSNET_TYPES = (FLAT, VLAN)


@dataclass(frozen=True)
class AgentView:
    """One agent as a driver sees it at binding time."""

    id: str
    agent_type: str
    host: str
    admin_state_up: bool
    heartbeat_age: float  # seconds since the last report
    agent_down_time: int
    configurations: Mapping[str, Any] = field(default_factory=dict)
    availability_zone: str | None = None

    @property
    def alive(self) -> bool:
        return self.heartbeat_age <= self.agent_down_time

    @property
    def label(self) -> str:
        return f"{self.agent_type} on host {self.host}"

    @classmethod
    def from_row(cls, row: Any, now: dt.datetime, agent_down_time: int) -> AgentView:
        age = (now - row.heartbeat_timestamp).total_seconds()
        return cls(id=row.id, agent_type=row.agent_type, host=row.host, admin_state_up=row.admin_state_up,
                   heartbeat_age=age, agent_down_time=agent_down_time,
                   configurations=row.configurations or {}, availability_zone=row.availability_zone)


class MechanismDriver(Protocol):
    #: The name in ``[ml2] mechanism_drivers``.
    name: str
    #: The agent type it binds through; ``None`` for drivers that never bind (l2population).
    agent_type: str | None
    vif_type: str
    supported_vnic_types: frozenset[str]

    def check_segment(self, segment: Segment, agent: AgentView) -> str | None:
        """``None`` when ``agent`` can carry ``segment``; else why not (a phrase, see the module doc)."""
        ...

    def vif_details(self, agent: AgentView, network_id: str) -> dict[str, Any]:
        """``binding:vif_details`` for a port bound through ``agent``."""
        ...


# --- helpers the agent-based drivers share ---

def mapping(agent: AgentView, key: str) -> dict[str, str]:
    """A ``*_mappings`` entry of the agent's configurations as a dict.

    Agents report a dict; a "physnet:bridge,..." string (a config value
    passed through as is) is accepted too rather than silently read as empty.
    """
    raw = agent.configurations.get(key)
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, str):
        pairs = (p.split(":", 1) for p in raw.split(",") if p.strip())
        return {p[0].strip(): (p[1].strip() if len(p) > 1 else "") for p in pairs}
    return {}


def tunnel_types(agent: AgentView) -> list[str]:
    raw = agent.configurations.get("tunnel_types") or []
    if isinstance(raw, str):
        return [t.strip() for t in raw.split(",") if t.strip()]
    return [str(t) for t in raw]


def show_mapping(values: Mapping[str, str]) -> str:
    return ", ".join(f"{k}:{v}" for k, v in sorted(values.items())) or "none"


def show_list(values: list[str]) -> str:
    return ", ".join(values) or "none"


def no_physnet(physnet: str | None, **mappings: Mapping[str, str]) -> str:
    shown = "; ".join(f"{name}: {show_mapping(m)}" for name, m in mappings.items())
    return f"has no mapping for physical network {physnet} ({shown})"


def no_tunnel(network_type: str, agent: AgentView) -> str:
    return f"does not support {network_type} (tunnel_types: {show_list(tunnel_types(agent))})"
