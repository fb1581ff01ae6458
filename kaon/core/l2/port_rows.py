"""The internal insert and delete of a port: its row with a free MAC address.

Two kinds of callers make ports: :class:`kaon.core.l2.ports.Ports` for API
requests (after policy, quota and validation) and the server itself for the
ports it owns (:mod:`kaon.core.agents.dhcp_ports`). Both come here for the row, so
that a server-made port never re-enters the public create: no policy, no
quota (Neutron's DHCP agent makes its port through the plugin, below the
API's quota check), no follow-ups. What follows a write (binding, DHCP
scheduling, router hosts) is the caller's, written out where it calls
(:mod:`kaon.core.l2.port_pipeline`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.exc import IntegrityError

from kaon import errors
from kaon.core import stdattrs
from kaon.db.core_tables import ports
from kaon.db.fast_insert import FastInsert

MacGenerationFailure = errors.define("MacAddressGenerationFailure", errors.ServiceUnavailable,
                                     "Unable to generate unique mac on network {net_id}.")

MAC_TAKEN = select(ports.c.id).where(ports.c.network_id == bindparam("net_id"),
                                     ports.c.mac_address == bindparam("mac"))
PORT_INSERT = FastInsert(ports, unique=("network_id", "mac_address"))


def new_row(project: str, network_id: str, values: dict[str, Any], port_security: bool) -> dict[str, Any]:
    """A new port's row (MAC address left to :meth:`PortRows.insert`) from
    create values as the API validated them."""
    row = stdattrs.new_row(project, values)
    row.update(
        network_id=network_id, admin_state_up=values.get("admin_state_up", True), status="DOWN",
        device_id=values.get("device_id", ""), device_owner=values.get("device_owner", ""),
        port_security_enabled=port_security,
        binding_host_id=values.get("binding:host_id", ""),
        binding_vnic_type=values.get("binding:vnic_type", "normal"),
        binding_profile=values.get("binding:profile") or {}, binding_vif_type="unbound",
        binding_vif_details={}, dns_name=values.get("dns_name", ""), extra_dhcp_opts=[],
        allowed_address_pairs=[],
    )
    return row


class PortRows:
    def __init__(self, cfg: Any) -> None:
        self.base_mac = [int(p, 16) for p in cfg.default.base_mac.split(":")]
        self.retries = int(cfg.default.mac_generation_retries)
        # Called with (conn, port row) before a port is deleted, in the same
        # transaction: what refers to the port goes first (floating IP
        # associations, kaon.core.l3.floatingips). Registered once at start-up.
        self.delete_hooks: list[Callable[[Connection, Any], None]] = []

    def insert(self, conn: Connection, row: dict[str, Any], mac: str | None) -> str:
        """Insert ``row`` with ``mac``, or a random free MAC on its network; the MAC."""
        if mac is not None:
            self._insert(conn, {**row, "mac_address": mac})
            return mac
        for _ in range(self.retries):
            candidate = self._random_mac()
            if self._insert(conn, {**row, "mac_address": candidate}, quiet=True):
                return candidate
        raise MacGenerationFailure(net_id=row["network_id"])

    @staticmethod
    def mac_free(conn: Connection, net_id: str, mac: str) -> bool:
        return conn.execute(MAC_TAKEN, {"net_id": net_id, "mac": mac}).first() is None

    @staticmethod
    def _insert(conn: Connection, row: dict[str, Any], quiet: bool = False) -> bool:
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

    def remove(self, conn: Connection, row: Any) -> None:
        """Delete a port with no policy check (its addresses and bindings go by cascade)."""
        for hook in self.delete_hooks:
            hook(conn, row)
        conn.execute(delete(ports).where(ports.c.id == row.id))
        stdattrs.delete_tags(conn, [row.id])
