"""``kaon down``: stop the node ``kaon up`` started on a state directory, and remove what its agent made.

The node is found by ``<state>/node.json`` (pid and start time, so a reused
pid is never signalled). What its local agent made goes by ownership only,
never by a guess at names another tool might use:

* DHCP namespaces, their dnsmasq and metadata proxy: those recorded under
  ``<state>/dhcp/<host>/`` (namespace name, processes by their pid files);
* router namespaces and their metadata proxies: those recorded under
  ``<state>/l3/<host>/`` (proxies in its ``metadata-proxy/<router>/``);
* links carrying the agent's ownership marks (interface alias ``kaon:l2``:
  its ``brq`` bridges, ``vxlan-`` and VLAN devices; ``kaon:probe``: the
  doctor's VXLAN probe device ``kprobe-vx``) in the agent's namespace;
* the firewall's and NAT's nftables tables (``kaon-sg``, bridge, inet and netdev) in
  the agent's namespace;
* each router's radvd, by its pid file (``<state>/l3/<host>/radvd/<router>/``);
* on Open vSwitch, what ``kaon up`` recorded in ``<state>/ovs.json``: the private
  ovsdb-server and ovs-vswitchd by their pids (and with them their bridges),
  or on an OVS kaon did not start only the bridges, ports and flows kaon made
  (kaon.cli.up_ovs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from kaon.agent.config import OWNER_ALIAS  # the mark on every link the L2 agent makes
from kaon.cli.node_conf import NODE_FILE, node_alive, read_node, state_dir_of
from kaon.dataplane.vxlan_probe import OWNER_ALIAS as PROBE_ALIAS  # the VXLAN probe's device (kaon doctor)

FIREWALL_TABLE = "kaon-sg"  # kaon.agent.fw_plan.TABLE


def stop_node(state: Path, timeout: float = 20.0) -> int | None:
    """SIGTERM the recorded node (SIGKILL after ``timeout``); its pid, or None when none ran."""
    record = read_node(state)
    if not node_alive(state, record):
        return None
    assert record is not None
    pid = int(record["pid"])
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return pid
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not node_alive(state, record):
                return pid
            time.sleep(0.05)
    return pid


def _links(namespace: str | None) -> list[dict[str, object]]:
    cmd = ["ip", "-j", "-d", "link", "show"] if namespace is None else ["ip", "-n", namespace, "-j", "-d", "link",
                                                                         "show"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    return list(json.loads(out or "[]"))


def _ip(namespace: str | None, *args: str) -> None:
    cmd = ["ip", *args] if namespace is None else ["ip", "-n", namespace, *args]
    subprocess.run(cmd, capture_output=True, check=False)


def clean_agent(state_path: Path, host: str, namespace: str | None) -> list[str]:
    """Remove what the agent of ``host`` made (see the module docstring); what was removed."""
    from kaon.agent import metadata_proxy_process as proxies
    from kaon.dataplane import dnsmasq, netns, nft
    from kaon.dataplane import radvd as ra_daemon

    removed: list[str] = []
    dhcp = state_path / "dhcp" / host
    for net_dir in sorted(dhcp.iterdir()) if dhcp.is_dir() else []:
        record = net_dir / "namespace"
        if record.is_file():
            dnsmasq.stop(net_dir / "pid")
            if proxies.stop(net_dir / proxies.DIRECTORY):  # before the namespace: its socket pins it
                removed.append(f"metadata proxy of {net_dir.name}")
            ns = record.read_text().strip()
            if ns and netns.exists(ns):
                netns.delete(ns)
                removed.append(f"namespace {ns}")
        shutil.rmtree(net_dir, ignore_errors=True)
    l3 = state_path / "l3" / host
    routers_proxies = l3 / proxies.DIRECTORY
    for proxy_dir in sorted(routers_proxies.iterdir()) if routers_proxies.is_dir() else []:
        if proxies.stop(proxy_dir):
            removed.append(f"metadata proxy of {proxy_dir.name}")
    shutil.rmtree(routers_proxies, ignore_errors=True)
    for router in sorted(l3.iterdir()) if l3.is_dir() else []:
        if router.is_file():
            ra_daemon.stop(l3 / "radvd" / router.name / "pid")  # it would keep the namespace alive
            ns = router.read_text().strip()
            if ns and netns.exists(ns):
                netns.delete(ns)
                removed.append(f"namespace {ns}")
            router.unlink(missing_ok=True)
    shutil.rmtree(l3 / "radvd", ignore_errors=True)
    # Bridges last: a VXLAN or VLAN device goes before the bridge it is in.
    own = [str(link["ifname"]) for link in _links(namespace) if link.get("ifalias") in (OWNER_ALIAS, PROBE_ALIAS)]
    for name in sorted(own, key=lambda n: n.startswith("brq")):
        _ip(namespace, "link", "delete", name)
        removed.append(f"link {name}")
    for family in ("bridge", "inet", "netdev"):
        try:
            present = FIREWALL_TABLE in nft.run(namespace, f"list tables {family}")
            if present:
                nft.run(namespace, f"delete table {family} {FIREWALL_TABLE}")
                removed.append(f"nftables table {family} {FIREWALL_TABLE}")
        except Exception:  # noqa: BLE001 - no libnftables: the agent made no tables either
            pass
    return removed


def run_down(state_dir: str | None) -> int:
    from kaon.agent.config import agent_config
    from kaon.config import ConfigError, load_config

    state = state_dir_of(state_dir)
    conf = state / "kaon.conf"
    if not conf.exists():
        print(f"kaon down: no kaon node in {state} (no kaon.conf)")
        return 1
    record = read_node(state) or {}
    pid = stop_node(state)
    print(f"kaon node (pid {pid}) on {state}: stopped" if pid else f"no kaon node running on {state}")
    files = [f for f in record.get("config_files", [str(conf)]) if os.path.exists(f)]
    try:
        acfg = agent_config(load_config(files, {"DEFAULT": {"state_path": str(state)}}))
    except ConfigError as exc:
        print(f"kaon down: cannot tell what the local agent made: {exc}")
        return 1
    if os.geteuid() == 0 and (acfg.namespace is None or os.path.exists(f"/run/netns/{acfg.namespace}")):
        removed = clean_agent(state, acfg.host, acfg.namespace)
        where = f"namespace {acfg.namespace}" if acfg.namespace else "this machine"
        print(f"removed what the local agent made on {where}: " + (", ".join(removed) or "nothing"))
    if os.geteuid() == 0:
        # After the namespaces: their veths were ports of the OVS. By pid, so whether or not
        # the agent's namespace is still there.
        from kaon.cli.up_ovs import UpOvsError, clean_ovs

        try:
            stopped = clean_ovs(state)
        except UpOvsError as exc:
            print(f"kaon down: Open vSwitch not cleaned: {exc}")
            return 1
        if stopped:
            print("removed the local agent's Open vSwitch: " + ", ".join(stopped))
    (state / NODE_FILE).unlink(missing_ok=True)
    return 0
