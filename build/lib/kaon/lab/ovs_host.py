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
  of ``br-ex``, the bridge ``bridge_mappings`` names for the provider network.

What the OVS agent itself makes (br-int, br-tun, patch and tunnel ports,
flows) is not done here.  Kept apart from the lab's other files on purpose:
the lab command will call :func:`start_host_ovs` / :func:`stop_host_ovs`
when it runs hosts with ``--mechanism openvswitch``.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kaon.dataplane.ovs_daemons import OvsDaemonError, OvsDaemons
from kaon.lab import ip
from kaon.lab.topology import (
    PHYSICAL_NETWORK,
    PROVIDER_INTERFACE,
    UNDERLAY_CIDR,
    UNDERLAY_INTERFACE,
    local_ip,
)

__all__ = ["PHYSICAL_BRIDGE", "UNDERLAY_BRIDGE", "ovs_rundir", "start_host_ovs", "stop_host_ovs"]

UNDERLAY_BRIDGE = "br-phy"
PHYSICAL_BRIDGE = "br-ex"
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
          "--", "--may-exist", "add-br", PHYSICAL_BRIDGE, "--", "set", "bridge", PHYSICAL_BRIDGE,
          "datapath_type=netdev",
          "--", "--may-exist", "add-port", PHYSICAL_BRIDGE, PROVIDER_INTERFACE], ovs)
    # The VTEP address lives on br-phy: the userspace datapath routes tunnel packets out of an OVS bridge.
    if addr in ip.addresses(host_ns, UNDERLAY_INTERFACE):
        ip.ip("-n", host_ns, "addr", "del", addr, "dev", UNDERLAY_INTERFACE)
    ip.ensure_address(host_ns, UNDERLAY_BRIDGE, addr)
    for dev in (UNDERLAY_BRIDGE, PHYSICAL_BRIDGE, UNDERLAY_INTERFACE, PROVIDER_INTERFACE):
        ip.set_up(host_ns, dev)
    return {
        "rundir": str(rundir), "db": ovs.db_remote,
        "pids": {d: ovs.pid(d) for d in ("ovsdb-server", "ovs-vswitchd")},
        "bridge_mappings": {PHYSICAL_NETWORK: PHYSICAL_BRIDGE}, "local_ip": local_ip(index),
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
