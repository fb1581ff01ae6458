"""A lab host on Open vSwitch: its private OVS, and the host-side wiring an OVS host needs.

``kaon lab`` hosts are namespaces (kaon.lab.topology): ``eth0`` on the
underlay with the host's ``local_ip``, ``eth1`` on the provider network.  An
OVS host (userspace datapath, shared/reference/dataplane.md §6) differs in two
ways, which this module sets up and undoes, by exact name and pid:

* the private ovsdb-server + ovs-vswitchd run *inside* the host namespace
  (kaon.dataplane.ovs_daemons), their rundir short enough for unix sockets;
* userspace tunnels leave through an OVS bridge: ``eth0`` becomes a port of
  ``br-phy`` (the operator's underlay bridge, ``fail_mode = standalone``) and
  the ``local_ip`` moves from ``eth0`` to ``br-phy``; ``eth1`` becomes a port
  of ``br-ex`` and ``eth2`` of ``br-default``, the bridges ``bridge_mappings``
  names for the lab's two physical networks (``provider``, ``default``).

VMs are plugged as Nova's os-vif plugs them (:func:`plug_vm`): the tap is a
port of br-int with ``external_ids:iface-id`` = the Neutron port.  What the
OVS agent itself makes (br-int's flows and tags, br-tun, patch and tunnel
ports) is not done here; :func:`agent_ini` is the agent's
openvswitch_agent.ini.  ``kaon lab up --mechanism openvswitch`` calls these.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kaon.dataplane.ovs_daemons import OvsDaemonError, OvsDaemons
from kaon.lab import ip
from kaon.lab.agents import NETWORK_NODE_ROLES
from kaon.lab.topology import (
    PHYSICAL_NETWORK,
    PROVIDER_INTERFACE,
    SECOND_INTERFACE,
    SECOND_PHYSICAL_NETWORK,
    UNDERLAY_CIDR,
    UNDERLAY_INTERFACE,
    local_ip,
)

__all__ = ["PHYSICAL_BRIDGE", "UNDERLAY_BRIDGE", "agent_ini", "ovs_rundir", "plug_vm", "start_host_ovs",
           "stop_host_ovs", "unplug_vm"]

UNDERLAY_BRIDGE = "br-phy"
PHYSICAL_BRIDGE = "br-ex"
SECOND_BRIDGE = "br-default"
INTEGRATION_BRIDGE = "br-int"
# physical network -> (the operator's bridge, the host NIC in it)
PHYSICAL_BRIDGES = {PHYSICAL_NETWORK: (PHYSICAL_BRIDGE, PROVIDER_INTERFACE),
                    SECOND_PHYSICAL_NETWORK: (SECOND_BRIDGE, SECOND_INTERFACE)}
TUNNEL_TYPES = ("vxlan", "gre", "geneve")
SHORT_ROOT = Path("/run/kaon-ovs")  # when the lab directory is too deep for unix socket paths


def ovs_rundir(lab_dir: Path, host_ns: str) -> Path:
    """``<lab_dir>/ovs-<host ns>``, or under /run/kaon-ovs when that path is too long for sockets."""
    candidate = Path(lab_dir) / f"ovs-{host_ns}"
    try:
        OvsDaemons(candidate)
        return candidate
    except OvsDaemonError:  # too long
        return SHORT_ROOT / host_ns


def start_host_ovs(lab_dir: Path, host_ns: str, index: int) -> dict[str, Any]:
    """Start host ``index``'s OVS and move its underlay/provider NICs onto br-phy/br-ex (idempotent).

    Returns the record the lab keeps in its state: rundir, pids, and the agent options
    (``bridge_mappings``, ``local_ip``) an OVS agent on this host is configured with.
    """
    rundir = ovs_rundir(lab_dir, host_ns)
    ovs = OvsDaemons(rundir, netns=host_ns)
    ovs.start()
    ovs.wait_ready()
    vs = ["ovs-vsctl", f"--db={ovs.db_remote}"]
    addr = f"{local_ip(index)}/{ipaddress.ip_network(UNDERLAY_CIDR).prefixlen}"
    _run([*vs, "--may-exist", "add-br", UNDERLAY_BRIDGE, "--", "set", "bridge", UNDERLAY_BRIDGE,
          "datapath_type=netdev", "fail_mode=standalone",
          "--", "--may-exist", "add-port", UNDERLAY_BRIDGE, UNDERLAY_INTERFACE,
          *(arg for bridge, nic in PHYSICAL_BRIDGES.values() for arg in (
              "--", "--may-exist", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
              "--", "--may-exist", "add-port", bridge, nic))], ovs)
    # The VTEP address lives on br-phy: the userspace datapath routes tunnel packets out of an OVS bridge.
    if addr in ip.addresses(host_ns, UNDERLAY_INTERFACE):
        ip.ip("-n", host_ns, "addr", "del", addr, "dev", UNDERLAY_INTERFACE)
    ip.ensure_address(host_ns, UNDERLAY_BRIDGE, addr)
    for dev in (UNDERLAY_BRIDGE, UNDERLAY_INTERFACE, *(d for pair in PHYSICAL_BRIDGES.values() for d in pair)):
        ip.set_up(host_ns, dev)
    return {
        "rundir": str(rundir), "db": ovs.db_remote,
        "pids": {d: ovs.pid(d) for d in ("ovsdb-server", "ovs-vswitchd")},
        "bridge_mappings": {net: bridge for net, (bridge, _nic) in PHYSICAL_BRIDGES.items()},
        "local_ip": local_ip(index),
        "datapath_type": "netdev",
    }


def stop_host_ovs(record: dict[str, Any] | None, host_ns: str | None = None, index: int | None = None) -> None:
    """Stop the daemons by pid, give the underlay address back to eth0, remove the rundir."""
    if not record:
        return
    rundir = Path(record["rundir"])
    OvsDaemons(rundir, netns=host_ns).stop()
    if host_ns and index is not None and ip.netns_exists(host_ns) and ip.link_exists(host_ns, UNDERLAY_INTERFACE):
        # br-phy vanished with ovs-vswitchd; the host is back to what kaon.lab.topology made.
        ip.ensure_address(host_ns, UNDERLAY_INTERFACE,
                          f"{local_ip(index)}/{ipaddress.ip_network(UNDERLAY_CIDR).prefixlen}")
    shutil.rmtree(rundir, ignore_errors=True)


def _run(argv: list[str], ovs: OvsDaemons) -> None:
    res = subprocess.run(argv, env=ovs.env(), capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}…: {res.stderr.strip()}")


def agent_ini(host: str, namespace: str, record: dict[str, Any], lab_prefix: str = "",
              network_node: bool = False) -> str:
    """The OVS agent's ini for a lab host (Neutron's openvswitch_agent.ini names; kaon's [agent] namespace).

    A network node also runs the DHCP and L3 roles, their ports on br-int (``interface_driver = openvswitch``).
    """
    mappings = ",".join(f"{k}:{v}" for k, v in sorted(record["bridge_mappings"].items()))
    roles = ", ".join(NETWORK_NODE_ROLES) if network_node else ""
    return (
        "# Written by `kaon lab up --mechanism openvswitch`; rewritten on every `up`.\n"
        "[DEFAULT]\n"
        f"host = {host}\n"
        "interface_driver = openvswitch\n"
        "[agent]\n"
        f"namespace = {namespace}\n"
        f"roles = {roles}\n"
        f"namespace_prefix = {lab_prefix}\n"
        f"tunnel_types = {', '.join(TUNNEL_TYPES)}\n"
        "l2_population = true\n"
        # Answer ARP for remote ports from l2population's entries, as the Linux bridge agent's VXLAN
        # proxy does: in a mixed cloud that proxy drops ARP replies, so a request must not need to cross.
        "arp_responder = true\n"
        "[ovs]\n"
        f"integration_bridge = {INTEGRATION_BRIDGE}\n"
        f"bridge_mappings = {mappings}\n"
        f"local_ip = {record['local_ip']}\n"
        f"datapath_type = {record['datapath_type']}\n"
        f"ovsdb_connection = {record['db']}\n"
        "[securitygroup]\n"
        # Security groups as conntrack flows on br-int (Neutron's native OVS firewall).
        "firewall_driver = openvswitch\n"
    )


def _vsctl(record: dict[str, Any], *args: str) -> None:
    ovs = OvsDaemons(record["rundir"])
    _run(["ovs-vsctl", f"--db={ovs.db_remote}", *args], ovs)


def plug_vm(record: dict[str, Any], tap: str, port_id: str, mac: str, vm: str) -> None:
    """Put the VM's tap on br-int as os-vif does: ``iface-id``, ``attached-mac``, ``iface-status``, ``vm-uuid``."""
    _vsctl(record, "--may-exist", "add-br", INTEGRATION_BRIDGE, "--", "set", "bridge", INTEGRATION_BRIDGE,
           f"datapath_type={record['datapath_type']}",
           "--", "--may-exist", "add-port", INTEGRATION_BRIDGE, tap,
           "--", "set", "Interface", tap, f"external_ids:iface-id={port_id}", f"external_ids:attached-mac={mac}",
           "external_ids:iface-status=active", f"external_ids:vm-uuid={vm}")


def unplug_vm(record: dict[str, Any], tap: str) -> None:
    _vsctl(record, "--if-exists", "del-port", INTEGRATION_BRIDGE, tap)


def checksum_offload_off(ns: str, dev: str) -> None:
    """``ethtool -K dev tx off`` in ``ns``: the kernel then fills checksums in before the veth.

    A veth hands CHECKSUM_PARTIAL packets to its peer; OVS's userspace datapath
    reads them from an AF_PACKET socket and forwards them with the checksum
    still unfilled — kernel VXLAN from a Linux bridge host is dropped, VM TCP never
    connects (shared/reference/dataplane.md §6.6). Set on the veth end that
    sends *into* an OVS port: the lab's fabric ends towards an OVS host, and a
    VM's ``eth0``.
    """
    ip.exec_in(ns, ["ethtool", "-K", dev, "tx", "off"], check=True, capture_output=True)
