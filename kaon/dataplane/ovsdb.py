"""OVSDB through ovsdbapp: bridges, patch/tunnel/internal/VM ports, read back, sweep by ownership.

One :meth:`Ovsdb.apply` is at most one OVSDB transaction (ovsdbapp's
vsctl-style transaction, which also waits until ovs-vswitchd has applied it:
``cur_cfg >= next_cfg``), so a half-applied host is never left behind by a
failed step. It issues commands only for what differs from the IDL cache,
and no transaction when nothing does. After it, bridges without a datapath
and interfaces OVS could not open are reported as :class:`OvsDatapathError`
— ``ovs-vsctl add-br`` with ``datapath_type=system`` on a kernel without the
openvswitch module "succeeds" and only leaves ``datapath_id`` empty
(dataplane.md §6.6).

Ownership rules are in :mod:`kaon.dataplane.ovs_model`.  An unreachable
ovsdb-server is retried until ``connect_timeout`` and then reported with the
endpoint and the last error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ovsdbapp import exceptions as ovsdbapp_exc  # type: ignore[import-untyped]
from ovsdbapp.backend.ovs_idl import connection, idlutils  # type: ignore[import-untyped]
from ovsdbapp.schema.open_vswitch import impl_idl  # type: ignore[import-untyped]

from kaon.dataplane import DataplaneError
from kaon.dataplane.ovs_model import OWNER_KEY, OWNER_VALUE, BridgeSpec, PortSpec, PortTag

__all__ = ["ObservedPort", "Ovsdb", "OvsDatapathError", "OvsdbError", "OvsdbUnreachable"]

LOG = logging.getLogger(__name__)
_OWNED = {OWNER_KEY: OWNER_VALUE}
NET_UUID = "net_uuid"  # Port other_config key of the network a tagged port belongs to (Neutron's name)


class OvsdbError(DataplaneError):
    """OVSDB refused or failed a request."""


class OvsdbUnreachable(OvsdbError):
    """ovsdb-server did not answer within the connect timeout."""


class OvsDatapathError(OvsdbError):
    """A bridge has no datapath or an interface could not be opened."""


@dataclass(frozen=True)
class ObservedPort:
    name: str
    bridge: str
    type: str
    ofport: int | None
    tag: int | None
    options: dict[str, str]
    iface_external_ids: dict[str, str]
    own: bool
    error: str | None


class Ovsdb:
    """A connection to one ovsdb-server (``remote`` like ``unix:/run/x/db.sock``)."""

    def __init__(self, remote: str, *, timeout: float = 10.0, connect_timeout: float = 10.0,
                 retry_timeout: float = 30.0) -> None:
        """``timeout``: one transaction; ``connect_timeout``: reaching the server at all;
        ``retry_timeout``: how long :meth:`apply` keeps retrying a transaction that timed out."""
        self.remote = remote
        self.retry_timeout = retry_timeout
        deadline = time.monotonic() + connect_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                helper = idlutils.get_schema_helper(remote, "Open_vSwitch")
                helper.register_all()
                self._conn = connection.Connection(idl=connection.OvsdbIdl(remote, helper), timeout=timeout)
                # ovsdbapp keeps ONE connection per Backend class (a class attribute, set once):
                # a class of our own per instance lets one process talk to several ovsdb-servers
                # (the simulated hosts of the lab and tests) instead of silently sharing the first.
                api_cls = type("KaonOvsdbIdl", (impl_idl.OvsdbIdl,), {"_ovsdb_connection": None})
                self.api = api_cls(self._conn, start=True)
                return
            except Exception as exc:  # python-ovs raises plain Exception; ovsdbapp wraps start failures
                why = _describe(exc)
                if time.monotonic() >= deadline:
                    raise OvsdbUnreachable(
                        f"ovsdb-server at {remote} unreachable after {attempt} attempts in "
                        f"{connect_timeout:.0f}s: {why}; is ovsdb-server running (and the socket path right)?"
                    ) from exc
                # Said once per connection attempt series; the rest of the retries only at debug level
                # (an agent waiting for Open vSwitch at boot would otherwise log twice a second).
                LOG.log(logging.WARNING if attempt == 1 else logging.DEBUG,
                        "ovsdb-server at %s unreachable (%s); retrying", remote, why)
                time.sleep(min(0.5, 0.05 * attempt))

    def connected(self) -> bool:
        """Whether the IDL holds a live session to ovsdb-server now (it reconnects by itself).

        python-ovs's Idl does not say so itself; its jsonrpc Session does (the
        attribute ovsdbapp's own connection code reaches for too)."""
        session = getattr(self._conn.idl, "_session", None)
        return bool(session is not None and session.is_connected())

    def close(self) -> None:
        self._conn.stop(timeout=5)

    def __enter__(self) -> Ovsdb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- apply -----------------------------------------------------------------

    def apply(self, bridges: Iterable[BridgeSpec], ports: Iterable[PortSpec], tags: Iterable[PortTag] = (),
              *, sweep: bool = False, protected: Iterable[str] = ()) -> bool:
        """Make OVSDB hold ``bridges`` and ``ports`` (and set ``tags``) in one transaction.

        Returns whether anything had to be written (False: OVSDB already held all of it).

        With ``sweep`` (after the first full sync), kaon-owned bridges and ports
        that are not wanted are deleted too; bridges in ``protected`` (the ones
        ``bridge_mappings`` names) never are, whatever their external ids say.
        """
        bridges, ports, tags = list(bridges), list(ports), list(tags)
        protected = set(protected) | {b.name for b in bridges if not b.own}
        # Every command is idempotent (may_exist, set, delete of what is unwanted), so a transaction that
        # timed out (ovsdb-server restarting: ovsdbapp reconnects by itself) is simply tried again.
        deadline = time.monotonic() + self.retry_timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                wrote = self._apply(bridges, ports, tags, sweep, protected)
                break
            except ovsdbapp_exc.TimeoutException as exc:
                if time.monotonic() >= deadline:
                    raise OvsdbUnreachable(
                        f"ovsdb-server at {self.remote} did not complete the transaction after {attempt} "
                        f"attempts in {self.retry_timeout:.0f}s: {_describe(exc)[:300]}") from exc
                LOG.warning("OVSDB transaction on %s timed out (attempt %d); retrying", self.remote, attempt)
        self.check_datapaths([b.name for b in bridges], [p.name for p in ports])
        return wrote

    def _apply(self, bridges: list[BridgeSpec], ports: list[PortSpec], tags: list[PortTag], sweep: bool,
               protected: set[str]) -> bool:
        existing = {row.name for row in self._rows("Bridge")}
        missing = sorted(b.name for b in bridges if not b.own and b.name not in existing)
        if missing:
            raise OvsdbError(f"bridge_mappings names bridge(s) {', '.join(missing)} which do not exist in OVS "
                             f"({self.remote}); create them (ovs-vsctl add-br) or fix bridge_mappings")
        # Only what differs from the IDL cache becomes a command (the cache is current: ovsdb-server sends
        # a client the updates of its own transaction before the reply), and no transaction is queued
        # when nothing does. The IDL would find an all-equal transaction unchanged by itself, but only
        # after ovsdbapp ran every command: 1,000 tags re-set cost 175-195 ms of CPU per pass, 25-35 now.
        commands: list[Any] = []
        for br in bridges:
            commands += self._bridge(br)
        for port in ports:
            commands += self._port(port)
        for t in tags:
            row = self.api.lookup("Port", t.name, default=None)
            if row is None:
                continue
            if not _same(row.tag, t.tag):
                commands.append(self.api.db_set("Port", t.name, ("tag", t.tag)))
            if t.network_id and row.other_config.get(NET_UUID) != t.network_id:
                commands.append(self.api.db_set("Port", t.name, ("other_config", {NET_UUID: t.network_id})))
            elif not t.network_id and NET_UUID in row.other_config:
                commands.append(self.api.db_remove("Port", t.name, "other_config", NET_UUID, if_exists=True))
        if sweep:
            wanted_ports = {p.name for p in ports}
            wanted_bridges = {b.name for b in bridges}
            for name, own_ports in self._owned_ports().items():
                commands += [self.api.del_port(pname, bridge=name) for pname in sorted(own_ports - wanted_ports)]
            commands += [self.api.del_br(name) for name in sorted(self._owned_bridges() - wanted_bridges - protected)]
        if not commands:
            return False
        with self.api.transaction(check_error=True) as txn:
            for command in commands:
                txn.add(command)
        return True

    def _bridge(self, br: BridgeSpec) -> list[Any]:
        row = self.api.lookup("Bridge", br.name, default=None)
        out = []
        if br.own and row is None:
            out.append(self.api.add_br(br.name, may_exist=True, datapath_type=br.datapath_type))
        if br.own and (row is None or not _same(row.external_ids, _OWNED)):
            out.append(self.api.db_set("Bridge", br.name, ("external_ids", _OWNED)))
        cols: list[tuple[str, Any]] = [("datapath_type", br.datapath_type), ("fail_mode", br.fail_mode),
                                       ("protocols", list(br.protocols))]
        if br.other_config:
            cols.append(("other_config", dict(br.other_config)))
        cols = [(c, v) for c, v in cols if row is None or not _same(getattr(row, c), v)]
        if cols:
            out.append(self.api.db_set("Bridge", br.name, *cols))
        return out

    def _port(self, p: PortSpec) -> list[Any]:
        row = self.api.lookup("Port", p.name, default=None)
        iface_row = self.api.lookup("Interface", p.name, default=None) if row is not None else None
        out = [] if row is not None else [self.api.add_port(p.bridge, p.name, may_exist=True)]
        iface: list[tuple[str, Any]] = [("type", p.type)]
        if p.options:
            iface.append(("options", dict(p.options)))
        if p.iface_external_ids:
            iface.append(("external_ids", dict(p.iface_external_ids)))
        iface = [(c, v) for c, v in iface if iface_row is None or not _same(getattr(iface_row, c), v)]
        if iface:
            out.append(self.api.db_set("Interface", p.name, *iface))
        port: list[tuple[str, Any]] = [("tag", p.tag if p.tag is not None else [])]
        if p.own:
            port.append(("external_ids", _OWNED))
        port = [(c, v) for c, v in port if row is None or not _same(getattr(row, c), v)]
        if port:
            out.append(self.api.db_set("Port", p.name, *port))
        return out

    def plug_interface(self, bridge: str, name: str, external_ids: dict[str, str]) -> None:
        """Put the device ``name`` on ``bridge`` with its Interface ``external_ids`` (one transaction).

        What Neutron's OVSInterfaceDriver does for a DHCP or router port: the port
        is the agent's to tag, as os-vif's VM ports are; it is not kaon-owned, so
        the L2 sweep never removes it (its interface driver does).
        """
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.add_port(bridge, name, may_exist=True))
            txn.add(self.api.db_set("Interface", name, ("external_ids", dict(external_ids))))
        self.check_datapaths([bridge], [name])

    def delete_ports(self, names: Iterable[str]) -> None:
        with self.api.transaction(check_error=True) as txn:
            for name in names:
                txn.add(self.api.del_port(name, if_exists=True))

    # -- read back -------------------------------------------------------------

    def _rows(self, table: str) -> list[Any]:
        return list(self.api.tables[table].rows.values())

    def bridges(self) -> dict[str, dict[str, Any]]:
        """Bridge name -> its columns that kaon sets, plus ``own`` and ``datapath_id``."""
        out = {}
        for row in self._rows("Bridge"):
            out[row.name] = {
                "datapath_type": row.datapath_type, "fail_mode": (row.fail_mode or [None])[0],
                "protocols": tuple(row.protocols), "own": row.external_ids.get(OWNER_KEY) == OWNER_VALUE,
                "datapath_id": (row.datapath_id or [None])[0], "other_config": dict(row.other_config),
                "ports": sorted(p.name for p in row.ports),
            }
        return out

    def ports(self) -> dict[str, ObservedPort]:
        out = {}
        for br in self._rows("Bridge"):
            for port in br.ports:
                for iface in port.interfaces:
                    out[iface.name] = ObservedPort(
                        name=iface.name, bridge=br.name, type=iface.type,
                        ofport=(iface.ofport or [None])[0], tag=(port.tag or [None])[0],
                        options=dict(iface.options), iface_external_ids=dict(iface.external_ids),
                        own=port.external_ids.get(OWNER_KEY) == OWNER_VALUE,
                        error=(iface.error or [None])[0])
        return out

    def local_vlans(self) -> dict[str, int]:
        """Network id -> local VLAN, read back from tagged ports (what a restarted agent keeps)."""
        out = {}
        for row in self._rows("Port"):
            net = row.other_config.get(NET_UUID)
            tag = (row.tag or [None])[0]
            if net and tag is not None and 0 < tag < 4095:
                out[net] = tag
        return out

    def ofports(self) -> dict[str, int]:
        return {name: p.ofport for name, p in self.ports().items() if p.ofport is not None and p.ofport > 0}

    def _owned_bridges(self) -> set[str]:
        return {r.name for r in self._rows("Bridge") if r.external_ids.get(OWNER_KEY) == OWNER_VALUE}

    def _owned_ports(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for br in self._rows("Bridge"):
            out[br.name] = {p.name for p in br.ports if p.external_ids.get(OWNER_KEY) == OWNER_VALUE}
        return out

    def next_cfg(self) -> int:
        return int(self._rows("Open_vSwitch")[0].next_cfg)

    # -- health ----------------------------------------------------------------

    def check_datapaths(self, bridges: Iterable[str], ports: Iterable[str] = ()) -> None:
        """Raise :class:`OvsDatapathError` when a bridge has no datapath or a port failed to open."""
        problems = []
        for name in bridges:
            br = self.api.lookup("Bridge", name, default=None)
            if br is not None and not (br.datapath_id or [None])[0]:
                hint = ("datapath_type=system needs the kernel's openvswitch module, which this kernel does not "
                        "have: set datapath_type = netdev (the userspace datapath)"
                        if br.datapath_type in ("", "system") else "see ovs-vswitchd's log")
                problems.append(f"bridge {name} (datapath_type={br.datapath_type or 'system'}) has no "
                                f"datapath: {hint}")
        for name in ports:
            iface = self.api.lookup("Interface", name, default=None)
            if iface is None:
                continue
            error, ofport = (iface.error or [None])[0], (iface.ofport or [None])[0]
            if error or ofport == -1:
                bridge = next((b.name for b in self._rows("Bridge") for p in b.ports
                               if any(i.name == name for i in p.interfaces)), "?")
                problems.append(f"interface {name} on {bridge} could not be opened: {error or 'ofport -1'}")
        if problems:
            raise OvsDatapathError("; ".join(problems))


def _same(have: Any, want: Any) -> bool:
    """True when writing ``want`` (as ovsdbapp's db_set writes it) would not change the column ``have``.

    A map is merged key by key (db_set's semantics); a set column compares as a set; an optional
    column (fail_mode, tag) holds a list of zero or one values in the IDL."""
    if isinstance(want, dict):
        return all(have.get(k) == v for k, v in want.items())
    if isinstance(want, list):
        return sorted(have) == sorted(want)
    return bool(have == want or have == [want])


def _describe(exc: BaseException) -> str:
    """Text for an exception; some ovsdbapp exceptions fail in ``str()`` (no ``msg`` when formatting failed)."""
    try:
        text = str(exc)
    except Exception:
        text = type(exc).__name__
    cause = exc.__cause__
    return f"{text} ({_describe(cause)})" if cause is not None else text
