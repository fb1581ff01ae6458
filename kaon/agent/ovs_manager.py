"""The Open vSwitch L2 manager: br-int, br-tun, the physical bridges, tags and flows.

The second implementation of the manager contract (kaon.agent.manager),
name ``l2``, last in the order; the host's "Open vSwitch agent" record.
Every ``apply``:

1. reads OVSDB back (the IDL cache: no round trip): which of the intent's
   ports are plugged on the integration bridge — found by the
   ``external_ids:iface-id`` Nova's os-vif (or the lab) sets, else by the
   ``tap…`` name — and, on the first pass, the local VLANs a previous run
   recorded (``Port other_config:net_uuid``), so a restarted agent rewrites
   no tag and no flow;
2. plans (kaon.agent.ovs_plan, pure) from the intent adapted here
   (:func:`ovs_intent`): ports the firewall holds back, ports whose port is
   admin down, and ports not plugged yet are left out of the plan or given
   the dead VLAN;
3. applies: one OVSDB transaction (kaon.dataplane.ovsdb: bridges, patch and
   tunnel ports, tags; the bridges of ``bridge_mappings`` must exist and are
   never deleted) and one OpenFlow bundle per bridge of the delta of kaon's
   flows (kaon.dataplane.openflow, by cookie). Deletions — kaon's stale
   ports, bridges and flows — only when the step allows a sweep (after the
   first full sync);
4. reports ports ACTIVE when plugged on br-int with their network's local
   VLAN, DOWN otherwise;
5. with the firewall on, deletes from ovs-vswitchd's conntrack the entries
   of flows the new security group rules no longer allow
   (kaon.agent.ovs_fw_conntrack), as Neutron does.

A secured port fails closed: it gets its network's VLAN only once its filter
flows are in — the bundle first, then one transaction, when the plan adds no
bridge or port to OVSDB; else a first transaction keeps it on the dead VLAN.

A bridge's flows are read back (``ovs-ofctl dump-flows``) only when what it
holds is not known: on the first pass, at every periodic resync
(``mark_dirty``: drift), when ovs-vswitchd is a new process (its pidfile and
start time, as kaon.dataplane.ovs_daemons reads them: a restarted
ovs-vswitchd lost every flow, and the next pass puts them all back), and when
a sweeping pass follows a non-sweeping one. Otherwise a bridge whose wanted
flows moved is diffed against what the last sync left there. The watcher
(:meth:`OvsManager.watch`) makes that pass happen at once, and wakes the agent
when ports come and go on br-int.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from kaon.agent.manager import Outcome, PortStatus, Step
from kaon.agent.ovs_config import OvsConfig
from kaon.agent.ovs_fw_conntrack import ConntrackCleaner
from kaon.agent.ovs_fw_plan import FwPlacement, plan_firewall
from kaon.agent.ovs_plan import OvsHostIntent, OvsNetwork, OvsPeer, OvsPlan, OvsPort, plan
from kaon.dataplane import DataplaneError, ovs_conntrack
from kaon.dataplane.openflow import OpenFlow
from kaon.dataplane.ovs_daemons import OvsDaemons, VswitchdIdentity
from kaon.dataplane.ovs_model import Flow
from kaon.dataplane.ovsdb import ObservedPort, Ovsdb
from kaon.model.intent import HostIntent

LOG = logging.getLogger("kaon.agent.ovs")

AGENT_TYPE = "Open vSwitch agent"
BINARY = "neutron-openvswitch-agent"
IFACE_ID = "iface-id"  # os-vif's Interface external id: the Neutron port a device plugs
WATCH_INTERVAL = 0.2  # s between two looks at the IDL cache and ovs-vswitchd's pid (no I/O to OVSDB)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a pass builds and compares its flows.

    A 1,000-port host's pass makes ~150,000 small objects (flows, their keys, parsed dump lines),
    none in a reference cycle; each allocation burst set off collections that walked the agent's
    whole heap: reading back and diffing a 76,000-flow bridge took 0.9-1.4 s of CPU with them,
    0.5 s without (measured side by side). Collection resumes after the pass (cycles only need it)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def plugged(observed: Mapping[str, ObservedPort], bridge: str, intent: HostIntent) -> dict[str, str]:
    """Port id -> its OVS port name on ``bridge``, for the intent's ports that are plugged there."""
    by_iface: dict[str, str] = {}
    names: set[str] = set()
    for p in observed.values():
        if p.bridge != bridge or p.ofport is None or p.ofport <= 0:
            continue
        names.add(p.name)
        port_id = p.iface_external_ids.get(IFACE_ID)
        if port_id:
            by_iface[port_id] = p.name
    out = {}
    for port_id, port in intent.ports.items():
        name = by_iface.get(port_id) or (port.device if port.device in names else None)
        if name:
            out[port_id] = name
    return out


def ofports(observed: Mapping[str, ObservedPort]) -> dict[str, dict[str, int]]:
    """Bridge -> port name -> ofport, for the ports OVS opened (what flows name, as numbers)."""
    out: dict[str, dict[str, int]] = {}
    for p in observed.values():
        if p.ofport is not None and p.ofport > 0:
            out.setdefault(p.bridge, {})[p.name] = p.ofport
    return out


def ovs_intent(intent: HostIntent, on_bridge: Mapping[str, str], hold: Iterable[str] = ()) -> OvsHostIntent:
    """The planner's input from the typed host intent.

    Only plugged ports are planned (a tag or a flow naming a port that is not
    there would fail); a held or admin-down port is planned unbound (dead VLAN,
    its frames dropped), as Neutron's agent treats a port it must not wire.
    """
    held = set(hold)
    networks = tuple(OvsNetwork(net_id, n.network_type, n.segmentation_id, n.physical_network)
                     for net_id, n in sorted(intent.networks.items()))
    ports = tuple(
        OvsPort(port_id, p.network_id, p.mac, on_bridge[port_id], bound=p.admin_state_up and port_id not in held)
        for port_id, p in sorted(intent.ports.items()) if port_id in on_bridge)
    peers = tuple(
        OvsPeer(net_id, vtep, tuple((pp.mac, ip) for pp in pports for ip in (pp.ips or (None,)))) if pports
        else OvsPeer(net_id, vtep)
        for net_id, n in sorted(intent.networks.items()) for vtep, pports in sorted(n.peers.items()))
    return OvsHostIntent(networks, ports, peers)


class OvsManager:
    name = "l2"
    agent_type = AGENT_TYPE
    binary = BINARY
    topic = "N/A"

    def __init__(self, cfg: OvsConfig, ovsdb: Ovsdb, openflow: OpenFlow | None = None,
                 daemons: OvsDaemons | None = None, *, host: str = "", namespace: str | None = None,
                 firewall: bool = False) -> None:
        self.cfg = cfg
        # firewall_driver = openvswitch: conntrack flows on br-int (kaon.agent.ovs_fw_plan) for secured ports.
        self.firewall = firewall
        self.db = ovsdb
        self.of = openflow or OpenFlow(cfg.openflow_target)
        # ovs-vswitchd's pidfile is in the rundir of a unix ovsdb_connection; without one, no restart watch.
        self.daemons = daemons or (OvsDaemons(cfg.rundir) if cfg.rundir else None)
        self.host = host
        self.namespace = namespace
        self.intent = HostIntent(host)
        self._vlans: dict[str, int] | None = None  # network -> local VLAN; None until read back from OVSDB
        self.last_plan: OvsPlan | None = None
        self._vswitchd: VswitchdIdentity | None = self._identity()
        # bridge -> (the flows last synced there, with sweep or not, the ofports they were sent with), for
        # the ovs-vswitchd that holds them: a bridge whose wanted flows did not move is not dumped again
        # (one ovs-ofctl run each) until mark_dirty (periodic resync: drift) or a new ovs-vswitchd.
        self._synced: dict[str, tuple[frozenset[Flow], bool, dict[str, int]]] = {}
        self._synced_for: VswitchdIdentity | None = None
        # After a security group change, the conntrack entries of flows it no longer allows go (as Neutron).
        self.conntrack = ConntrackCleaner(functools.partial(ovs_conntrack.flush, self.daemons))

    # -- the manager contract ----------------------------------------------
    def update(self, intent: HostIntent) -> None:
        self.intent = intent

    def mark_dirty(self) -> None:
        """Read every bridge's flows back at the next ``apply`` (OVSDB is read back on every pass)."""
        self._synced = {}

    def apply(self, step: Step) -> Outcome:
        with gc_paused():
            return self._apply(step)

    def _apply(self, step: Step) -> Outcome:
        opts = self.cfg.options
        br_int = opts.integration_bridge
        intent = self.intent
        try:
            observed = self.db.ports()
            if self._vlans is None:
                self._vlans = self.db.local_vlans()
            on_bridge = plugged(observed, br_int, intent)
            wanted = plan(ovs_intent(intent, on_bridge, step.hold), opts, self._vlans)
            flows = dict(wanted.flows)
            secured: set[str] = set()
            if self.firewall:
                fw_flows, secured = self._firewall_flows(wanted, observed, on_bridge, step.hold)
                flows[br_int] = tuple({*flows.get(br_int, ()), *fw_flows})
            # Secured ports not yet on their network's VLAN (new, or coming back from dead): a port already
            # wired (e.g. across an agent restart) keeps its tag, and this pass's bundle re-adds any flow.
            fresh = {pid for pid in secured
                     if observed[on_bridge[pid]].tag != wanted.local_vlans[intent.ports[pid].network_id]}
            identity = self._identity()
            if identity is None or identity != self._synced_for:
                self._synced, self._synced_for = {}, identity  # a new ovs-vswitchd has none of our flows
            changes = 0
            wrote = False  # while no transaction wrote anything, ``observed`` is still what OVSDB holds
            if fresh and not self._structural(wanted, observed):
                # Fail closed: a secured port joins its network only once its filter flows are in. When
                # the transaction only moves tags (the usual bind: bridges, patch and tunnel ports already
                # there), the flows name nothing new: put them in first, then tag in one transaction.
                changes += self._sync_flows(flows, step.sweep, ofports(observed))
                wrote = self.db.apply(wanted.bridges, wanted.ports, wanted.tags, sweep=step.sweep,
                                      protected=wanted.protected)
            elif fresh:
                # Something new in OVSDB that the flows may name (a bridge, a patch or tunnel port): keep
                # the fresh ports on the dead VLAN for this transaction, install the flows, then tag them.
                first = plan(ovs_intent(intent, on_bridge, step.hold | fresh), opts, self._vlans)
                self.db.apply(first.bridges, first.ports, first.tags, sweep=False, protected=first.protected)
                changes += self._sync_flows(flows, step.sweep, ofports(self.db.ports()))
                self.db.apply(wanted.bridges, wanted.ports, wanted.tags, sweep=step.sweep,
                              protected=wanted.protected)
                wrote = True
            else:
                wrote = self.db.apply(wanted.bridges, wanted.ports, wanted.tags, sweep=step.sweep,
                                      protected=wanted.protected)
                changes += self._sync_flows(flows, step.sweep, ofports(self.db.ports() if wrote else observed))
        except (DataplaneError, ValueError) as exc:
            # OVSDB refused or is unreachable, a bridge of bridge_mappings is missing, a datapath failed,
            # ovs-ofctl failed: nothing is vouched for; the runtime retries with backoff and logs this.
            self._synced = {}
            return Outcome(False, errors=(("ovs", f"{type(exc).__name__}: {exc}"),))
        self._vlans = dict(wanted.local_vlans)
        self.last_plan = wanted
        for net_id, why in sorted(wanted.not_carried.items()):
            LOG.warning("network %s cannot be carried on this host: %s", net_id, why)
        errors = self.conntrack.after(intent.firewall, intent.ports, wanted.local_vlans) if self.firewall else ()
        return Outcome(True, ports=self._status(wanted, step.hold, None if wrote else observed), changes=changes,
                       errors=errors)

    def _sync_flows(self, flows: Mapping[str, tuple[Flow, ...]], sweep: bool,
                    ports: Mapping[str, Mapping[str, int]]) -> int:
        """One bundle per bridge whose wanted flows moved; read back only when what is there is unknown.

        A bridge last synced by this ovs-vswitchd is diffed against what that sync left (no dump-flows):
        except when this pass sweeps and that one did not (kaon's stale flows from before a restart are
        only known by reading back), and when a port of it has another ofport than then (re-plugged:
        the flows naming it hold the old number). ``ports``: bridge -> port name -> ofport, read from
        OVSDB just before (ovs-ofctl is given numbers, not names: kaon.dataplane.openflow).
        """
        changes = 0
        for bridge, listed in flows.items():
            bridge_flows = frozenset(listed)  # compared as a set: no order to keep
            now = dict(ports.get(bridge, {}))
            last = self._synced.pop(bridge, None)
            renumbered = last is not None and any(now.get(name, ofport) != ofport for name, ofport in last[2].items())
            if last is not None and not renumbered and last[:2] == (bridge_flows, sweep):
                self._synced[bridge] = (bridge_flows, sweep, {**last[2], **now})
                continue
            known = last[0] if last is not None and not renumbered and (last[1] or not sweep) else None
            delta = self.of.sync(bridge, bridge_flows, sweep=sweep, installed=known, ofports=now)
            self._synced[bridge] = (bridge_flows, sweep, now)
            changes += len(delta.added) + len(delta.deleted)
        return changes

    def _structural(self, wanted: OvsPlan, observed: Mapping[str, ObservedPort]) -> bool:
        """True when the plan adds a bridge or a port OVSDB does not hold yet (flows could name it)."""
        bridges = self.db.bridges()
        return (any(b.name not in bridges for b in wanted.bridges)
                or any(p.name not in observed or observed[p.name].bridge != p.bridge for p in wanted.ports))

    def _firewall_flows(self, wanted: OvsPlan, observed: Mapping[str, ObservedPort], on_bridge: Mapping[str, str],
                        hold: frozenset[str]) -> tuple[tuple[Flow, ...], set[str]]:
        """Security group flows for the plugged, wired ports; and the secured ports they filter.

        Ports left unbound (held, admin down, network not carried) get none: their dead VLAN and drop
        flow already stop them. A port without port security gets none either: it passes as is.
        """
        fw_intent = self.intent.firewall
        if fw_intent is None:
            return (), set()
        placement = {}
        for port_id, name in on_bridge.items():
            port = self.intent.ports[port_id]
            vlan = wanted.local_vlans.get(port.network_id)
            ofport = observed[name].ofport
            if vlan is None or ofport is None or not port.admin_state_up or port_id in hold:
                continue
            placement[port_id] = FwPlacement(name, ofport, vlan)
        fw = self.intent.to_json().get("firewall") or {}
        secured = {pid for pid, p in fw_intent.ports.items() if p.port_security and pid in placement}
        return plan_firewall(fw, placement), secured

    def _status(self, wanted: OvsPlan, hold: frozenset[str],
                observed: Mapping[str, ObservedPort] | None = None) -> PortStatus:
        """ACTIVE: on br-int with its network's local VLAN as tag (read back); DOWN: everything else.

        ``observed``: OVSDB as read at the start of a pass that wrote nothing (reading every port again
        through the IDL is ~0.2 s on a 1,000-port host)."""
        br_int = self.cfg.options.integration_bridge
        observed = self.db.ports() if observed is None else observed
        on_bridge = plugged(observed, br_int, self.intent)
        up: list[str] = []
        down: list[str] = []
        for port_id, port in sorted(self.intent.ports.items()):
            name = on_bridge.get(port_id)
            vlan = wanted.local_vlans.get(port.network_id)
            wired = (name is not None and vlan is not None and port.admin_state_up and port_id not in hold
                     and observed[name].tag == vlan)
            (up if wired else down).append(port_id)
        return PortStatus(tuple(up), tuple(down))

    def close(self) -> None:
        self.db.close()

    # -- events and the agent record -----------------------------------------
    def _identity(self) -> VswitchdIdentity | None:
        try:
            return self.daemons.vswitchd_identity() if self.daemons else None
        except (OSError, DataplaneError):
            return None

    def _ports_seen(self) -> frozenset[tuple[str, int | None]] | None:
        """(port, ofport) on br-int from the IDL cache; None when a read raced the IDL thread (look again)."""
        br_int = self.cfg.options.integration_bridge
        try:
            return frozenset((p.name, p.ofport) for p in self.db.ports().values() if p.bridge == br_int)
        except (RuntimeError, AttributeError):
            # The IDL thread changed the cache while we read it: a dict changed size, or a row the
            # worker's transaction just inserted has no column values yet ("Row instance has no
            # attribute 'type'", seen under tempest). Not worth a wake; the next tick reads it whole.
            return None

    def watch(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Wake the agent when ports come and go on br-int or ovs-vswitchd restarted; returns the stopper."""
        stop = threading.Event()

        def loop() -> None:
            ports = self._ports_seen()
            while not stop.wait(WATCH_INTERVAL):
                now = self._ports_seen()  # None: unknown this tick, compared at the next one
                identity = self._identity()
                if identity is not None and identity != self._vswitchd:
                    if self._vswitchd is not None:
                        LOG.warning("ovs-vswitchd restarted (pid %s, was %s): its flows are gone; re-programming",
                                    identity.pid, self._vswitchd.pid)
                    self._vswitchd = identity
                    wake()
                elif now is not None and ports is not None and now != ports:
                    wake()
                ports = now if now is not None else ports

        thread = threading.Thread(target=loop, name="kaon-ovs-watch", daemon=True)
        thread.start()

        def stopper() -> None:
            stop.set()
            thread.join(timeout=2)

        return stopper

    def health(self) -> dict[str, Any]:
        """For ``kaon doctor`` (kaon.agent.ovs_health): the OVSDB connection, and the VM devices whose MTU
        is not their network's."""
        from kaon.agent.ovs_health import mtu_mismatches, ovsdb_state

        return {"ovsdb": ovsdb_state(self.db), "mtu": mtu_mismatches(self.intent, self.namespace)}

    def configurations(self) -> dict[str, Any]:
        """Neutron's OVS agent report (ovs_neutron_agent's ``agent_state['configurations']``)."""
        opts = self.cfg.options
        out: dict[str, Any] = {
            "bridge_mappings": dict(opts.bridge_mappings),
            "tunnel_types": list(opts.tunnel_types),
            "tunneling_ip": opts.local_ip if opts.tunnel_types else None,
            "datapath_type": opts.datapath_type,
            "l2_population": opts.l2_population,
            "arp_responder_enabled": opts.arp_responder,
            "arp_responder": opts.arp_responder,
            "integration_bridge": opts.integration_bridge,
            "tunnel_bridge": opts.tunnel_bridge,
            "ovs_hybrid_plug": False,
            "vxlan_udp_port": opts.vxlan_udp_port,
            "devices": len(self.intent.ports),
            "in_distributed_mode": False,
            "enable_distributed_routing": False,
        }
        if self.namespace:
            out["namespace"] = self.namespace
        return out

