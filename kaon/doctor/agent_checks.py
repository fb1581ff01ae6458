"""Checks of what the agents report about themselves (their state reports'
``health``, stored by kaon.core.agents.agents): tunnels that get no answer, dnsmasq
processes that died, clocks that drifted.

Only live agents speak here: a dead agent's last report is old news, and
``active_on_dead_host``/``generation_lag`` already name the dead.
"""

from __future__ import annotations

from typing import Any

from kaon.core.agents import diagnostics as dx
from kaon.core.agents import generations
from kaon.doctor.finding import ERROR, WARNING, Finding
from kaon.doctor.inputs import Inputs, NotApplicable

OVS_AGENT_TYPE = "Open vSwitch agent"
L2_AGENT_TYPES = ("Linux bridge agent", OVS_AGENT_TYPE)
DHCP_AGENT_TYPE = "DHCP agent"
VXLAN_IPV4_OVERHEAD = 50  # outer IPv4 20 + UDP 8 + VXLAN 8 + the inner Ethernet header 14 (Neutron's figure)


def _alive(inp: Inputs) -> list[dx.AgentFact]:
    return [a for a in dx.agent_facts(inp.db(), inp.now, inp.down_time) if a.alive]


def _converged(inp: Inputs) -> dict[str, generations.HostState]:
    return {s.host: s for s in generations.states(inp.db()) if s.converged}


# ------------------------------------------------------------------ (h)

def tunnels(inp: Inputs) -> list[Finding]:
    """A live L2 agent's VXLAN probes to an l2population peer get no answer (udp/4789 blocked)."""
    alive = _alive(inp)
    l2 = [a for a in alive if a.agent_type in L2_AGENT_TYPES]
    probing = [a for a in l2 if isinstance(a.health.get("tunnels"), dict)]
    if not probing:
        raise NotApplicable("no live L2 agent reports VXLAN probes (no tunnels, or agents older than the prober)")
    vtep_host = {str(a.configurations.get("tunneling_ip")): a.host for a in l2 if a.configurations.get("tunneling_ip")}
    converged = _converged(inp)
    out = []
    for a in probing:
        local = a.configurations.get("tunneling_ip") or "?"
        if a.health.get("tunnel_probe_error"):
            out.append(Finding("tunnels", WARNING, "VXLAN probe", f"cannot run: {a.health['tunnel_probe_error']}",
                               f"read the agent's log on {a.host}; the probe needs VNI 16777215 free on udp/4789 "
                               f"at {local} (kprobe-vx)", host=a.host))
        for peer, answered in sorted(a.health["tunnels"].items()):
            if answered:
                continue
            peer_host = vtep_host.get(peer, "unknown host")
            evidence = "gets no answer on udp/4789"
            state = converged.get(a.host)
            if state is not None:  # the case the generation check cannot see
                evidence += f", though {a.host} reports generation {state.applied_generation} applied (converged)"
            out.append(Finding("tunnels", ERROR, f"VXLAN to {peer} ({peer_host})", evidence,
                               f"open udp/4789 between the hosts' local_ip addresses ({local} on {a.host}, "
                               f"{peer} on {peer_host}) in both directions", host=a.host))
    return out


def tunnel_mtu(inp: Inputs) -> list[Finding]:
    """A live L2 agent's probes the size of its VXLAN networks' largest frame get no answer from a peer
    whose small probes do: something between the two VTEPs carries less than the networks need."""
    l2 = [a for a in _alive(inp) if a.agent_type in L2_AGENT_TYPES]
    probing = [a for a in l2 if isinstance(a.health.get("tunnel_mtu"), dict)]
    if not probing:
        raise NotApplicable("no live L2 agent reports VXLAN path MTU probes")
    vtep_host = {str(a.configurations.get("tunneling_ip")): a.host for a in l2 if a.configurations.get("tunneling_ip")}
    out = []
    for a in probing:
        local = a.configurations.get("tunneling_ip") or "?"
        for peer, probe in sorted(a.health["tunnel_mtu"].items()):
            if not isinstance(probe, dict) or probe.get("answered", True) or not isinstance(probe.get("mtu"), int):
                continue
            mtu = probe["mtu"]
            peer_host = vtep_host.get(peer, "unknown host")
            out.append(Finding(
                "tunnel_mtu", ERROR, f"VXLAN to {peer} ({peer_host})",
                f"small probes are answered but frames of the networks' MTU {mtu} ({mtu + VXLAN_IPV4_OVERHEAD}-byte "
                f"packets on udp/4789) are not: the underlay between {local} and {peer} carries less: VMs' large "
                "packets (TCP bulk, big pings) are dropped",
                f"raise the MTU of every link between {a.host} and {peer_host} (the hosts' local_ip devices, switch "
                f"ports, and bridges between them) to at least {mtu + VXLAN_IPV4_OVERHEAD}, or lower the networks' "
                f"MTU to what the path carries minus {VXLAN_IPV4_OVERHEAD} (openstack network set --mtu N NETWORK; "
                "VMs pick it up at their next DHCP lease)", host=a.host))
    return out


def ovsdb_lost(inp: Inputs) -> list[Finding]:
    """A live Open vSwitch agent that has lost its ovsdb-server (it reports the connection's state)."""
    ovs = [a for a in _alive(inp) if a.agent_type == OVS_AGENT_TYPE and isinstance(a.health.get("ovsdb"), dict)]
    if not ovs:
        raise NotApplicable("no live Open vSwitch agent reports its OVSDB connection")
    return [Finding("ovsdb_lost", ERROR, f"ovsdb-server at {a.health['ovsdb'].get('remote', '?')}",
                    "the Open vSwitch agent has lost its connection: it applies nothing (no port is wired, no "
                    "flow changes) until ovsdb-server answers again",
                    f"start ovsdb-server on {a.host} (systemctl start openvswitch-switch, or ovs-ctl start); the "
                    "agent reconnects and catches up by itself", host=a.host)
            for a in ovs if a.health["ovsdb"].get("connected") is False]


# ------------------------------------------------------------------ DHCP

def dnsmasq(inp: Inputs) -> list[Finding]:
    """A network a live DHCP agent serves, on a host that applied its intent, without a running dnsmasq."""
    dhcp = [a for a in _alive(inp) if a.agent_type == DHCP_AGENT_TYPE]
    if not dhcp:
        raise NotApplicable("no live DHCP agent")
    # While a host applies a new generation its dnsmasq may not be up yet: generation_lag speaks then.
    converged = _converged(inp)
    out = []
    for a in dhcp:
        processes: dict[str, Any] = a.health.get("dnsmasq") or {}
        if a.host not in converged:
            continue
        for network_id, proc in sorted(processes.items()):
            if not isinstance(proc, dict) or proc.get("running", True):
                continue
            pid = f" (pid {proc['pid']})" if proc.get("pid") else ""
            out.append(Finding("dnsmasq", ERROR, f"DHCP for network {network_id}",
                               f"dnsmasq{pid} is not running though the DHCP agent serves the network: its VMs get "
                               "no address", f"the agent starts it again at its next resync; if it keeps dying, read "
                               f"dnsmasq's log in the agent's state directory (dhcp/{a.host}/{network_id}/log), "
                               "or restart the agent on that host", host=a.host))
    return out


# ------------------------------------------------------------------ MTU

def mtu(inp: Inputs) -> list[Finding]:
    """Devices a live L2 agent found with an MTU other than their network's."""
    l2 = [a for a in _alive(inp) if a.agent_type in L2_AGENT_TYPES and isinstance(a.health.get("mtu"), list)]
    if not l2:
        raise NotApplicable("no live L2 agent reports device MTUs")
    out = []
    for a in l2:
        for d in a.health["mtu"]:
            have, want = d.get("mtu"), d.get("network_mtu")
            if not isinstance(have, int) or not isinstance(want, int):
                continue
            effect = (f"frames over {want} bytes leave it and are dropped on the way" if have > want else
                      f"the bridge, and every port on it, is held to {have} bytes")
            what = f"port {d['port_id']} device {d['device']}" if d.get("port_id") else f"device {d['device']}"
            out.append(Finding("mtu", WARNING, what,
                               f"MTU {have}, its network {d.get('network_id')} has MTU {want}: {effect}",
                               f"ip link set {d['device']} mtu {want} on {a.host} (Nova's os-vif sets a tap to the "
                               "network's MTU on plug: check the VIF's mtu), or change the network's: openstack "
                               "network set --mtu N NETWORK", host=a.host))
    return out


# ------------------------------------------------------------------ clocks

def clock_skew(inp: Inputs) -> list[Finding]:
    """An agent host whose clock differs from the server's by more than ``agent_down_time``."""
    worst: dict[str, float] = {}
    seen = False
    for a in _alive(inp):
        skew = a.health.get("clock_skew")
        if not isinstance(skew, (int, float)):
            continue
        seen = True
        if abs(skew) > abs(worst.get(a.host, 0.0)):
            worst[a.host] = float(skew)
    if not seen:
        raise NotApplicable("no live agent reports its clock")
    limit = inp.down_time
    return [Finding("clock_skew", WARNING, f"host {host}",
                    f"its clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the server's, more "
                    f"than agent_down_time ({limit} s): agent liveness, token expiry and logs disagree",
                    f"synchronise the clocks of {host} and the servers (chrony or systemd-timesyncd against one "
                    "NTP source)", host=host)
            for host, skew in sorted(worst.items()) if abs(skew) > limit]


def last_failures(facts: list[dx.AgentFact]) -> dict[str, dict[str, Any]]:
    """host -> the last failed action its live agents report (for generation_lag)."""
    out: dict[str, dict[str, Any]] = {}
    for a in facts:
        failure = a.health.get("last_failure")
        if a.alive and isinstance(failure, dict) and failure.get("action"):
            out[a.host] = failure
    return out
