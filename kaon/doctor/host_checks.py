"""Checks of this host, from an agent's configuration (``kaon doctor
--config-file linuxbridge_agent.ini`` on the host).

They look where the agent would: in ``[agent] namespace`` when set (kaon's
lab hosts), else in this host's own namespace. Each says "not applicable"
when the agent's configuration does not use what it checks.
"""

from __future__ import annotations

import os

from kaon.config import parse_bool, parse_mapping
from kaon.doctor.finding import ERROR, Finding
from kaon.doctor.inputs import CannotCheck, Inputs, NotApplicable

NF_SYSCTLS = ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables")
NOOP_FIREWALLS = ("", "noop", "neutron.agent.firewall.NoopFirewallDriver")
DEFAULT_OVSDB = "unix:/var/run/openvswitch/db.sock"


def _host(inp: Inputs) -> str:
    return (inp.cfg.get("agent", "host") or "").strip() or inp.cfg.default.host


def _namespace(inp: Inputs) -> str | None:
    return (inp.cfg.get("agent", "namespace") or "").strip() or None


# ------------------------------------------------------------------ (e)

def local_ip(inp: Inputs) -> list[Finding]:
    """``[vxlan] local_ip`` (Linux bridge) or ``[ovs] local_ip`` (Open vSwitch) is an address of this
    host (the agent's own start-up check)."""
    if _is_ovs(inp):
        section = "ovs"
        value = (inp.cfg.get("ovs", "local_ip") or "").strip()
        if not value:
            raise NotApplicable("no [ovs] local_ip (no tunnels)")
    else:
        section = "vxlan"
        value = (inp.cfg.get("vxlan", "local_ip") or "").strip()
        if not inp.cfg.get_typed("vxlan", "enable_vxlan", parse_bool, True) or not value:
            raise NotApplicable("no [vxlan] local_ip (VXLAN off)")
    # Shared with `kaon config check`, so the agent's refusal to start and the
    # doctor say the same thing.
    from kaon.config_check import local_ip_problem
    problem = local_ip_problem(value, namespace=_namespace(inp))
    if not problem:
        return []
    return [Finding("local_ip", ERROR, f"[{section}] local_ip", problem,
                    "set local_ip to this host's address on the overlay network (ip -br addr shows them)",
                    host=_host(inp))]


# ------------------------------------------------------------------ (i)

def _read_sysctls() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key in NF_SYSCTLS:
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as fh:
                out[key] = fh.read().strip()
        except FileNotFoundError:
            out[key] = None
    return out


def br_netfilter(inp: Inputs) -> list[Finding]:
    """Bridged traffic reaches netfilter where security groups need it."""
    driver = (inp.cfg.get("securitygroup", "firewall_driver") or "").strip()
    if driver in NOOP_FIREWALLS or not inp.cfg.get_typed("securitygroup", "enable_security_group", parse_bool, True):
        raise NotApplicable("no security group firewall ([securitygroup] firewall_driver unset or noop)")
    from kaon.dataplane import NamespaceNotFound, netns

    ns = _namespace(inp)
    try:
        values = netns.run_in(ns, _read_sysctls)
    except (OSError, NamespaceNotFound) as exc:
        raise CannotCheck(f"cannot read the sysctls{f' in namespace {ns}' if ns else ''}: {exc}") from exc
    where = f" (namespace {ns})" if ns else ""
    # Per bridge (the agent's default in a namespace of its own): the agent sets these sysctls to
    # 0 itself and turns br_netfilter on per bridge; only the module must be there.
    from kaon.agent.config import netfilter_all_bridges

    all_bridges = netfilter_all_bridges(inp.cfg)
    if all(v is None for v in values.values()):
        return [Finding("br_netfilter", ERROR, "br_netfilter", f"is not loaded: no /proc/sys/net/bridge{where}; "
                        "security groups' stateful rules never see bridged traffic",
                        "modprobe br_netfilter, and list it in /etc/modules-load.d/ so it loads at boot",
                        host=_host(inp))]
    off = [k for k, v in values.items() if v is not None and v != "1" and all_bridges]
    return [Finding("br_netfilter", ERROR, key, f"= {values[key]}{where}: bridged packets skip the security "
                    "group rules", f"sysctl -w {key}=1 and persist it in /etc/sysctl.d/ (the agent sets it when it "
                    "runs as root; 0 again means something else resets it)", host=_host(inp)) for key in off]


# ------------------------------------------------------------------ (j) and Open vSwitch's bad input

def _is_ovs(inp: Inputs) -> bool:
    from kaon.agent.ovs_config import ovs_selected

    return ovs_selected(inp.cfg)


def _remote(inp: Inputs) -> str:
    return (inp.cfg.get("ovs", "ovsdb_connection") or "").strip() or DEFAULT_OVSDB


def _rundir(remote: str) -> str | None:
    return os.path.dirname(remote[len("unix:"):]) if remote.startswith("unix:") else None


def _bridges(inp: Inputs) -> dict[str, dict[str, object]]:
    """The bridges of the agent's OVSDB; :class:`CannotCheck` when it does not answer (``ovsdb`` says it)."""
    from kaon.dataplane.ovsdb import Ovsdb, OvsdbUnreachable

    try:
        with Ovsdb(_remote(inp), connect_timeout=2.0, timeout=5.0) as db:
            return db.bridges()
    except OvsdbUnreachable as exc:
        raise CannotCheck(str(exc)) from exc


def ovs_kernel_module_loaded() -> bool:
    """Whether the kernel's openvswitch module is loaded (``datapath_type = system`` needs it)."""
    return os.path.isdir("/sys/module/openvswitch")


def ovsdb(inp: Inputs) -> list[Finding]:
    """The Open vSwitch agent's OVSDB answers, and its bridges have a datapath (``datapath_type =
    system`` on a kernel without the openvswitch module makes bridges that forward nothing)."""
    if not _is_ovs(inp):
        raise NotApplicable("not an Open vSwitch agent's configuration (no [ovs] section)")
    remote = _remote(inp)
    try:
        bridges = _bridges(inp)
    except CannotCheck as exc:
        return [Finding("ovsdb", ERROR, f"ovsdb-server at {remote}", f"does not answer: {exc}",
                        "start Open vSwitch on this host (systemctl start openvswitch-switch), or set [ovs] "
                        "ovsdb_connection to where it listens; the agent retries and carries on by itself once it "
                        "answers", host=_host(inp))]
    datapath = ((inp.cfg.get("ovs", "datapath_type") or "").strip() or "system").lower()
    kaons = [(inp.cfg.get("ovs", "integration_bridge") or "").strip() or "br-int",
             (inp.cfg.get("ovs", "tunnel_bridge") or "").strip() or "br-tun"]
    try:
        kaons += list(parse_mapping(inp.cfg.get("ovs", "bridge_mappings") or "").values())
    except ValueError:
        pass  # ovs_bridges names a malformed mapping
    dead = sorted(name for name in set(kaons) if name in bridges and not bridges[name]["datapath_id"])
    no_module = datapath == "system" and not ovs_kernel_module_loaded()
    out = []
    if no_module:
        evidence = ("= system, but this kernel has no openvswitch module (no /sys/module/openvswitch): "
                    "ovs-vswitchd makes the bridges (ovs-vsctl add-br succeeds) and they forward nothing")
        if dead:
            evidence += f"; without a datapath now: {', '.join(dead)}"
        out.append(Finding("ovsdb", ERROR, "[ovs] datapath_type", evidence,
                           "set datapath_type = netdev (Open vSwitch's userspace datapath) and restart the agent, or "
                           "load the module (modprobe openvswitch) where the kernel has it", host=_host(inp)))
    else:
        out += [Finding("ovsdb", ERROR, f"OVS bridge {name}", f"has no datapath (datapath_type = "
                        f"{bridges[name]['datapath_type'] or 'system'}): it forwards nothing",
                        f"read ovs-vswitchd's log for {name}; with datapath_type = system the kernel needs the "
                        "openvswitch module, else use netdev", host=_host(inp)) for name in dead]
    return out


def ovs_bridges(inp: Inputs) -> list[Finding]:
    """Bridges named in ``[ovs] bridge_mappings`` exist, and none is in
    ``fail_mode = secure`` with no flows (which drops every packet)."""
    raw = (inp.cfg.get("ovs", "bridge_mappings") or "").strip()
    if not raw:
        raise NotApplicable("no [ovs] bridge_mappings (no OVS agent configured here)")
    try:
        wanted = sorted(set(parse_mapping(raw).values()))
    except ValueError as exc:
        return [Finding("ovs_bridges", ERROR, "[ovs] bridge_mappings", str(exc), "write it as physnet:bridge,…",
                        host=_host(inp))]
    from kaon.dataplane.openflow import OpenFlow, OpenFlowError

    bridges = _bridges(inp)
    rundir = _rundir(_remote(inp))
    flows = OpenFlow(target=(lambda br: f"unix:{rundir}/{br}.mgmt") if rundir else None)
    out = []
    for name in wanted:
        br = bridges.get(name)
        if br is None:
            out.append(Finding("ovs_bridges", ERROR, f"OVS bridge {name}", "is named in [ovs] bridge_mappings but "
                               "does not exist: the Open vSwitch agent refuses to start", f"ovs-vsctl add-br {name} "
                               "and add the physical interface to it, or fix bridge_mappings", host=_host(inp)))
            continue
        if br["fail_mode"] != "secure" or not br["datapath_id"]:
            continue  # a bridge without a datapath has no flows to dump: ovsdb names it
        try:
            count = len(flows.dump(name))
        except OpenFlowError as exc:
            raise CannotCheck(f"cannot dump the flows of {name}: {exc}") from exc
        if count == 0:
            out.append(Finding("ovs_bridges", ERROR, f"OVS bridge {name}", "fail_mode = secure and no flows: it "
                               "drops every packet", f"start the OVS agent on this host, or ovs-vsctl del-fail-mode "
                               f"{name} while it is down", host=_host(inp)))
    return out
