"""Networks: create with ML2 segments, visibility through RBAC, MTU,
delete with Neutron's in-use rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, exists, insert, or_, select, update

from kaon import errors
from kaon.api.context import Context
from kaon.api.listing import ListQuery
from kaon.core import quotas, stdattrs
from kaon.core.agents import availability_zones
from kaon.core.pools import address_scopes
from kaon.core.query import fetch_page, where_filters
from kaon.db.core_tables import network_rbacs, networks, ports, subnets
from kaon.db.ml2_tables import network_segments
from kaon.ml2.segments import provider_attributes
from kaon.model.attrs import HTTPBadRequest

AUTO_DELETE_OWNERS = ("network:dhcp", "network:distributed", "network:floatingip_agent_gateway")
SHARED = "access_as_shared"
EXTERNAL = "access_as_external"
PROVIDER_KEYS = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")

InvalidSharedSetting = errors.define(
    "InvalidSharedSetting",
    errors.Conflict,
    "Unable to reconfigure sharing settings for network {network}. Multiple tenants are using it.",
)

ExternalNetworkInUse = errors.define(
    "ExternalNetworkInUse",
    errors.InUse,
    "External network {net_id} cannot be updated to be made non-external, since it has existing gateway ports.",
)

NetworkMTUSubnetConflict = errors.define(
    "NetworkMTUSubnetConflict",
    errors.Conflict,
    "MTU of {net_id} is not valid, subnet requires a minimum of {mtu}",
)

# The smallest MTU each IP version allows (RFC 791, RFC 8200).
MIN_MTU = {4: 68, 6: 1280}

COLUMNS = {name: networks.c[name] for name in (
    "id", "name", "description", "project_id", "admin_state_up", "status", "mtu",
    "port_security_enabled", "is_default", "dns_domain", "created_at", "updated_at", "revision_number",
)}


def visible_clause(ctx: Context) -> Any:
    """Owned, or shared/external to everybody or to the caller's project."""
    granted = select(network_rbacs.c.object_id).where(
        network_rbacs.c.target_project.in_(("*", ctx.project_id))
    )
    return or_(networks.c.project_id == ctx.project_id, networks.c.id.in_(granted))


# Prebuilt (bind parameters instead of values): building a statement costs
# more than executing it, and these run on every port create.
_PROJECT = bindparam("project")
_VISIBLE = or_(networks.c.project_id == _PROJECT, networks.c.id.in_(
    select(network_rbacs.c.object_id).where(or_(network_rbacs.c.target_project == "*",
                                                network_rbacs.c.target_project == _PROJECT))))
NET_ROW = select(networks).where(networks.c.id == bindparam("net_id"))
NET_ROW_VISIBLE = NET_ROW.where(_VISIBLE)


class Networks:
    def __init__(self, types: Any, cfg: Any) -> None:
        self.types = types
        self.cfg = cfg
        # Called with (conn, network row) before the in-use check of a
        # delete, in the same transaction: floating IPs that are not
        # associated go with their external network, as in Neutron.
        self.delete_hooks: list[Callable[[Connection, Any], None]] = []

    # -- reads ---------------------------------------------------------
    def fetch_row(self, ctx: Context, conn: Connection, net_id: str) -> Any:
        if ctx.is_admin:
            row = conn.execute(NET_ROW, {"net_id": net_id}).first()
        else:
            row = conn.execute(NET_ROW_VISIBLE, {"net_id": net_id, "project": ctx.project_id}).first()
        if row is None:
            raise errors.NetworkNotFound(net_id=net_id)
        return row

    def get(self, ctx: Context, conn: Connection, net_id: str) -> dict[str, Any]:
        return self._render(ctx, conn, [self.fetch_row(ctx, conn, net_id)])[0]

    def list(self, ctx: Context, conn: Connection, q: ListQuery) -> tuple[list[dict[str, Any]], bool]:
        stmt = select(networks)
        if not ctx.is_admin:
            stmt = stmt.where(visible_clause(ctx))
        special = {
            "shared": lambda vals: self._rbac_filter(SHARED, vals, ctx),
            "router:external": lambda vals: self._rbac_filter(EXTERNAL, vals, ctx),
            "provider:network_type": lambda vals: _segment_filter("network_type", vals),
            "provider:physical_network": lambda vals: _segment_filter("physical_network", vals),
            "provider:segmentation_id": lambda vals: _segment_filter("segmentation_id", vals),
            "subnets": lambda vals: networks.c.id.in_(select(subnets.c.network_id).where(subnets.c.id.in_(vals))),
        }
        for clause in where_filters(q, COLUMNS, special, networks.c.id):
            stmt = stmt.where(clause)
        rows, more = fetch_page(conn, stmt, q, COLUMNS, networks.c.id, networks)
        return self._render(ctx, conn, rows), more

    def shared_with(self, conn: Connection, net_id: str, ctx: Context) -> bool:
        """Shared with everybody or with the caller's project."""
        return conn.execute(select(network_rbacs.c.id).where(
            network_rbacs.c.object_id == net_id, network_rbacs.c.action == SHARED,
            network_rbacs.c.target_project.in_(("*", ctx.project_id)))).first() is not None

    def _rbac_filter(self, action: str, values: list[Any], ctx: Context) -> Any:
        targets = ("*",) if action == EXTERNAL else ("*", ctx.project_id)
        granted = exists().where(
            and_(network_rbacs.c.object_id == networks.c.id, network_rbacs.c.action == action,
                 network_rbacs.c.target_project.in_(targets))
        )
        wanted = set(values)
        if wanted == {True}:
            return granted
        if wanted == {False}:
            return ~granted
        return networks.c.id.is_not(None)

    def _render(self, ctx: Context, conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        subnet_ids: dict[str, list[str]] = {}
        rbac: dict[str, set[tuple[str, str]]] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            for net_id, sid in conn.execute(
                select(subnets.c.network_id, subnets.c.id).where(subnets.c.network_id.in_(chunk))
            ):
                subnet_ids.setdefault(net_id, []).append(sid)
            for obj, action, target in conn.execute(
                select(network_rbacs.c.object_id, network_rbacs.c.action, network_rbacs.c.target_project)
                .where(network_rbacs.c.object_id.in_(chunk))
            ):
                rbac.setdefault(obj, set()).add((action, target))
        segments = self.types.segments_for(conn, ids)
        zones = availability_zones.network_azs(conn, ids)
        scopes = address_scopes.network_scopes(conn, ids)
        tag_map = stdattrs.tags_for(conn, ids)
        out = []
        for row in rows:
            grants = rbac.get(row.id, set())
            item = stdattrs.render(row, tag_map.get(row.id, []))
            item.update(
                admin_state_up=row.admin_state_up,
                status=row.status,
                subnets=sorted(subnet_ids.get(row.id, [])),
                shared=(SHARED, "*") in grants or (SHARED, ctx.project_id) in grants,
                **{"router:external": any(a == EXTERNAL for a, _ in grants)},
                port_security_enabled=row.port_security_enabled,
                mtu=row.mtu,
                availability_zone_hints=list(row.availability_zone_hints or []),
                availability_zones=zones.get(row.id, []),
                ipv4_address_scope=scopes.get(row.id, {}).get(4),
                ipv6_address_scope=scopes.get(row.id, {}).get(6),
                is_default=row.is_default,
                l2_adjacency=True,
                dns_domain=row.dns_domain,
            )
            item.update(provider_attributes(segments.get(row.id, [])))
            out.append(item)
        return out

    # -- writes --------------------------------------------------------
    def create(self, ctx: Context, conn: Connection, values: dict[str, Any]) -> str:
        project = stdattrs.owner_project(ctx, values)
        quotas.check(conn, self.cfg, project, "network", 1)
        row = stdattrs.new_row(project, values)
        provider = _provider_request(values)
        availability_zones.validate_hints(conn, "network", values.get("availability_zone_hints"))
        requested_mtu = values.get("mtu")
        row.update(
            admin_state_up=values["admin_state_up"],
            status="ACTIVE",
            port_security_enabled=values["port_security_enabled"],
            availability_zone_hints=values.get("availability_zone_hints", []),
            is_default=values.get("is_default", False),
            dns_domain=values.get("dns_domain", ""),
            mtu=1500,
        )
        conn.execute(insert(networks).values(row))
        segs = self.types.create_network_segments(conn, row["id"], provider,
                                                 external=bool(values.get("router:external")))
        max_mtu = self.types.network_mtu(segs)
        if requested_mtu is not None and requested_mtu > max_mtu:
            raise errors.InvalidInput(error_message=f"Requested MTU is too big, maximum is {max_mtu}")
        mtu = requested_mtu if requested_mtu is not None else max_mtu
        conn.execute(update(networks).where(networks.c.id == row["id"]).values(mtu=mtu))
        if values.get("shared"):
            self._grant(conn, row["id"], project, SHARED)
        if values.get("router:external"):
            self._grant(conn, row["id"], project, EXTERNAL)
        return row["id"]

    def _grant(self, conn: Connection, net_id: str, project: str, action: str) -> None:
        conn.execute(insert(network_rbacs).values(
            id=stdattrs.new_id(), project_id=project, object_id=net_id, action=action, target_project="*"))

    def _revoke(self, conn: Connection, net_id: str, action: str) -> None:
        conn.execute(delete(network_rbacs).where(
            network_rbacs.c.object_id == net_id, network_rbacs.c.action == action,
            network_rbacs.c.target_project == "*"))

    def writable_row(self, ctx: Context, conn: Connection, net_id: str, action: str) -> Any:
        row = self.fetch_row(ctx, conn, net_id)
        if not ctx.is_admin and row.project_id != ctx.project_id:
            raise errors.PolicyNotAuthorized(action=f"{action}_network")
        return row

    def update(self, ctx: Context, conn: Connection, net_id: str, changes: dict[str, Any],
               check: Any = None) -> None:
        row = self.writable_row(ctx, conn, net_id, "update")
        if check is not None:
            check(row.revision_number)
        if any(k in changes for k in (*PROVIDER_KEYS, "segments")):
            self._update_provider(conn, net_id, changes)
        plain = {k: changes[k] for k in ("name", "description", "admin_state_up", "port_security_enabled",
                                         "is_default", "dns_domain") if k in changes}
        if "mtu" in changes:
            max_mtu = self.types.network_mtu(self.types.segments_for(conn, [net_id]).get(net_id, []))
            if changes["mtu"] > max_mtu:
                raise errors.InvalidInput(error_message=f"Requested MTU is too big, maximum is {max_mtu}")
            versions = conn.execute(select(subnets.c.ip_version).where(subnets.c.network_id == net_id).distinct())
            needed = max((MIN_MTU.get(version, 0) for version in versions.scalars()), default=0)
            if changes["mtu"] < needed:
                raise NetworkMTUSubnetConflict(net_id=net_id, mtu=needed)
            plain["mtu"] = changes["mtu"]
        if "shared" in changes:
            self._set_flag(conn, row, SHARED, changes["shared"])
        if "router:external" in changes:
            self._set_flag(conn, row, EXTERNAL, changes["router:external"])
        conn.execute(update(networks).where(networks.c.id == net_id).values(
            stdattrs.bump(plain, row.revision_number)))

    def _update_provider(self, conn: Connection, net_id: str, changes: dict[str, Any]) -> None:
        """Only a single segment's segmentation_id may change (Neutron's
        provider-segmentation-id update); anything else is refused."""
        segs = self.types.segments_for(conn, [net_id]).get(net_id, [])
        current = provider_attributes(segs)
        changed = [k for k in PROVIDER_KEYS if k in changes and changes[k] != current.get(k)]
        if "segments" in changes or len(segs) != 1 or any(k != "provider:segmentation_id" for k in changed):
            raise errors.InvalidInput(error_message="Plugin does not support updating provider attributes")
        if changed:
            self.types.update_segmentation_id(conn, net_id, changes["provider:segmentation_id"])

    def _set_flag(self, conn: Connection, row: Any, action: str, wanted: bool) -> None:
        has = conn.execute(select(network_rbacs.c.id).where(
            network_rbacs.c.object_id == row.id, network_rbacs.c.action == action,
            network_rbacs.c.target_project == "*")).first() is not None
        if wanted and not has:
            self._grant(conn, row.id, row.project_id, action)
        elif not wanted and has:
            if action == SHARED and self._foreign_ports(conn, row):
                raise InvalidSharedSetting(network=row.id)
            if action == EXTERNAL and conn.execute(select(ports.c.id).where(
                    ports.c.network_id == row.id, ports.c.device_owner == "network:router_gateway")).first():
                raise ExternalNetworkInUse(net_id=row.id)
            self._revoke(conn, row.id, action)

    def _foreign_ports(self, conn: Connection, row: Any) -> bool:
        return conn.execute(select(ports.c.id).where(
            ports.c.network_id == row.id, ports.c.project_id != row.project_id,
            ports.c.project_id != "", ~ports.c.device_owner.in_(AUTO_DELETE_OWNERS)).limit(1)).first() is not None

    @staticmethod
    def check_subnet_mtu(conn: Connection, net_id: str, ip_version: int) -> None:
        """A subnet needs its IP version's minimum MTU on the network (read
        under the caller's lock, so a concurrent MTU update is seen)."""
        needed = MIN_MTU.get(ip_version, 0)
        mtu = conn.execute(select(networks.c.mtu).where(networks.c.id == net_id)).scalar()
        if mtu is not None and mtu < needed:
            raise NetworkMTUSubnetConflict(net_id=net_id, mtu=needed)

    @staticmethod
    def touch(conn: Connection, net_id: str) -> None:
        """Bump the network's revision (and updated_at): Neutron revises a
        network on every change to one of its subnets."""
        conn.execute(update(networks).where(networks.c.id == net_id).values(
            revision_number=networks.c.revision_number + 1, updated_at=stdattrs.now()))

    def lock(self, conn: Connection, net_id: str) -> None:
        """Serialise with other writers of the network (PostgreSQL; SQLite's
        write transactions are serial already). A port or subnet insert
        takes a key-share lock on the network row through its foreign key,
        so a delete holding this waits for them, or they for it."""
        conn.execute(select(networks.c.id).where(networks.c.id == net_id).with_for_update())

    def delete(self, ctx: Context, conn: Connection, net_id: str, check: Any = None) -> None:
        row = self.writable_row(ctx, conn, net_id, "delete")
        self.lock(conn, net_id)
        if check is not None:
            check(row.revision_number)
        for hook in self.delete_hooks:
            hook(conn, row)
        in_use = conn.execute(select(ports.c.id).where(
            ports.c.network_id == net_id, ~ports.c.device_owner.in_(AUTO_DELETE_OWNERS)).limit(1)).first()
        if in_use is not None:
            raise errors.NetworkInUse(net_id=net_id)
        owned = select(ports.c.id).where(ports.c.network_id == net_id).union_all(
            select(subnets.c.id).where(subnets.c.network_id == net_id))
        stdattrs.delete_tags(conn, [net_id, *conn.execute(owned).scalars()])
        conn.execute(delete(ports).where(ports.c.network_id == net_id))
        conn.execute(delete(subnets).where(subnets.c.network_id == net_id))
        self.types.release_network_segments(conn, net_id)
        conn.execute(delete(networks).where(networks.c.id == net_id))


def _segment_filter(column: str, values: list[Any]) -> Any:
    return networks.c.id.in_(select(network_segments.c.network_id).where(network_segments.c[column].in_(values)))


def _provider_request(values: dict[str, Any]) -> dict[str, Any] | None:
    if "segments" in values and any(k in values for k in PROVIDER_KEYS):
        raise HTTPBadRequest(msg="Segments and provider values cannot both be set.")
    if "segments" in values:
        if not isinstance(values["segments"], list):
            raise errors.InvalidInput(error_message="Invalid input for segments. Reason: not a list")
        return {"segments": values["segments"]}
    given = {k: values[k] for k in PROVIDER_KEYS if k in values}
    return given or None
