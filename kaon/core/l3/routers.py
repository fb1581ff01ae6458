"""Routers: create/list/show/update/delete, the external gateway
(router, ext-gw-mode) and extra routes (extraroute, extraroute-atomic).
Interfaces live in :mod:`kaon.core.l3.router_interfaces`.

A router is visible to its project and to admins only; anybody else gets
404. The gateway is a port on the external network owned by nobody
(project ``''``) with ``device_id`` = the router; it is made by the ports
service inside the same transaction, so IPAM and MAC rules are shared.

Concurrency: every write locks the router row first (``SELECT ... FOR
UPDATE`` on PostgreSQL; SQLite's write transaction already serialises),
so a gateway change, an interface change and a floating IP association
through this router never interleave.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import netaddr
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from kaon import errors
from kaon.core import quotas, stdattrs
from kaon.core.access import policy
from kaon.core.agents import availability_zones
from kaon.core.agents.scheduling import Scheduler
from kaon.core.context import Context
from kaon.core.l2.networks import EXTERNAL, Networks
from kaon.core.l2.ports import Ports
from kaon.core.list_query import ListQuery
from kaon.core.visible_rows import VisibleRows
from kaon.db.core_tables import ip_allocations, network_rbacs, ports, subnets, tags
from kaon.db.fast_insert import FastInsert
from kaon.db.l3_tables import floatingips, router_ports, router_routes, routers
from kaon.ml2.binding import utcnow
from kaon.model import attrs
from kaon.model import validators as v
from kaon.model.port import PORT
from kaon.model.router import routes as convert_routes

if TYPE_CHECKING:  # it imports this module
    from kaon.core.l3.l3_binding import RouterPortHosts

GW_OWNER = "network:router_gateway"
INTF_OWNER = "network:router_interface"

RouterNotFound = errors.define("RouterNotFound", errors.NotFound, "Router {router_id} could not be found")
RouterInUse = errors.define("RouterInUse", errors.InUse, "Router {router_id} {reason}")
RouterExternalGatewayInUseByFloatingIp = errors.define(
    "RouterExternalGatewayInUseByFloatingIp", errors.InUse,
    "Gateway cannot be updated for router {router_id}, since a gateway to external network {net_id} "
    "is required by one or more floating IPs.")
# kaon's L3 agent runs each router in one namespace on one node: there is no
# keepalived/VRRP pair to make, so an HA router is refused rather than faked.
HARouterNotSupported = errors.define(
    "HARouterNotSupported", errors.BadRequest,
    "HA routers are not supported: kaon runs each router on a single L3 agent (no keepalived/VRRP); "
    "ha must be false")
InvalidRoutes = errors.define("InvalidRoutes", errors.InvalidInput, "Invalid format for routes: {routes}, {reason}")

COLUMNS = {name: routers.c[name] for name in (
    "id", "name", "description", "project_id", "admin_state_up", "status", "created_at", "updated_at",
    "revision_number",
)}

quotas.register("router", quotas.table_counter(routers))


def bad_request(msg: str) -> errors.KaonError:
    return errors.BadRequest(resource="router", msg=msg)


def chunks(ids: list[str]) -> Iterator[list[str]]:
    # A short IN list per batch keeps SQLite under its variable limit.
    for start in range(0, len(ids), 900):
        yield ids[start : start + 900]


def is_external(conn: Connection, net_id: str) -> bool:
    return conn.execute(_IS_EXTERNAL, {"net_id": net_id}).first() is not None


def service_port(ports_service: Ports, conn: Connection, project: str, values: dict[str, Any]) -> str:
    """Create a port the L3 code owns (gateway, interface, floating IP) with
    the ports service's own validation, IPAM and MAC allocation."""
    checked = attrs.check_post(PORT, {**values, "project_id": project, "name": ""})
    return ports_service.create(Context.admin(project), conn, checked)


def port_ips(conn: Connection, port_id: str) -> list[tuple[str, str]]:
    """(subnet_id, ip_address) of a port."""
    return [(s, ip) for s, ip in conn.execute(_PORT_IPS, {"port_id": port_id})]


# A service's ``list`` method shadows the builtin in annotations inside its
# class body, so the methods' signatures use these names.
Items = list[dict[str, Any]]
Rows = list[Any]
Ids = list[str]
Routes = list[dict[str, str]]  # routes, and fixed-IP requests
Nets = list[netaddr.IPNetwork]


# Prebuilt statements (building one costs more than running it).
_IS_EXTERNAL = select(network_rbacs.c.id).where(
    network_rbacs.c.object_id == bindparam("net_id"), network_rbacs.c.action == EXTERNAL).limit(1)
_PORT_IPS = select(ip_allocations.c.subnet_id, ip_allocations.c.ip_address).where(
    ip_allocations.c.port_id == bindparam("port_id"))
_ROWS = VisibleRows(routers, COLUMNS, lambda router_id: RouterNotFound(router_id=router_id))
_GW_NETS = select(ports.c.id, ports.c.network_id).where(ports.c.id.in_(bindparam("ids", expanding=True)))
_GW_IPS = select(ip_allocations.c.port_id, ip_allocations.c.subnet_id, ip_allocations.c.ip_address).where(
    ip_allocations.c.port_id.in_(bindparam("ids", expanding=True)))
_INSERT = FastInsert(routers)
_UPDATE = update(routers).where(routers.c.id == bindparam("r_id"))  # SET: the parameters' other keys
_PORT_ROW = select(ports).where(ports.c.id == bindparam("port_id"))
_GATEWAYS = select(subnets.c.gateway_ip).where(subnets.c.network_id == bindparam("net_id"),
                                               subnets.c.gateway_ip.is_not(None))
_SUBNETS = select(subnets).where(subnets.c.network_id == bindparam("net_id"))
_INSERT_ROUTER_PORT = FastInsert(router_ports)
_ROUTER_SUBNETS = (select(ip_allocations.c.subnet_id, ports.c.device_owner)
                   .join(ports, ports.c.id == ip_allocations.c.port_id)
                   .join(router_ports, router_ports.c.port_id == ports.c.id)
                   .where(router_ports.c.router_id == bindparam("router_id")))
_CIDRS = select(subnets.c.id, subnets.c.cidr).where(subnets.c.id.in_(bindparam("ids", expanding=True)))
_ROUTES = select(router_routes.c.router_id, router_routes.c.destination, router_routes.c.nexthop).where(
    router_routes.c.router_id.in_(bindparam("ids", expanding=True))).order_by(
    router_routes.c.destination, router_routes.c.nexthop)


class Routers:
    def __init__(self, nets: Networks, ports_service: Ports, cfg: Any, scheduler: Scheduler,
                 router_hosts: RouterPortHosts) -> None:
        self.nets = nets
        self.ports = ports_service
        self.cfg = cfg
        self.scheduler = scheduler
        self.router_hosts = router_hosts

    # -- reads ---------------------------------------------------------
    def fetch_row(self, ctx: Context, conn: Connection, router_id: str, lock: bool = False) -> Any:
        return _ROWS.fetch_row(ctx, conn, router_id, lock)

    def writable_row(self, ctx: Context, conn: Connection, router_id: str, action: str) -> Any:
        row = self.fetch_row(ctx, conn, router_id, lock=True)
        # "update"/"delete" (also what TagRoutes passes) or a full action name.
        policy.enforce_owned(ctx, action if "_" in action else f"{action}_router", row.project_id)
        return row

    def get(self, ctx: Context, conn: Connection, router_id: str) -> dict[str, Any]:
        return self._render(conn, [self.fetch_row(ctx, conn, router_id)])[0]

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[Items, bool]:
        rows, more = _ROWS.page(ctx, conn, q)
        return self._render(conn, rows), more

    def _render(self, conn: Connection, rows: Rows) -> Items:
        if not rows:
            return []
        ids = [r.id for r in rows]
        gw_ids = [r.gw_port_id for r in rows if r.gw_port_id]
        gw_net: dict[str, str] = {}
        gw_ips: dict[str, Routes] = {}
        for chunk in chunks(gw_ids):
            gw_net.update(conn.execute(_GW_NETS, {"ids": chunk}).all())
            for pid, sid, ip in conn.execute(_GW_IPS, {"ids": chunk}):
                gw_ips.setdefault(pid, []).append({"subnet_id": sid, "ip_address": ip})
        route_map: dict[str, Routes] = {}
        for chunk in chunks(ids):
            for rid, dest, hop in conn.execute(_ROUTES, {"ids": chunk}):
                route_map.setdefault(rid, []).append({"destination": dest, "nexthop": hop})
        tag_map = stdattrs.tags_for(conn, ids)
        zones, hints = availability_zones.router_azs(conn, ids), availability_zones.router_hints(conn, ids)
        out = []
        for row in rows:
            item = stdattrs.render(row, tag_map.get(row.id, []))
            gateway = None
            if row.gw_port_id and row.gw_port_id in gw_net:
                fixed = sorted(gw_ips.get(row.gw_port_id, []),
                               key=lambda f: (netaddr.IPAddress(f["ip_address"]).version, f["ip_address"]))
                gateway = {"network_id": gw_net[row.gw_port_id], "enable_snat": row.enable_snat,
                           "external_fixed_ips": fixed}
            item.update(admin_state_up=row.admin_state_up, status=row.status, external_gateway_info=gateway,
                        routes=route_map.get(row.id, []), availability_zone_hints=hints.get(row.id, []),
                        availability_zones=zones.get(row.id, []), ha=False)
            out.append(item)
        return out

    # -- create / update / delete --------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        _check_ha(values.pop("ha", False))
        info = values.pop("external_gateway_info", None)
        project = stdattrs.owner_project(ctx, values)
        quotas.check(conn, self.cfg, project, "router", 1)
        row = stdattrs.new_row(project, values)
        row.update(admin_state_up=values["admin_state_up"], status="ACTIVE", gw_port_id=None,
                   enable_snat=self.cfg.default.enable_snat_by_default)
        _INSERT.run(conn, row)
        if info is not None:
            self._set_gateway(ctx, conn, self.fetch_row(Context.admin(), conn, row["id"]), info)
        # Zone hints, then an L3 agent; a scheduled router's ports follow it (Scheduler).
        availability_zones.set_router_hints(conn, row["id"], values.get("availability_zone_hints"))
        self.scheduler.schedule_router(conn, row["id"], utcnow())
        return row["id"]

    def update(self, ctx: Context, conn: Connection, router_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row = self.writable_row(ctx, conn, router_id, "update")
        if check is not None:
            check(row.revision_number)
        _check_ha(changes.pop("ha", False))
        if "external_gateway_info" in changes:
            self._set_gateway(ctx, conn, row, changes["external_gateway_info"])
        if "routes" in changes:
            self._set_routes(conn, row, changes["routes"])
        plain: dict[str, Any] = {k: changes[k] for k in ("name", "description", "admin_state_up") if k in changes}
        conn.execute(_UPDATE, {"r_id": router_id, **stdattrs.bump(plain, row.revision_number)})

    def touch(self, conn: Connection, row: Any) -> None:
        """A change through an action (interfaces, routes) is a change of the router."""
        conn.execute(_UPDATE, {"r_id": row.id, **stdattrs.bump({}, row.revision_number)})
        self.router_hosts.sync_router(conn, row.id)  # an interface adopted by port moves to the router's host

    def delete(self, ctx: Context, conn: Connection, router_id: str, check: Any = None) -> None:
        row = self.writable_row(ctx, conn, router_id, "delete")
        if check is not None:
            check(row.revision_number)
        interface = conn.execute(select(router_ports.c.port_id).where(
            router_ports.c.router_id == router_id, router_ports.c.port_type != GW_OWNER).limit(1)).first()
        if interface is not None:
            raise RouterInUse(router_id=router_id, reason="still has ports")
        gw = self._gateway_port(conn, row)
        if gw is not None:
            self._remove_gateway(conn, row, gw)
        conn.execute(delete(routers).where(routers.c.id == router_id))
        conn.execute(delete(tags).where(tags.c.resource_id == router_id))

    # -- gateway -------------------------------------------------------
    def _gateway_port(self, conn: Connection, router: Any) -> Any:
        if not router.gw_port_id:
            return None
        return conn.execute(_PORT_ROW, {"port_id": router.gw_port_id}).first()

    def _set_gateway(self, ctx: Context, conn: Connection, router: Any, info: dict[str, Any] | None) -> None:
        """Neutron's _update_router_gw_info: same network and new addresses
        -> re-address the port; another network -> replace the port; None
        -> remove it."""
        ext_ips = info.get("external_fixed_ips") if info else None
        net_id = self._gateway_network(ctx, conn, info["network_id"], ext_ips) if info else None
        snat = info["enable_snat"] if info and "enable_snat" in info else self.cfg.default.enable_snat_by_default
        conn.execute(_UPDATE, {"r_id": router.id, "enable_snat": snat})
        gw = self._gateway_port(conn, router)
        if gw is not None and gw.network_id == net_id:
            if ext_ips and _addresses_changed(port_ips(conn, gw.id), ext_ips):
                self.ports.update(Context.admin(), conn, gw.id, {"fixed_ips": ext_ips})
            return
        if gw is not None:
            self._remove_gateway(conn, router, gw)
        if net_id is not None:
            self._add_gateway(conn, router, net_id, ext_ips)

    def _gateway_network(self, ctx: Context, conn: Connection, net_id: str,
                         ext_ips: Routes | None) -> str:
        net = self.nets.fetch_row(ctx, conn, net_id)
        if not is_external(conn, net.id):
            raise bad_request(f"Network {net.id} is not an external network")
        gateways = set(conn.execute(_GATEWAYS, {"net_id": net.id}).scalars())
        for ext_ip in ext_ips or []:
            if ext_ip.get("ip_address") in gateways:
                raise bad_request(f"External IP {ext_ip['ip_address']} is the same as the gateway IP")
        return str(net.id)

    def _add_gateway(self, conn: Connection, router: Any, net_id: str,
                     ext_ips: Routes | None) -> None:
        subs = [*conn.execute(_SUBNETS, {"net_id": net_id}).all()]
        self.check_subnets(conn, router.id, subs, include_gateway=True)
        values: dict[str, Any] = {"network_id": net_id, "device_id": router.id, "device_owner": GW_OWNER,
                                  "admin_state_up": True}
        if ext_ips:
            values["fixed_ips"] = ext_ips
        port_id = service_port(self.ports, conn, "", values)
        _INSERT_ROUTER_PORT.run(conn, {"port_id": port_id, "router_id": router.id, "port_type": GW_OWNER})
        conn.execute(_UPDATE, {"r_id": router.id, "gw_port_id": port_id})

    def _remove_gateway(self, conn: Connection, router: Any, gw: Any) -> None:
        in_use = conn.execute(select(floatingips.c.id).where(floatingips.c.router_id == router.id).limit(1)).first()
        if in_use is not None:
            raise RouterExternalGatewayInUseByFloatingIp(router_id=router.id, net_id=gw.network_id)
        conn.execute(update(routers).where(routers.c.id == router.id).values(gw_port_id=None))
        self.ports.remove(conn, gw)

    def check_subnets(self, conn: Connection, router_id: str, new_subnets: Rows,
                      include_gateway: bool = False) -> None:
        """A router has one port per subnet, and (Neutron's rule) its
        interface subnets -- or, for a new gateway, its gateway subnets --
        may not overlap."""
        new_ids = {s.id for s in new_subnets}
        compare: Ids = []
        for sid, owner in conn.execute(_ROUTER_SUBNETS, {"router_id": router_id}):
            if sid in new_ids:
                raise bad_request(f"Router already has a port on subnet {sid}")
            if include_gateway == (owner == GW_OWNER):
                compare.append(sid)
        if not compare:
            return
        for old in conn.execute(_CIDRS, {"ids": compare}):
            old_net = netaddr.IPNetwork(old.cidr)
            for new in new_subnets:
                new_net = netaddr.IPNetwork(new.cidr)
                if new_net.version == old_net.version and new_net.first <= old_net.last \
                        and old_net.first <= new_net.last:
                    raise bad_request(f"Cidr {new.cidr} of subnet {new.id} overlaps with cidr {old.cidr} "
                                      f"of subnet {old.id}")

    # -- extra routes --------------------------------------------------
    def routes_of(self, conn: Connection, router_id: str) -> Routes:
        return [{"destination": d, "nexthop": h} for d, h in conn.execute(
            select(router_routes.c.destination, router_routes.c.nexthop)
            .where(router_routes.c.router_id == router_id))]

    def _set_routes(self, conn: Connection, router: Any, wanted: Routes) -> None:
        """Every nexthop must sit on a subnet the router is connected to and
        not be one of the router's own addresses."""
        cidrs: Nets = []
        own: set[str] = set()
        for cidr, ip in conn.execute(
                select(subnets.c.cidr, ip_allocations.c.ip_address)
                .join(ip_allocations, ip_allocations.c.subnet_id == subnets.c.id)
                .join(router_ports, router_ports.c.port_id == ip_allocations.c.port_id)
                .where(router_ports.c.router_id == router.id)):
            cidrs.append(netaddr.IPNetwork(cidr))
            own.add(ip)
        for route in wanted:
            hop = netaddr.IPAddress(route["nexthop"])
            if not any(hop in c for c in cidrs):
                raise InvalidRoutes(routes=wanted, reason="the nexthop is not connected with router")
            if route["nexthop"] in own:
                raise InvalidRoutes(routes=wanted, reason="the nexthop is used by router")
        quotas.check(conn, self.cfg, router.project_id, "router_route", len(wanted))
        conn.execute(delete(router_routes).where(router_routes.c.router_id == router.id))
        for route in wanted:
            conn.execute(insert(router_routes).values(router_id=router.id, **route))

    def change_routes(self, ctx: Context, conn: Connection, router_id: str, body: Any, add: bool) -> None:
        """``add_extraroutes`` / ``remove_extraroutes``: merge with (or take
        away from) the current set in one transaction; removing a route that
        is not there is not an error."""
        row = self.writable_row(ctx, conn, router_id, "add_extraroutes" if add else "remove_extraroutes")
        given = _routes_body(body)
        current = self.routes_of(conn, router_id)
        if add:
            wanted = current + [r for r in given if r not in current]
        else:
            wanted = [r for r in current if r not in given]
        self._set_routes(conn, row, wanted)
        self.touch(conn, row)


def _check_ha(ha: bool) -> None:
    if ha:
        raise HARouterNotSupported()


def _addresses_changed(current: list[tuple[str, str]], wanted: list[dict[str, str]]) -> bool:
    """Neutron's _check_for_external_ip_change: compare only what was given."""
    if {w["subnet_id"] for w in wanted if w.get("subnet_id")} != {s for s, _ in current}:
        return True
    return {w["ip_address"] for w in wanted if w.get("ip_address")} != {ip for _, ip in current}


def _routes_body(body: Any) -> list[dict[str, str]]:
    if not isinstance(body, dict) or not isinstance(body.get("router"), dict) \
            or set(body["router"]) != {"routes"}:
        raise errors.HTTPBadRequest(msg="Body must be {\"router\": {\"routes\": [...]}}")
    try:
        return convert_routes(body["router"]["routes"])
    except v.InvalidValue as exc:
        raise errors.InvalidInput(error_message=f"Invalid input for routes. Reason: {exc}") from None
