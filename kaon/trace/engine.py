"""Walk one packet through the compiled intents, hop by hop (pure: a world and a query in, a trace out).

The walk follows what the agents build from the intents: the source port's
anti-spoofing and egress chains (firewall section), its bridge and the
VXLAN/VLAN segment between hosts (L2 section, l2population entries), the
router on the subnet's gateway address, its interfaces, SNAT and floating
IPs (routers section), and the destination port's ingress chain. The first
hop that would drop the packet ends the trace, with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import netaddr

from kaon.model.intent import FirewallPort, RouterIntent, RouterInterface
from kaon.trace import rules
from kaon.trace.model import Hop, PortNotFound, Query, Trace, TraceError
from kaon.trace.world import PortInfo, World

TRUSTED = "network:"


class _Stop(Exception):
    """The packet went no further (the last hop says why)."""


def trace(world: World, query: Query) -> Trace:
    """The hops ``query``'s packet takes through ``world`` (:class:`TraceError` for a bad question)."""
    walk = _Walk(world, query)
    try:
        if query.from_port is not None:
            walk.from_port(query.from_port)
        else:
            walk.src = str(query.from_external)
            walk.hop("source", f"{walk.src} outside the cloud, {query.protocol}{walk.dport_text} to {query.to}")
            walk.inbound(query.to)
    except _Stop:
        pass
    walk.out.destination = walk.dst
    return walk.out


class _Walk:
    def __init__(self, world: World, query: Query) -> None:
        self.w = world
        self.q = query
        self.out = Trace(query)
        self.version = query.ip_version
        self.proto = rules.proto_number(query.protocol, self.version)
        self.src = ""
        self.dst = query.to
        self.origin: tuple[str, str] | None = None  # (host, network) of a sender on the destination's network

    @property
    def dport_text(self) -> str:
        return f"/{self.q.dport}" if self.q.dport is not None else ""

    def hop(self, step: str, text: str, **ids: str) -> None:
        self.out.hops.append(Hop(step, text, True, ids))

    def drop(self, step: str, text: str, **ids: str) -> NoReturn:
        self.out.hops.append(Hop(step, text, False, ids))
        raise _Stop

    def delivered(self, text: str, **ids: str) -> NoReturn:
        self.out.hops.append(Hop("delivered", text, True, ids))
        raise _Stop

    # -- the source port ---------------------------------------------------
    def from_port(self, ref: str) -> None:
        found = self.w.find_port(ref)
        if not found:
            raise PortNotFound(f"no port has the id or name {ref!r}")
        if len(found) > 1:
            raise TraceError(f"{len(found)} ports are named {ref!r}; give the id of one: "
                             + ", ".join(p.id for p in found))
        port = found[0]
        host = self.bound_host(port, "source")
        own = [ip for ip in port.ips if netaddr.IPAddress(ip).version == self.version]
        if self.q.source is None and not own:
            raise TraceError(f"port {self.w.port_label(port.id)} has no IPv{self.version} address")
        self.src = self.q.source or own[0]
        self.hop("source", f"port {self.w.port_label(port.id)} on host {host}, network "
                 f"{self.w.network_label(port.network_id)}, mac {port.mac}: {self.src} → {self.dst} "
                 f"{self.q.protocol}{self.dport_text}", port_id=port.id, host=host)
        if not self.w.intents[host].ports[port.id].admin_state_up:
            self.drop("source", "the port is administratively down (admin_state_up false): it forwards nothing")
        fw = self.firewall_port(host, port.id)
        self.anti_spoofing(fw, port)
        self.security_groups(fw, host, "egress", remote=self.dst)
        if self.on_link(port.network_id, self.dst):
            self.origin = (host, port.network_id)
            self.deliver_on(port.network_id, host, self.dst)
        self.via_gateway(port, host)

    def bound_host(self, port: PortInfo, role: str) -> str:
        """The host whose intent holds ``port``; the drop, with the binding's reason, if none does."""
        label = self.w.port_label(port.id)
        if port.host and port.id in self.intent_ports(port.host):
            return port.host
        if port.vif_type == "binding_failed":
            why = f": {port.binding_failure}" if port.binding_failure else ""
            self.drop(role, f"port {label} failed to bind on host {port.host or '(none)'}{why}", port_id=port.id)
        if not port.host:
            self.drop(role, f"port {label} is not bound to any host (binding:host_id is empty)", port_id=port.id)
        self.drop(role, f"port {label} is bound to host {port.host}, but that host's intent does not have it "
                  f"(binding:vif_type {port.vif_type}: not bound by a driver kaon's agents serve, or not compiled "
                  "yet)", port_id=port.id)

    def intent_ports(self, host: str) -> set[str]:
        intent = self.w.intents.get(host)
        return set(intent.ports) if intent is not None else set()

    def firewall_port(self, host: str, port_id: str) -> FirewallPort | None:
        fw = self.w.intents[host].firewall
        return fw.ports.get(port_id) if fw is not None else None

    def anti_spoofing(self, fw: FirewallPort | None, port: PortInfo) -> None:
        if fw is None:
            self.hop("port-security", "not filtered (Neutron does not filter network:* ports)")
            return
        if not fw.port_security:
            self.hop("port-security", "port security off: no anti-spoofing, no security groups")
            return
        src = netaddr.IPAddress(self.src)
        if self.src in (fw.ips or ()):
            self.hop("port-security", f"source {self.src} is the port's own address (mac {fw.mac})")
            return
        for pair in fw.allowed_address_pairs or ():
            if src in netaddr.IPNetwork(pair.ip_address):
                self.hop("port-security", f"source {self.src} allowed by address pair {pair.ip_address} "
                         f"(mac {pair.mac_address})")
                return
        pairs = ", ".join(p.ip_address for p in fw.allowed_address_pairs or ()) or "none"
        self.drop("port-security", f"anti-spoofing: source {self.src} is not the port's address "
                  f"({', '.join(fw.ips or ()) or 'none'}) nor an allowed address pair ({pairs})")

    def security_groups(self, fw: FirewallPort | None, host: str, direction: str, remote: str) -> None:
        if fw is None or not fw.port_security:
            return  # said by anti_spoofing (egress) or by ingress()
        groups = fw.security_groups or ()
        part = self.w.intents[host].firewall
        assert part is not None  # fw came from it
        hit = rules.first_match(part, groups, direction=direction, ip_version=self.version, proto=self.proto,
                                dport=self.q.dport, remote=remote)
        other = "to" if direction == "egress" else "from"
        if hit is None:
            self.drop(direction, f"no {direction} rule of security group(s) {', '.join(groups) or '(none)'} "
                      f"allows IPv{self.version} {self.q.protocol}{self.dport_text} {other} {remote}")
        gid, rule = hit
        ids = self.w.rule_ids.get((gid, rule), ())
        rule_id = ids[0] if ids else "?"
        state = " (stateful: the reply is let back)" if part.groups[gid].stateful else ""
        self.hop(direction, f"allowed by rule {rule_id} of group {gid}: {rules.describe(rule)}{state}",
                 rule_id=rule_id, security_group_id=gid)

    # -- L2 ----------------------------------------------------------------
    def on_link(self, network_id: str, address: str) -> bool:
        net = self.w.networks.get(network_id)
        ip = netaddr.IPAddress(address)
        return net is not None and any(ip in netaddr.IPNetwork(c) for c, _ in net.subnets)

    def deliver_on(self, network_id: str, from_host: str, address: str) -> None:
        """From ``from_host``'s bridge of ``network_id`` to the port holding ``address``, and into it."""
        target = next((p for p in self.ports_on(network_id) if address in p.ips), None)
        if target is None:
            self.drop("l2", f"no port on network {self.w.network_label(network_id)} has {address}: "
                      "nothing answers its ARP/neighbour solicitation")
        host = self.bound_host(target, "l2")
        self.segment(network_id, from_host, host, target)
        self.ingress(target, host)

    def ports_on(self, network_id: str) -> Iterator[PortInfo]:
        return (p for p in sorted(self.w.ports.values(), key=lambda p: p.id) if p.network_id == network_id)

    def segment(self, network_id: str, a: str, b: str, target: PortInfo) -> None:
        net = self.w.intents[a].networks.get(network_id)
        label = self.w.network_label(network_id)
        if net is None:
            self.drop("l2", f"host {a} has no bridge for network {label}")
        seg = f"{net.network_type}" + (f" {net.segmentation_id}" if net.segmentation_id is not None else "")
        if a == b:
            self.hop("l2", f"network {label} ({seg}), bridge {net.bridge} on host {a}", network_id=network_id)
            return
        if net.network_type == "vxlan":
            vtep = next((v for v, peers in net.peers.items() if any(p.mac == target.mac for p in peers)), None)
            if vtep is None:
                self.drop("l2", f"network {label} (vxlan {net.segmentation_id}): host {a} has no l2population "
                          f"entry for {target.mac} on host {b} (is {b}'s Linux bridge agent reporting its "
                          "tunneling_ip?)", network_id=network_id)
            self.hop("l2", f"network {label} (vxlan {net.segmentation_id}): host {a} → host {b} over VTEP "
                     f"{self.w.vteps.get(a, '?')} → {vtep} (udp/4789)", network_id=network_id)
        elif net.network_type in ("vlan", "flat"):
            self.hop("l2", f"network {label} ({seg}): host {a} → host {b} over physical network "
                     f"{net.physical_network}", network_id=network_id)
        else:
            self.drop("l2", f"network {label} is {net.network_type}: host {a} cannot reach host {b}")

    # -- the destination port ----------------------------------------------
    def ingress(self, target: PortInfo, host: str) -> None:
        label = self.w.port_label(target.id)
        if not self.w.intents[host].ports[target.id].admin_state_up:
            self.drop("ingress", f"port {label} is administratively down", port_id=target.id)
        if target.device_owner.startswith(TRUSTED):
            self.delivered(f"to port {label} ({target.device_owner}) on host {host}", port_id=target.id)
        fw = self.firewall_port(host, target.id)
        if fw is not None and not fw.port_security:
            self.hop("ingress", f"port {label}: port security off, everything is let in")
        else:
            self.security_groups(fw, host, "ingress", remote=self.src)
        self.reply_path(host, target)
        self.delivered(f"to port {label} on host {host} ({self.src} → {self.dst})", port_id=target.id)

    def reply_path(self, host: str, target: PortInfo) -> None:
        """The reply to a source address the tunnel does not know is lost on a Linux bridge host:
        l2population answers ARP on the VXLAN device from its entries only, so a reply to an address
        no port has (a VM with port security off sending from a foreign address) never finds its way
        back across hosts. The Open vSwitch agent's ARP responder sends a miss on to the flood
        table (as Neutron's br-tun does), so on an OVS host (``vif_type`` ovs) the reply gets back;
        so it does on a network whose VXLAN devices flood ARP (``flood_arp``: a pair no entry answers for)."""
        if self.origin is None or self.origin[0] == host or target.vif_type == "ovs":
            return
        src_host, net_id = self.origin
        net = self.w.intents[host].networks.get(net_id)
        if net is None or net.network_type != "vxlan" or net.flood_arp:
            return
        vtep = self.w.vteps.get(src_host, "?")
        if any(self.src in p.ips for p in net.peers.get(vtep, ())):
            return
        self.drop("reply", f"the packet arrives, but the reply to {self.src} is lost: host {host} has no "
                  f"l2population ARP entry for {self.src} behind VTEP {vtep} (no port on {src_host} has that "
                  "address), so its ARP request goes unanswered")

    # -- L3 ----------------------------------------------------------------
    def via_gateway(self, port: PortInfo, host: str) -> None:
        net = self.w.networks.get(port.network_id)
        mine = [netaddr.IPAddress(ip) for ip in port.ips if netaddr.IPAddress(ip).version == self.version]
        subnet = next(((c, g) for c, g in (net.subnets if net else ()) if any(ip in netaddr.IPNetwork(c) for ip in mine)),
                      None)
        gateway = subnet[1] if subnet is not None else None
        if subnet is None or gateway is None:
            self.drop("router", f"{self.dst} is off the network and the port's subnet has no gateway_ip")
        cidr = subnet[0]
        found = self.router_holding(gateway)
        if found is None:
            self.drop("router", f"no router holds {gateway}, the gateway of subnet {cidr}: "
                      "nothing routes off the network (add a router interface on it)")
        r_host, router_id, router, iface = found
        self.deliver_l2_to_router(port.network_id, host, r_host, iface)
        self.hop("router", f"router {self.w.router_label(router_id)} on host {r_host}: in through {iface.device} "
                 f"({gateway})", router_id=router_id, port_id=iface.port_id)
        if not router.admin_state_up:
            self.drop("router", "the router is administratively down: it does not forward", router_id=router_id)
        self.route(router_id, router, r_host, iface)

    def deliver_l2_to_router(self, network_id: str, a: str, b: str, iface: RouterInterface) -> None:
        target = self.w.ports.get(iface.port_id)
        if target is None:
            self.drop("l2", f"router interface port {iface.port_id} is gone")
        self.segment(network_id, a, b, target)

    def router_holding(self, address: str) -> tuple[str, str, RouterIntent, RouterInterface] | None:
        for host, intent in sorted(self.w.intents.items()):
            for rid, router in sorted(intent.routers.items()):
                for iface in router.interfaces:
                    if any(c.split("/")[0] == address for c in iface.cidrs):
                        return host, rid, router, iface
        return None

    def route(self, router_id: str, router: RouterIntent, host: str, came_in: RouterInterface) -> None:
        dst = netaddr.IPAddress(self.dst)
        for iface in router.interfaces:
            if any(dst in netaddr.IPNetwork(c) for c in iface.cidrs):
                net_id = self.w.ports[iface.port_id].network_id if iface.port_id in self.w.ports else "?"
                if iface is not came_in:
                    self.hop("router", f"routes {self.dst} out through {iface.device} onto network "
                             f"{self.w.network_label(net_id)}", router_id=router_id, port_id=iface.port_id)
                self.deliver_on(net_id, host, self.dst)
        for extra in router.routes:
            if dst in netaddr.IPNetwork(extra.destination):
                hop = netaddr.IPAddress(extra.nexthop)
                out = next((i for i in router.interfaces if any(hop in netaddr.IPNetwork(c) for c in i.cidrs)), None)
                if out is None:
                    self.drop("router", f"extra route {extra.destination} via {extra.nexthop}: no interface of the "
                              "router is on the next hop's subnet", router_id=router_id)
                net_id = self.w.ports[out.port_id].network_id if out.port_id in self.w.ports else "?"
                self.hop("router", f"extra route {extra.destination} via {extra.nexthop}, out through "
                         f"{out.device}", router_id=router_id, port_id=out.port_id)
                self.deliver_on(net_id, host, extra.nexthop)  # the next hop's port takes it from there
        gw = router.gateway
        if gw is None:
            self.drop("router", f"router {self.w.router_label(router_id)} has no route to {self.dst}: "
                      "no external gateway", router_id=router_id)
        fip = next((f.floating_ip for f in router.floating_ips if f.fixed_ip == self.src), None)
        own = next((c.split("/")[0] for c in gw.cidrs if netaddr.IPAddress(c.split("/")[0]).version == self.version),
                   None)
        if self.version == 6:
            if own is None:
                self.drop("router", f"router {self.w.router_label(router_id)}'s gateway has no IPv6 address: "
                          f"no IPv6 route to {self.dst}", router_id=router_id)
            self.hop("nat", f"no NAT for IPv6: the packet leaves with source {self.src}", router_id=router_id)
        elif fip is not None:
            self.hop("nat", f"floating IP: source {self.src} → {fip}", router_id=router_id)
            self.src = fip
        elif router.enable_snat and own is not None:
            self.hop("nat", f"SNAT: source {self.src} → {own} (the router's gateway address)", router_id=router_id)
            self.src = own
        else:
            self.hop("nat", f"no SNAT (enable_snat false): the packet leaves with source {self.src}",
                     router_id=router_id)
        ext = self.w.ports.get(gw.port_id)
        ext_net = ext.network_id if ext is not None else "?"
        self.hop("router", f"out through gateway {gw.device} onto external network {self.w.network_label(ext_net)}",
                 router_id=router_id, port_id=gw.port_id)
        if self.inbound_target(self.dst) is not None:
            self.inbound(self.dst)  # another floating IP or router of this cloud: back in
        if any(dst in netaddr.IPNetwork(c) for c in gw.cidrs):
            if any(self.dst in p.ips for p in self.ports_on(ext_net)):
                self.deliver_on(ext_net, host, self.dst)
            self.delivered(f"to {self.dst} on the external network (kaon's part ends at the router's gateway)")
        if self.version == 6:
            self.delivered("to the outside by the gateway's IPv6 default route (kaon's part ends at the router's "
                           "gateway)")
        if gw.gateway_ip is None:
            self.drop("router", "the external subnet has no gateway_ip: the router has no default route",
                      router_id=router_id)
        self.delivered(f"to the outside via next hop {gw.gateway_ip} (kaon's part ends at the router's gateway)")

    def inbound_target(self, address: str) -> tuple[str, str, RouterIntent] | None:
        """The router (host, id, intent) owning ``address`` as a floating IP or its gateway address."""
        for host, intent in sorted(self.w.intents.items()):
            for rid, router in sorted(intent.routers.items()):
                if router.gateway is not None and (
                        any(f.floating_ip == address for f in router.floating_ips)
                        or any(c.split("/")[0] == address for c in router.gateway.cidrs)):
                    return host, rid, router
        return None

    def inbound(self, address: str) -> None:
        """A packet arriving from the external network for ``address``."""
        found = self.inbound_target(address)
        if found is None:
            self.drop("router", f"no floating IP and no router gateway holds {address}: nothing in the cloud "
                      "answers for it")
        host, rid, router = found
        assert router.gateway is not None
        self.hop("router", f"router {self.w.router_label(rid)} on host {host}: in through gateway "
                 f"{router.gateway.device}", router_id=rid, port_id=router.gateway.port_id)
        if not router.admin_state_up:
            self.drop("router", "the router is administratively down: it does not forward", router_id=rid)
        fixed = next((f.fixed_ip for f in router.floating_ips if f.floating_ip == address), None)
        if fixed is None:
            self.delivered(f"to router {self.w.router_label(rid)}'s gateway address {address}", router_id=rid)
        self.hop("nat", f"floating IP: destination {address} → {fixed}", router_id=rid)
        self.dst = fixed
        for iface in router.interfaces:
            if any(netaddr.IPAddress(fixed) in netaddr.IPNetwork(c) for c in iface.cidrs):
                net_id = self.w.ports[iface.port_id].network_id
                self.hop("router", f"routes {fixed} out through {iface.device} onto network "
                         f"{self.w.network_label(net_id)}", router_id=rid, port_id=iface.port_id)
                self.deliver_on(net_id, host, fixed)
        self.drop("router", f"router {self.w.router_label(rid)} has no interface on {fixed}'s subnet", router_id=rid)
