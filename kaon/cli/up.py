"""``kaon up``: an all-in-one node on embedded defaults.

SQLite in the state directory, the embedded identity service with an admin
and a demo project, ML2 set up the way the install guide's all-in-one node
is (a ``provider`` physical network for flat and VLAN, VXLAN for
self-service networks), and a local agent in the same process on the
in-process bus: the Linux bridge agent, or the Open vSwitch agent when the
files choose it (``--mechanism openvswitch``, ``[ml2] mechanism_drivers``
naming openvswitch first, an openvswitch_agent.ini; kaon.cli.up_ovs, which
also finds or starts the OVS it programs). Any ``--config-file`` given is
read after the defaults, so an existing ``neutron.conf``/``ml2_conf.ini`` wins.

Without root the node runs API-only and says so (the agent makes bridges
and VXLAN devices); ``--no-agent`` asks for that. ``[agent] namespace``
makes the local agent work inside a network namespace instead of on the
machine's own (the tests use that; so can a cautious user).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from kaon.cli import up_ovs
from kaon.cli.node_conf import node_alive, read_node, set_options, state_dir_of, write_node, write_run_config
from kaon.cli.server import run_server
from kaon.config import Config, ConfigError, load_config
from kaon.config_check import log_findings

DEFAULTS = """\
# Written by `kaon up` on first start; edit freely. At each start `kaon up` sets
# state_path (and bind_port when --port is given), and adds the bus socket and
# the metadata service's port and secret when they are missing, so that
# `kaon lab`, `kaon agent` and `kaon metadata` given this file join this node.
[DEFAULT]
bind_host = 127.0.0.1
bind_port = 9696
auth_strategy = kaon
# Metadata from DHCP namespaces on networks without a router (seed 002).
enable_isolated_metadata = true

[ml2]
type_drivers = local,flat,vlan,vxlan,gre,geneve
tenant_network_types = vxlan
# The first of linuxbridge/openvswitch is the local agent's (kaon up --mechanism
# openvswitch reorders them); both bind, so lab hosts of either kind join.
mechanism_drivers = linuxbridge,openvswitch,l2population

[ml2_type_flat]
# provider: the install guide's; default: seed 002's (the lab has both).
flat_networks = provider,default

[ml2_type_vlan]
# provider: the install guide's; default: seed 002's four VLANs (kaon lab seed 002 on OVS).
network_vlan_ranges = provider:100:200,default:100:101,default:200:201

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


def run_up(extra_files: list[str], state_dir: str | None, port: int | None, agent: bool = True,
           mechanism: str | None = None) -> int:
    state = state_dir_of(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    running = read_node(state)
    if node_alive(state, running):
        assert running is not None
        print(f"kaon up: a kaon node already runs on {state} (pid {running['pid']}); "
              f"`kaon down --state-dir {state}` stops it", file=sys.stderr)
        return 1
    conf = state / "kaon.conf"
    if not conf.exists():
        conf.write_text(DEFAULTS)
    # What the node runs with goes into the file, so that `kaon lab`, `kaon agent`
    # and `kaon metadata` given this state directory join this node.
    write_run_config(conf, state, port)
    if mechanism:
        _choose_mechanism(conf, mechanism)
    overrides: dict[str, Any] = {}
    if load_config([str(conf)]).default.transport_url == f"unix://{state / 'bus.sock'}":
        # The file names the socket for the programs that join; this process runs
        # that very hub, so its own agent talks to it in process.
        overrides["DEFAULT"] = {"transport_url": ""}
    if not (conf.read_text().count("[vxlan]")):
        # A kaon.conf from before the local agent existed: give the agent its tunnel address.
        overrides["vxlan"] = {"local_ip": "127.0.0.1", "l2_population": "true"}
    files = [str(conf), *extra_files]
    local = up_ovs.local_mechanism(load_config(files, overrides))
    if mechanism and local != mechanism:
        print(f"kaon up: --mechanism {mechanism}, but the files given make the local agent {local} "
              "(an [ovs] section or an openvswitch_agent.ini is an Open vSwitch agent's)", file=sys.stderr)
        return 2
    if agent and local == up_ovs.OPENVSWITCH:
        # Its options (openvswitch_agent.ini's names) for this node's agent only: see kaon.cli.up_ovs.
        files = [str(conf), str(up_ovs.write_agent_ini(state)), *extra_files]
    cfg = load_config(files, overrides)
    log_findings(files, "up")
    write_node(state, {"bind_port": cfg.default.bind_port, "config_files": files})

    def announce(facts: dict[str, Any]) -> None:
        _announce({**facts, "state_path": str(state)})

    def reload(extra: dict[str, dict[str, str]]) -> Config:
        return load_config(files, {**overrides, **extra})

    on_ready = partial(_local_agent, reload=reload) if agent else _no_agent
    return run_server(cfg, announce=announce, on_ready=on_ready)


def _choose_mechanism(conf: Path, mechanism: str) -> None:
    """``--mechanism``: put it first among the L2 drivers of ``[ml2] mechanism_drivers`` in kaon.conf."""
    current = load_config([str(conf)]).ml2.mechanism_drivers
    wanted = up_ovs.prefer(",".join(current), mechanism)
    if ",".join(current) != wanted:
        conf.write_text(set_options(conf.read_text(), {"ml2": {"mechanism_drivers": wanted}}))


def _no_agent(cfg: Config, app: Any) -> dict[str, Any]:
    return {"agent": "not started (--no-agent)"}


def _local_agent(cfg: Config, app: Any, reload: Callable[[dict[str, dict[str, str]]], Config] | None = None,
                 ) -> dict[str, Any]:
    """Start the local agent in this process on the in-process bus, or say why not.

    ``reload(overrides)``: the node's configuration with ``overrides`` added (where the
    Open vSwitch agent finds the OVS kaon up started for it).
    """
    from kaon.agent.config import agent_config
    from kaon.agent.roles import ROLES
    from kaon.cli.agent import agent_unavailable, build_agent, ovs_unavailable
    from kaon.dataplane.ovsdb import OvsdbError

    try:
        acfg = agent_config(cfg)
    except ConfigError as exc:
        return {"agent": f"not started: {exc}; running API-only"}
    ovs = acfg.mechanism == "openvswitch"  # an openvswitch_agent.ini among the files (kaon.agent.ovs_config)
    why = agent_unavailable(acfg) or (ovs_unavailable(cfg, acfg) if ovs else None)
    if why:
        return {"agent": f"not started: {why}; running API-only"}
    facts: dict[str, Any] = {}
    if ovs:
        try:
            extra, facts["ovs"] = up_ovs.prepare(cfg, Path(cfg.default.state_path), acfg.namespace)
        except up_ovs.UpOvsError as exc:
            return {"agent": f"not started: {exc}; running API-only"}
        if extra:
            cfg = reload(extra) if reload else load_config(cfg.files, extra)
        if "openvswitch" not in cfg.ml2.mechanism_drivers:
            facts["warning"] = ("[ml2] mechanism_drivers does not name openvswitch: ports on this host will "
                                "not bind (kaon up --mechanism openvswitch adds it)")
    try:
        agent = build_agent(cfg)
    except OvsdbError as exc:  # ovsdb-server unreachable, a bridge of bridge_mappings missing, the datapath
        return {**facts, "agent": f"not started: {exc}; running API-only"}
    agent.start()
    where = f"namespace {acfg.namespace}" if acfg.namespace else "this machine"
    role_names = [m.name for m in agent.managers if m.name in ROLES]
    roles = f" (roles: {', '.join(role_names)})" if role_names else ""
    kind = "Open vSwitch agent" if ovs else "Linux bridge agent"
    return {**facts, "agent": f"{kind}{roles} for host {acfg.host} on {where}"}


def _announce(facts: dict[str, Any]) -> None:
    files = facts.get("client_files", {})
    lines = [
        "",
        "kaon is up (all-in-one: server + identity + local agent).",
        f"  Networking API : {facts['network_url']}/v2.0",
        f"  Local agent    : {facts.get('agent', 'not started')}",
    ]
    if "ovs" in facts:
        lines.append(f"  Open vSwitch   : {facts['ovs']}")
    if "warning" in facts:
        lines.append(f"  Warning        : {facts['warning']}")
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
    state = facts.get("state_path")
    if state:
        lines += ["", f"Simulated hosts joining this node:  kaon lab up --state-dir {state} --hosts 2",
                  f"Stop it and remove what its agent made:  kaon down --state-dir {state}"]
    lines.append("")
    print("\n".join(lines), flush=True)
