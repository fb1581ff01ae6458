"""Roles a host's agent can play beside L2: the DHCP agent and the L3 agent.

Neutron runs each as its own process; kaon runs the roles a host is given
(``[agent] roles = dhcp, l3``) in the one ``kaon agent`` of the host, each
a manager (kaon.agent.manager) with its own agent record (its own
``agent_type`` in the state reports), so ``openstack network agent list``
shows what Neutron's would.

Both keep what they own under ``<state_path>/<role>/<host>/`` and serve the
metadata proxies of their namespaces, so they are built the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kaon.agent.config import AgentConfig
from kaon.agent.dhcp_role import DhcpRole
from kaon.agent.interface_driver import Plug
from kaon.agent.l3_role import L3Role
from kaon.agent.manager import Manager
from kaon.agent.metadata_proxy import proxy_config
from kaon.config import Config, ConfigError, parse_list

ROLES: dict[str, type[DhcpRole] | type[L3Role]] = {"dhcp": DhcpRole, "l3": L3Role}


def build_roles(cfg: Config, acfg: AgentConfig, plug: Callable[[str], Plug] | None = None) -> list[Manager]:
    """The roles ``[agent] roles`` names; ``plug(role)``: the interface driver's plugging for a role
    (``interface_driver = openvswitch``), None when the L2 manager plugs taps itself (Linux bridge)."""
    names = cfg.get_typed("agent", "roles", parse_list, ())
    unknown = [n for n in names if n not in ROLES]
    if unknown:
        raise ConfigError(f"[agent] roles: unknown role(s) {', '.join(unknown)} (known: {', '.join(ROLES)})")
    state = Path(acfg.state_path or "/var/lib/kaon")
    proxy = proxy_config(cfg)
    return [ROLES[n](acfg, state / n / acfg.host, proxy, plug(n) if plug else None) for n in dict.fromkeys(names)]
