"""Ports: MAC and IP allocation, device ownership, address pairs, DHCP
options, binding fields, with Neutron's policy on who may set what."""

from __future__ import annotations

# The service classes' own list() method shadows the builtin in the
# annotations of the methods after it, which therefore say builtins.list.
import builtins
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BindParameter,
    Connection,
    and_,
    bindparam,
    delete,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)

from kaon import errors
from kaon.core import quotas, stdattrs
from kaon.core.access import policy
from kaon.core.context import Context
from kaon.core.l2 import port_extras, port_ips, port_json, port_render, port_rows
from kaon.core.l2.networks import Networks
from kaon.core.l2.port_rows import PortRows
from kaon.core.l2.subnets import Subnets
from kaon.core.list_query import ListQuery
from kaon.core.query import fetch_page, where_filters
from kaon.core.security import security_groups
from kaon.db.core_tables import ip_allocations, networks, port_security_groups, ports, tags
from kaon.db.l3_tables import routers
from kaon.errors import HTTPBadRequest
from kaon.model.port import PORT

if TYPE_CHECKING:  # it imports the router services, which import this module
    from kaon.core.l2.port_pipeline import PortPipeline

PortBound = errors.define("PortBound", errors.InUse,
                          "Unable to complete operation on port {port_id}, port is already bound, "
                          "port type: {vif_type}, old_mac {old_mac}, new_mac {new_mac}.")
ServicePortInUse = errors.define("ServicePortInUse", errors.InUse,
                                 "Port {port_id} cannot be deleted directly via the port API: {reason}.")
DeviceIDNotOwnedByTenant = errors.define(
    "DeviceIDNotOwnedByTenant", errors.Conflict,
    "The following device_id {device_id} is not owned by your tenant or matches another tenants router.")

ROUTER_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip",
                 "network:router_interface_distributed", "network:router_centralized_snat",
                 "network:ha_router_replicated_interface")
# Owners whose device_id must not name another project's router: Neutron's
# ROUTER_INTERFACE_OWNERS, and the gateway too (a member's port claiming to
# be another router's gateway would block that router's deletion).
ROUTER_CLAIMS = frozenset(("network:router_interface", "network:router_gateway",
                           "network:router_interface_distributed", "network:ha_router_replicated_interface",
                           "network:router_ha_interface"))
_ROUTER_PROJECT = select(routers.c.project_id).where(routers.c.id == bindparam("router_id"))
COLUMNS = {name: ports.c[name] for name in (
    "id", "name", "description", "project_id", "network_id", "mac_address", "admin_state_up", "status",
    "device_id", "device_owner", "port_security_enabled", "dns_name", "created_at", "updated_at",
    "revision_number",
)}
COLUMNS.update({"binding:host_id": ports.c.binding_host_id, "binding:vnic_type": ports.c.binding_vnic_type,
                "binding:vif_type": ports.c.binding_vif_type})


# Prebuilt statements (bind parameters, no per-call building) for the paths
# every port request takes.
_PROJECT: BindParameter[str] = bindparam("project")
_VISIBLE = or_(ports.c.project_id == _PROJECT,
               ports.c.network_id.in_(select(networks.c.id).where(networks.c.project_id == _PROJECT)))
PORT_ROW = select(ports).where(ports.c.id == bindparam("port_id"))
PORT_ROW_VISIBLE = PORT_ROW.where(_VISIBLE)
# A port's addresses (kind 1), security groups (2) and tags (3) in one statement.
_PID: BindParameter[str] = bindparam("port_id")
PORT_CHILDREN = union_all(
    select(literal_column("1"), ip_allocations.c.subnet_id, ip_allocations.c.ip_address)
    .where(ip_allocations.c.port_id == _PID),
    select(literal_column("2"), port_security_groups.c.security_group_id, null())
    .where(port_security_groups.c.port_id == _PID),
    select(literal_column("3"), tags.c.tag, null()).where(tags.c.resource_id == _PID),
)

SG_BIND = insert(port_security_groups)


class Ports:
    def __init__(self, nets: Networks, subs: Subnets, cfg: Any, rows: PortRows, pipeline: PortPipeline) -> None:
        self.nets = nets
        self.subs = subs
        self.cfg = cfg
        self.rows = rows
        # What follows a create or an update, in order (kaon.core.l2.port_pipeline).
        self.pipeline = pipeline
        # Called with (conn, port row) before a port is deleted (PortRows.remove).
        self.delete_hooks = rows.delete_hooks

    # -- reads ---------------------------------------------------------
    def visible(self, ctx: Context) -> Any:
        owned_nets = select(networks.c.id).where(networks.c.project_id == ctx.project_id)
        return or_(ports.c.project_id == ctx.project_id, ports.c.network_id.in_(owned_nets))

    def fetch_row(self, ctx: Context, conn: Connection, port_id: str) -> Any:
        if ctx.is_admin:
            row = conn.execute(PORT_ROW, {"port_id": port_id}).first()
        else:
            row = conn.execute(PORT_ROW_VISIBLE, {"port_id": port_id, "project": ctx.project_id}).first()
        if row is None:
            raise errors.PortNotFound(port_id=port_id)
        return row

    def get(self, ctx: Context, conn: Connection, port_id: str) -> dict[str, Any]:
        if ctx.is_admin:
            row = conn.execute(_SHOW_ROW, {"port_id": port_id}).first()
        else:
            row = conn.execute(_SHOW_ROW_VISIBLE, {"port_id": port_id, "project": ctx.project_id}).first()
        if row is None:
            raise errors.PortNotFound(port_id=port_id)
        children = [(kind, port_id, value, ip) for kind, value, ip in conn.execute(PORT_CHILDREN, {"port_id": port_id})]
        return port_render.render([row], children, _ALL_KEYS)[0]

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], bool]:
        clauses = self._list_clauses(ctx, q)
        rows, more = fetch_page(conn, select(*port_render.COLUMNS).where(*clauses), q, COLUMNS, ports.c.id, ports)
        if not rows:
            return [], more
        if q.limit is None and not q.tag_filters and not any(key in _SPECIAL_FILTERS for key in q.filters):
            # Every matching port is on the page: read the children joined
            # to the same selection (one statement, no id lists). (Filters
            # with sub-selects of these tables take the id lists instead.)
            children = conn.execute(_children_joined(clauses)).all()
        else:
            children = _children_of_ids(conn, [r[0] for r in rows])
        return port_render.render(rows, children, port_render.keys_for(policy.current().hidden(ctx, PORT), ())), more

    json_keys = staticmethod(port_render.keys_for)

    def list_json(self, ctx: Context, conn: Connection, q: ListQuery,
                  keys: tuple[str, ...]) -> tuple[builtins.list[str], builtins.list[str], bool] | None:
        """:meth:`list` for the HTTP answer: each port's JSON text, built by
        the database (:mod:`kaon.core.l2.port_json`), with only ``keys``; the
        ports' ids; whether more follow. None where the database cannot."""
        if not port_json.supported(conn.dialect.name):
            return None
        rows, more = fetch_page(conn, select(ports.c.id, port_json.column(conn.dialect.name, keys))
                                .where(*self._list_clauses(ctx, q)), q, COLUMNS, ports.c.id, ports)
        return [r[1] for r in rows], [r[0] for r in rows], more

    def show_json(self, ctx: Context, conn: Connection, port_id: str, keys: tuple[str, ...]) -> str | None:
        """:meth:`get` for the HTTP answer: the port's JSON text built by the
        database, one statement (PortNotFound when not visible); None where
        the database cannot."""
        if not port_json.supported(conn.dialect.name):
            return None
        stmt = port_json.show_statement(conn.dialect.name, keys, ctx.is_admin)
        text = conn.execute(stmt, {"port_id": port_id, "project": ctx.project_id}).scalar()
        if text is None:
            raise errors.PortNotFound(port_id=port_id)
        return str(text)

    def many_json(self, conn: Connection, port_ids: builtins.list[str],
                  keys: tuple[str, ...]) -> builtins.list[str] | None:
        """A bulk create's read-back for the HTTP answer: the ports' JSON texts
        built by the database, as an admin sees them, in the order of ``port_ids``."""
        if not port_json.supported(conn.dialect.name):
            return None
        stmt = port_json.many_statement(conn.dialect.name, keys)
        texts: dict[str, str] = {}
        for start in range(0, len(port_ids), 300):
            texts.update(conn.execute(stmt, {"ids": port_ids[start : start + 300]}).all())
        return [texts[i] for i in port_ids if i in texts]

    def _list_clauses(self, ctx: Context, q: ListQuery) -> builtins.list[Any]:
        clauses = [] if ctx.is_admin else [self.visible(ctx)]
        clauses.extend(where_filters(q, COLUMNS, _SPECIAL_FILTERS, ports.c.id))
        return clauses

    # -- create --------------------------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        port_id = self._create(ctx, conn, values, None)
        self.pipeline.created(conn, [port_id])
        return port_id

    def create_many(self, ctx: Context, conn: Connection,
                    items: builtins.list[dict[str, Any]]) -> builtins.list[str]:
        """A bulk create: each item as :meth:`create` would, in order, with
        what they share (network, quota usage, default group, subnets) read
        once, security group bindings inserted together and what follows a
        create run once for all (each network scheduled once)."""
        memo: dict[str, Any] = {"nets": {}, "quota": {}, "default_sg": {}, "subnets": {}, "sg_rows": []}
        ids = [self._create(ctx, conn, v, memo) for v in items]
        if memo["sg_rows"]:
            conn.execute(SG_BIND, memo["sg_rows"])
        self.pipeline.created(conn, ids)
        return ids

    def _network_for_create(self, ctx: Context, conn: Connection, net_id: str) -> tuple[Any, bool]:
        net = self.nets.fetch_row(ctx, conn, net_id)
        net_owner = ctx.is_admin or net.project_id == ctx.project_id
        if not net_owner and not self._shared(conn, net.id, ctx):
            raise errors.NetworkNotFound(net_id=net.id)
        return net, net_owner

    def _create(self, ctx: Context, conn: Connection, values: dict[str, Any], memo: dict[str, Any] | None) -> str:
        if memo is None:
            net, net_owner = self._network_for_create(ctx, conn, values["network_id"])
        else:
            found = memo["nets"].get(values["network_id"])
            if found is None:
                found = memo["nets"][values["network_id"]] = self._network_for_create(ctx, conn, values["network_id"])
            net, net_owner = found
        project = stdattrs.owner_project(ctx, values)
        _check_router_claim(ctx, conn, values.get("device_owner", ""), values.get("device_id", ""), project)
        if memo is None:
            quotas.check(conn, self.cfg, project, "port", 1)
        else:
            quotas.check_counted(conn, self.cfg, project, "port", 1, memo["quota"])
        port_security = values.get("port_security_enabled", net.port_security_enabled)
        row = port_rows.new_row(project, net.id, values, port_security)
        row["mac_address"] = self.rows.insert(conn, row, values.get("mac_address"))
        pairs = port_extras.address_pairs(values.get("allowed_address_pairs"), row["mac_address"], self.cfg)
        port_extras.check_port_security(port_security, pairs, values.get("security_groups"))
        sgs = security_groups.groups_for_new_port(ctx, conn, project, row["device_owner"],
                                                  values.get("security_groups"), port_security,
                                                  None if memo is None else memo["default_sg"])
        opts = port_extras.dhcp_opts(values.get("extra_dhcp_opts"))
        if pairs or opts:
            conn.execute(update(ports).where(ports.c.id == row["id"]).values(
                allowed_address_pairs=pairs, extra_dhcp_opts=opts))
        port_ips.allocate(ctx, conn, port_ips.PortRef(row["id"], net.id, row["mac_address"], row["device_owner"]),
                          values.get("fixed_ips"), None if memo is None else memo["subnets"])
        bindings = [{"port_id": row["id"], "security_group_id": sg} for sg in sgs]
        if memo is not None:
            memo["sg_rows"].extend(bindings)
        elif bindings:
            conn.execute(SG_BIND, bindings)
        return row["id"]

    def _shared(self, conn: Connection, net_id: str, ctx: Context) -> bool:
        from kaon.db.core_tables import network_rbacs

        return conn.execute(select(network_rbacs.c.id).where(
            network_rbacs.c.object_id == net_id, network_rbacs.c.action == "access_as_shared",
            network_rbacs.c.target_project.in_(("*", ctx.project_id)))).first() is not None


    # -- update / delete -----------------------------------------------
    # New ports on one network share their policy target (a bulk create reads it once).
    policy_parent = "network_id"

    def policy_target(self, ctx: Context, conn: Connection, values: dict[str, Any] | None,
                      port_id: str | None) -> dict[str, Any]:
        """What the port rules look at besides the port: its network's owner
        (``rule:network_owner``) and whether the network is shared with the
        caller (``rule:shared``). A network or port the caller cannot see: 404."""
        if port_id is None:
            assert values is not None
            net, net_owner = self._network_for_create(ctx, conn, values["network_id"])
            project = stdattrs.named_project(ctx, values)
        else:
            row = self.fetch_row(ctx, conn, port_id)
            net = conn.execute(select(networks.c.id, networks.c.project_id)
                               .where(networks.c.id == row.network_id)).one()
            net_owner, project = ctx.is_admin or net.project_id == ctx.project_id, row.project_id
        return {"project_id": project, "tenant_id": project, "network:tenant_id": net.project_id,
                "networks:shared": net_owner or self._shared(conn, net.id, ctx)}

    def writable_row(self, ctx: Context, conn: Connection, port_id: str, action: str) -> Any:
        """The port, after ``<action>_port`` (update: the port's project;
        delete: also the network's owner)."""
        row = self.fetch_row(ctx, conn, port_id)
        policy.current().enforce(ctx, f"{action}_port", self.policy_target(ctx, conn, None, port_id))
        return row

    def update(self, ctx: Context, conn: Connection, port_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row = self.writable_row(ctx, conn, port_id, "update")
        if check is not None:
            check(row.revision_number)
        if "device_id" in changes or "device_owner" in changes:
            _check_router_claim(ctx, conn, changes.get("device_owner", row.device_owner),
                                changes.get("device_id", row.device_id), row.project_id)
        out: dict[str, Any] = {k: changes[k] for k in ("name", "description", "admin_state_up", "device_id",
                                                       "device_owner", "dns_name") if k in changes}
        mac = row.mac_address
        if "mac_address" in changes and changes["mac_address"] != row.mac_address:
            if row.binding_vif_type not in ("unbound", "binding_failed"):
                raise PortBound(port_id=port_id, vif_type=row.binding_vif_type, old_mac=row.mac_address,
                                new_mac=changes["mac_address"])
            if not self.rows.mac_free(conn, row.network_id, changes["mac_address"]):
                raise errors.MacAddressInUse(net_id=row.network_id, mac=changes["mac_address"])
            mac = out["mac_address"] = changes["mac_address"]
        for key, col in (("binding:host_id", "binding_host_id"), ("binding:vnic_type", "binding_vnic_type"),
                         ("binding:profile", "binding_profile")):
            if key in changes:
                out[col] = changes[key] if key != "binding:profile" else (changes[key] or {})
        security = changes.get("port_security_enabled", row.port_security_enabled)
        out["port_security_enabled"] = security
        pairs = row.allowed_address_pairs
        if "allowed_address_pairs" in changes:
            pairs = out["allowed_address_pairs"] = port_extras.address_pairs(
                changes["allowed_address_pairs"], mac, self.cfg)
        requested_sgs = (changes["security_groups"] or []) if "security_groups" in changes else None
        port_extras.check_port_security(security, pairs, requested_sgs, security_groups.bound_groups(conn, port_id))
        if requested_sgs is not None:
            sgs = security_groups.groups_for_port_update(ctx, conn, row.project_id,
                                                         out.get("device_owner", row.device_owner), requested_sgs)
            conn.execute(delete(port_security_groups).where(port_security_groups.c.port_id == port_id))
            for sg in sgs:
                conn.execute(insert(port_security_groups).values(port_id=port_id, security_group_id=sg))
        if "extra_dhcp_opts" in changes:
            out["extra_dhcp_opts"] = port_extras.merge_dhcp_opts(row.extra_dhcp_opts, changes["extra_dhcp_opts"])
        ref = port_ips.PortRef(row.id, row.network_id, mac, out.get("device_owner", row.device_owner))
        if mac != row.mac_address:
            port_ips.readdress_eui64(conn, ref)
        if "fixed_ips" in changes:
            port_ips.reallocate(ctx, conn, ref, changes["fixed_ips"])
        conn.execute(update(ports).where(ports.c.id == port_id).values(stdattrs.bump(out, row.revision_number)))
        self.pipeline.updated(conn, port_id, set(changes))

    def delete(self, ctx: Context, conn: Connection, port_id: str, check: Any = None) -> None:
        row = self.writable_row(ctx, conn, port_id, "delete")
        if check is not None:
            check(row.revision_number)
        if row.device_owner in ROUTER_OWNERS:
            raise ServicePortInUse(port_id=port_id,
                                   reason=f"has device owner {row.device_owner}")
        self.remove(conn, row)

    def remove(self, conn: Connection, row: Any) -> None:
        """Delete a port with no policy check: for the service that owns it
        (a router's gateway, a floating IP's port) and for :meth:`delete`."""
        self.rows.remove(conn, row)


def _check_router_claim(ctx: Context, conn: Connection, owner: str, device_id: str, project: str) -> None:
    """Neutron's _enforce_device_owner_not_router_intf_or_device_id: a
    non-admin may not make a port another project's router port. A device
    id that names no router is allowed (it may be anything)."""
    if ctx.is_admin or owner not in ROUTER_CLAIMS or not device_id:
        return
    router_project = conn.execute(_ROUTER_PROJECT, {"router_id": device_id}).scalar()
    if router_project is not None and router_project != project:
        raise DeviceIDNotOwnedByTenant(device_id=device_id)


_ALL_KEYS = port_render.keys_for((), ())
_SHOW_ROW = select(*port_render.COLUMNS).where(ports.c.id == bindparam("port_id"))
_SHOW_ROW_VISIBLE = _SHOW_ROW.where(_VISIBLE)


def _children_of(port_ids: Any) -> Any:
    """(kind, port id, value, address) rows of the given ports: addresses
    (kind 1), security groups (2), tags (3)."""
    return union_all(
        select(literal_column("1"), ip_allocations.c.port_id, ip_allocations.c.subnet_id,
               ip_allocations.c.ip_address).where(ip_allocations.c.port_id.in_(port_ids)),
        select(literal_column("2"), port_security_groups.c.port_id, port_security_groups.c.security_group_id,
               null()).where(port_security_groups.c.port_id.in_(port_ids)),
        select(literal_column("3"), tags.c.resource_id, tags.c.tag, null()).where(tags.c.resource_id.in_(port_ids)),
    )


def _children_joined(clauses: list[Any]) -> Any:
    """:func:`_children_of` for the ports matching ``clauses``, by joins."""
    return union_all(*[
        select(literal_column(kind), col, value, extra).select_from(table.join(ports, ports.c.id == col))
        .where(*clauses)
        for kind, table, col, value, extra in (
            ("1", ip_allocations, ip_allocations.c.port_id, ip_allocations.c.subnet_id, ip_allocations.c.ip_address),
            ("2", port_security_groups, port_security_groups.c.port_id, port_security_groups.c.security_group_id,
             null()),
            ("3", tags, tags.c.resource_id, tags.c.tag, null()),
        )
    ])


_CHILDREN_OF_IDS = _children_of(bindparam("ids", expanding=True))


def _children_of_ids(conn: Connection, ids: list[str]) -> list[Any]:
    out: list[Any] = []
    # 300 ids x 3 branches stays under SQLite's variable limit.
    for start in range(0, len(ids), 300):
        out.extend(conn.execute(_CHILDREN_OF_IDS, {"ids": ids[start : start + 300]}))
    return out


def _fixed_ips_filter(values: list[Any]) -> Any:
    """``?fixed_ips=ip_address=A&fixed_ips=subnet_id=S``: values of one key
    OR, different keys AND, each matched by any of the port's addresses."""
    by_key: dict[str, list[str]] = {}
    for raw in values:
        key, _, val = str(raw).partition("=")
        if key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise HTTPBadRequest(msg=f"{key} is invalid attribute for filtering fixed_ips")
        by_key.setdefault(key, []).append(val)
    clauses = []
    for key, vals in by_key.items():
        if key == "ip_address_substr":
            col = or_(*[ip_allocations.c.ip_address.contains(v, autoescape=True) for v in vals])
        else:
            col = ip_allocations.c[key].in_(vals)
        clauses.append(ports.c.id.in_(select(ip_allocations.c.port_id).where(col)))
    return and_(*clauses)


# List filters that are not columns of ``ports``: sub-selects of its child tables.
_SPECIAL_FILTERS = {
    "fixed_ips": _fixed_ips_filter,
    "ip_address": lambda vals: ports.c.id.in_(
        select(ip_allocations.c.port_id).where(ip_allocations.c.ip_address.in_(vals))),
    "subnet_id": lambda vals: ports.c.id.in_(
        select(ip_allocations.c.port_id).where(ip_allocations.c.subnet_id.in_(vals))),
    "security_groups": lambda vals: ports.c.id.in_(
        select(port_security_groups.c.port_id).where(port_security_groups.c.security_group_id.in_(vals))),
}
