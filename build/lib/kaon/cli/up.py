"""``kaon up``: an all-in-one node on embedded defaults.

SQLite in the state directory, the embedded identity service with an admin
and a demo project, ML2 set up the way the install guide's all-in-one node
is (a ``provider`` physical network for flat and VLAN, VXLAN for
self-service networks), and a local Linux bridge agent in the same process
on the in-process bus. Any ``--config-file`` given is read after the
defaults, so an existing ``neutron.conf``/``ml2_conf.ini`` wins.

Without root the node runs API-only and says so (the agent makes bridges
and VXLAN devices); ``--no-agent`` asks for that. ``[agent] namespace``
makes the local agent work inside a network namespace instead of on the
machine's own (the tests use that; so can a cautious user).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kaon.cli.server import run_server
from kaon.config import Config, ConfigError, default_state_path, load_config

DEFAULTS = """\
# Written by `kaon up` on first start; edit freely, it is not rewritten.
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9696
auth_strategy = kaon

[ml2]
type_drivers = local,flat,vlan,vxlan,gre,geneve
tenant_network_types = vxlan
mechanism_drivers = linuxbridge,l2population

[ml2_type_flat]
flat_networks = provider

[ml2_type_vlan]
network_vlan_ranges = provider:100:200

[ml2_type_vxlan]
vni_ranges = 1:1000

[ml2_type_gre]
tunnel_id_ranges = 1:1000

[ml2_type_geneve]
vni_ranges = 1:1000

# The local agent: Linux bridge L2, and the DHCP and L3 agents' roles
# (qdhcp-/qrouter- namespaces), as on the install guide's all-in-one node.
# One host: VXLAN devices exist but have no peers.
[agent]
roles = dhcp, l3

[securitygroup]
firewall_driver = nftables

[vxlan]
enable_vxlan = true
local_ip = 127.0.0.1
l2_population = true
"""


def run_up(extra_files: list[str], state_dir: str | None, port: int | None, agent: bool = True) -> int:
    state = Path(state_dir or os.environ.get("KAON_STATE_DIR") or default_state_path()).expanduser()
    state.mkdir(parents=True, exist_ok=True)
    conf = state / "kaon.conf"
    if not conf.exists():
        conf.write_text(DEFAULTS)
    overrides: dict[str, Any] = {"DEFAULT": {"state_path": str(state)}}
    if port is not None:
        overrides["DEFAULT"]["bind_port"] = port
    if not (conf.read_text().count("[vxlan]")):
        # A kaon.conf from before the local agent existed: give the agent its tunnel address.
        overrides["vxlan"] = {"local_ip": "127.0.0.1", "l2_population": "true"}
    cfg = load_config([str(conf), *extra_files], overrides)
    return run_server(cfg, announce=_announce, on_ready=_local_agent if agent else _no_agent)


def _no_agent(cfg: Config, app: Any) -> dict[str, Any]:
    return {"agent": "not started (--no-agent)"}


def _local_agent(cfg: Config, app: Any) -> dict[str, Any]:
    """Start the local agent in this process on the in-process bus, or say why not."""
    from kaon.agent.config import agent_config
    from kaon.cli.agent import agent_unavailable, build_agent

    try:
        acfg = agent_config(cfg)
    except ConfigError as exc:
        return {"agent": f"not started: {exc}"}
    why = agent_unavailable(acfg)
    if why:
        return {"agent": f"not started: {why}; running API-only"}
    agent = build_agent(cfg)
    agent.start()
    where = f"namespace {acfg.namespace}" if acfg.namespace else "this machine"
    roles = f" (roles: {', '.join(r.name for r in agent.roles)})" if agent.roles else ""
    return {"agent": f"Linux bridge agent{roles} for host {acfg.host} on {where}"}


def _announce(facts: dict[str, Any]) -> None:
    files = facts.get("client_files", {})
    lines = [
        "",
        "kaon is up (all-in-one: server + identity + local agent).",
        f"  Networking API : {facts['network_url']}/v2.0",
        f"  Local agent    : {facts.get('agent', 'not started')}",
    ]
    if "identity_url" in facts:
        lines.append(f"  Identity (v3)  : {facts['identity_url']}")
    if "metadata_url" in facts:
        lines.append(f"  Metadata       : {facts['metadata_url']}  ([metadata] serve = true)")
    if "clouds.yaml" in files:
        lines += [
            "",
            "Use it with the openstack CLI:",
            f"  export OS_CLIENT_CONFIG_FILE={files['clouds.yaml']}",
            "  openstack --os-cloud kaon-admin network list     # admin",
            "  openstack --os-cloud kaon-demo network list      # demo project",
            f"  (or: . {files.get('admin-openrc', 'admin-openrc')})",
        ]
    lines.append("")
    print("\n".join(lines), flush=True)
