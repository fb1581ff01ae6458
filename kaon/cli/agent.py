"""``kaon agent``: the Linux bridge L2 agent of one host.

Also used by ``kaon up`` to run the all-in-one node's local agent in the
server's process, on the in-process bus.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from kaon.agent.config import AgentConfig, agent_config
from kaon.agent.runtime import Agent
from kaon.config import Config

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
            return f"[vxlan] local_ip: {problem}"
    return None


def build_agent(cfg: Config) -> Agent:
    from kaon.bus import agent_bus
    from kaon.dataplane.features import probe_features
    from kaon.dataplane.linux_l2 import LinuxL2

    acfg = agent_config(cfg)
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
    why = agent_unavailable(acfg)
    if why:
        LOG.error("kaon agent cannot run: %s", why)
        return 1
    agent = build_agent(cfg)
    # Prometheus endpoint on [agent] metrics_port (0, the default: none); docs/metrics.md.
    from kaon.metrics import agent as agent_metrics

    try:
        agent_metrics.serve(cfg)
    except (OSError, ValueError) as exc:
        LOG.error("kaon agent cannot serve metrics: %s", exc)
        return 1

    def stop(signum: int, _frame: Any) -> None:
        LOG.info("signal %d: stopping", signum)
        agent._stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    LOG.info("Linux bridge agent for host %s (namespace %s, local_ip %s, bus %s)", acfg.host,
             acfg.namespace or "-", acfg.local_ip, "rabbit" if acfg.transport_url else "local")
    agent.start()
    try:
        agent.wait()
    finally:
        agent.stop()
    return 0
