"""The dhcp role of a host's agent: one ``qdhcp-`` namespace and dnsmasq per network.

A manager (kaon.agent.manager) with its own agent record ("DHCP agent").
Per network in the intent's ``dhcp`` (kaon.model.intent.DhcpNetwork):

* the namespace ``<namespace_prefix>qdhcp-<network id>``, lo up;
* a veth: ``tap<port[:11]>`` in the host's namespace, up and unenslaved (the
  L2 part plugs it into the network's bridge and reports the DHCP port
  ACTIVE; with ``interface_driver = openvswitch`` the role puts it on br-int
  itself, kaon.agent.interface_driver, and the OVS L2 manager tags it),
  ``ns-<port[:11]>`` inside with the port's MAC, MTU and addresses,
  plus 169.254.169.254/32 when the network has isolated metadata;
* for IPv6 on the port, no DAD and no RA taken on ``ns-`` (its addresses are
  IPAM's; dnsmasq cannot bind a tentative one);
* dnsmasq (kaon.dataplane.dnsmasq) with the files and command line of
  kaon.agent.dhcp_plan under ``<state_path>/dhcp/<host>/<network>/``: files
  rewritten only when their text changes, then SIGHUP (leases kept); a new
  command line restarts it; a dead one is started again; a live one found
  after an agent restart is adopted, not duplicated;
* with isolated metadata, a metadata proxy process listening on
  169.254.169.254:80 inside the namespace, its files under the network's
  directory in ``metadata-proxy/``: adopted, reloaded or restarted like
  dnsmasq (kaon.agent.metadata_proxy_process), stopped when isolated
  metadata is turned off.

Ownership: a network's directory holds a ``namespace`` file, written before
the namespace is made. When ``sweep`` is true (after the first full sync)
recorded networks no longer wanted lose their dnsmasq and metadata proxy
(by pid), their namespace (which takes the veth, tap included) and their directory. Nothing
unrecorded is touched.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from kaon.agent import dhcp_plan
from kaon.agent import metadata_proxy_process as proxies
from kaon.agent.config import AgentConfig
from kaon.agent.interface_driver import Plug
from kaon.agent.manager import Outcome, Step, Wanted
from kaon.agent.metadata_proxy import METADATA_IP, ProxyConfig, Table
from kaon.agent.ns_role import unplug_stale, write_if_changed
from kaon.dataplane import dnsmasq, netns, router_ns
from kaon.dataplane.linux_l2 import LinuxL2
from kaon.model import names
from kaon.model.intent import DhcpNetwork, HostIntent

LOG = logging.getLogger("kaon.agent.dhcp")

FILES = ("host", "addn_hosts", "opts", "leases", "pid", "log")


class DhcpRole:
    name = "dhcp"
    agent_type = "DHCP agent"
    binary = "neutron-dhcp-agent"
    topic = "dhcp_agent"

    def __init__(self, acfg: AgentConfig, state_dir: Path, proxy: ProxyConfig | None = None,
                 plug: Plug | None = None) -> None:
        self.acfg = acfg
        self.state_dir = state_dir
        self.host_l2 = LinuxL2(acfg.namespace)
        self.proxy = proxy or ProxyConfig()
        # interface_driver = openvswitch: taps go on br-int (kaon.agent.interface_driver); None: L2 enslaves them.
        self.plug = plug
        self._wanted: Wanted[DhcpNetwork] = Wanted()
        # dnsmasq drops to "nobody" and rereads its files as nobody on SIGHUP:
        # when nobody cannot reach the state directory (a private tmp dir in
        # tests), it keeps root rather than fail every reload.
        self.dnsmasq_user = None if _world_reachable(state_dir) else "root"
        self.pids: dict[str, int] = {}  # network -> dnsmasq pid (for tests and reports)

    def ns_name(self, network_id: str) -> str:
        return names.dhcp_namespace(network_id, self.acfg.namespace_prefix)

    def configurations(self) -> dict[str, Any]:
        nets = self._wanted.items
        lease = next((n.lease_duration for n in nets.values()), 86400)
        return {"dhcp_driver": dhcp_plan.DHCP_DRIVER, "networks": len(nets),
                "subnets": sum(len(n.subnets) for n in nets.values()),
                "ports": sum(len(n.hosts) + 1 for n in nets.values()),
                "dhcp_lease_duration": lease, "log_agent_heartbeats": False,
                "namespace_prefix": self.acfg.namespace_prefix}

    def health(self) -> dict[str, Any]:
        """For ``kaon doctor``: each served network's dnsmasq, and whether it still runs
        (read from its pid file and /proc now, not remembered: a dnsmasq killed by hand shows)."""
        out = {}
        for network_id in sorted(self._wanted.items):
            found = dnsmasq.running(self.net_dir(network_id) / "pid")
            out[network_id] = {"pid": found[0] if found else self.pids.get(network_id), "running": found is not None}
        return {"dnsmasq": out}

    # -- ownership -------------------------------------------------------
    def net_dir(self, network_id: str) -> Path:
        return self.state_dir / network_id

    def proxy_dir(self, network_id: str) -> Path:
        return self.net_dir(network_id) / proxies.DIRECTORY

    def recorded(self) -> dict[str, str]:
        """network id -> namespace name, for every network this agent set up."""
        if not self.state_dir.is_dir():
            return {}
        out = {}
        for d in self.state_dir.iterdir():
            record = d / "namespace"
            if record.is_file():
                out[d.name] = record.read_text().strip()
        return out

    # -- the manager contract ----------------------------------------------
    def update(self, intent: HostIntent) -> None:
        self._wanted.take(intent.dhcp)

    def mark_dirty(self) -> None:
        self._wanted.dirty = True

    def apply(self, step: Step) -> Outcome:
        return Outcome(self._wanted.reconcile("DHCP for network", step, self.sync_network, self.sweep, LOG))

    # -- sync ------------------------------------------------------------
    def sync_network(self, network_id: str, net: DhcpNetwork) -> None:
        ns = self.ns_name(network_id)
        d = self.net_dir(network_id)
        d.mkdir(parents=True, exist_ok=True)
        # Recorded before it exists: a crash in between leaves a record of
        # nothing (harmless), never a namespace nobody owns.
        write_if_changed(d / "namespace", ns + "\n")
        if not netns.exists(ns):
            netns.create(ns)
            router_ns.ip(ns, "link", "set", "lo", "up")
        self._plug(ns, net)
        self._serve(network_id, ns, net, d)
        if net.isolated_metadata:
            table = Table(self.proxy.shared_secret, net.metadata or {})
            proxies.ensure(self.proxy_dir(network_id), ns, (METADATA_IP, 80), self.proxy, table)
        elif proxies.stop(self.proxy_dir(network_id)):
            LOG.info("metadata proxy for network %s stopped: no isolated metadata", network_id)

    def _plug(self, ns: str, net: DhcpNetwork) -> None:
        port = net.port
        # The tap end stays in the host namespace, up, for L2 to plug.
        self.host_l2.ensure_veth(port.tap, port.device, ns, mtu=port.mtu, up=True)
        have = router_ns.links(ns)
        link = have.get(port.device)
        if link is None:
            raise RuntimeError(f"{port.device} is missing in {ns} though {port.tap} exists")
        # The port's IPv6 addresses are IPAM's, unique: no duplicate address detection, which
        # would leave them tentative (unbindable by dnsmasq) for a second; and the port takes
        # no address from the router's advertisements, only its own.
        if any(":" in c for c in port.cidrs):
            router_ns.write_sysctl(ns, f"net.ipv6.conf.{port.device}.accept_dad", "0")
            router_ns.write_sysctl(ns, f"net.ipv6.conf.{port.device}.accept_ra", "0")
        router_ns.set_link(ns, link, port.mac, port.mtu)
        if self.plug:
            self.plug.plug(port.tap, port.port_id, port.mac, ns, port.device)
        router_ns.sync_addresses(ns, link, dhcp_plan.ns_cidrs(net))
        for name in sorted(have):
            if name.startswith(names.DHCP_INTERFACE) and name != port.device:
                router_ns.ip(ns, "link", "del", name, check=False)  # a replaced DHCP port; its tap goes too

    def _serve(self, network_id: str, ns: str, net: DhcpNetwork, d: Path) -> None:
        files = {name: str(d / name) for name in FILES}
        changed = False
        for name, text in (("host", dhcp_plan.host_file(net)), ("addn_hosts", dhcp_plan.addn_hosts_file(net)),
                           ("opts", dhcp_plan.opts_file(net))):
            changed = write_if_changed(d / name, text) or changed
        if not (d / "leases").exists():
            write_if_changed(d / "leases", "")
        args = dhcp_plan.command(net, files, self.dnsmasq_user)
        pid_file = d / "pid"
        found = dnsmasq.running(pid_file)
        if found is not None and found[1] != args:
            LOG.info("dnsmasq for network %s: new command line, restarting", network_id)
            dnsmasq.stop(pid_file)
            found = None
        if found is None:
            self.pids[network_id] = dnsmasq.start(ns, args, pid_file)
            LOG.info("dnsmasq for network %s started in %s (pid %s)", network_id, ns, self.pids[network_id])
        else:
            self.pids[network_id] = found[0]
            if changed:
                dnsmasq.reload(found[0])

    def sweep(self, wanted: set[str]) -> bool:
        ok = True
        for network_id, ns in sorted(self.recorded().items()):
            if network_id in wanted:
                continue
            try:
                d = self.net_dir(network_id)
                dnsmasq.stop(d / "pid")
                proxies.stop(self.proxy_dir(network_id))  # its socket would keep the namespace, veth included, alive
                netns.delete(ns)  # its veth, and so the tap, go with it
                shutil.rmtree(d, ignore_errors=True)
                self.pids.pop(network_id, None)
                LOG.info("removed DHCP namespace %s", ns)
            except Exception as exc:
                LOG.warning("cannot remove %s: %s", ns, exc)
                ok = False
        # The removed namespaces' taps (and replaced ones) are gone; their OVS ports are not.
        return unplug_stale(self.plug, (n.port.tap for n in self._wanted.items.values()), "DHCP ports", LOG) and ok

    def close(self) -> None:
        # dnsmasq and the metadata proxies keep serving: they outlive the agent and are adopted at restart.
        self.host_l2.close()


def _world_reachable(path: Path) -> bool:
    """Whether every existing ancestor of ``path`` lets others through (o+x)."""
    for p in [path, *path.parents]:
        if p.exists() and not p.stat().st_mode & 0o001:
            return False
    return True
