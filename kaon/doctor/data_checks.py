"""Checks of the stored state: what the server's own data says is wrong.

Each reads through :mod:`kaon.core.agents.diagnostics` (or the compiler's
generations) in the read transaction the runner gives it, and names the
resource, the evidence and the command that fixes it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import netaddr

from kaon.compiler.dhcp_section import dhcp_options
from kaon.core.agents import diagnostics as dx
from kaon.core.agents import generations
from kaon.core.agents.scheduling import dhcp_device_id
from kaon.doctor.agent_checks import last_failures
from kaon.doctor.finding import ERROR, WARNING, Finding
from kaon.doctor.inputs import Inputs, NotApplicable

L2_AGENT_TYPES = ("Linux bridge agent", "Open vSwitch agent")
_STAMP = "%Y-%m-%d %H:%M:%S"


def _port(p: dx.PortFact) -> str:
    return f"port {p.name} ({p.id})" if p.name else f"port {p.id}"


def _ago(now: dt.datetime, then: dt.datetime) -> str:
    seconds = int((now - then).total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def _few(ids: list[str], limit: int = 3) -> str:
    return " ".join(ids[:limit]) + (f" … (+{len(ids) - limit})" if len(ids) > limit else "")


# ------------------------------------------------------------------ (f)

def binding_failed(inp: Inputs) -> list[Finding]:
    """Ports in ``binding_failed``, each with its ``binding:failure_reason``."""
    out = []
    for p in dx.failed_bindings(inp.db()):
        reason = p.failure or "no reason recorded"
        out.append(Finding("binding_failed", ERROR, _port(p), f"binding failed on host {p.host or '(none)'}: {reason}",
                           "fix what the reason names (agent down, mapping missing), then "
                           f"openstack port set --host {p.host or 'HOST'} {p.id} to bind again",
                           host=p.host or None))
    return out


# ------------------------------------------------------------------ (d) and dead hosts

def renamed_host(inp: Inputs) -> list[Finding]:
    """A dead L2 agent whose host still has bound ports while an agent of its
    type appeared on another host after it died: the host was renamed."""
    facts = dx.agent_facts(inp.db(), inp.now, inp.down_time)
    dead = [a for a in facts if a.agent_type in L2_AGENT_TYPES and not a.alive]
    if not dead:
        return []
    bound: dict[str, list[str]] = defaultdict(list)
    for p in dx.bound_ports(inp.db(), sorted({a.host for a in dead})):
        bound[p.host].append(p.id)
    out = []
    for old in dead:
        newcomers = [a for a in facts if a.agent_type == old.agent_type and a.alive and a.host != old.host
                     and a.created_at >= old.heartbeat]
        if not bound.get(old.host) or not newcomers:
            continue
        # The likeliest new name first: the same short name (compute1 -> compute1.example.org),
        # then the first agent to appear after the old one fell silent.
        short = old.host.split(".")[0]
        new = min(newcomers, key=lambda a: (a.host.split(".")[0] != short, a.created_at))
        ids = bound[old.host]
        out.append(Finding(
            "renamed_host", ERROR, f"host {old.host}",
            f"its {old.agent_type} is dead (last report {old.heartbeat.strftime(_STAMP)}), {len(ids)} port(s) are "
            f"still bound to it, and a {new.agent_type} appeared on {new.host} at {new.created_at.strftime(_STAMP)} "
            "(renamed host?)",
            f"if {new.host} is {old.host} renamed: openstack port set --host {new.host} PORT for {_few(ids)}, "
            f"then openstack network agent delete {old.id}; else set [DEFAULT] host = {old.host} on that host",
            host=old.host))
    return out


def active_on_dead_host(inp: Inputs) -> list[Finding]:
    """Ports ACTIVE on a host with no live L2 agent: nothing serves them."""
    facts = dx.agent_facts(inp.db(), inp.now, inp.down_time)
    l2 = [a for a in facts if a.agent_type in L2_AGENT_TYPES]
    live_hosts = {a.host for a in l2 if a.alive}
    dead = {a.host: a for a in l2 if not a.alive and a.host not in live_hosts}
    active: dict[str, list[str]] = defaultdict(list)
    for p in dx.bound_ports(inp.db(), sorted(dead)):
        if p.status == "ACTIVE" and not p.device_owner.startswith("network:"):
            active[p.host].append(p.id)
    return [Finding("active_on_dead_host", WARNING, f"host {host}",
                    f"{len(ids)} port(s) ACTIVE ({_few(ids)}) but its {dead[host].agent_type} is dead "
                    f"(last report {_ago(inp.now, dead[host].heartbeat)} ago): nothing serves them",
                    f"start the agent on {host}, or move the ports: openstack port set --host NEWHOST PORT",
                    host=host) for host, ids in sorted(active.items())]


# ------------------------------------------------------------------ generations

def generation_lag(inp: Inputs) -> list[Finding]:
    """A host that has not applied its latest generation ``lag_seconds`` after it was compiled."""
    facts = dx.agent_facts(inp.db(), inp.now, inp.down_time)
    alive = {a.host: a.alive for a in facts}
    failures = last_failures(facts)
    out = []
    for s in generations.states(inp.db()):
        if s.converged or s.compiled_at is None:
            continue
        behind = (inp.now - s.compiled_at).total_seconds()
        if behind < inp.lag_seconds:
            continue
        agent = "its agents are dead" if not alive.get(s.host, False) else "its agent is alive but has not applied it"
        failure = failures.get(s.host)
        if failure:
            agent += f"; its last failed action: {failure['action']} ({failure.get('manager', '?')}): " \
                     f"{failure.get('reason', 'no reason given')}"
        fix = (f"fix what the failed action names on {s.host} (the agent retries by itself)" if failure else
               f"read the agent's log on {s.host} (it logs each failing action) and restart it if it is stuck: "
               "kaon agent --config-file …")
        out.append(Finding("generation_lag", ERROR, f"host {s.host}",
                           f"applied generation {s.applied_generation}, latest is {s.generation} compiled "
                           f"{_ago(inp.now, s.compiled_at)} ago; {agent}", fix, host=s.host))
    return out


# ------------------------------------------------------------------ (g)

def isolated_metadata(inp: Inputs) -> list[Finding]:
    """VMs on a network without a router get no metadata unless isolated metadata is on."""
    opts = dhcp_options(inp.cfg)
    if opts.isolated_metadata or opts.force_metadata:
        raise NotApplicable("enable_isolated_metadata (or force_metadata) is on")
    return [Finding("isolated_metadata", WARNING, f"network {n.name or n.id} ({n.id})" if n.name else f"network {n.id}",
                    f"{n.vms} VM port(s) on {', '.join(n.subnets)} with no router and enable_isolated_metadata "
                    "off: 169.254.169.254 has no path",
                    "set enable_isolated_metadata = true (dhcp_agent.ini / [DEFAULT]) or attach a subnet to a "
                    "router: openstack router add subnet ROUTER SUBNET") for n in dx.unrouted_vm_networks(inp.db())]


# ------------------------------------------------------------------ (k)

def dhcp_port_address(inp: Inputs) -> list[Finding]:
    """A DHCP port not at its subnet's first pool address (kaon's rule): VMs
    and dnsmasq's clients were told another server address."""
    conn = inp.db()
    subs = dx.dhcp_subnets(conn)
    out = []
    for p in dx.dhcp_ports(conn):
        for subnet_id, ip in p.ips:
            s = subs.get(subnet_id)
            if s is None or not s.allocation_pools:
                continue
            first = str(min(netaddr.IPAddress(start) for start, _ in s.allocation_pools))
            if ip == first:
                continue
            holder = dx.port_holding(conn, subnet_id, first)
            fix = (f"openstack port set {p.id} --no-fixed-ip --fixed-ip subnet={subnet_id},ip-address={first}"
                   if holder is None else
                   f"{first} is held by port {holder}: free it, then openstack port set {p.id} --no-fixed-ip "
                   f"--fixed-ip subnet={subnet_id},ip-address={first}")
            out.append(Finding("dhcp_port_address", WARNING, f"DHCP {_port(p)} on {s.cidr}",
                               f"is at {ip}, not {first} (the pool's first address, where kaon puts the DHCP "
                               "server)", fix, host=p.host or None))
    return out


def dhcp_port_claims(inp: Inputs) -> list[Finding]:
    """A DHCP port bound to a host whose DHCP agent does not serve the network,
    or a second DHCP port of one network on one host."""
    conn = inp.db()
    serving = dx.dhcp_serving(conn)
    groups: dict[tuple[str, str], list[dx.PortFact]] = defaultdict(list)
    for p in dx.dhcp_ports(conn):
        groups[(p.network_id, p.host)].append(p)
    out = []
    for (network_id, host), group in groups.items():
        # The agent's own port (Neutron's device_id formula) is the one to keep.
        group.sort(key=lambda p: (p.device_id != dhcp_device_id(network_id, host), p.id))
        keep = group[0]
        for extra in group[1:]:
            out.append(Finding("dhcp_port_claims", ERROR, f"DHCP {_port(extra)}",
                               f"network {network_id} has two DHCP ports on host {host} ({keep.id} and {extra.id})",
                               f"openstack port delete {extra.id}", host=host or None))
        if (network_id, host) not in serving:
            out.append(Finding("dhcp_port_claims", ERROR, f"DHCP {_port(keep)}",
                               f"claims network {network_id} for host {host or '(none)'}, whose DHCP agent "
                               "does not serve it (two DHCP servers, or none, answer)",
                               f"openstack port delete {keep.id} (kaon makes the port of the agent that serves the "
                               "network); openstack network agent list --network NETWORK shows which",
                               host=host or None))
    return out


# ------------------------------------------------------------------ routers

def router_gateway(inp: Inputs) -> list[Finding]:
    """A router whose external gateway port has no address: no SNAT, no floating IPs."""
    return [Finding("router_gateway", ERROR, f"router {g.router_name} ({g.router_id})" if g.router_name
                    else f"router {g.router_id}",
                    f"gateway port {g.port_id} on network {g.network_id} has no IP address",
                    f"add a subnet to network {g.network_id}, then openstack router unset --external-gateway and "
                    f"openstack router set --external-gateway {g.network_id} ROUTER")
            for g in dx.router_gateways(inp.db()) if not g.addresses]
