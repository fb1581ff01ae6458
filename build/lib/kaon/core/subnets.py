"""Subnets: CIDR, gateway, pools, DNS servers, host routes and the IPv6
mode rules, validated as Neutron does before anything is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import netaddr
from sqlalchemy import Connection, delete, insert, or_, select, update

from kaon import errors
from kaon.api.context import Context
from kaon.api.listing import ListQuery
from kaon.core import quotas, stdattrs
from kaon.core.l2 import ipam
from kaon.core.pools import prefix_alloc
from kaon.core.l2.networks import AUTO_DELETE_OWNERS, Networks
from kaon.core.query import fetch_page, where_filters
from kaon.db.core_tables import ip_allocations, network_rbacs, networks, ports, subnets
from kaon.model import validators as v
from kaon.model.attrs import HTTPBadRequest

DNSNameServersExhausted = errors.define(
    "DNSNameServersExhausted", errors.BadRequest,
    "Unable to complete operation for {subnet_id}. The number of DNS nameservers exceeds the limit {quota}.")
GatewayIpInUse = errors.define(
    "GatewayIpInUse", errors.InUse,
    "Current gateway ip {ip_address} already in use by port {port_id}. Unable to update.")
HostRoutesExhausted = errors.define(
    "HostRoutesExhausted", errors.BadRequest,
    "Unable to complete operation for {subnet_id}. The number of host routes exceeds the limit {quota}.")

COLUMNS = {name: subnets.c[name] for name in (
    "id", "name", "description", "project_id", "network_id", "ip_version", "cidr", "gateway_ip",
    "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "segment_id",
    "dns_publish_fixed_ip", "created_at", "updated_at", "revision_number",
)}


AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")
# Router interfaces keep an auto-address (SLAAC) subnet in use; other ports
# just lose their EUI-64 address when it goes (Neutron's rule).
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                           "network:ha_router_replicated_interface")


def _invalid(msg: str) -> errors.KaonError:
    return errors.InvalidInput(error_message=msg)


def is_auto_address(subnet: Any) -> bool:
    """SLAAC or DHCPv6-stateless: addresses come from the MAC (EUI-64)."""
    return subnet.ipv6_address_mode in AUTO_ADDRESS_MODES or subnet.ipv6_ra_mode in AUTO_ADDRESS_MODES


def _check_dhcp_cidr(net: netaddr.IPNetwork) -> None:
    """What a subnet with DHCP enabled may not be (Neutron's _validate_subnet)."""
    if (net.version == 4 and net.prefixlen > 30) or (net.version == 6 and net.prefixlen > 126):
        raise _invalid("Subnet has a prefix length that is incompatible with DHCP service enabled")
    if net.is_multicast():
        raise _invalid("Multicast IP subnet is not supported if enable_dhcp is True")
    if net.is_loopback():
        raise _invalid("Loopback IP subnet is not supported if enable_dhcp is True")
    if net.version == 4 and net.first == 0:
        raise _invalid("First IP '0.0.0.0' of network is not supported if enable_dhcp is True.")


class Subnets:
    def __init__(self, nets: Networks, cfg: Any) -> None:
        self.nets = nets
        self.cfg = cfg
        # Called with (conn, network id) after a subnet is created, updated to
        # enable or disable DHCP, or a DHCP subnet is deleted, in the same
        # transaction: DHCP scheduling (kaon.core.agents.agents.WriteHooks.subnet_written),
        # then the network's DHCP ports (kaon.core.agents.dhcp_ports).
        self.dhcp_hooks: list[Callable[[Connection, str], None]] = []

    def visible(self, ctx: Context) -> Any:
        """Owned, on an owned network, or on a network shared with the
        caller. An external network's subnets stay hidden (Neutron's
        get_subnet policy has no external rule)."""
        shared = select(network_rbacs.c.object_id).where(
            network_rbacs.c.action == "access_as_shared",
            network_rbacs.c.target_project.in_(("*", ctx.project_id)))
        owned = select(networks.c.id).where(networks.c.project_id == ctx.project_id)
        return or_(subnets.c.project_id == ctx.project_id, subnets.c.network_id.in_(owned),
                   subnets.c.network_id.in_(shared))

    def fetch_row(self, ctx: Context, conn: Connection, subnet_id: str) -> Any:
        stmt = select(subnets).where(subnets.c.id == subnet_id)
        if not ctx.is_admin:
            stmt = stmt.where(self.visible(ctx))
        row = conn.execute(stmt).first()
        if row is None:
            raise errors.SubnetNotFound(subnet_id=subnet_id)
        return row

    def get(self, ctx: Context, conn: Connection, subnet_id: str) -> dict[str, Any]:
        row = self.fetch_row(ctx, conn, subnet_id)
        return self.render(row, stdattrs.tags_for(conn, [row.id]).get(row.id, []))

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], bool]:
        stmt = select(subnets)
        if not ctx.is_admin:
            stmt = stmt.where(self.visible(ctx))
        special = {"shared": lambda vals: self._shared_filter(ctx, vals)}
        for clause in where_filters(q, COLUMNS, special, subnets.c.id):
            stmt = stmt.where(clause)
        rows, more = fetch_page(conn, stmt, q, COLUMNS, subnets.c.id, subnets)
        tag_map = stdattrs.tags_for(conn, [r.id for r in rows])
        return [self.render(r, tag_map.get(r.id, [])) for r in rows], more

    @staticmethod
    def _shared_filter(ctx: Context, values: list[Any]) -> Any:
        """``?shared=``: a subnet is shared when its network is (not shown
        as an attribute, only filtered on, as in Neutron)."""
        shared_nets = select(network_rbacs.c.object_id).where(
            network_rbacs.c.action == "access_as_shared",
            network_rbacs.c.target_project.in_(("*", ctx.project_id)))
        wanted = set(values)
        if wanted == {True}:
            return subnets.c.network_id.in_(shared_nets)
        if wanted == {False}:
            return subnets.c.network_id.not_in(shared_nets)
        return subnets.c.id.is_not(None)

    @staticmethod
    def render(row: Any, tag_list: list[str]) -> dict[str, Any]:
        item = stdattrs.render(row, tag_list)
        item.update(
            network_id=row.network_id, ip_version=row.ip_version, cidr=row.cidr, gateway_ip=row.gateway_ip,
            allocation_pools=row.allocation_pools, dns_nameservers=row.dns_nameservers,
            host_routes=row.host_routes, enable_dhcp=row.enable_dhcp, ipv6_ra_mode=row.ipv6_ra_mode,
            ipv6_address_mode=row.ipv6_address_mode, subnetpool_id=row.subnetpool_id,
            segment_id=row.segment_id, service_types=row.service_types,
            dns_publish_fixed_ip=row.dns_publish_fixed_ip,
        )
        return item

    # -- create --------------------------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        net = self.nets.fetch_row(ctx, conn, values["network_id"])
        if not ctx.is_admin and net.project_id != ctx.project_id:
            # Neutron hides a visible but unshared network (an external one)
            # behind a 404; on a shared one the policy says no.
            if not self.nets.shared_with(conn, net.id, ctx):
                raise errors.NetworkNotFound(net_id=net.id)
            raise errors.PolicyNotAuthorized(action="create_subnet")
        project = stdattrs.owner_project(ctx, values)
        quotas.check(conn, self.cfg, project, "subnet", 1)
        # Two subnets created at once on one network must see each other for
        # the overlap check (PostgreSQL reads only what is committed).
        self.nets.lock(conn, net.id)
        version = int(values["ip_version"])
        self.nets.check_subnet_mtu(conn, net.id, version)
        cidr = self._cidr(values, version, prefix_alloc.from_pool(ctx, conn, net, project, values, version))
        self._check_overlap(conn, net.id, cidr)
        gateway = self._gateway(values, cidr, version)
        if "allocation_pools" in values and values["allocation_pools"] is not None:
            pools = ipam.parse_pools(values["allocation_pools"], cidr)
        else:
            pools = ipam.default_pools(cidr, gateway)
        ipam.check_gateway(gateway, pools)
        row = stdattrs.new_row(project, values)
        self._check_ipv6(values, version, cidr, values.get("enable_dhcp", True))
        row.update(
            network_id=net.id, ip_version=version, cidr=cidr, gateway_ip=gateway,
            enable_dhcp=values.get("enable_dhcp", True),
            ipv6_ra_mode=values.get("ipv6_ra_mode"), ipv6_address_mode=values.get("ipv6_address_mode"),
            subnetpool_id=values.get("subnetpool_id"), segment_id=values.get("segment_id"),
            allocation_pools=pools,
            dns_nameservers=self._dns(values.get("dns_nameservers") or [], "new subnet", version),
            host_routes=self._routes(values.get("host_routes") or [], "new subnet", version),
            service_types=values.get("service_types", []),
            dns_publish_fixed_ip=values.get("dns_publish_fixed_ip", False),
        )
        conn.execute(insert(subnets).values(row))
        self.nets.touch(conn, net.id)
        if {row["ipv6_address_mode"], row["ipv6_ra_mode"]} & set(AUTO_ADDRESS_MODES):
            ipam.address_existing_ports(conn, row["id"], net.id, cidr)
        if row["enable_dhcp"]:
            for hook in self.dhcp_hooks:
                hook(conn, net.id)
        return row["id"]

    def _cidr(self, values: dict[str, Any], version: int, pooled: str | None = None) -> str:
        # A prefix taken from a subnet pool (kaon.core.pools.prefix_alloc, which also
        # refuses cidr with prefixlen) gets the same checks as a given cidr.
        cidr = pooled or values.get("cidr")
        if not cidr:
            raise HTTPBadRequest(msg="A cidr must be specified in the absence of a subnet pool")
        net = netaddr.IPNetwork(cidr)
        if net.version != version:
            raise _invalid(f"cidr '{cidr}' does not match the ip_version '{version}'")
        if values.get("enable_dhcp", True):
            _check_dhcp_cidr(net)
        if net.prefixlen == 0:
            raise _invalid("0 is not allowed as CIDR prefix length")
        return str(net.cidr)

    def _check_overlap(self, conn: Connection, net_id: str, cidr: str) -> None:
        stmt = select(subnets.c.cidr, subnets.c.id)
        if self.cfg.default.allow_overlapping_ips:
            stmt = stmt.where(subnets.c.network_id == net_id)
        new = netaddr.IPSet([cidr])
        for other, _ in conn.execute(stmt):
            if new & netaddr.IPSet([other]):
                raise _invalid(f"Requested subnet with cidr: {cidr} for network: {net_id} overlaps with another subnet")

    def _gateway(self, values: dict[str, Any], cidr: str, version: int) -> str | None:
        net = netaddr.IPNetwork(cidr)
        if "gateway_ip" not in values:
            if net.size <= 2 and version == 4:
                return None
            return str(netaddr.IPAddress(net.first + 1, version))
        gw = values["gateway_ip"]
        if gw is None:
            return None
        return self._valid_gateway(gw, cidr)

    @staticmethod
    def _valid_gateway(gw: str, cidr: str) -> str:
        net = netaddr.IPNetwork(cidr)
        addr = netaddr.IPAddress(gw)
        if addr.version != net.version:
            raise _invalid(f"gateway_ip '{gw}' does not match the ip_version '{net.version}'")
        if addr in net and net.version == 4 and net.prefixlen < 31 and addr.value in (net.first, net.last):
            raise _invalid(f"Gateway is not valid on subnet: {gw} is the network or broadcast address")
        if addr in net and net.version == 6 and addr.value == net.first and net.prefixlen < 127:
            raise _invalid(f"Gateway is not valid on subnet: {gw} is the subnet-router anycast address")
        return str(addr)

    def _dns(self, servers: Any, subnet_id: str, version: int) -> list[str]:
        """Neutron's order: the list's form, then its length, then versions."""
        if not isinstance(servers, list):
            raise _invalid(f"Invalid input for dns_nameservers. Reason: Invalid data format for nameserver: "
                           f"'{servers}'")
        out: list[str] = []
        for s in servers:
            try:
                addr = v.ip_address(s)
            except v.InvalidValue as exc:
                raise _invalid(f"Invalid input for dns_nameservers. Reason: '{s}' is not a valid nameserver. "
                               f"{exc}") from None
            if addr in out:
                raise _invalid(f"Invalid input for dns_nameservers. Reason: Duplicate nameserver '{s}'")
            out.append(addr)
        limit = self.cfg.default.max_dns_nameservers
        if len(servers) > limit:
            raise DNSNameServersExhausted(subnet_id=subnet_id, quota=limit)
        for addr in out:
            if netaddr.IPAddress(addr).version != version:
                raise _invalid(f"dns_nameserver '{addr}' does not match the ip_version '{version}'")
        return out

    def _routes(self, routes: Any, subnet_id: str, version: int) -> list[dict[str, str]]:
        """Neutron's order: each route's form, then the count, then versions."""
        if not isinstance(routes, list):
            raise _invalid(f"Invalid input for host_routes. Reason: Invalid data format for hostroute: '{routes}'")
        out: list[dict[str, str]] = []
        for r in routes:
            if not isinstance(r, dict) or set(r) != {"destination", "nexthop"}:
                raise _invalid(f"Invalid input for host_routes. Reason: Invalid data format for hostroute: '{r}'")
            try:
                item = {"destination": v.cidr(r["destination"]), "nexthop": v.ip_address(r["nexthop"])}
            except v.InvalidValue as exc:
                raise _invalid(f"Invalid input for host_routes. Reason: {exc}") from None
            if item in out:
                raise _invalid(f"Invalid input for host_routes. Reason: Duplicate hostroute '{r}'")
            out.append(item)
        limit = self.cfg.default.max_subnet_host_routes
        if len(routes) > limit:
            raise HostRoutesExhausted(subnet_id=subnet_id, quota=limit)
        for item in out:
            for key in ("nexthop", "destination"):
                if netaddr.IPNetwork(item[key]).version != version:
                    raise _invalid(f"{key} '{item[key]}' does not match the ip_version '{version}'")
        return out

    @staticmethod
    def _check_ipv6(values: dict[str, Any], version: int, cidr: str, enable_dhcp: bool) -> None:
        ra, addr = values.get("ipv6_ra_mode"), values.get("ipv6_address_mode")
        if version == 4:
            for key, mode in (("ipv6_ra_mode", ra), ("ipv6_address_mode", addr)):
                if mode:
                    raise _invalid(f"{key} is not valid when ip_version is 4")
            return
        if ra and addr and ra != addr:
            raise _invalid(f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' is not valid. "
                           "If both attributes are set, they must be the same value")
        if (ra or addr) and not enable_dhcp:
            raise _invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
        if (ra in AUTO_ADDRESS_MODES or addr in AUTO_ADDRESS_MODES) and netaddr.IPNetwork(cidr).prefixlen != 64:
            raise _invalid(f"Invalid CIDR {cidr} for IPv6 address mode. OpenStack uses the EUI-64 address "
                           "format, which requires the prefix to be /64")

    # -- update / delete -----------------------------------------------
    def writable_row(self, ctx: Context, conn: Connection, subnet_id: str, action: str) -> Any:
        row = self.fetch_row(ctx, conn, subnet_id)
        if not ctx.is_admin and row.project_id != ctx.project_id:
            net_owner = conn.execute(select(networks.c.project_id).where(networks.c.id == row.network_id)).scalar()
            if net_owner != ctx.project_id:
                raise errors.PolicyNotAuthorized(action=f"{action}_subnet")
        return row

    def update(self, ctx: Context, conn: Connection, subnet_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row = self.writable_row(ctx, conn, subnet_id, "update")
        if check is not None:
            check(row.revision_number)
        # Neutron revises the network on any change to one of its subnets
        # (network first, the order a network delete takes its locks in).
        self.nets.touch(conn, row.network_id)
        out: dict[str, Any] = {k: changes[k] for k in ("name", "description", "service_types",
                                                      "dns_publish_fixed_ip", "segment_id") if k in changes}
        gateway = row.gateway_ip
        if "gateway_ip" in changes:
            gateway = None if changes["gateway_ip"] is None else self._valid_gateway(changes["gateway_ip"], row.cidr)
            if gateway != row.gateway_ip:
                self._check_gateway_free(conn, row)
            out["gateway_ip"] = gateway
        pools = row.allocation_pools
        if "allocation_pools" in changes:
            pools = ipam.parse_pools(changes["allocation_pools"] or [], row.cidr)
            out["allocation_pools"] = pools
            ipam.forget(row.id)
        if "gateway_ip" in changes or "allocation_pools" in changes:
            ipam.check_gateway(gateway, pools)
        if "dns_nameservers" in changes:
            out["dns_nameservers"] = self._dns(changes["dns_nameservers"] or [], row.id, row.ip_version)
        if "host_routes" in changes:
            out["host_routes"] = self._routes(changes["host_routes"] or [], row.id, row.ip_version)
        if "enable_dhcp" in changes:
            if not changes["enable_dhcp"] and (row.ipv6_ra_mode or row.ipv6_address_mode):
                raise _invalid("Cannot disable enable_dhcp with ipv6 attributes set")
            if changes["enable_dhcp"] and not row.enable_dhcp:
                _check_dhcp_cidr(netaddr.IPNetwork(row.cidr))
            out["enable_dhcp"] = changes["enable_dhcp"]
        conn.execute(update(subnets).where(subnets.c.id == subnet_id).values(
            stdattrs.bump(out, row.revision_number)))
        if "enable_dhcp" in changes and bool(changes["enable_dhcp"]) != bool(row.enable_dhcp):
            for hook in self.dhcp_hooks:
                hook(conn, row.network_id)

    @staticmethod
    def _check_gateway_free(conn: Connection, row: Any) -> None:
        """A router interface holding the current gateway address pins it."""
        if row.gateway_ip is None:
            return
        holder = conn.execute(select(ports.c.id).where(
            ports.c.device_owner.like("network:router_interface%"),
            ports.c.id.in_(select(ip_allocations.c.port_id).where(
                ip_allocations.c.subnet_id == row.id, ip_allocations.c.ip_address == row.gateway_ip)))).scalar()
        if holder is not None:
            raise GatewayIpInUse(ip_address=row.gateway_ip, port_id=holder)

    def delete(self, ctx: Context, conn: Connection, subnet_id: str, check: Any = None) -> None:
        row = self.writable_row(ctx, conn, subnet_id, "delete")
        self.nets.touch(conn, row.network_id)
        # An allocation being inserted holds a key-share lock on the subnet
        # row: wait for it, so that the in-use check below sees it (otherwise
        # the cascade would silently take the new port's address).
        conn.execute(select(subnets.c.id).where(subnets.c.id == subnet_id).with_for_update())
        if check is not None:
            check(row.revision_number)
        holders = select(ip_allocations.c.port_id).where(ip_allocations.c.subnet_id == subnet_id)
        blocking = ports.c.device_owner.in_(ROUTER_INTERFACE_OWNERS) if is_auto_address(row) \
            else ~ports.c.device_owner.in_(AUTO_DELETE_OWNERS)
        in_use = conn.execute(select(ports.c.id).where(ports.c.id.in_(holders), blocking).limit(1)).first()
        if in_use is not None:
            raise errors.SubnetInUse(subnet_id=subnet_id)
        conn.execute(delete(ip_allocations).where(ip_allocations.c.subnet_id == subnet_id))
        conn.execute(delete(subnets).where(subnets.c.id == subnet_id))
        stdattrs.delete_tags(conn, [subnet_id])
        ipam.forget(subnet_id)
        if row.enable_dhcp:  # the network may have lost its last DHCP subnet
            for hook in self.dhcp_hooks:
                hook(conn, row.network_id)
