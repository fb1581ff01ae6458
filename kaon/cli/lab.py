"""``kaon lab``: simulated hosts and VMs on one machine, made of network namespaces.

::

    kaon lab up --hosts 2 [--no-agents] [--mechanism openvswitch | --ovs-hosts h2]
    kaon lab seed 001|002|004 [--mechanism M] [--tunnel-type gre] [--flat] [--delete]
    kaon lab vm create vm1 --host h1 --network private-net [--ip 10.0.0.5]
    kaon lab vm exec vm1 [--prefix P] -- ping -c1 10.0.0.6
    kaon lab status
    kaon lab down

See docs/lab.md. Every subcommand takes ``--prefix`` (default ``kl-``, or
``KAON_LAB_PREFIX``) and ``--state-dir``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

DESCRIPTION = "simulated hosts and VMs made of network namespaces"


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("lab")
    g.add_argument("--prefix", default=os.environ.get("KAON_LAB_PREFIX", "kl-"),
                   help="namespace name prefix of this lab (default kl-)")
    g.add_argument("--state-dir", help="kaon's state directory (default as `kaon up`)")
    g.add_argument("--config-file", action="append", default=[],
                   help="the server's config file (repeatable; default <state-dir>/kaon.conf)")
    g.add_argument("--os-cloud", help="cloud in clouds.yaml (default: OS_CLOUD, else kaon-admin or noauth)")
    g.add_argument("--os-client-config-file", help="clouds.yaml to read (default: OS_CLIENT_CONFIG_FILE, ...)")
    g.add_argument("--os-network-url", help="the Neutron endpoint (default: server.json or the token's catalog)")
    return p


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    common = _common()
    lab = subparsers.add_parser("lab", help=DESCRIPTION, description=DESCRIPTION)
    sub = lab.add_subparsers(dest="lab_command", required=True)

    up = sub.add_parser("up", parents=[common], help="make the hosts, underlay, provider network, outside")
    up.add_argument("--hosts", type=int, default=2, help="number of hosts (default 2)")
    up.add_argument("--no-agents", action="store_true", help="do not start a `kaon agent` per host")
    up.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                    help="wait this long for the agents to be alive in the API (default 30; 0: don't)")
    up.add_argument("--host-names-prefix", default="h", help="host names are PREFIX1..PREFIXn (default h)")
    up.add_argument("--network-nodes", type=lambda v: [h.strip() for h in v.split(",") if h.strip()],
                    metavar="HOST[,HOST...]", help="hosts that run the DHCP and L3 agents (default: the first host)")
    up.add_argument("--mechanism", choices=["linuxbridge", "openvswitch"], default="linuxbridge",
                    help="the hosts' L2 agent: Linux bridge (default) or Open vSwitch (a private OVS per host, "
                         "userspace datapath)")
    up.add_argument("--ovs-hosts", type=lambda v: [h.strip() for h in v.split(",") if h.strip()],
                    metavar="HOST[,HOST...]", help="a mixed cloud: these hosts run Open vSwitch, the others "
                                                   "--mechanism")

    down = sub.add_parser("down", parents=[common], help="remove everything the lab made")
    down.add_argument("--keep-logs", action="store_true", help="keep the agents' log files")

    status = sub.add_parser("status", parents=[common], help="hosts, agents, VMs")
    status.add_argument("--json", action="store_true")

    seed = sub.add_parser("seed", parents=[common], help="recreate a seed scenario: 001, 002 or 004")
    seed.add_argument("scenario", choices=["001", "002", "004"])
    seed.add_argument("--host", help="the compute host for the VMs (default: the first host that is not a "
                                     "network node)")
    seed.add_argument("--delete", action="store_true", help="remove what the seed made")
    seed.add_argument("--mechanism", choices=["linuxbridge", "openvswitch"],
                      help="the seed is for hosts running this L2 agent: refused (with the commands that remake "
                           "the lab) when a host runs another; default: whatever the lab's hosts run")
    seed.add_argument("--tunnel-type", choices=["vxlan", "gre", "geneve"],
                      help="seed 001: the type of private-net (default: the server's tenant_network_types)")
    seed.add_argument("--flat", action="store_true",
                      help="seed 002: one shared flat provider network pub100 instead of four VLANs (for hosts "
                           "that cannot carry 802.1Q)")

    vm = sub.add_parser("vm", help="VMs: namespaces plugged into a host like Nova + os-vif would")
    vsub = vm.add_subparsers(dest="vm_command", required=True)
    create = vsub.add_parser("create", parents=[common], help="create a port and plug a VM namespace")
    create.add_argument("name")
    create.add_argument("--host", required=True, help="lab host (binding:host_id), e.g. h1")
    create.add_argument("--network", required=True, help="network name or id")
    create.add_argument("--ip", help="fixed IP address")
    create.add_argument("--subnet", help="subnet name or id for the fixed IP")
    create.add_argument("--security-group", action="append", default=[], help="name or id (repeatable)")
    create.add_argument("--port", help="bind this existing port (name or id) instead of creating one")
    create.add_argument("--project-id", help="project owning the new port (admin only)")
    create.add_argument("--dhcp", action="store_true",
                        help="the VM configures itself: DHCP for IPv4 (busybox udhcpc), SLAAC or DHCPv6 "
                             "(dhclient -6) for IPv6")
    create.add_argument("--json", action="store_true")
    delete = vsub.add_parser("delete", parents=[common], help="delete the VM namespace and its port")
    delete.add_argument("name")
    vlist = vsub.add_parser("list", parents=[common], help="the lab's VMs")
    vlist.add_argument("--json", action="store_true")
    vexec = vsub.add_parser("exec", parents=[common], help="run a command inside a VM: NAME [options] -- CMD ...")
    vexec.add_argument("name")
    # Everything after the first `--` is the command (split_command sets it aside before
    # argparse), so options such as --prefix may come anywhere before the `--`.
    vexec.add_argument("cmd", nargs="*", help="the command (after --)")
    return lab


def split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``lab vm exec ... -- CMD``: (the arguments before the first ``--``, CMD), else (argv, None)."""
    if argv[:3] == ["lab", "vm", "exec"] and "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1:]
    return argv, None


def _lab(args: argparse.Namespace, **kw: Any) -> Any:
    from kaon.lab import Lab

    return Lab(args.prefix, args.state_dir, config_files=args.config_file, cloud=args.os_cloud,
               clouds_yaml=args.os_client_config_file, network_url=args.os_network_url, **kw)


def run(args: argparse.Namespace) -> int:
    from kaon.lab import LabError
    from kaon.lab.api_client import ApiError
    from kaon.lab.ip import IpError

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request is noise here
    try:
        if args.lab_command == "vm":
            return _run_vm(args)
        return {"up": _up, "down": _down, "status": _status, "seed": _seed}[args.lab_command](args)
    except (LabError, ApiError, IpError, FileNotFoundError, ValueError) as exc:
        print(f"kaon lab: {exc}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    lab = _lab(args, host_names_prefix=args.host_names_prefix)
    mechanism: Any = args.mechanism
    if args.ovs_hosts:
        mechanism = {f"{args.host_names_prefix}{i}": args.mechanism for i in range(1, args.hosts + 1)}
        mechanism.update({h: "openvswitch" for h in args.ovs_hosts})
    state = lab.up(args.hosts, agents=not args.no_agents, network_nodes=args.network_nodes, mechanism=mechanism)
    print(f"lab {lab.prefix}: {len(state['hosts'])} hosts; outside {state['outside']['namespace']} "
          f"({', '.join(state['outside']['addresses'])}); state {lab.store.path}")
    for host, rec in state["hosts"].items():
        agent = rec.get("agent")
        where = f"agent pid {agent['pid']}, log {agent['log']}" if agent else "no agent"
        if host in state.get("network_nodes", []):
            where += " (network node: DHCP, L3)"
        if rec.get("ovs"):
            where += f", Open vSwitch in {rec['ovs']['rundir']}"
        print(f"  {host}: namespace {rec['namespace']}, local_ip {rec['local_ip']}, {where}")
    if not args.no_agents and args.wait > 0:
        lab.wait_for_agents(args.wait)
        print("  agents alive")
        for line in lab.foreign_network_agents():
            print(f"  note: {line}")
    return 0


def _seed(args: argparse.Namespace) -> int:
    from kaon.lab.seeds import SeedOptions, run_seed

    options = SeedOptions(tunnel_type=args.tunnel_type, flat=args.flat)
    for line in run_seed(_lab(args), args.scenario, args.host, delete=args.delete, mechanism=args.mechanism,
                         options=options):
        print(line)
    return 0


def _down(args: argparse.Namespace) -> int:
    deleted = _lab(args).down(keep_logs=args.keep_logs)
    print(f"lab {args.prefix}: " + (f"deleted {len(deleted)} namespaces" if deleted else "nothing was up"))
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _lab(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    if not status["up"]:
        print(f"lab {args.prefix}: not up")
        return 0
    print(f"lab {args.prefix} ({status['state_file']})")
    for host, h in status["hosts"].items():
        agent = ("no agent" if h["agent_pid"] is None else
                 f"agent pid {h['agent_pid']} {'alive' if h['agent_alive'] else 'DEAD'}")
        print(f"  host {host}: {h['namespace']} {h['local_ip']} "
              f"{'' if h['present'] else '(namespace MISSING) '}{agent}")
    for name, vm in status["vms"].items():
        print(f"  vm {name}: {_vm_line(vm)}{'' if vm['present'] else ' (namespace MISSING)'}")
    if status["missing"]:
        print(f"  missing namespaces: {', '.join(status['missing'])}")
    return 0


def _vm_line(vm: dict[str, Any]) -> str:
    return (f"host {vm['host']} port {vm.get('port_id')} mac {vm.get('mac')} "
            f"ips {','.join(vm.get('ips') or []) or '-'} ns {vm['namespace']} tap {vm.get('tap')}")


def _run_vm(args: argparse.Namespace) -> int:
    lab = _lab(args)
    if args.vm_command == "create":
        vm = lab.create_vm(args.name, args.host, args.network, ip_address=args.ip, subnet=args.subnet,
                           security_groups=args.security_group, port=args.port, project_id=args.project_id,
                           dhcp=args.dhcp)
        print(json.dumps(vm, indent=2) if args.json else f"{args.name}: {_vm_line(vm)}")
        return 0
    if args.vm_command == "delete":
        lab.delete_vm(args.name)
        print(f"{args.name}: deleted")
        return 0
    if args.vm_command == "list":
        vms = lab.vms()
        if args.json:
            print(json.dumps(vms, indent=2))
        for vm in [] if args.json else vms:
            print(f"{vm['name']}: {_vm_line(vm)}")
        return 0
    cmd = args.cmd
    if not cmd:
        print("kaon lab vm exec: give a command: NAME -- CMD ...", file=sys.stderr)
        return 2
    return int(lab.exec(args.name, cmd).returncode)
