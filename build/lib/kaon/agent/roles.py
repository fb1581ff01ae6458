"""Roles a host's agent can play beside L2: the DHCP agent and the L3 agent.

Neutron runs each as its own process; kaon runs the roles a host is given
(``[agent] roles = dhcp, l3``) in the one ``kaon agent`` of the host, each
with its own agent record (its own ``agent_type`` in the state reports), so
``openstack network agent list`` shows what Neutron's would.

A role's ``sync`` gets the whole host intent and reconciles the part it owns
(``intent["dhcp"]``, ``intent["routers"]``): its namespaces, the veths whose
``tap`` ends the L2 part then plugs into bridges, the processes or tables
inside. It runs before L2 in every pass so that those taps exist when L2
looks. ``sweep`` is true once the agent's first full sync is done: only
then may a role remove its own objects that are no longer wanted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kaon.agent.config import AgentConfig
from kaon.config import Config, ConfigError, parse_list


class Role(Protocol):
    name: str
    agent_type: str
    binary: str
    topic: str

    def configurations(self) -> dict[str, Any]:
        """What the role reports in its agent record's ``configurations``."""

    def sync(self, intent: dict[str, Any], sweep: bool) -> bool:
        """Reconcile; True when the kernel matches (False or an exception: retry)."""

    def close(self) -> None:
        """Stop what the role runs (not what it made: that outlives the agent)."""


RoleFactory = Callable[[Config, AgentConfig], Role]


def sync_each(what: str, wanted: dict[str, Any], sync_one: Callable[[str, Any], None],
              sweep: Callable[[set[str]], bool] | None, log: Any) -> bool:
    """Reconcile every wanted item, then sweep (when allowed); True when all went well.

    One broken item (a router, a network's DHCP server) must not hold up the
    others: its failure is logged and reported as "retry", the rest go on.
    """
    ok = True
    for key, item in sorted(wanted.items()):
        try:
            sync_one(key, item)
        except Exception as exc:
            log.warning("%s %s: %s: %s", what, key, type(exc).__name__, exc)
            ok = False
    if sweep is not None:
        ok = sweep(set(wanted)) and ok
    return ok


def _factories() -> dict[str, RoleFactory]:
    # Imported here: each role pulls in its dataplane modules only when used.
    from kaon.agent import dhcp_role, l3_role

    return {"dhcp": dhcp_role.build, "l3": l3_role.build}


def build_roles(cfg: Config, acfg: AgentConfig) -> list[Role]:
    names = cfg.get_typed("agent", "roles", parse_list, ())
    factories = _factories()
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ConfigError(f"[agent] roles: unknown role(s) {', '.join(unknown)} (known: {', '.join(factories)})")
    return [factories[n](cfg, acfg) for n in dict.fromkeys(names)]
