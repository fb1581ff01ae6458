"""Floating IPs (router's floatingips, fip-port-details).

A floating IP holds its address through a port on the external network
(project ``''``, ``device_owner network:floatingip``, ``device_id`` = the
floating IP, status ``N/A``), made by the ports service in the same
transaction. Associating it with a port needs a router with a gateway on
the floating network and an interface on the port's subnet; the router is
computed, never given.

Status: ``ACTIVE`` while associated, ``DOWN`` otherwise -- what ML2/OVN
reports. kaon has no L3 agent yet to confirm that NAT is in place; when
one exists it may report the status instead (the column is stored, not
computed). See docs/design/l3-api.md.

Concurrency: on PostgreSQL an association locks the router it goes through
and checks again under the lock, so it cannot slip past a concurrent
removal of that router's gateway or interface (which lock the same row).
SQLite lets one write transaction in at a time, so the first read stands.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import netaddr
from sqlalchemy import Connection, bindparam, delete, select, update

from kaon import errors
from kaon.core import quotas, stdattrs
from kaon.core.access import policy
from kaon.core.context import Context
from kaon.core.l2.networks import Networks
from kaon.core.l2.ports import Ports
from kaon.core.l3.routers import INTF_OWNER, chunks, is_external, port_ips, service_port
from kaon.core.list_query import ListQuery
from kaon.core.visible_rows import VisibleRows
from kaon.db.core_tables import ip_allocations, ports, subnets, tags
from kaon.db.fast_insert import FastInsert
from kaon.db.l3_tables import floatingips, router_ports, routers

FIP_OWNER = "network:floatingip"

FloatingIPNotFound = errors.define("FloatingIPNotFound", errors.NotFound,
                                   "Floating IP {floatingip_id} could not be found")
ExternalGatewayForFloatingIPNotFound = errors.define(
    "ExternalGatewayForFloatingIPNotFound", errors.NotFound,
    "External network {external_network_id} is not reachable from subnet {subnet_id}.  Therefore, cannot "
    "associate Port {port_id} with a Floating IP.")
FloatingIPPortAlreadyAssociated = errors.define(
    "FloatingIPPortAlreadyAssociated", errors.InUse,
    "Cannot associate floating IP {floating_ip_address} ({fip_id}) with port {port_id} using fixed IP "
    "{fixed_ip}, as that fixed IP already has a floating IP on external network {net_id}.")
ExternalIpAddressExhausted = errors.define(
    "ExternalIpAddressExhausted", errors.BadRequest,
    "Unable to find any IP address on external network {net_id}.")

COLUMNS = {name: floatingips.c[name] for name in (
    "id", "description", "project_id", "floating_network_id", "floating_ip_address", "fixed_ip_address",
    "router_id", "status", "created_at", "updated_at", "revision_number",
)}
COLUMNS["port_id"] = floatingips.c.fixed_port_id
PORT_DETAILS = ("name", "network_id", "mac_address", "admin_state_up", "status", "device_id", "device_owner")

quotas.register("floatingip", quotas.table_counter(floatingips))


def bad_request(msg: str) -> errors.KaonError:
    return errors.BadRequest(resource="floatingip", msg=msg)


def _v4(ip: str) -> bool:
    return netaddr.IPAddress(ip).version == 4


# A service's ``list`` method shadows the builtin in annotations inside its
# class body, so the methods' signatures use these names.
Items = list[dict[str, Any]]
Rows = list[Any]
Ids = list[str]
Routes = list[dict[str, str]]  # routes, and fixed-IP requests


class FloatingIps:
    def __init__(self, nets: Networks, ports_service: Ports, cfg: Any) -> None:
        self.nets = nets
        self.ports = ports_service
        self.cfg = cfg
        ports_service.delete_hooks.append(self._port_deleted)
        nets.delete_hooks.append(self._network_deleted)

    # -- reads ---------------------------------------------------------
    def fetch_row(self, ctx: Context, conn: Connection, fip_id: str, lock: bool = False) -> Any:
        return _ROWS.fetch_row(ctx, conn, fip_id, lock)

    def writable_row(self, ctx: Context, conn: Connection, fip_id: str, action: str) -> Any:
        row = self.fetch_row(ctx, conn, fip_id, lock=True)
        policy.enforce_owned(ctx, f"{action}_floatingip", row.project_id)
        return row

    def get(self, ctx: Context, conn: Connection, fip_id: str) -> dict[str, Any]:
        return self._render(conn, [self.fetch_row(ctx, conn, fip_id)])[0]

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[Items, bool]:
        rows, more = _ROWS.page(ctx, conn, q)
        return self._render(conn, rows), more

    def _render(self, conn: Connection, rows: Rows, fresh: bool = False) -> Items:
        """Floating IP dicts; ``fresh``: rows just inserted, without tags."""
        if not rows:
            return []
        details: dict[str, dict[str, Any]] = {}
        for chunk in chunks([r.fixed_port_id for r in rows if r.fixed_port_id]):
            for p in conn.execute(_PORT_DETAILS, {"ids": chunk}):
                details[p.id] = {k: getattr(p, k) for k in PORT_DETAILS}
        tag_map = {} if fresh else stdattrs.tags_for(conn, [r.id for r in rows])
        return [{
            "id": r.id, "tenant_id": r.project_id, "project_id": r.project_id, "description": r.description,
            "floating_ip_address": r.floating_ip_address, "floating_network_id": r.floating_network_id,
            "router_id": r.router_id, "port_id": r.fixed_port_id, "fixed_ip_address": r.fixed_ip_address,
            "status": r.status, "port_details": details.get(r.fixed_port_id) if r.fixed_port_id else None,
            "tags": tag_map.get(r.id, []), "created_at": stdattrs.timestamp(r.created_at),
            "updated_at": stdattrs.timestamp(r.updated_at), "revision_number": r.revision_number,
        } for r in rows]

    # -- create / update / delete --------------------------------------
    def create_item(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
        """:meth:`create`, rendered from what was inserted (no read-back)."""
        row = self._create(ctx, conn, values)
        return self._render(conn, [SimpleNamespace(**row)], fresh=True)[0]

    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        return str(self._create(ctx, conn, values)["id"])

    def _create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> dict[str, Any]:
        project = stdattrs.owner_project(ctx, values)
        net_id = self._floating_network(ctx, conn, values["floating_network_id"])
        quotas.check(conn, self.cfg, project, "floatingip", 1)
        row = stdattrs.new_row(project, values)
        del row["name"]
        wanted = _fixed_request(values)
        port_values: dict[str, Any] = {"network_id": net_id, "device_id": row["id"], "device_owner": FIP_OWNER,
                                       "admin_state_up": True}
        if wanted:
            port_values["fixed_ips"] = [wanted]
        port_id = service_port(self.ports, conn, "", port_values)
        conn.execute(update(ports).where(ports.c.id == port_id).values(status="N/A"))
        addresses = [ip for _, ip in port_ips(conn, port_id) if _v4(ip)]
        if not addresses:
            raise ExternalIpAddressExhausted(net_id=net_id)
        row.update(floating_network_id=net_id, floating_port_id=port_id, floating_ip_address=addresses[0],
                   fixed_port_id=None, fixed_ip_address=None, router_id=None, last_known_router_id=None)
        port, fixed, router_id = self._association(ctx, conn, row, values.get("port_id"),
                                                   values.get("fixed_ip_address"))
        row.update(fixed_port_id=port, fixed_ip_address=fixed, router_id=router_id,
                   status="ACTIVE" if port else "DOWN")
        _INSERT.run(conn, row)
        return row

    def _floating_network(self, ctx: Context, conn: Connection, net_id: str) -> str:
        """Visible to the caller and external, with an IPv4 subnet. A network
        the caller cannot see is NetworkNotFound (404), as in Neutron: an
        access_as_external grant to one project is what makes it visible."""
        net = self.nets.fetch_row(ctx, conn, net_id)
        if not is_external(conn, net_id):
            raise bad_request(f"Network {net_id} is not a valid external network")
        if conn.execute(_V4_SUBNET, {"net_id": net_id}).first() is None:
            raise bad_request(f"Network {net_id} does not contain any IPv4 subnet")
        return str(net.id)

    def update(self, ctx: Context, conn: Connection, fip_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row = self.writable_row(ctx, conn, fip_id, "update")
        if check is not None:
            check(row.revision_number)
        if not changes:
            # An empty update is the original API's "disassociate" (the
            # floating IP once had no other attribute); Neutron keeps it.
            changes = {"port_id": None}
        out = {k: changes[k] for k in ("description",) if k in changes}
        if "port_id" in changes or "fixed_ip_address" in changes:
            port_id = changes.get("port_id", row.fixed_port_id)
            fixed = changes.get("fixed_ip_address")
            if "fixed_ip_address" not in changes and port_id is not None and port_id == row.fixed_port_id:
                fixed = row.fixed_ip_address  # same port, same address
            port, fixed, router_id = self._association(ctx, conn, row._mapping, port_id, fixed)
            out.update(fixed_port_id=port, fixed_ip_address=fixed, router_id=router_id,
                       last_known_router_id=row.router_id, status="ACTIVE" if port else "DOWN")
        conn.execute(update(floatingips).where(floatingips.c.id == fip_id).values(
            stdattrs.bump(out, row.revision_number)))

    def delete(self, ctx: Context, conn: Connection, fip_id: str, check: Any = None) -> None:
        row = self.writable_row(ctx, conn, fip_id, "delete")
        if check is not None:
            check(row.revision_number)
        self._drop(conn, row)

    def _drop(self, conn: Connection, row: Any) -> None:
        conn.execute(delete(floatingips).where(floatingips.c.id == row.id))
        conn.execute(delete(tags).where(tags.c.resource_id == row.id))
        port = conn.execute(select(ports).where(ports.c.id == row.floating_port_id)).first()
        if port is not None:
            self.ports.remove(conn, port)

    # -- association ---------------------------------------------------
    def _association(self, ctx: Context, conn: Connection, fip: Any, port_id: str | None,
                     fixed: str | None) -> tuple[str | None, str | None, str | None]:
        """(port_id, fixed_ip_address, router_id) for an association request
        -- all None to disassociate. ``fip`` maps the floating IP's columns."""
        if fixed and not port_id:
            raise bad_request("fixed_ip_address cannot be specified without a port_id")
        if not port_id:
            return None, None, None
        port = self.ports.fetch_row(ctx, conn, port_id)
        if port.project_id != fip["project_id"] and not ctx.is_admin:
            raise bad_request(f"Cannot process floating IP association with Port {port.id}, since that port "
                              "is owned by a different tenant")
        if port.device_owner == "network:dhcp":
            raise bad_request(f"Port {port.id} is unable to be assigned a floating IP")
        if is_external(conn, port.network_id):
            raise bad_request(f"Port {port.id} is on external network {port.network_id}: a floating IP is "
                              "associated with a port on an internal network")
        subnet_id, fixed = _internal_address(port.id, port_ips(conn, port.id), fixed)
        router_id = self._router_for(conn, port.id, subnet_id, fip["floating_network_id"])
        taken = conn.execute(_TAKEN, {"port_id": port.id, "fixed": fixed, "net_id": fip["floating_network_id"],
                                      "fip_id": fip["id"]}).first()
        if taken is not None:
            raise FloatingIPPortAlreadyAssociated(
                port_id=port.id, fip_id=fip["id"], floating_ip_address=fip["floating_ip_address"],
                fixed_ip=fixed, net_id=fip["floating_network_id"])
        return port.id, fixed, router_id

    def _router_for(self, conn: Connection, port_id: str, subnet_id: str, ext_net: str) -> str:
        """The router joining the subnet to the external network: the one
        whose interface is the subnet's gateway, else the first."""
        candidates = _routers_between(conn, subnet_id, ext_net)
        if candidates:
            gateway_ip = conn.execute(_GATEWAY_IP, {"subnet_id": subnet_id}).scalar()
            chosen = next((rid for rid, ip in candidates if ip == gateway_ip), candidates[0][0])
            if conn.dialect.name == "sqlite":
                return chosen  # one writer at a time: nothing changed since the read
            conn.execute(_LOCK_ROUTER, {"router_id": chosen})
            if any(rid == chosen for rid, _ in _routers_between(conn, subnet_id, ext_net)):
                return chosen
        raise ExternalGatewayForFloatingIPNotFound(subnet_id=subnet_id, external_network_id=ext_net,
                                                   port_id=port_id)

    # -- hooks ---------------------------------------------------------
    def _port_deleted(self, conn: Connection, port: Any) -> None:
        """A deleted port takes its floating IPs' associations with it."""
        conn.execute(update(floatingips).where(floatingips.c.fixed_port_id == port.id).values(
            fixed_port_id=None, fixed_ip_address=None, router_id=None,
            last_known_router_id=floatingips.c.router_id, status="DOWN",
            revision_number=floatingips.c.revision_number + 1, updated_at=stdattrs.now()))

    def _network_deleted(self, conn: Connection, net: Any) -> None:
        """Unassociated floating IPs go with their external network."""
        for row in conn.execute(select(floatingips).where(
                floatingips.c.floating_network_id == net.id, floatingips.c.fixed_port_id.is_(None))).all():
            self._drop(conn, row)


def _fixed_request(values: dict[str, Any]) -> dict[str, str]:
    wanted = {}
    if values.get("subnet_id") is not None:
        wanted["subnet_id"] = values["subnet_id"]
    if values.get("floating_ip_address") is not None:
        wanted["ip_address"] = values["floating_ip_address"]
    return wanted


def _internal_address(port_id: str, ips: list[tuple[str, str]], fixed: str | None) -> tuple[str, str]:
    """(subnet_id, address) on the port the floating IP will translate to."""
    if fixed:
        if not _v4(fixed):
            raise bad_request(f"Cannot process floating IP association with {fixed}, since that is not an "
                              "IPv4 address")
        for sid, ip in ips:
            if ip == fixed:
                return sid, ip
        raise bad_request(f"Port {port_id} does not have fixed ip {fixed}")
    v4 = [(sid, ip) for sid, ip in ips if _v4(ip)]
    if not v4:
        raise bad_request(f"Cannot add floating IP to port {port_id} that has no fixed IPv4 addresses")
    if len(v4) > 1:
        raise bad_request(f"Port {port_id} has multiple fixed IPv4 addresses.  Must provide a specific IPv4 "
                          "address when assigning a floating IP")
    return v4[0]


def _routers_between(conn: Connection, subnet_id: str, ext_net: str) -> list[tuple[str, str]]:
    """(router_id, interface address) of routers with an interface on the
    subnet and a gateway on the external network."""
    return [(rid, ip) for rid, ip in conn.execute(_ROUTERS_BETWEEN, {"subnet_id": subnet_id, "ext_net": ext_net})]


# Prebuilt statements (building one costs more than running it).
_ROWS = VisibleRows(floatingips, COLUMNS, lambda fip_id: FloatingIPNotFound(floatingip_id=fip_id))
_PORT_DETAILS = select(ports.c.id, *[ports.c[k] for k in PORT_DETAILS]).where(
    ports.c.id.in_(bindparam("ids", expanding=True)))
_INSERT = FastInsert(floatingips)
_V4_SUBNET = select(subnets.c.id).where(subnets.c.network_id == bindparam("net_id"), subnets.c.ip_version == 4).limit(1)
_TAKEN = select(floatingips.c.id).where(
    floatingips.c.fixed_port_id == bindparam("port_id"), floatingips.c.fixed_ip_address == bindparam("fixed"),
    floatingips.c.floating_network_id == bindparam("net_id"), floatingips.c.id != bindparam("fip_id"))
_GATEWAY_IP = select(subnets.c.gateway_ip).where(subnets.c.id == bindparam("subnet_id"))
_LOCK_ROUTER = select(routers.c.id).where(routers.c.id == bindparam("router_id")).with_for_update()
_GW = ports.alias("gw")
_ROUTERS_BETWEEN = (
    select(router_ports.c.router_id, ip_allocations.c.ip_address)
    .join(ip_allocations, ip_allocations.c.port_id == router_ports.c.port_id)
    .join(routers, routers.c.id == router_ports.c.router_id)
    .join(_GW, _GW.c.id == routers.c.gw_port_id)
    .where(router_ports.c.port_type == INTF_OWNER, ip_allocations.c.subnet_id == bindparam("subnet_id"),
           _GW.c.network_id == bindparam("ext_net"))
    .order_by(routers.c.created_at, router_ports.c.router_id))
