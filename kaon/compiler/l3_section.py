"""The ``routers`` section of a host's intent: what its L3 agent builds.

For every router scheduled to the host's L3 agent (``router_l3_agent_bindings``)
a ``RouterIntent`` (kaon.model.intent): its ``qr-`` interfaces and ``qg-``
gateway (each a veth whose ``tap`` end L2 plugs), SNAT, the associated
floating IPs (none without a gateway: they would have nowhere to live), extra
routes, who may ask its metadata proxy, and the IPv6 subnets it advertises
(``advertise``: radvd, as Neutron's L3 agent; the DHCP agent sends no RA).
IPv6 is routed, never NATed: the gateway's ``gateway_ip6`` is the v6
default route's next hop.

``metadata`` is what the router's metadata proxy (kaon.agent.metadata_proxy)
needs to say who asks: per IPv4 address on the subnets behind the router's
interfaces, the port's device_id (the instance) and project. Only ports that
belong to something and are not the network's own (``network:*``) are in it.

A router that is administratively down is still built, interfaces plugged
(its ports go ACTIVE, as Neutron's do, and clients such as tempest wait for
that), but it does not forward: the agent turns ``ip_forward`` off in its
namespace.

The ports themselves (their taps, bridges, segments) are in the L2 part of
the same intent: kaon.core.l3.l3_binding binds them on this host. The rows are
read by kaon.core.agents.snapshot (``L3Data``); this is pure.
"""

from __future__ import annotations

import dataclasses

import netaddr

from kaon.compiler.snapshot import L3Data, RouterPort, Snapshot
from kaon.model import names
from kaon.model.intent import (
    FloatingIp,
    HostIntent,
    MetadataSource,
    RaPrefix,
    Route,
    RouterGateway,
    RouterIntent,
    RouterInterface,
)


class RoutersSection:
    name = "routers"

    def hosts(self, snap: Snapshot) -> set[str]:
        return set(snap.routers.l3_hosts)

    def project(self, snap: Snapshot, host: str, intent: HostIntent) -> HostIntent:
        part = project_routers(snap.routers, host)
        return dataclasses.replace(intent, routers=part) if part else intent


def project_routers(data: L3Data, host: str) -> dict[str, RouterIntent]:
    """The routers of ``host`` (pure)."""
    out: dict[str, RouterIntent] = {}
    for router in data.routers:
        if router.host != host or router.id in out:
            continue
        rports = data.ports.get(router.id, ())
        gw = next((p for p in rports if p.gateway), None)
        out[router.id] = RouterIntent(
            admin_state_up=router.admin_state_up,
            interfaces=tuple(_interface(p) for p in rports if not p.gateway),
            gateway=_gateway(gw) if gw is not None else None,
            enable_snat=router.enable_snat,
            # Without a gateway a floating IP has nowhere to live.
            floating_ips=tuple(FloatingIp(f, x) for f, x in data.fips.get(router.id, ())) if gw is not None else (),
            routes=tuple(Route(d, n) for d, n in data.routes.get(router.id, ())),
            metadata={ip: MetadataSource(i, p) for ip, i, p in data.sources.get(router.id, ())},
            advertise=tuple(ra for p in rports if not p.gateway for ra in _advertised(p)),
        )
    return out


def _cidrs(port: RouterPort) -> tuple[str, ...]:
    return tuple(f"{a.ip}/{netaddr.IPNetwork(a.cidr).prefixlen}" for a in port.addresses)


def _interface(port: RouterPort) -> RouterInterface:
    return RouterInterface(port.id, names.router_interface(port.id), names.tap(port.id), port.mac,
                           _cidrs(port), port.mtu)


def _advertised(port: RouterPort) -> list[RaPrefix]:
    """The IPv6 subnets on an interface, for radvd. As Neutron's L3 agent, every one is
    advertised (the router is the link's default router); its prefix only with an
    ipv6_ra_mode (kaon.agent.l3_plan.radvd_conf)."""
    out: dict[str, RaPrefix] = {}
    for a in port.addresses:
        cidr = str(netaddr.IPNetwork(a.cidr).cidr)
        if netaddr.IPNetwork(cidr).version == 6 and cidr not in out:
            out[cidr] = RaPrefix(names.router_interface(port.id), cidr, port.mtu, a.ipv6_ra_mode, a.dns_nameservers)
    return list(out.values())


def _gateway(port: RouterPort) -> RouterGateway:
    # The default routes go via the gateway of the first subnet of each family that has one.
    def first(version: int) -> str | None:
        return next((a.gateway_ip for a in port.addresses
                     if netaddr.IPAddress(a.ip).version == version and a.gateway_ip), None)

    return RouterGateway(port.id, names.router_gateway(port.id), names.tap(port.id), port.mac, _cidrs(port),
                         port.mtu, first(4), first(6))
