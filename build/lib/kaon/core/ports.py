"""Ports: MAC and IP allocation, device ownership, address pairs, DHCP
options, binding fields, with Neutron's policy on who may set what."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    String,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    insert,
    literal_column,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError

from kaon import errors
from kaon.api.context import Context
from kaon.api.listing import ListQuery
from kaon.core import quotas, stdattrs
from kaon.core.l2 import port_extras, port_ips, port_json
from kaon.core.security import security_groups
from kaon.core.l2.networks import Networks
from kaon.core.query import fetch_page, where_filters
from kaon.core.l2.subnets import Subnets
from kaon.db.core_tables import ip_allocations, networks, port_security_groups, ports, tags
from kaon.db.fast_insert import FastInsert
from kaon.db.l3_tables import routers
from kaon.model.attrs import HTTPBadRequest
from kaon.model.port import PORT

PortBound = errors.define("PortBound", errors.InUse,
                          "Unable to complete operation on port {port_id}, port is already bound, "
                          "port type: {vif_type}, old_mac {old_mac}, new_mac {new_mac}.")
ServicePortInUse = errors.define("ServicePortInUse", errors.InUse,
                                 "Port {port_id} cannot be deleted directly via the port API: {reason}.")
DeviceIDNotOwnedByTenant = errors.define(
    "DeviceIDNotOwnedByTenant", errors.Conflict,
    "The following device_id {device_id} is not owned by your tenant or matches another tenants router.")
MacGenerationFailure = errors.define("MacAddressGenerationFailure", errors.ServiceUnavailable,
                                     "Unable to generate unique mac on network {net_id}.")

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
_PROJECT = bindparam("project")
_VISIBLE = or_(ports.c.project_id == _PROJECT,
               ports.c.network_id.in_(select(networks.c.id).where(networks.c.project_id == _PROJECT)))
PORT_ROW = select(ports).where(ports.c.id == bindparam("port_id"))
PORT_ROW_VISIBLE = PORT_ROW.where(_VISIBLE)
# A port's addresses (kind 1), security groups (2) and tags (3) in one statement.
_PID = bindparam("port_id")
PORT_CHILDREN = union_all(
    select(literal_column("1"), ip_allocations.c.subnet_id, ip_allocations.c.ip_address)
    .where(ip_allocations.c.port_id == _PID),
    select(literal_column("2"), port_security_groups.c.security_group_id, null())
    .where(port_security_groups.c.port_id == _PID),
    select(literal_column("3"), tags.c.tag, null()).where(tags.c.resource_id == _PID),
)

MAC_TAKEN = select(ports.c.id).where(ports.c.network_id == bindparam("net_id"),
                                     ports.c.mac_address == bindparam("mac"))
PORT_INSERT = FastInsert(ports, unique=("network_id", "mac_address"))
SG_BIND = insert(port_security_groups)


class Ports:
    def __init__(self, nets: Networks, subs: Subnets, cfg: Any) -> None:
        self.nets = nets
        self.subs = subs
        self.cfg = cfg
        base = cfg.default.base_mac
        self.base_mac = [int(p, 16) for p in base.split(":")]
        # Called with (conn, port row) before a port is deleted, in the same
        # transaction: other services drop what refers to the port (floating
        # IP associations ...). Registered once at start-up.
        self.delete_hooks: list[Callable[[Connection, Any], None]] = []
        # Called with (conn, port id) after a port is created, and with (conn,
        # port id, changed attribute names) after an update, in the same
        # transaction: port binding and DHCP scheduling (kaon.core.agents.agents.WriteHooks).
        self.create_hooks: list[Callable[[Connection, str], None]] = []
        self.update_hooks: list[Callable[[Connection, str, set[str]], None]] = []

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
        row = self.fetch_row(ctx, conn, port_id)
        ips: list[dict[str, str]] = []
        sgs: list[str] = []
        tag_list: list[str] = []
        for kind, value, ip in conn.execute(PORT_CHILDREN, {"port_id": port_id}):
            if kind == 1:
                ips.append({"subnet_id": value, "ip_address": ip})
            elif kind == 2:
                sgs.append(value)
            else:
                tag_list.append(value)
        tag_list.sort()
        return self._render_rows([row], {port_id: ips}, {port_id: sgs}, {port_id: tag_list})[0]

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], bool]:
        clauses = self._list_clauses(ctx, q)
        rows, more = fetch_page(conn, select(*_LIST_COLUMNS).where(*clauses), q, COLUMNS, ports.c.id, ports)
        if not rows:
            return [], more
        if q.limit is None and not q.tag_filters and not any(key in _SPECIAL_FILTERS for key in q.filters):
            # Every matching port is on the page: read the children joined
            # to the same selection (one statement, no id lists). (Filters
            # with sub-selects of these tables take the id lists instead.)
            children = conn.execute(_children_joined(clauses)).all()
        else:
            children = _children_of_ids(conn, [r[0] for r in rows])
        hidden = [a.name for a in PORT.attrs if a.admin_read] if not ctx.is_admin else []
        return _render_tuples(rows, children, hidden), more

    json_keys = staticmethod(port_json.keys_for)

    def list_json(self, ctx: Context, conn: Connection, q: ListQuery,
                  keys: tuple[str, ...]) -> tuple[list[str], list[str], bool] | None:
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

    def many_json(self, conn: Connection, port_ids: list[str], keys: tuple[str, ...]) -> list[str] | None:
        """A bulk create's read-back for the HTTP answer: the ports' JSON texts
        built by the database, as an admin sees them, in the order of ``port_ids``."""
        if not port_json.supported(conn.dialect.name):
            return None
        stmt = port_json.many_statement(conn.dialect.name, keys)
        texts: dict[str, str] = {}
        for start in range(0, len(port_ids), 300):
            texts.update(conn.execute(stmt, {"ids": port_ids[start : start + 300]}).all())
        return [texts[i] for i in port_ids if i in texts]

    def _list_clauses(self, ctx: Context, q: ListQuery) -> list[Any]:
        clauses = [] if ctx.is_admin else [self.visible(ctx)]
        clauses.extend(where_filters(q, COLUMNS, _SPECIAL_FILTERS, ports.c.id))
        return clauses

    @staticmethod
    def _render_rows(rows: list[Any], ips: dict[str, list[dict[str, str]]], sgs: dict[str, list[str]],
                     tag_map: dict[str, list[str]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            item = stdattrs.render(r, tag_map.get(r.id, []))
            item.update({
                "network_id": r.network_id, "mac_address": r.mac_address, "admin_state_up": r.admin_state_up,
                "status": r.status, "device_id": r.device_id, "device_owner": r.device_owner,
                "fixed_ips": ips.get(r.id, []), "security_groups": sorted(sgs.get(r.id, [])),
                "port_security_enabled": r.port_security_enabled,
                "allowed_address_pairs": r.allowed_address_pairs, "extra_dhcp_opts": r.extra_dhcp_opts,
                "binding:host_id": r.binding_host_id, "binding:vnic_type": r.binding_vnic_type,
                "binding:profile": r.binding_profile, "binding:vif_type": r.binding_vif_type,
                "binding:vif_details": r.binding_vif_details, "dns_name": r.dns_name,
                "binding:failure_reason": r.binding_failure or None,
                "ip_allocation": "immediate",
            })
            out.append(item)
        return out

    # -- create --------------------------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        port_id = self._create(ctx, conn, values, None)
        for created in self.create_hooks:
            created(conn, port_id)
        return port_id

    def create_many(self, ctx: Context, conn: Connection, items: list[dict[str, Any]]) -> list[str]:
        """A bulk create: each item as :meth:`create` would, in order, with
        what they share (network, quota usage, default group, subnets) read
        once, security group bindings inserted together and the create hooks
        run after the last port (once per bulk where a hook offers it)."""
        memo: dict[str, Any] = {"nets": {}, "quota": {}, "default_sg": {}, "subnets": {}, "sg_rows": []}
        ids = [self._create(ctx, conn, v, memo) for v in items]
        if memo["sg_rows"]:
            conn.execute(SG_BIND, memo["sg_rows"])
        for created in self.create_hooks:
            many = getattr(getattr(created, "__self__", None), "ports_created", None)
            if many is not None:
                many(conn, ids)
            else:
                for port_id in ids:
                    created(conn, port_id)
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
        self._check_privileged(ctx, net_owner, values, "create")
        project = stdattrs.owner_project(ctx, values)
        _check_router_claim(ctx, conn, values.get("device_owner", ""), values.get("device_id", ""), project)
        if memo is None:
            quotas.check(conn, self.cfg, project, "port", 1)
        else:
            quotas.check_counted(conn, self.cfg, project, "port", 1, memo["quota"])
        row = stdattrs.new_row(project, values)
        port_security = values.get("port_security_enabled", net.port_security_enabled)
        row.update(
            network_id=net.id, admin_state_up=values["admin_state_up"], status="DOWN",
            device_id=values.get("device_id", ""), device_owner=values.get("device_owner", ""),
            port_security_enabled=port_security,
            binding_host_id=values.get("binding:host_id", ""),
            binding_vnic_type=values.get("binding:vnic_type", "normal"),
            binding_profile=values.get("binding:profile") or {}, binding_vif_type="unbound",
            binding_vif_details={}, dns_name=values.get("dns_name", ""), extra_dhcp_opts=[],
            allowed_address_pairs=[],
        )
        row["mac_address"] = self._insert_with_mac(conn, row, values.get("mac_address"))
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

    @staticmethod
    def _check_privileged(ctx: Context, net_owner: bool, values: dict[str, Any], action: str) -> None:
        if net_owner or ctx.is_service:
            return
        if "mac_address" in values:
            raise errors.PolicyNotAuthorized(action=f"rule:{action}_port:mac_address")
        if str(values.get("device_owner", "")).startswith("network:"):
            raise errors.PolicyNotAuthorized(action=f"rule:{action}_port:device_owner")
        for fip in values.get("fixed_ips") or []:
            if isinstance(fip, dict) and "ip_address" in fip:
                raise errors.PolicyNotAuthorized(action=f"rule:{action}_port:fixed_ips:ip_address")
        # Neutron: {create,update}_port:{allowed_address_pairs,port_security_enabled}
        # and update_port:fixed_ips are admin / service / network owner.
        for key in ("allowed_address_pairs", "port_security_enabled", *(("fixed_ips",) if action == "update" else ())):
            if key in values:
                raise errors.PolicyNotAuthorized(action=f"rule:{action}_port:{key}")

    def _insert_with_mac(self, conn: Connection, row: dict[str, Any], mac: str | None) -> str:
        if mac is not None:
            self._insert(conn, {**row, "mac_address": mac})
            return mac
        for _ in range(self.cfg.default.mac_generation_retries):
            candidate = self._random_mac()
            if self._insert(conn, {**row, "mac_address": candidate}, quiet=True):
                return candidate
        raise MacGenerationFailure(net_id=row["network_id"])

    def _mac_free(self, conn: Connection, net_id: str, mac: str) -> bool:
        return conn.execute(MAC_TAKEN, {"net_id": net_id, "mac": mac}).first() is None

    def _insert(self, conn: Connection, row: dict[str, Any], quiet: bool = False) -> bool:
        """Insert the port row unless its MAC is taken on the network (one
        statement: the unique constraint decides, also against concurrent
        transactions on PostgreSQL, which wait for each other here)."""
        try:
            inserted = PORT_INSERT.run(conn, row) == 1
        except IntegrityError:
            if conn.dialect.name == "sqlite":
                raise
            # Only the network's foreign key is left to fail: it was deleted under us.
            raise errors.NetworkNotFound(net_id=row["network_id"]) from None
        if inserted or quiet:
            return inserted
        raise errors.MacAddressInUse(net_id=row["network_id"], mac=row["mac_address"])

    def _random_mac(self) -> str:
        parts = [b if i < 3 or b else random.randint(0, 255) for i, b in enumerate(self.base_mac)]
        return ":".join(f"{p:02x}" for p in parts)

    # -- update / delete -----------------------------------------------
    def writable_row(self, ctx: Context, conn: Connection, port_id: str, action: str) -> tuple[Any, bool]:
        row = self.fetch_row(ctx, conn, port_id)
        net_owner = ctx.is_admin or conn.execute(
            select(networks.c.project_id).where(networks.c.id == row.network_id)).scalar() == ctx.project_id
        if not net_owner and row.project_id != ctx.project_id:
            raise errors.PolicyNotAuthorized(action=f"{action}_port")
        return row, net_owner

    def update(self, ctx: Context, conn: Connection, port_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row, net_owner = self.writable_row(ctx, conn, port_id, "update")
        if not (ctx.is_admin or ctx.is_service) and row.project_id != ctx.project_id:
            # update_port is the port's project (the network owner may see
            # and delete another project's port on its network, not change it)
            raise errors.PolicyNotAuthorized(action="update_port")
        if check is not None:
            check(row.revision_number)
        self._check_privileged(ctx, net_owner, changes, "update")
        if "device_id" in changes or "device_owner" in changes:
            _check_router_claim(ctx, conn, changes.get("device_owner", row.device_owner),
                                changes.get("device_id", row.device_id), row.project_id)
        out = {k: changes[k] for k in ("name", "description", "admin_state_up", "device_id", "device_owner",
                                      "dns_name") if k in changes}
        mac = row.mac_address
        if "mac_address" in changes and changes["mac_address"] != row.mac_address:
            if row.binding_vif_type not in ("unbound", "binding_failed"):
                raise PortBound(port_id=port_id, vif_type=row.binding_vif_type, old_mac=row.mac_address,
                                new_mac=changes["mac_address"])
            if not self._mac_free(conn, row.network_id, changes["mac_address"]):
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
        for updated in self.update_hooks:
            updated(conn, port_id, set(changes))

    def delete(self, ctx: Context, conn: Connection, port_id: str, check: Any = None) -> None:
        row, _ = self.writable_row(ctx, conn, port_id, "delete")
        if check is not None:
            check(row.revision_number)
        if row.device_owner in ROUTER_OWNERS:
            raise ServicePortInUse(port_id=port_id,
                                   reason=f"has device owner {row.device_owner}")
        self.remove(conn, row)

    def remove(self, conn: Connection, row: Any) -> None:
        """Delete a port with no policy check: for the service that owns it
        (a router's gateway, a floating IP's port) and for :meth:`delete`."""
        for hook in self.delete_hooks:
            hook(conn, row)
        conn.execute(delete(ports).where(ports.c.id == row.id))
        stdattrs.delete_tags(conn, [row.id])


# The list path reads timestamps and JSON columns as text and converts them
# itself (SQLAlchemy's per-value processing dominated a 5,000-port list).
_LIST_COLUMNS = (
    ports.c.id, ports.c.name, ports.c.description, ports.c.project_id,
    cast(ports.c.created_at, String), cast(ports.c.updated_at, String), ports.c.revision_number,
    ports.c.network_id, ports.c.mac_address, ports.c.admin_state_up, ports.c.status, ports.c.device_id,
    ports.c.device_owner, ports.c.port_security_enabled, cast(ports.c.allowed_address_pairs, Text),
    cast(ports.c.extra_dhcp_opts, Text), ports.c.binding_host_id, ports.c.binding_vnic_type,
    cast(ports.c.binding_profile, Text), ports.c.binding_vif_type, cast(ports.c.binding_vif_details, Text),
    ports.c.dns_name, ports.c.binding_failure,
)


def _check_router_claim(ctx: Context, conn: Connection, owner: str, device_id: str, project: str) -> None:
    """Neutron's _enforce_device_owner_not_router_intf_or_device_id: a
    non-admin may not make a port another project's router port. A device
    id that names no router is allowed (it may be anything)."""
    if ctx.is_admin or owner not in ROUTER_CLAIMS or not device_id:
        return
    router_project = conn.execute(_ROUTER_PROJECT, {"router_id": device_id}).scalar()
    if router_project is not None and router_project != project:
        raise DeviceIDNotOwnedByTenant(device_id=device_id)


def _stamp(value: str | None) -> str | None:
    """'YYYY-MM-DD HH:MM:SS[.ffffff]' (SQLite's storage, PostgreSQL's text
    form) -> Neutron's 'YYYY-MM-DDTHH:MM:SSZ'."""
    return None if value is None else f"{value[:10]}T{value[11:19]}Z"


def _json(value: str | None) -> Any:
    if value == "[]":
        return []
    if value == "{}":
        return {}
    return None if value is None else orjson.loads(value)


def _render_tuples(rows: Any, children: Any, hidden: list[str]) -> list[dict[str, Any]]:
    """Port dicts from ``_LIST_COLUMNS`` tuples and ``(kind, port id, value,
    address)`` child rows, without the ``hidden`` attributes."""
    ips: dict[str, list[dict[str, str]]] = {}
    sgs: dict[str, list[str]] = {}
    tag_map: dict[str, list[str]] = {}
    for kind, pid, value, ip in children:
        if kind == 1:
            ips.setdefault(pid, []).append({"subnet_id": value, "ip_address": ip})
        elif kind == 2:
            sgs.setdefault(pid, []).append(value)
        else:
            tag_map.setdefault(pid, []).append(value)
    out = []
    for (pid, name, description, project, created, updated, revision, network_id, mac, admin_up, status,
         device_id, device_owner, port_security, pairs, opts, host, vnic, profile, vif_type, vif_details,
         dns_name, failure) in rows:
        tag_list = tag_map.get(pid)
        if tag_list:
            tag_list.sort()
        item = {
            "id": pid, "name": name, "description": description, "tenant_id": project, "project_id": project,
            "tags": tag_list or [], "created_at": _stamp(created), "updated_at": _stamp(updated),
            "revision_number": revision,
            "network_id": network_id, "mac_address": mac, "admin_state_up": admin_up,
            "status": status, "device_id": device_id, "device_owner": device_owner,
            "fixed_ips": ips.get(pid, []), "security_groups": sorted(sgs.get(pid, ())),
            "port_security_enabled": port_security,
            "allowed_address_pairs": _json(pairs), "extra_dhcp_opts": _json(opts),
            "binding:host_id": host, "binding:vnic_type": vnic,
            "binding:profile": _json(profile), "binding:vif_type": vif_type,
            "binding:vif_details": _json(vif_details), "dns_name": dns_name,
            "binding:failure_reason": failure or None,
            "ip_allocation": "immediate",
        }
        for key in hidden:
            del item[key]
        out.append(item)
    return out


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
