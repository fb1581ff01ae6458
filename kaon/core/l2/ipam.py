"""IP address management: default pools, pool validation, and allocation
that never hands one address to two ports.

Allocation tries candidates in order from a per-process hint (the last
address handed out on that subnet): the next one directly, then batches,
asking the database which of a batch of candidates are taken. The hint is
only a speed-up: correctness comes from the unique (subnet_id, ip_address)
constraint. Each insert is ``INSERT ... ON CONFLICT DO NOTHING``, so a
concurrent transaction that took the same address first makes this one move
on to the next candidate instead of failing.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import netaddr
from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from kaon import errors
from kaon.db.core_tables import ip_allocations, ports, subnets
from kaon.db.fast_insert import FastInsert

BATCH = 64

InvalidAllocationPool = errors.define("InvalidAllocationPool", errors.BadRequest,
                                      "The allocation pool {pool} is not valid.")
OutOfBoundsAllocationPool = errors.define(
    "OutOfBoundsAllocationPool", errors.BadRequest,
    "The allocation pool {pool} spans beyond the subnet cidr {subnet_cidr}.")
OverlappingAllocationPools = errors.define(
    "OverlappingAllocationPools", errors.Conflict,
    "Found overlapping allocation pools: {pool_1} {pool_2} for subnet {subnet_cidr}.")
GatewayConflictWithAllocationPools = errors.define(
    "GatewayConflictWithAllocationPools", errors.Conflict,
    "Gateway ip {ip_address} conflicts with allocation pool {pool}.")
InvalidIpForSubnet = errors.define("InvalidIpForSubnet", errors.BadRequest,
                                   "IP address {ip_address} is not a valid IP for the specified subnet.")
InvalidIpForNetwork = errors.define("InvalidIpForNetwork", errors.BadRequest,
                                    "IP address {ip_address} is not a valid IP for any of the subnets on the specified network.")

# neutron-lib's ROUTER_INTERFACE_OWNERS_SNAT and ROUTER_PORT_OWNERS.
ROUTER_INTERFACE_OWNERS_SNAT = ("network:router_interface", "network:router_interface_distributed",
                                "network:ha_router_replicated_interface", "network:router_centralized_snat")
ROUTER_PORT_OWNERS = (*ROUTER_INTERFACE_OWNERS_SNAT, "network:router_gateway", "network:router_ha_interface")

_hints: dict[str, int] = {}
_hints_lock = threading.Lock()


def default_pools(cidr: str, gateway_ip: str | None) -> list[dict[str, str]]:
    net = netaddr.IPNetwork(cidr)
    first, last = net.first, net.last
    if first == last:
        return [{"start": str(net.ip), "end": str(net.ip)}]
    lo = first + 1
    hi = last - (1 if net.version == 4 else 0)
    if lo >= hi:
        return []
    # [lo, hi] less the gateway, in integers (an IPSet cost a quarter of a subnet create).
    ranges = [(lo, hi)]
    if gateway_ip:
        gw = int(netaddr.IPAddress(gateway_ip))
        if lo <= gw <= hi:
            ranges = [(a, b) for a, b in ((lo, gw - 1), (gw + 1, hi)) if a <= b]
    version = net.version
    return [{"start": str(netaddr.IPAddress(a, version)), "end": str(netaddr.IPAddress(b, version))}
            for a, b in ranges]


def parse_pools(raw: Any, cidr: str) -> list[dict[str, str]]:
    """Validate client-given pools against the subnet (Neutron's rules)."""
    if not isinstance(raw, list):
        raise errors.InvalidInput(error_message="Invalid input for allocation_pools. Reason: not a list")
    net = netaddr.IPNetwork(cidr)
    ranges: list[netaddr.IPRange] = []
    for pool in raw:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise errors.InvalidInput(
                error_message=f"Invalid input for allocation_pools. Reason: Invalid data format for IP pool: '{pool}'.")
        if not isinstance(pool["start"], str) or not isinstance(pool["end"], str):
            raise InvalidAllocationPool(pool=pool)  # netaddr would read 5 as 0.0.0.5
        try:
            start, end = netaddr.IPAddress(pool["start"]), netaddr.IPAddress(pool["end"])
        except (netaddr.AddrFormatError, ValueError, TypeError):
            raise InvalidAllocationPool(pool=pool) from None
        if start.version != net.version or end.version != net.version or start > end:
            raise InvalidAllocationPool(pool=pool)
        bad = {net.first} if net.size > 2 else set()
        if net.version == 4 and net.size > 2:
            bad.add(net.last)
        if int(start) < net.first or int(end) > net.last or int(start) in bad or int(end) in bad:
            raise OutOfBoundsAllocationPool(pool=f"{start}-{end}", subnet_cidr=cidr)
        ranges.append(netaddr.IPRange(start, end))
    for i, a in enumerate(ranges):
        for b in ranges[i + 1:]:
            if a.first <= b.last and b.first <= a.last:
                raise OverlappingAllocationPools(pool_1=a, pool_2=b, subnet_cidr=cidr)
    return [{"start": str(r[0]), "end": str(r[-1])} for r in ranges]


def check_gateway(gateway_ip: str | None, pools: list[dict[str, str]]) -> None:
    if not gateway_ip:
        return
    gw = int(netaddr.IPAddress(gateway_ip))
    for pool in pools:
        rng = netaddr.IPRange(pool["start"], pool["end"])
        if rng.first <= gw <= rng.last:
            raise GatewayConflictWithAllocationPools(ip_address=gateway_ip, pool=f"{pool['start']}-{pool['end']}")


def usable(ip: str, cidr: str, device_owner: str = "") -> bool:
    """An address a port may hold (Neutron's check_subnet_ip): in the subnet
    and not its network address nor, in IPv4, its last address. Router and
    DHCP ports may hold an IPv6 subnet's network (subnet-router anycast)
    address."""
    net = netaddr.IPNetwork(cidr)
    try:
        addr = netaddr.IPAddress(ip)
    except (netaddr.AddrFormatError, ValueError):
        return False
    if addr.version != net.version or addr not in net:
        return False
    if net.version == 4:
        return addr.value not in (net.first, net.last)
    return addr.value != net.first or device_owner in (*ROUTER_PORT_OWNERS, "network:dhcp")


def _candidates(pools: list[dict[str, str]], start_after: int | None) -> Iterator[int]:
    ranges = sorted((int(netaddr.IPAddress(p["start"])), int(netaddr.IPAddress(p["end"]))) for p in pools)
    if start_after is not None:
        for lo, hi in ranges:
            if hi > start_after:
                yield from range(max(lo, start_after + 1), hi + 1)
    for lo, hi in ranges:
        if start_after is not None and lo > start_after:
            break
        stop = hi if start_after is None else min(hi, start_after)
        yield from range(lo, stop + 1)


_ALLOC_INSERT = FastInsert(ip_allocations, unique=("subnet_id", "ip_address"))
_TAKEN = select(ip_allocations.c.ip_address).where(
    ip_allocations.c.subnet_id == bindparam("subnet_id"), ip_allocations.c.ip_address.in_(bindparam("ips", expanding=True)))


def insert_allocation(conn: Connection, port_id: str, subnet: Any, ip: str) -> bool:
    """Insert one allocation; False when another port holds the address.

    One statement: the unique (subnet_id, ip_address) constraint decides
    (``ON CONFLICT DO NOTHING``). On PostgreSQL a concurrent transaction
    inserting the same address makes this one wait for its outcome."""
    row = {"port_id": port_id, "ip_address": ip, "subnet_id": subnet.id, "network_id": subnet.network_id}
    try:
        return _ALLOC_INSERT.run(conn, row) == 1
    except IntegrityError:
        if conn.dialect.name == "sqlite":
            raise
        # Only a foreign key is left to fail: the subnet was deleted under us
        # (the port is the caller's own): no reason to try other addresses.
        raise errors.SubnetNotFound(subnet_id=subnet.id) from None


def allocate_any(conn: Connection, port_id: str, subnet: Any) -> str | None:
    """Next free address of the subnet's pools, or None when it is full.

    The candidate after the hint is tried directly (usually free: one
    statement); after a miss, batches of candidates are probed first."""
    version = subnet.ip_version
    with _hints_lock:
        hint = _hints.get(subnet.id)
    gen = _candidates(subnet.allocation_pools or [], hint)
    first = next(gen, None)
    if first is None:
        return None
    text = str(netaddr.IPAddress(first, version))
    if insert_allocation(conn, port_id, subnet, text):
        with _hints_lock:
            _hints[subnet.id] = first
        return text
    while True:
        batch = [c for c in (next(gen, None) for _ in range(BATCH)) if c is not None]
        if not batch:
            return None
        texts = [str(netaddr.IPAddress(c, version)) for c in batch]
        taken = set(conn.execute(_TAKEN, {"subnet_id": subnet.id, "ips": texts}).scalars())
        for value, text in zip(batch, texts, strict=True):
            if text in taken:
                continue
            if insert_allocation(conn, port_id, subnet, text):
                with _hints_lock:
                    _hints[subnet.id] = value
                return text


def address_existing_ports(conn: Connection, subnet_id: str, network_id: str, cidr: str) -> None:
    """A new auto-address (SLAAC) subnet gives the network's ports, router
    interfaces aside, their EUI-64 address on it, as Neutron does."""
    subnet = SimpleNamespace(id=subnet_id, network_id=network_id)
    for port_id, mac in conn.execute(select(ports.c.id, ports.c.mac_address).where(
            ports.c.network_id == network_id, ~ports.c.device_owner.in_(ROUTER_INTERFACE_OWNERS_SNAT))).all():
        if _insert_guarded(conn, port_id, subnet, eui64(cidr, mac)):
            conn.execute(update(ports).where(ports.c.id == port_id).values(
                revision_number=ports.c.revision_number + 1, updated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))


def _insert_guarded(conn: Connection, port_id: str, subnet: Any, ip: str) -> bool:
    """:func:`insert_allocation` for another transaction's ports, which may be
    deleted under us on PostgreSQL: a failed foreign key skips the port."""
    if conn.dialect.name == "sqlite":
        return insert_allocation(conn, port_id, subnet, ip)
    try:
        with conn.begin_nested():
            return _ALLOC_INSERT.run(conn, {"port_id": port_id, "ip_address": ip, "subnet_id": subnet.id,
                                            "network_id": subnet.network_id}) == 1
    except IntegrityError:
        if conn.execute(select(subnets.c.id).where(subnets.c.id == subnet.id)).first() is None:
            raise errors.SubnetNotFound(subnet_id=subnet.id) from None
        return False


def eui64(cidr: str, mac: str) -> str:
    net = netaddr.IPNetwork(cidr)
    return str(netaddr.EUI(mac).ipv6(net.network))


def forget(subnet_id: str) -> None:
    with _hints_lock:
        _hints.pop(subnet_id, None)
