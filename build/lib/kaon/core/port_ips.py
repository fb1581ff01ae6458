"""A port's fixed IPs: what a create without ``fixed_ips`` gets, what each
requested entry resolves to, and how an update's list is matched against the
addresses the port already holds (Neutron's ``_get_changed_ips_for_port``).

Every function runs in the caller's write transaction; addresses are taken
through :mod:`kaon.core.l2.ipam`, whose unique constraint keeps two ports from
ever sharing one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import netaddr
from sqlalchemy import Connection, bindparam, delete, select

from kaon import errors
from kaon.api.context import Context
from kaon.core.l2 import ipam, port_extras
from kaon.core.l2.subnets import is_auto_address
from kaon.db.core_tables import ip_allocations, subnets

# Router interfaces take no EUI-64 address by default; router ports may
# hold a fixed address on an auto-address subnet.
ROUTER_PORT_OWNERS = ipam.ROUTER_PORT_OWNERS

AllocationOnAutoAddressSubnet = errors.define(
    "AllocationOnAutoAddressSubnet", errors.InvalidInput,
    "IPv6 address {ip} cannot be directly assigned to a port on subnet {subnet_id} as the subnet is "
    "configured for automatic addresses.")


@dataclass(frozen=True)
class PortRef:
    """What address allocation needs to know about a port."""

    id: str
    network_id: str
    mac: str
    device_owner: str


_NETWORK_SUBNETS = (select(subnets).where(subnets.c.network_id == bindparam("net_id"))
                    .order_by(subnets.c.created_at, subnets.c.id))


def network_subnets(conn: Connection, net_id: str) -> list[Any]:
    """The network's subnets, oldest first: the order default allocation tries them in."""
    return list(conn.execute(_NETWORK_SUBNETS, {"net_id": net_id}).all())


def allocate(ctx: Context, conn: Connection, port: PortRef, fixed_ips: Any,
             memo: dict[str, list[Any]] | None = None) -> None:
    """``memo``: network id -> its subnets, shared by the ports of one bulk create."""
    if memo is None:
        subs = network_subnets(conn, port.network_id)
    else:
        subs = memo.get(port.network_id)
        if subs is None:
            subs = memo[port.network_id] = network_subnets(conn, port.network_id)
    if fixed_ips is None:
        allocate_default(conn, port, subs)
        return
    for req in port_extras.fixed_ip_requests(fixed_ips):
        allocate_one(ctx, conn, port, subs, req)


def allocate_default(conn: Connection, port: PortRef, subs: list[Any]) -> None:
    """One IPv4 address (the first subnet with room), one from the stateful
    IPv6 subnets, and an EUI-64 address on every auto-address subnet (router
    ports excepted). A family with subnets but no room fails the request."""
    v4 = [s for s in subs if s.ip_version == 4]
    stateful6 = [s for s in subs if s.ip_version == 6 and not is_auto_address(s)]
    for group in (v4, stateful6):
        if group and not any(ipam.allocate_any(conn, port.id, s) is not None for s in group):
            raise errors.IpAddressGenerationFailure(net_id=port.network_id)
    if port.device_owner in ipam.ROUTER_INTERFACE_OWNERS_SNAT:
        return
    for s in subs:
        if s.ip_version == 6 and is_auto_address(s):
            ip = ipam.eui64(s.cidr, port.mac)
            if not ipam.insert_allocation(conn, port.id, s, ip):
                raise errors.IpAddressInUse(net_id=port.network_id, ip_address=ip)


def _subnet_for(ctx: Context, conn: Connection, port: PortRef, subs: list[Any], req: dict[str, str]) -> Any:
    ip = req.get("ip_address")
    if "subnet_id" in req:
        subnet = next((s for s in subs if s.id == req["subnet_id"]), None)
        if subnet is None:
            # Neutron looks the subnet up as the caller: unknown or invisible
            # is a 404, on another network a 400.
            other = conn.execute(select(subnets.c.network_id).where(subnets.c.id == req["subnet_id"])).first()
            if other is None or not (ctx.is_admin or _visible_subnet(ctx, conn, req["subnet_id"])):
                raise errors.SubnetNotFound(subnet_id=req["subnet_id"])
            raise errors.InvalidInput(error_message=f"Failed to create port on network {other.network_id}, "
                                                    f"because fixed_ips included invalid subnet {req['subnet_id']}")
        if ip is not None and not ipam.usable(ip, subnet.cidr, port.device_owner):
            raise ipam.InvalidIpForSubnet(ip_address=ip)
        return subnet
    assert ip is not None
    for s in subs:
        if ipam.usable(ip, s.cidr, port.device_owner):
            return s
    raise ipam.InvalidIpForNetwork(ip_address=ip)


def _visible_subnet(ctx: Context, conn: Connection, subnet_id: str) -> bool:
    from kaon.core.l2.networks import visible_clause
    from kaon.db.core_tables import networks

    nets = select(networks.c.id).where(visible_clause(ctx))
    return conn.execute(select(subnets.c.id).where(
        subnets.c.id == subnet_id, subnets.c.network_id.in_(nets))).first() is not None


def allocate_one(ctx: Context, conn: Connection, port: PortRef, subs: list[Any], req: dict[str, str]) -> None:
    subnet = _subnet_for(ctx, conn, port, subs, req)
    ip = req.get("ip_address")
    auto = subnet.ip_version == 6 and is_auto_address(subnet)
    if ip is not None and auto and port.device_owner not in ROUTER_PORT_OWNERS:
        raise AllocationOnAutoAddressSubnet(ip=ip, subnet_id=subnet.id)
    if ip is None and auto and port.device_owner not in ROUTER_PORT_OWNERS:
        ip = ipam.eui64(subnet.cidr, port.mac)
    if ip is None:
        if ipam.allocate_any(conn, port.id, subnet) is None:
            raise errors.IpAddressGenerationFailure(net_id=port.network_id)
        return
    if not ipam.insert_allocation(conn, port.id, subnet, ip):
        raise errors.IpAddressInUse(net_id=port.network_id, ip_address=ip)


def reallocate(ctx: Context, conn: Connection, port: PortRef, fixed_ips: Any) -> None:
    """Apply an update's ``fixed_ips``: entries naming an address the port
    holds keep it; a bare ``{subnet_id}`` keeps the port's address on that
    subnet (a new one if it has none); what the list no longer mentions is
    released, except EUI-64 addresses of auto-address subnets, which stay."""
    reqs = port_extras.fixed_ip_requests(fixed_ips if fixed_ips is not None else [])
    subs = network_subnets(conn, port.network_id)
    auto = {s.id for s in subs if s.ip_version == 6 and is_auto_address(s)}
    held = {ip: sid for sid, ip in conn.execute(
        select(ip_allocations.c.subnet_id, ip_allocations.c.ip_address).where(ip_allocations.c.port_id == port.id))}
    add: list[dict[str, str]] = []
    for req in reqs:
        if "ip_address" in req:
            ip = str(netaddr.IPAddress(req["ip_address"]))
            if ip in held and req.get("subnet_id", held[ip]) == held[ip]:
                held.pop(ip)
            else:
                add.append(req)
    by_subnet: dict[str, list[str]] = defaultdict(list)
    for ip, sid in held.items():
        by_subnet[sid].append(ip)
    for req in reqs:
        if "ip_address" in req:
            continue
        if by_subnet.get(req["subnet_id"]):
            by_subnet[req["subnet_id"]].pop()  # the address it has on that subnet will do
        else:
            add.append(req)
    for sid, ips in by_subnet.items():
        if sid in auto:
            continue
        for ip in ips:
            conn.execute(delete(ip_allocations).where(ip_allocations.c.port_id == port.id,
                                                      ip_allocations.c.ip_address == ip,
                                                      ip_allocations.c.subnet_id == sid))
    for req in add:
        allocate_one(ctx, conn, port, subs, req)


def readdress_eui64(conn: Connection, port: PortRef) -> None:
    """A new MAC means new EUI-64 addresses on the auto-address subnets."""
    auto = {s.id: s for s in network_subnets(conn, port.network_id) if s.ip_version == 6 and is_auto_address(s)}
    held = conn.execute(select(ip_allocations.c.subnet_id, ip_allocations.c.ip_address).where(
        ip_allocations.c.port_id == port.id, ip_allocations.c.subnet_id.in_(list(auto)))).all()
    for sid, ip in held:
        new = ipam.eui64(auto[sid].cidr, port.mac)
        if new == ip:
            continue
        conn.execute(delete(ip_allocations).where(ip_allocations.c.port_id == port.id,
                                                  ip_allocations.c.subnet_id == sid,
                                                  ip_allocations.c.ip_address == ip))
        if not ipam.insert_allocation(conn, port.id, auto[sid], new):
            raise errors.IpAddressInUse(net_id=port.network_id, ip_address=new)
