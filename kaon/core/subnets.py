"""Subnets: CIDR, gateway, pools, DNS servers, host routes and the IPv6
mode rules, validated as Neutron does before anything is written."""

from __future__ import annotations

from typing import Any

import netaddr
from sqlalchemy import Connection, delete, insert, or_, select, update

from kaon import errors
from kaon.api.context import Context
from kaon.api.listing import ListQuery
from kaon.core import ipam, quotas, stdattrs
from kaon.core.networks import AUTO_DELETE_OWNERS, Networks, visible_clause
from kaon.core.query import paginate, where_filters
from kaon.db.core_tables import ip_allocations, networks, ports, subnets
from kaon.model.attrs import HTTPBadRequest

DNSNameServersExhausted = errors.define(
    "DNSNameServersExhausted", errors.BadRequest,
    "Unable to complete operation for {subnet_id}. The number of DNS nameservers exceeds the limit {quota}.")
HostRoutesExhausted = errors.define(
    "HostRoutesExhausted", errors.BadRequest,
    "Unable to complete operation for {subnet_id}. The number of host routes exceeds the limit {quota}.")

COLUMNS = {name: subnets.c[name] for name in (
    "id", "name", "description", "project_id", "network_id", "ip_version", "cidr", "gateway_ip",
    "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "segment_id",
    "dns_publish_fixed_ip", "created_at", "updated_at", "revision_number",
)}


def _invalid(msg: str) -> errors.KaonError:
    return errors.InvalidInput(error_message=msg)


class Subnets:
    def __init__(self, nets: Networks, cfg: Any) -> None:
        self.nets = nets
        self.cfg = cfg

    def visible(self, ctx: Context) -> Any:
        return or_(subnets.c.project_id == ctx.project_id,
                   subnets.c.network_id.in_(select(networks.c.id).where(visible_clause(ctx))))

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
        for clause in where_filters(q, COLUMNS, {}, subnets.c.id):
            stmt = stmt.where(clause)
        stmt, reverse = paginate(conn, stmt, q, COLUMNS, subnets.c.id, subnets)
        rows = conn.execute(stmt).all()
        more = q.limit is not None and len(rows) > q.limit
        rows = rows[: q.limit] if q.limit is not None else rows
        if reverse:
            rows.reverse()
        tag_map = stdattrs.tags_for(conn, [r.id for r in rows])
        return [self.render(r, tag_map.get(r.id, [])) for r in rows], more

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
            raise errors.PolicyNotAuthorized(action="create_subnet")
        project = stdattrs.owner_project(ctx, values)
        quotas.check(conn, self.cfg, project, "subnet", 1)
        version = int(values["ip_version"])
        cidr = self._cidr(values, version)
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
            dns_nameservers=self._dns(values.get("dns_nameservers") or [], row["id"], version),
            host_routes=self._routes(values.get("host_routes") or [], row["id"], version),
            service_types=values.get("service_types", []),
            dns_publish_fixed_ip=values.get("dns_publish_fixed_ip", False),
        )
        conn.execute(insert(subnets).values(row))
        return row["id"]

    def _cidr(self, values: dict[str, Any], version: int) -> str:
        if values.get("subnetpool_id") or values.get("use_default_subnetpool"):
            raise _invalid("Subnet pools are not supported by this server; give a cidr")
        if "prefixlen" in values:
            raise HTTPBadRequest(msg="cidr and prefixlen must not be supplied together")
        cidr = values.get("cidr")
        if not cidr:
            raise HTTPBadRequest(msg="A cidr must be specified in the absence of a subnet pool")
        net = netaddr.IPNetwork(cidr)
        if net.version != version:
            raise _invalid(f"Cidr {cidr} does not match ip_version {version}")
        if net.prefixlen == 0:
            raise _invalid(f"{cidr} is not allowed: a /0 prefix is not a valid subnet")
        if net.is_multicast() or net.is_loopback() or (version == 6 and net.ip.is_link_local()):
            raise _invalid(f"{cidr} is not allowed: multicast, loopback and link-local ranges are refused")
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
            raise _invalid(f"Gateway IP version inconsistent with allocation pool version")
        if addr in net and net.version == 4 and net.prefixlen < 31 and addr.value in (net.first, net.last):
            raise _invalid(f"Gateway is not valid on subnet: {gw} is the network or broadcast address")
        if addr in net and net.version == 6 and addr.value == net.first and net.prefixlen < 127:
            raise _invalid(f"Gateway is not valid on subnet: {gw} is the subnet-router anycast address")
        return str(addr)

    def _dns(self, servers: Any, subnet_id: str, version: int) -> list[str]:
        if not isinstance(servers, list):
            raise _invalid("Invalid input for dns_nameservers. Reason: not a list")
        limit = self.cfg.default.max_dns_nameservers
        if len(servers) > limit:
            raise DNSNameServersExhausted(subnet_id=subnet_id, quota=limit)
        out: list[str] = []
        for s in servers:
            try:
                addr = str(netaddr.IPAddress(s)) if isinstance(s, str) and s else None
            except (netaddr.AddrFormatError, ValueError):
                addr = None
            if addr is None:
                raise _invalid(f"Invalid input for dns_nameservers. Reason: '{s}' is not a valid nameserver")
            if addr in out:
                raise _invalid(f"Invalid input for dns_nameservers. Reason: Duplicate nameserver '{s}'")
            out.append(addr)
        return out

    def _routes(self, routes: Any, subnet_id: str, version: int) -> list[dict[str, str]]:
        if not isinstance(routes, list):
            raise _invalid("Invalid input for host_routes. Reason: not a list")
        limit = self.cfg.default.max_subnet_host_routes
        if len(routes) > limit:
            raise HostRoutesExhausted(subnet_id=subnet_id, quota=limit)
        out: list[dict[str, str]] = []
        for r in routes:
            if not isinstance(r, dict) or set(r) != {"destination", "nexthop"}:
                raise _invalid(f"Invalid input for host_routes. Reason: Invalid data format for hostroute: '{r}'")
            try:
                dest = netaddr.IPNetwork(r["destination"])
                hop = netaddr.IPAddress(r["nexthop"])
            except (netaddr.AddrFormatError, ValueError, TypeError):
                raise _invalid(f"Invalid input for host_routes. Reason: Invalid data format for hostroute: '{r}'") from None
            if dest.version != version or hop.version != version:
                raise _invalid(f"Invalid route {r}: IP version does not match the subnet's")
            item = {"destination": str(dest.cidr), "nexthop": str(hop)}
            if item in out:
                raise _invalid(f"Invalid input for host_routes. Reason: Duplicate hostroute '{r}'")
            out.append(item)
        return out

    @staticmethod
    def _check_ipv6(values: dict[str, Any], version: int, cidr: str, enable_dhcp: bool) -> None:
        ra, addr = values.get("ipv6_ra_mode"), values.get("ipv6_address_mode")
        if version == 4:
            if ra or addr:
                raise _invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when ip_version is 4")
            return
        if ra and addr and ra != addr:
            raise _invalid(f"ipv6_ra_mode set to '{ra}' with ipv6_address_mode set to '{addr}' is not valid. "
                           "If both attributes are set, they must be the same value")
        if (ra or addr) and not enable_dhcp:
            raise _invalid("ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False")
        if (ra in ("slaac", "dhcpv6-stateless") or addr in ("slaac", "dhcpv6-stateless")) and \
                netaddr.IPNetwork(cidr).prefixlen != 64:
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
        out: dict[str, Any] = {k: changes[k] for k in ("name", "description", "service_types",
                                                      "dns_publish_fixed_ip", "segment_id") if k in changes}
        gateway = row.gateway_ip
        if "gateway_ip" in changes:
            gateway = None if changes["gateway_ip"] is None else self._valid_gateway(changes["gateway_ip"], row.cidr)
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
            out["enable_dhcp"] = changes["enable_dhcp"]
        conn.execute(update(subnets).where(subnets.c.id == subnet_id).values(
            stdattrs.bump(out, row.revision_number)))

    def delete(self, ctx: Context, conn: Connection, subnet_id: str, check: Any = None) -> None:
        row = self.writable_row(ctx, conn, subnet_id, "delete")
        if check is not None:
            check(row.revision_number)
        holders = select(ip_allocations.c.port_id).where(ip_allocations.c.subnet_id == subnet_id)
        in_use = conn.execute(select(ports.c.id).where(
            ports.c.id.in_(holders), ~ports.c.device_owner.in_(AUTO_DELETE_OWNERS)).limit(1)).first()
        if in_use is not None:
            raise errors.SubnetInUse(subnet_id=subnet_id)
        conn.execute(delete(ip_allocations).where(ip_allocations.c.subnet_id == subnet_id))
        conn.execute(delete(subnets).where(subnets.c.id == subnet_id))
        ipam.forget(subnet_id)
