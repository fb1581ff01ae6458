"""``kaon agent``: the L2 agent of one host — Linux bridge, or Open vSwitch when the
configuration has an ``[ovs]`` section (Neutron's openvswitch_agent.ini; kaon.agent.ovs_config).

Also used by ``kaon up`` to run the all-in-one node's local agent in the
server's process, on the in-process bus.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING, Any

from kaon.agent.config import AgentConfig, agent_config
from kaon.agent.runtime import Agent
from kaon.config import Config

if TYPE_CHECKING:
    from kaon.agent.ovs_config import OvsConfig
    from kaon.agent.probe import VxlanProber
    from kaon.dataplane.ovsdb import Ovsdb

LOG = logging.getLogger("kaon.agent")


def agent_unavailable(cfg: AgentConfig) -> str | None:
    """Why this machine cannot run the agent, or None when it can."""
    if os.geteuid() != 0:
        return "not running as root (the agent creates bridges and VXLAN devices)"
    if cfg.namespace and not os.path.exists(f"/run/netns/{cfg.namespace}"):
        return f"network namespace {cfg.namespace} does not exist ([agent] namespace)"
    if cfg.tunnel_types:
        from kaon.config_check import local_ip_problem

        problem = local_ip_problem(cfg.local_ip, namespace=cfg.namespace)
        if problem:
            section = "ovs" if cfg.mechanism == "openvswitch" else "vxlan"
            return f"[{section}] local_ip: {problem}"
    return None


OVS_FIREWALL = ("openvswitch", "neutron.agent.linux.openvswitch_firewall:OVSFirewallDriver")


def ovs_firewall(acfg: AgentConfig) -> bool:
    """Whether the OVS agent filters ports (``firewall_driver = openvswitch``)."""
    return acfg.enable_security_group and (acfg.firewall_driver or "").strip() in OVS_FIREWALL


def ovs_unavailable(cfg: Config, acfg: AgentConfig) -> str | None:
    """Why this host cannot run the Open vSwitch agent as configured, or None (checked at start)."""
    from kaon.agent.firewall import NOOP

    driver = (acfg.firewall_driver or "").strip()
    if acfg.enable_security_group and driver not in NOOP and driver not in OVS_FIREWALL:
        return (f"[securitygroup] firewall_driver = {driver}: kaon's Open vSwitch agent filters with "
                "firewall_driver = openvswitch (conntrack flows on br-int); iptables_hybrid's qbr bridges are "
                "not made; set openvswitch or noop")
    return None


def ovs_preflight(ocfg: OvsConfig, connect_timeout: float = 10.0) -> Ovsdb:
    """Reach ovsdb-server (retrying), check bridge_mappings and the datapath; return the connection.

    Makes the integration bridge, as Neutron's agent does at start: a datapath that
    cannot exist (``datapath_type = system`` without the kernel module) is found
    here and named, instead of every later pass failing.
    """
    from kaon.dataplane.ovs_model import BridgeSpec
    from kaon.dataplane.ovsdb import Ovsdb, OvsdbError

    opts = ocfg.options
    db = Ovsdb(ocfg.ovsdb_connection, connect_timeout=connect_timeout)
    try:
        missing = sorted(set(dict(opts.bridge_mappings).values()) - set(db.bridges()))
        if missing:
            raise OvsdbError(
                f"[ovs] bridge_mappings names bridge(s) {', '.join(missing)} that do not exist in OVS "
                f"({ocfg.ovsdb_connection}); create them (ovs-vsctl add-br) or fix bridge_mappings")
        db.apply([BridgeSpec(opts.integration_bridge, opts.datapath_type)], [])
    except BaseException:
        db.close()
        raise
    return db


def ovs_prober(ocfg: OvsConfig, acfg: AgentConfig, manager: Any) -> VxlanProber | None:
    """The OVS agent's VXLAN prober (through br-tun: kaon.agent.ovs_probe), when it carries VXLAN."""
    from kaon.agent.ovs_probe import OvsEndpoint, remove_port
    from kaon.agent.probe import VxlanProber, intent_peers

    if "vxlan" in acfg.tunnel_types and acfg.local_ip:
        return VxlanProber(acfg.local_ip, acfg.namespace, lambda: intent_peers(manager.intent),
                           acfg.report_interval, OvsEndpoint(ocfg, acfg.namespace))
    remove_port(ocfg)
    return None


def build_agent(cfg: Config) -> Agent:
    from kaon.bus import agent_bus

    acfg = agent_config(cfg)
    if acfg.mechanism == "openvswitch":
        from kaon.agent.interface_driver import OvsPlug
        from kaon.agent.ovs_config import ovs_config
        from kaon.agent.ovs_manager import OvsManager
        from kaon.agent.roles import build_roles

        ocfg = ovs_config(cfg)
        db = ovs_preflight(ocfg)
        manager = OvsManager(ocfg, db, host=acfg.host, namespace=acfg.namespace, firewall=ovs_firewall(acfg))
        # The roles share the manager's OVSDB connection: all of them run in the one worker thread.
        roles = build_roles(cfg, acfg, lambda role: OvsPlug(db, ocfg.options.integration_bridge, role))
        return Agent(acfg, agent_bus(acfg.transport_url, acfg.state_path), [*roles, manager],
                     ovs_prober(ocfg, acfg, manager))
    from kaon.dataplane.features import probe_features
    from kaon.dataplane.linux_l2 import LinuxL2

    features = probe_features(acfg.namespace)
    if not features.get("vxlan", True) and acfg.tunnel_types:
        LOG.warning("this kernel cannot make VXLAN devices: %s", features.get("vxlan_detail", ""))
    if features.get("vlan") is False:
        LOG.info("no 802.1Q VLAN support here (%s); VLAN segments will not be bound to host %s",
                 features.get("vlan_detail", ""), acfg.host)
    from kaon.agent.firewall import Firewall
    from kaon.agent.l2_manager import LinuxBridgeManager
    from kaon.agent.probe import VxlanProber, intent_peers, remove_device
    from kaon.agent.roles import build_roles

    l2 = LinuxBridgeManager(acfg, LinuxL2(acfg.namespace), features)
    managers = [*build_roles(cfg, acfg), Firewall(acfg), l2]
    bus = agent_bus(acfg.transport_url, acfg.state_path)
    prober = None
    if acfg.tunnel_types and acfg.local_ip:
        # Peers from the L2 manager's intent: the VTEPs l2population gives this host.
        prober = VxlanProber(acfg.local_ip, acfg.namespace, lambda: intent_peers(l2.intent), acfg.report_interval)
    else:
        remove_device(acfg.namespace)
    return Agent(acfg, bus, managers, prober)


def run_agent(cfg: Config) -> int:
    acfg = agent_config(cfg)
    why = agent_unavailable(acfg) or (ovs_unavailable(cfg, acfg) if acfg.mechanism == "openvswitch" else None)
    if why:
        LOG.error("kaon agent cannot run: %s", why)
        return 1
    from kaon.dataplane.ovsdb import OvsdbError, OvsdbUnreachable

    while True:
        try:
            agent = build_agent(cfg)
            break
        except OvsdbUnreachable as exc:
            # Started before Open vSwitch (boot order, a restart of openvswitch-switch): wait for it and say
            # so, instead of exiting; `kaon doctor` on this host names it meanwhile (check ovsdb).
            LOG.error("kaon agent cannot start yet: %s; retrying until it answers", exc)
        except OvsdbError as exc:  # OVS agent: bridge_mappings names a missing bridge, a datapath failed
            LOG.error("kaon agent cannot run: %s", exc)
            return 1
    # Prometheus endpoint on [agent] metrics_port (0, the default: none); docs/metrics.md.
    from kaon.metrics import agent as agent_metrics

    try:
        agent_metrics.serve(cfg)
    except (OSError, ValueError) as exc:
        LOG.error("kaon agent cannot serve metrics: %s", exc)

    def stop(signum: int, _frame: Any) -> None:
        LOG.info("signal %d: stopping", signum)
        agent._stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("%s agent for host %s (namespace %s, local_ip %s, bus %s)",
             "Open vSwitch" if acfg.mechanism == "openvswitch" else "Linux bridge", acfg.host,
             acfg.namespace or "-", acfg.local_ip, "rabbit" if acfg.transport_url else "local")
    agent.start()
    try:
        agent.wait()
    finally:
        agent.stop()
    return 0
