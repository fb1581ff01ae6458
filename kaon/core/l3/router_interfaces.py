"""Router interfaces: ``PUT /routers/{id}/add_router_interface`` and
``remove_router_interface``, by subnet or by port.

By subnet, the router gets a new port (project = the router's) holding
the subnet's gateway_ip; an IPv6 subnet joins the router's existing IPv6
port on the same network instead, as in Neutron. By port, an existing
port with fixed IPs and no device is adopted: its device_owner and
device_id become the router's.

The reply is Neutron's interface info: ``{id, port_id, subnet_id,
subnet_ids, network_id, tenant_id, project_id}``.
"""

from __future__ import annotations

from typing import Any

import netaddr
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from kaon import errors
from kaon.core import stdattrs
from kaon.core.context import Context
from kaon.core.l2.ports import Ports
from kaon.core.l2.subnets import Subnets
from kaon.core.l3.routers import INTF_OWNER, Routers, bad_request, port_ips, service_port
from kaon.db.core_tables import ip_allocations, network_rbacs, ports, subnets
from kaon.db.fast_insert import FastInsert
from kaon.db.l3_tables import floatingips, router_ports, router_routes
from kaon.model import validators as v

RouterInterfaceNotFound = errors.define(
    "RouterInterfaceNotFound", errors.NotFound, "Router {router_id} does not have an interface with id {port_id}")
RouterInterfaceNotFoundForSubnet = errors.define(
    "RouterInterfaceNotFoundForSubnet", errors.NotFound, "Router {router_id} has no interface on subnet {subnet_id}")
RouterInterfaceInUseByFloatingIP = errors.define(
    "RouterInterfaceInUseByFloatingIP", errors.InUse,
    "Router interface for subnet {subnet_id} on router {router_id} cannot be deleted, as it is required by "
    "one or more floating IPs.")
RouterInterfaceInUseByRoute = errors.define(
    "RouterInterfaceInUseByRoute", errors.InUse,
    "Router interface for subnet {subnet_id} on router {router_id} cannot be deleted, as it is required by "
    "one or more routes.")
PortInUse = errors.define(
    "PortInUse", errors.InUse,
    "Unable to complete operation on port {port_id} for network {net_id}. Port already has an attached "
    "device {device_id}.")
SubnetMismatchForPort = errors.define(
    "SubnetMismatchForPort", errors.BadRequest,
    "Subnet on port {port_id} does not match the requested subnet {subnet_id}.")


class RouterInterfaces:
    def __init__(self, routers_service: Routers, subnets_service: Subnets, ports_service: Ports) -> None:
        self.routers = routers_service
        self.subnets = subnets_service
        self.ports = ports_service

    # -- add -----------------------------------------------------------
    def add(self, ctx: Context, conn: Connection, router_id: str, body: Any) -> dict[str, Any]:
        router = self.routers.writable_row(ctx, conn, router_id, "add_router_interface")
        if _by_port(body, removal=False):
            port, subs = self._add_by_port(ctx, conn, router, body["port_id"])
        else:
            port, subs = self._add_by_subnet(ctx, conn, router, body["subnet_id"])
        self.routers.touch(conn, router)
        return _info(router.id, port, subs[-1].id, [s.id for s in subs])

    def _add_by_subnet(self, ctx: Context, conn: Connection, router: Any, subnet_id: str) -> tuple[Any, list[Any]]:
        subnet = self.subnets.fetch_row(ctx, conn, subnet_id)
        if not subnet.gateway_ip:
            raise bad_request("Subnet for router interface must have a gateway IP")
        if subnet.project_id != ctx.project_id and not ctx.is_admin and not _shared_with(conn, subnet, ctx):
            raise bad_request(f"Cannot add interface to router because subnet {subnet.id} is not owned by "
                              "project making the request")
        if subnet.ip_version == 6 and subnet.ipv6_ra_mode is None and subnet.ipv6_address_mode is not None:
            raise bad_request(f"IPv6 subnet {subnet.id} configured to receive RAs from an external router "
                              "cannot be added to Neutron Router.")
        self.routers.check_subnets(conn, router.id, [subnet])
        fixed = {"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}
        if subnet.ip_version == 6:
            existing = self._ipv6_port(conn, router.id, subnet.network_id)
            if existing is not None:
                # One router port per network carries all its IPv6 prefixes.
                wanted = [{"subnet_id": s, "ip_address": ip} for s, ip in port_ips(conn, existing.id)]
                self.ports.update(Context.admin(), conn, existing.id, {"fixed_ips": [*wanted, fixed]})
                return self._port(conn, existing.id), [subnet]
        port_id = service_port(self.ports, conn, router.project_id, {
            "network_id": subnet.network_id, "fixed_ips": [fixed], "device_id": router.id,
            "device_owner": INTF_OWNER, "admin_state_up": True})
        _INSERT_ROUTER_PORT.run(conn, {"port_id": port_id, "router_id": router.id, "port_type": INTF_OWNER})
        return self._port(conn, port_id), [subnet]

    def _add_by_port(self, ctx: Context, conn: Connection, router: Any, port_id: str) -> tuple[Any, list[Any]]:
        port = self.ports.writable_row(ctx, conn, port_id, "update")
        if port.device_id:
            raise PortInUse(port_id=port.id, net_id=port.network_id, device_id=port.device_id)
        ips = port_ips(conn, port.id)
        if not ips:
            raise bad_request("Router port must have at least one fixed IP")
        if any(netaddr.IPAddress(ip).version == 6 for _, ip in ips):
            other = self._ipv6_port(conn, router.id, port.network_id)
            if other is not None:
                raise bad_request(f"Cannot have multiple router ports with the same network id if both contain "
                                  f"IPv6 subnets. Existing port {other.id} has IPv6 subnet(s) and network id "
                                  f"{port.network_id}")
        subs = [conn.execute(select(subnets).where(subnets.c.id == sid)).one() for sid, _ in ips]
        self.routers.check_subnets(conn, router.id, subs)
        if len([s for s in subs if s.ip_version == 4]) > 1:
            raise bad_request("Cannot have multiple IPv4 subnets on router port")
        if not ctx.is_admin:
            _check_in_pools(ctx, port.id, subs, ips)
        conn.execute(update(ports).where(ports.c.id == port.id).values(stdattrs.bump(
            {"device_id": router.id, "device_owner": INTF_OWNER}, port.revision_number)))
        conn.execute(insert(router_ports).values(port_id=port.id, router_id=router.id, port_type=INTF_OWNER))
        return self._port(conn, port.id), subs

    def _ipv6_port(self, conn: Connection, router_id: str, net_id: str) -> Any:
        for row in conn.execute(select(ports).join(router_ports, router_ports.c.port_id == ports.c.id).where(
                router_ports.c.router_id == router_id, router_ports.c.port_type == INTF_OWNER,
                ports.c.network_id == net_id)):
            if any(netaddr.IPAddress(ip).version == 6 for _, ip in port_ips(conn, row.id)):
                return row
        return None

    @staticmethod
    def _port(conn: Connection, port_id: str) -> Any:
        return conn.execute(_PORT_ROW, {"port_id": port_id}).one()

    # -- remove --------------------------------------------------------
    def remove(self, ctx: Context, conn: Connection, router_id: str, body: Any) -> dict[str, Any]:
        router = self.routers.writable_row(ctx, conn, router_id, "remove_router_interface")
        if _by_port(body, removal=True):
            port, subs = self._remove_by_port(conn, router, body["port_id"], body.get("subnet_id"))
        else:
            port, subs = self._remove_by_subnet(ctx, conn, router, body["subnet_id"])
        self.routers.touch(conn, router)
        return _info(router.id, port, subs[0].id, [s.id for s in subs])

    def _remove_by_port(self, conn: Connection, router: Any, port_id: str,
                        subnet_id: str | None) -> tuple[Any, list[Any]]:
        port = conn.execute(select(ports).join(router_ports, router_ports.c.port_id == ports.c.id).where(
            ports.c.id == port_id, router_ports.c.router_id == router.id,
            router_ports.c.port_type == INTF_OWNER)).first()
        if port is None:
            raise RouterInterfaceNotFound(router_id=router.id, port_id=port_id)
        sids = [s for s, _ in port_ips(conn, port.id)]
        if subnet_id and subnet_id not in sids:
            raise SubnetMismatchForPort(port_id=port.id, subnet_id=subnet_id)
        subs = [conn.execute(select(subnets).where(subnets.c.id == sid)).one() for sid in sids]
        for sub in subs:
            self._check_not_in_use(conn, router.id, sub)
        self.ports.remove(conn, port)
        return port, subs

    def _remove_by_subnet(self, ctx: Context, conn: Connection, router: Any, subnet_id: str) -> tuple[Any, list[Any]]:
        subnet = self.subnets.fetch_row(ctx, conn, subnet_id)
        self._check_not_in_use(conn, router.id, subnet)
        holders = select(ip_allocations.c.port_id).where(ip_allocations.c.subnet_id == subnet.id)
        port = conn.execute(select(ports).join(router_ports, router_ports.c.port_id == ports.c.id).where(
            router_ports.c.router_id == router.id, router_ports.c.port_type == INTF_OWNER,
            ports.c.id.in_(holders))).first()
        if port is None:
            raise RouterInterfaceNotFoundForSubnet(router_id=router.id, subnet_id=subnet.id)
        if len(port_ips(conn, port.id)) > 1:
            # A multi-prefix (IPv6) port: only this subnet's address goes.
            conn.execute(delete(ip_allocations).where(ip_allocations.c.port_id == port.id,
                                                      ip_allocations.c.subnet_id == subnet.id))
            conn.execute(update(ports).where(ports.c.id == port.id).values(stdattrs.bump({}, port.revision_number)))
        else:
            self.ports.remove(conn, port)
        return port, [subnet]

    @staticmethod
    def _check_not_in_use(conn: Connection, router_id: str, subnet: Any) -> None:
        cidr = netaddr.IPNetwork(subnet.cidr)
        for ip in conn.execute(select(floatingips.c.fixed_ip_address).where(
                floatingips.c.router_id == router_id, floatingips.c.fixed_ip_address.is_not(None))).scalars():
            if netaddr.IPAddress(ip) in cidr:
                raise RouterInterfaceInUseByFloatingIP(router_id=router_id, subnet_id=subnet.id)
        for hop in conn.execute(select(router_routes.c.nexthop).where(router_routes.c.router_id == router_id)).scalars():
            if netaddr.IPAddress(hop) in cidr:
                raise RouterInterfaceInUseByRoute(router_id=router_id, subnet_id=subnet.id)


def _shared_with(conn: Connection, subnet: Any, ctx: Context) -> bool:
    """Whether the subnet's network is shared with the caller's own project
    by an RBAC entry naming it. Neutron allows such a subnet on the caller's
    router since 2023.1 (LP#1975603); a network shared with everyone
    (``*``) stays refused (LP#1757482)."""
    return conn.execute(select(network_rbacs.c.id).where(
        network_rbacs.c.object_id == subnet.network_id, network_rbacs.c.action == "access_as_shared",
        network_rbacs.c.target_project == ctx.project_id).limit(1)).first() is not None


def _by_port(body: Any, removal: bool) -> bool:
    """Which form the request takes; Neutron's _validate_interface_info."""
    if not isinstance(body, dict) or not ("port_id" in body or "subnet_id" in body):
        raise bad_request("Either subnet_id or port_id must be specified")
    for key in ("port_id", "subnet_id"):
        if key in body:
            try:
                v.uuid_str(body[key])
            except v.InvalidValue as exc:
                raise bad_request(str(exc)) from None
    if not removal and "port_id" in body and "subnet_id" in body:
        raise bad_request("Cannot specify both subnet-id and port-id")
    return "port_id" in body


def _check_in_pools(ctx: Context, port_id: str, subs: list[Any], ips: list[tuple[str, str]]) -> None:
    """A project may not make a router answer on an address outside the
    pools of a subnet it does not own (it could be somebody's gateway)."""
    by_id = {s.id: s for s in subs}
    for sid, ip in ips:
        sub = by_id[sid]
        pools = netaddr.IPSet(netaddr.IPRange(p["start"], p["end"]) for p in sub.allocation_pools or [])
        if netaddr.IPAddress(ip) not in pools and sub.project_id != ctx.project_id:
            raise bad_request(f"Cannot add interface to router because specified port {port_id} has an IP "
                              f"address out of the allocation pool of subnet {sid}, which is not owned by the "
                              "project making the request")


def _info(router_id: str, port: Any, subnet_id: str, subnet_ids: list[str]) -> dict[str, Any]:
    return {"id": router_id, "tenant_id": port.project_id, "project_id": port.project_id, "port_id": port.id,
            "network_id": port.network_id, "subnet_id": subnet_id, "subnet_ids": subnet_ids}


# Prebuilt statements (building one costs more than running it).
_INSERT_ROUTER_PORT = FastInsert(router_ports)
_PORT_ROW = select(ports).where(ports.c.id == bindparam("port_id"))
