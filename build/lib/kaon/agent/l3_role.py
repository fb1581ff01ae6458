"""The l3 role of a host's agent: one ``qrouter-`` namespace per router.

Per router in ``intent["routers"]`` (kaon.compiler.l3_section):

* the namespace ``<namespace_prefix>qrouter-<router id>``, lo up,
  ``net.ipv4.ip_forward=1`` inside it;
* per interface and for the gateway a veth: ``tap<port[:11]>`` in the host's
  namespace, up and unenslaved (the L2 part plugs it into its bridge and
  reports the port ACTIVE), ``qr-``/``qg-<port[:11]>`` in the router's with
  the port's MAC, MTU and addresses (floating IPs as /32s on ``qg-``);
* the default route via the external subnet's gateway, extra routes;
* NAT in one nftables table (kaon.agent.l3_plan), replaced atomically when
  its text changes; a gratuitous ARP for each floating IP newly added;
* the metadata proxy's listener on 0.0.0.0:9697 inside the namespace, where
  the NAT table redirects 169.254.169.254:80 (kaon.agent.metadata_proxy).

Ownership: a namespace is the agent's only if it recorded it, before
creating it, as a file in ``<state_path>/l3/<host>/``. When ``sweep`` is true
(after the first full sync) recorded namespaces no longer wanted are deleted,
which takes their veths, taps included, with them. Nothing unrecorded is
ever touched; inside its own namespaces the agent removes ``qr-``/``qg-``
devices no longer wanted.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from kaon.agent import l3_plan
from kaon.agent.config import AgentConfig
from kaon.agent.metadata_proxy import ROUTER_PORT, MetadataProxy, ProxyConfig, proxy_config
from kaon.agent.roles import sync_each
from kaon.config import Config
from kaon.dataplane import netns, nft, router_ns
from kaon.dataplane.linux_l2 import LinuxL2

LOG = logging.getLogger("kaon.agent.l3")


class L3Role:
    name = "l3"
    agent_type = "L3 agent"
    binary = "neutron-l3-agent"
    topic = "l3_agent"

    def __init__(self, acfg: AgentConfig, state_dir: Path, metadata: MetadataProxy | None = None) -> None:
        self.acfg = acfg
        self.state_dir = state_dir
        self.host_l2 = LinuxL2(acfg.namespace)
        self.metadata = metadata or MetadataProxy(ProxyConfig())
        # Last NAT text applied per namespace: unchanged text, no transaction.
        # Empty after a restart, so the first sync rewrites every table once.
        self._nat: dict[str, str] = {}
        self._routers: dict[str, Any] = {}

    def ns_name(self, router_id: str) -> str:
        return f"{self.acfg.namespace_prefix}qrouter-{router_id}"

    def configurations(self) -> dict[str, Any]:
        routers = self._routers
        return {"routers": len(routers), "agent_mode": "legacy", "interface_driver": "linuxbridge",
                "ex_gw_ports": sum(1 for r in routers.values() if r.get("gateway")),
                "interfaces": sum(len(r["interfaces"]) for r in routers.values()),
                "floating_ips": sum(len(r.get("floating_ips", [])) for r in routers.values()),
                "namespace_prefix": self.acfg.namespace_prefix}

    # -- ownership -------------------------------------------------------
    def recorded(self) -> dict[str, str]:
        """router id -> namespace name, for every namespace this agent made."""
        if not self.state_dir.is_dir():
            return {}
        return {p.name: p.read_text().strip() for p in self.state_dir.iterdir() if p.is_file()}

    def _record(self, router_id: str, ns: str) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / router_id
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(ns + "\n")
            os.replace(tmp, path)

    # -- sync ------------------------------------------------------------
    def sync(self, intent: dict[str, Any], sweep: bool) -> bool:
        wanted: dict[str, Any] = intent.get("routers") or {}
        self._routers = wanted
        return sync_each("router", wanted, self.sync_router, self.sweep if sweep else None, LOG)

    def sync_router(self, router_id: str, router: dict[str, Any]) -> None:
        ns = self.ns_name(router_id)
        # Recorded before it exists: a crash between the two leaves a record
        # of nothing (harmless), never a namespace nobody owns.
        self._record(router_id, ns)
        if not netns.exists(ns):
            netns.create(ns)
            self._nat.pop(ns, None)
            router_ns.ip(ns, "link", "set", "lo", "up")
        # An administratively down router is plugged but does not forward.
        router_ns.write_sysctl(ns, "net.ipv4.ip_forward", "1" if router.get("admin_state_up", True) else "0")
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
            added = router_ns.sync_addresses(ns, link, set(dev.cidrs))
            if dev.name.startswith("qg-"):
                for cidr in sorted(added):
                    if cidr.endswith("/32"):
                        router_ns.garp(ns, dev.name, cidr[:-3])
        names = {d.name for d in wanted}
        for name in sorted(have):
            if name[:3] in ("qr-", "qg-") and name not in names:
                router_ns.ip(ns, "link", "del", name, check=False)  # its tap goes with it
        router_ns.sync_routes(ns, l3_plan.routes(router))
        self._apply_nat(ns, l3_plan.nat_body(router))
        self._serve_metadata(ns, router)

    def _serve_metadata(self, ns: str, router: dict[str, Any]) -> None:
        if not router["interfaces"]:
            self.metadata.remove(ns)  # nothing behind the router asks
            return
        # REDIRECT rewrites the destination to the address of the qr- the
        # request came in on: only those addresses are valid destinations.
        local = frozenset(c.split("/")[0] for i in router["interfaces"] for c in i["cidrs"])
        self.metadata.ensure(ns, ("0.0.0.0", ROUTER_PORT), router.get("metadata") or {}, local)

    def _apply_nat(self, ns: str, body: str) -> None:
        if self._nat.get(ns) == body:
            return
        nft.replace_table(ns, "ip", l3_plan.NAT_TABLE, body)
        self._nat[ns] = body

    def sweep(self, wanted: set[str]) -> bool:
        ok = True
        for router_id, ns in sorted(self.recorded().items()):
            if router_id in wanted:
                continue
            try:
                self.metadata.remove(ns)  # its socket would keep the namespace, veths included, alive
                netns.delete(ns)  # its veths, and so their taps, go with it
                (self.state_dir / router_id).unlink(missing_ok=True)
                self._nat.pop(ns, None)
                LOG.info("removed router namespace %s", ns)
            except Exception as exc:
                LOG.warning("cannot remove %s: %s", ns, exc)
                ok = False
        return ok

    def close(self) -> None:
        self.metadata.close()
        self.host_l2.close()


def build(cfg: Config, acfg: AgentConfig) -> L3Role:
    state_path = acfg.state_path or "/var/lib/kaon"
    return L3Role(acfg, Path(state_path) / "l3" / acfg.host, MetadataProxy(proxy_config(cfg)))
