"""The l3 role of a host's agent: one ``qrouter-`` namespace per router.

A manager (kaon.agent.manager) with its own agent record ("L3 agent").
Per router in the intent's ``routers`` (kaon.model.intent.RouterIntent):

* the namespace ``<namespace_prefix>qrouter-<router id>``, lo up,
  ``net.ipv4.ip_forward=1`` inside it;
* per interface and for the gateway a veth: ``tap<port[:11]>`` in the host's
  namespace, up and unenslaved (the L2 part plugs it into its bridge and
  reports the port ACTIVE; with ``interface_driver = openvswitch`` the role
  puts it on br-int itself, kaon.agent.interface_driver), ``qr-``/``qg-<port[:11]>`` in the router's with
  the port's MAC, MTU and addresses (floating IPs as /32s on ``qg-``);
* ``net.ipv6.conf.all.forwarding=1`` too: IPv6 is routed, never NATed;
* the default routes (IPv4 and IPv6) via the external subnets' gateways,
  extra routes;
* radvd (kaon.dataplane.radvd) for the IPv6 subnets behind ``qr-`` devices,
  its file (kaon.agent.l3_plan.radvd_conf) under ``<state>/radvd/<router>/``,
  SIGHUP when it changes, stopped when none is left or the router goes (it
  outlives the agent, and a restarted agent adopts it by its pid file);
* NAT in one nftables table (kaon.agent.l3_plan), replaced atomically when
  its text changes or when reading it back (each sync: intent change or the
  periodic resync) shows a hand edit; a gratuitous ARP for each floating IP
  newly added;
* a metadata proxy process listening on 0.0.0.0:9697 inside the namespace,
  where the NAT table redirects 169.254.169.254:80, while the router has
  interfaces; its files in ``<state_path>/l3/<host>/metadata-proxy/<router>/``
  (kaon.agent.metadata_proxy_process: adopted after an agent restart,
  reloaded when the table changes, restarted when dead).

Ownership: a namespace is the agent's only if it recorded it, before
creating it, as a file in ``<state_path>/l3/<host>/``. When ``sweep`` is true
(after the first full sync) recorded namespaces no longer wanted are deleted,
which takes their veths, taps included, with them, after their proxy is
stopped (by pid; its socket would keep the namespace). Nothing unrecorded is
ever touched; inside its own namespaces the agent removes ``qr-``/``qg-``
devices no longer wanted.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from kaon.agent import l3_plan
from kaon.agent import metadata_proxy_process as proxies
from kaon.agent.config import AgentConfig
from kaon.agent.interface_driver import Plug
from kaon.agent.manager import Outcome, Step, Wanted
from kaon.agent.metadata_proxy import ROUTER_PORT, ProxyConfig, Table
from kaon.agent.ns_role import unplug_stale, write_if_changed
from kaon.dataplane import netns, nft, radvd, router_ns
from kaon.dataplane.linux_l2 import LinuxL2
from kaon.model import names
from kaon.model.intent import HostIntent, RouterIntent

LOG = logging.getLogger("kaon.agent.l3")

PROXIES = proxies.DIRECTORY  # a directory beside the router records (files), one subdirectory per router


class L3Role:
    name = "l3"
    agent_type = "L3 agent"
    binary = "neutron-l3-agent"
    topic = "l3_agent"

    def __init__(self, acfg: AgentConfig, state_dir: Path, proxy: ProxyConfig | None = None,
                 plug: Plug | None = None) -> None:
        self.acfg = acfg
        self.state_dir = state_dir
        self.host_l2 = LinuxL2(acfg.namespace)
        self.proxy = proxy or ProxyConfig()
        # interface_driver = openvswitch: taps go on br-int (kaon.agent.interface_driver); None: L2 enslaves them.
        self.plug = plug
        # Per namespace: the NAT text last applied and the kernel's listing of it right after.
        # Same text and same listing: no transaction. Empty after a restart, so the first
        # sync rewrites every table once.
        self._nat: dict[str, tuple[str, str | None]] = {}
        self._wanted: Wanted[RouterIntent] = Wanted()

    def ns_name(self, router_id: str) -> str:
        return names.router_namespace(router_id, self.acfg.namespace_prefix)

    def configurations(self) -> dict[str, Any]:
        routers = self._wanted.items
        return {"routers": len(routers), "agent_mode": "legacy",
                "interface_driver": "openvswitch" if self.plug else "linuxbridge",
                "ex_gw_ports": sum(1 for r in routers.values() if r.gateway),
                "interfaces": sum(len(r.interfaces) for r in routers.values()),
                "floating_ips": sum(len(r.floating_ips) for r in routers.values()),
                "namespace_prefix": self.acfg.namespace_prefix}

    # -- ownership -------------------------------------------------------
    def recorded(self) -> dict[str, str]:
        """router id -> namespace name, for every namespace this agent made."""
        if not self.state_dir.is_dir():
            return {}
        return {p.name: p.read_text().strip() for p in self.state_dir.iterdir() if p.is_file()}

    def proxy_dir(self, router_id: str) -> Path:
        return self.state_dir / PROXIES / router_id

    def _record(self, router_id: str, ns: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / router_id
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(ns + "\n")
            os.replace(tmp, path)

    # -- the manager contract ----------------------------------------------
    def update(self, intent: HostIntent) -> None:
        self._wanted.take(intent.routers)

    def mark_dirty(self) -> None:
        self._wanted.dirty = True

    def apply(self, step: Step) -> Outcome:
        return Outcome(self._wanted.reconcile("router", step, self.sync_router, self.sweep, LOG))

    # -- sync ------------------------------------------------------------
    def sync_router(self, router_id: str, router: RouterIntent) -> None:
        ns = self.ns_name(router_id)
        # Recorded before it exists: a crash between the two leaves a record
        # of nothing (harmless), never a namespace nobody owns.
        self._record(router_id, ns)
        if not netns.exists(ns):
            netns.create(ns)
            self._nat.pop(ns, None)
            router_ns.ip(ns, "link", "set", "lo", "up")
        # An administratively down router is plugged but does not forward.
        router_ns.write_sysctl(ns, "net.ipv4.ip_forward", "1" if router.admin_state_up else "0")
        router_ns.write_sysctl(ns, "net.ipv6.conf.all.forwarding", "1" if router.admin_state_up else "0")
        wanted = l3_plan.devices(router)
        for dev in wanted:
            # The tap end stays in the host namespace, up, for L2 to plug.
            self.host_l2.ensure_veth(dev.tap, dev.name, ns, mtu=dev.mtu, up=True)
        have = router_ns.links(ns)
        for dev in wanted:
            link = have.get(dev.name)
            if link is None:
                raise RuntimeError(f"{dev.name} is missing in {ns} though {dev.tap} exists")
            router_ns.set_link(ns, link, dev.mac, dev.mtu)
            if self.plug:
                self.plug.plug(dev.tap, dev.port_id, dev.mac, ns, dev.name)
            added = router_ns.sync_addresses(ns, link, set(dev.cidrs))
            if dev.name.startswith(names.ROUTER_GATEWAY):
                for cidr in sorted(added):
                    if cidr.endswith("/32"):
                        router_ns.garp(ns, dev.name, cidr[:-3])
        wanted_names = {d.name for d in wanted}
        for name in sorted(have):
            if name.startswith((names.ROUTER_INTERFACE, names.ROUTER_GATEWAY)) and name not in wanted_names:
                router_ns.ip(ns, "link", "del", name, check=False)  # its tap goes with it
        if self.plug:  # an OVS port outlives its device: the replaced ones' ports go
            self.plug.unplug_others(self._wanted_taps())
        router_ns.sync_routes(ns, l3_plan.routes(router))
        # NAT right after the addresses: a floating IP on qg- already answers pings,
        # and should be the VM's as soon as it does (radvd can take a moment to start).
        self._apply_nat(ns, l3_plan.nat_body(router))
        self._advertise(router_id, ns, l3_plan.radvd_conf(router))
        self._serve_metadata(router_id, ns, router)

    def _serve_metadata(self, router_id: str, ns: str, router: RouterIntent) -> None:
        if not router.interfaces:
            proxies.stop(self.proxy_dir(router_id))  # nothing behind the router asks
            return
        # REDIRECT rewrites the destination to the address of the qr- the
        # request came in on: only those addresses are valid destinations.
        local = frozenset(c.split("/")[0] for i in router.interfaces for c in i.cidrs)
        table = Table(self.proxy.shared_secret, router.metadata, local)
        proxies.ensure(self.proxy_dir(router_id), ns, ("0.0.0.0", ROUTER_PORT), self.proxy, table)

    def _ra_dir(self, router_id: str) -> Path:
        # A directory: recorded() reads only the files beside it.
        return self.state_dir / "radvd" / router_id

    def _advertise(self, router_id: str, ns: str, conf: str) -> None:
        """radvd for the router's IPv6 subnets: started, reloaded when its file changes, or stopped."""
        d = self._ra_dir(router_id)
        if not conf:
            self._stop_radvd(router_id)
            return
        d.mkdir(parents=True, exist_ok=True)
        path = d / "radvd.conf"
        changed = write_if_changed(path, conf)
        pid = radvd.running(d / "pid")
        if pid is None:
            pid = radvd.start(ns, radvd.command(path, d / "pid", d / "log"), d / "pid")
            LOG.info("radvd for router %s started in %s (pid %s)", router_id, ns, pid)
        elif changed:
            radvd.reload(pid)

    def _stop_radvd(self, router_id: str) -> None:
        d = self._ra_dir(router_id)
        if d.is_dir():
            radvd.stop(d / "pid")
            shutil.rmtree(d, ignore_errors=True)

    def _apply_nat(self, ns: str, body: str) -> None:
        # Read back on every sync of the router (its intent changed, or the periodic resync):
        # a table someone edited or deleted since kaon wrote it is written again.
        try:
            listing = nft.list_table(ns, "ip", l3_plan.NAT_TABLE)
        except nft.NftError:
            listing = None  # no table
        if self._nat.get(ns) == (body, listing):
            return
        if ns in self._nat and self._nat[ns][0] == body:
            LOG.warning("NAT table in %s differs from what kaon wrote: writing it again", ns)
        nft.replace_table(ns, "ip", l3_plan.NAT_TABLE, body)
        self._nat[ns] = (body, nft.list_table(ns, "ip", l3_plan.NAT_TABLE))

    def sweep(self, wanted: set[str]) -> bool:
        ok = True
        for router_id, ns in sorted(self.recorded().items()):
            if router_id in wanted:
                continue
            try:
                proxies.stop(self.proxy_dir(router_id))  # its socket would keep the namespace, veths included, alive
                self._stop_radvd(router_id)  # and so would radvd
                netns.delete(ns)  # its veths, and so their taps, go with it
                shutil.rmtree(self.proxy_dir(router_id), ignore_errors=True)
                (self.state_dir / router_id).unlink(missing_ok=True)
                self._nat.pop(ns, None)
                LOG.info("removed router namespace %s", ns)
            except Exception as exc:
                LOG.warning("cannot remove %s: %s", ns, exc)
                ok = False
        # A proxy whose router record is gone already (a crash between the two): still ours, by its directory.
        recorded = self.recorded()
        root = self.state_dir / PROXIES
        for d in sorted(root.iterdir()) if root.is_dir() else []:
            if d.name not in wanted and d.name not in recorded:
                proxies.stop(d)
                shutil.rmtree(d, ignore_errors=True)
        # The removed namespaces' taps (and replaced ones) are gone; their OVS ports are not.
        return unplug_stale(self.plug, self._wanted_taps(), "router ports", LOG) and ok

    def _wanted_taps(self) -> set[str]:
        return {d.tap for r in self._wanted.items.values() for d in l3_plan.devices(r)}

    def close(self) -> None:
        # The metadata proxies keep serving: they outlive the agent and are adopted at restart.
        self.host_l2.close()
