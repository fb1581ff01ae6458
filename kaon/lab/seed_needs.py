"""What a seed needs from the lab's hosts and the server, checked before it makes anything.

A seed whose networks the hosts cannot carry would leave ports that never
bind (``binding:vif_type binding_failed``) and a half-made scenario; instead
it stops first and says what is missing and the command that gives it. The
facts come from where Neutron keeps them: the L2 agents' ``configurations``
(``bridge_mappings``, ``interface_mappings``, ``tunnel_types``, the Linux
bridge agent's ``kernel_features``) and the server's ``[ml2_type_vlan]
network_vlan_ranges``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kaon.lab.agents import L2_AGENT_TYPES
from kaon.lab.lab import LINUXBRIDGE, Lab, LabError

OVS_AGENT = "Open vSwitch agent"


def _lab_hosts(lab: Lab) -> dict[str, dict[str, Any]]:
    return dict((lab.state() or {}).get("hosts") or {})


def up_command(lab: Lab, mechanism: str, options: str) -> str:
    """The commands that remake this lab with ``mechanism`` on every host."""
    hosts = len(_lab_hosts(lab)) or 2
    return f"`kaon lab down{options}` then `kaon lab up --hosts {hosts} --mechanism {mechanism}{options}`"


def require_mechanism(lab: Lab, mechanism: str, options: str) -> None:
    """Every host of the lab runs ``mechanism`` (``kaon lab seed --mechanism``)."""
    other = sorted(h for h, rec in _lab_hosts(lab).items() if rec.get("mechanism", LINUXBRIDGE) != mechanism)
    if other:
        running = sorted({_lab_hosts(lab)[h].get("mechanism", LINUXBRIDGE) for h in other})
        raise LabError(f"--mechanism {mechanism}: hosts {', '.join(other)} of this lab run "
                       f"{', '.join(running)}; {up_command(lab, mechanism, options)}")


def _agents(lab: Lab, hosts: Sequence[str]) -> dict[str, dict[str, Any]]:
    rows = {a["host"]: a for a in lab.client.get("agents")["agents"] if a.get("agent_type") in L2_AGENT_TYPES}
    missing = [h for h in hosts if h not in rows]
    if missing:
        raise LabError(f"no L2 agent has reported from {', '.join(missing)} yet (`kaon lab status`)")
    return {h: rows[h] for h in hosts}


def _carries_vlan(agent: dict[str, Any], physnet: str) -> str | None:
    """Why ``agent`` cannot carry VLANs of ``physnet``, or None when it can."""
    conf = agent.get("configurations") or {}
    if agent.get("agent_type") == OVS_AGENT:
        return None if physnet in (conf.get("bridge_mappings") or {}) else \
            f"its bridge_mappings have no {physnet!r}"
    features = conf.get("kernel_features") or {}
    if features.get("vlan") is False:
        return "the Linux bridge agent has no 802.1Q VLAN devices on this kernel"
    mapped = {**(conf.get("interface_mappings") or {}), **(conf.get("bridge_mappings") or {})}
    return None if physnet in mapped else f"its interface_mappings have no {physnet!r}"


def carries_vlan(lab: Lab, physnet: str, hosts: Sequence[str]) -> bool:
    """Every one of ``hosts`` can carry 802.1Q-tagged networks on ``physnet``."""
    return not any(_carries_vlan(a, physnet) for a in _agents(lab, hosts).values())


def require_vlan(lab: Lab, physnet: str, hosts: Sequence[str], options: str, fallback: str = "") -> None:
    """Every one of ``hosts`` can carry 802.1Q-tagged networks on ``physnet``."""
    why = {h: reason for h, a in _agents(lab, hosts).items() if (reason := _carries_vlan(a, physnet))}
    if why:
        detail = "; ".join(f"{h}: {r}" for h, r in sorted(why.items()))
        raise LabError(f"VLAN networks on {physnet!r} cannot be carried here ({detail}). Open vSwitch carries "
                       f"802.1Q tags with its userspace datapath: {up_command(lab, 'openvswitch', options)}"
                       + (f"; or {fallback}" if fallback else ""))


def require_tunnel(lab: Lab, kind: str, hosts: Sequence[str], options: str) -> None:
    """Every one of ``hosts`` lists ``kind`` in its agent's ``tunnel_types``."""
    lacking = {h: a for h, a in _agents(lab, hosts).items()
               if kind not in ((a.get("configurations") or {}).get("tunnel_types") or [])}
    if lacking:
        detail = "; ".join(f"{h} ({a['agent_type']}, tunnel_types: "
                           f"{', '.join((a.get('configurations') or {}).get('tunnel_types') or []) or 'none'})"
                           for h, a in sorted(lacking.items()))
        raise LabError(f"{kind} tunnels cannot be carried by {detail}. The lab's Open vSwitch hosts carry vxlan, "
                       f"gre and geneve: {up_command(lab, 'openvswitch', options)}")


def require_vlan_ranges(lab: Lab, wanted: Mapping[str, tuple[tuple[int, int], ...]]) -> None:
    """The server's ``network_vlan_ranges`` hold ``wanted`` (checked when the lab knows the server's config)."""
    files = lab.config_files
    if not files:
        return  # the API's own answer will say it
    from kaon.config import load_config

    have = load_config(files).ml2_type_vlan.network_vlan_ranges
    missing = [f"{net}:{lo}:{hi}" for net, ranges in wanted.items() for lo, hi in ranges
               if not any(a <= lo and hi <= b for a, b in have.get(net, ()))]
    if missing:
        have_list = [f"{n}:{a}:{b}" for n, rs in have.items() for a, b in rs]
        have_list += [n for n, rs in have.items() if not rs]
        need = [f"{n}:{lo}:{hi}" for n, rs in wanted.items() for lo, hi in rs]
        raise LabError(f"the server's [ml2_type_vlan] network_vlan_ranges ({','.join(have_list) or 'empty'}, in "
                       f"{', '.join(files)}) lack {', '.join(missing)}: set network_vlan_ranges = "
                       f"{','.join(dict.fromkeys([*have_list, *need]))} and restart the node")
