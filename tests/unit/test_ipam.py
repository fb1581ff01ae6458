"""IPAM without the API: default pools, pool validation, which addresses a
port may hold, EUI-64, and allocation against a real (in-memory) database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace

import netaddr
import pytest
from sqlalchemy import Engine, insert, select

from kaon import errors
from kaon.core.l2 import ipam
from kaon.db import core_tables as t
from kaon.db.engine import make_engine, write_txn
from kaon.db.meta import load_all


@pytest.mark.parametrize("cidr, gateway, pools", [
    ("10.0.0.0/24", "10.0.0.1", [("10.0.0.2", "10.0.0.254")]),
    ("10.0.0.0/24", None, [("10.0.0.1", "10.0.0.254")]),
    ("10.0.0.0/24", "10.0.0.100", [("10.0.0.1", "10.0.0.99"), ("10.0.0.101", "10.0.0.254")]),
    ("10.0.0.0/24", "10.0.0.254", [("10.0.0.1", "10.0.0.253")]),
    ("10.0.0.0/24", "192.168.0.1", [("10.0.0.1", "10.0.0.254")]),
    ("10.0.0.0/30", "10.0.0.1", [("10.0.0.2", "10.0.0.2")]),
    ("10.0.0.0/31", None, []),
    ("10.0.0.7/32", None, [("10.0.0.7", "10.0.0.7")]),
    ("2001:db8::/64", "2001:db8::1", [("2001:db8::2", "2001:db8::ffff:ffff:ffff:ffff")]),
    ("2001:db8::/126", None, [("2001:db8::1", "2001:db8::3")]),
])
def test_default_pools(cidr: str, gateway: str | None, pools: list[tuple[str, str]]) -> None:
    expected = [{"start": str(netaddr.IPAddress(a)), "end": str(netaddr.IPAddress(b))} for a, b in pools]
    assert ipam.default_pools(cidr, gateway) == expected


def test_parse_pools_keeps_valid_pools() -> None:
    raw = [{"start": "10.0.0.30", "end": "10.0.0.40"}, {"start": "10.0.0.10", "end": "10.0.0.20"}]
    assert ipam.parse_pools(raw, "10.0.0.0/24") == raw
    assert ipam.parse_pools([{"start": "10.0.0.1", "end": "10.0.0.254"}], "10.0.0.0/24")
    assert ipam.parse_pools([{"start": "2001:db8::2", "end": "2001:db8::ffff:ffff:ffff:ffff"}], "2001:db8::/64")
    assert ipam.parse_pools([], "10.0.0.0/24") == []


@pytest.mark.parametrize("raw, error", [
    ([{"start": "10.0.0.0", "end": "10.0.0.5"}], ipam.OutOfBoundsAllocationPool),
    ([{"start": "10.0.0.5", "end": "10.0.0.255"}], ipam.OutOfBoundsAllocationPool),
    ([{"start": "10.0.0.5", "end": "10.0.1.5"}], ipam.OutOfBoundsAllocationPool),
    ([{"start": "9.255.255.255", "end": "10.0.0.5"}], ipam.OutOfBoundsAllocationPool),
    ([{"start": "10.0.0.9", "end": "10.0.0.5"}], ipam.InvalidAllocationPool),
    ([{"start": "10.0.0.5", "end": "2001:db8::5"}], ipam.InvalidAllocationPool),
    ([{"start": "banana", "end": "10.0.0.5"}], ipam.InvalidAllocationPool),
    ([{"start": None, "end": "10.0.0.5"}], ipam.InvalidAllocationPool),
    ([{"start": "10.0.0.5"}], errors.InvalidInput),
    ([{"start": "10.0.0.5", "end": "10.0.0.6", "step": 1}], errors.InvalidInput),
    (["10.0.0.5-10.0.0.6"], errors.InvalidInput),
    ({"start": "10.0.0.5", "end": "10.0.0.6"}, errors.InvalidInput),
    ([{"start": "10.0.0.2", "end": "10.0.0.9"}, {"start": "10.0.0.9", "end": "10.0.0.12"}],
     ipam.OverlappingAllocationPools),
    ([{"start": "10.0.0.2", "end": "10.0.0.50"}, {"start": "10.0.0.9", "end": "10.0.0.12"}],
     ipam.OverlappingAllocationPools),
])
def test_parse_pools_refuses(raw, error) -> None:
    with pytest.raises(error):
        ipam.parse_pools(raw, "10.0.0.0/24")


def test_pool_error_statuses() -> None:
    assert ipam.InvalidAllocationPool.status == ipam.OutOfBoundsAllocationPool.status == 400
    assert ipam.OverlappingAllocationPools.status == ipam.GatewayConflictWithAllocationPools.status == 409
    with pytest.raises(ipam.OverlappingAllocationPools) as exc:
        ipam.parse_pools([{"start": "10.0.0.2", "end": "10.0.0.9"}, {"start": "10.0.0.5", "end": "10.0.0.12"}],
                         "10.0.0.0/24")
    assert exc.value.msg == ("Found overlapping allocation pools: 10.0.0.2-10.0.0.9 10.0.0.5-10.0.0.12 "
                             "for subnet 10.0.0.0/24.")


def test_check_gateway() -> None:
    pools = [{"start": "10.0.0.10", "end": "10.0.0.20"}]
    for gw in (None, "", "10.0.0.1", "10.0.0.9", "10.0.0.21"):
        ipam.check_gateway(gw, pools)
    for gw in ("10.0.0.10", "10.0.0.15", "10.0.0.20"):
        with pytest.raises(ipam.GatewayConflictWithAllocationPools) as exc:
            ipam.check_gateway(gw, pools)
        assert exc.value.msg == f"Gateway ip {gw} conflicts with allocation pool 10.0.0.10-10.0.0.20."


@pytest.mark.parametrize("ip, cidr, owner, ok", [
    ("10.0.0.5", "10.0.0.0/24", "", True),
    ("10.0.0.0", "10.0.0.0/24", "", False),
    ("10.0.0.255", "10.0.0.0/24", "", False),
    ("10.0.0.255", "10.0.0.0/24", "network:router_interface", False),
    ("10.0.1.5", "10.0.0.0/24", "", False),
    ("2001:db8::5", "10.0.0.0/24", "", False),
    ("10.0.0.0", "10.0.0.0/31", "", False),
    ("2001:db8::ffff", "2001:db8::/112", "", True),
    ("2001:db8::", "2001:db8::/112", "", False),
    ("2001:db8::", "2001:db8::/112", "network:router_interface", True),
    ("2001:db8::", "2001:db8::/112", "network:dhcp", True),
    ("not-an-ip", "10.0.0.0/24", "", False),
])
def test_usable(ip: str, cidr: str, owner: str, ok: bool) -> None:
    assert ipam.usable(ip, cidr, owner) is ok


def test_eui64() -> None:
    assert ipam.eui64("2001:db8::/64", "fa:16:3e:12:34:56") == "2001:db8::f816:3eff:fe12:3456"
    assert ipam.eui64("2001:db8:1:2::/64", "00:00:5e:00:53:01") == "2001:db8:1:2:200:5eff:fe00:5301"


def _ints(*ips: str) -> list[int]:
    return [int(netaddr.IPAddress(i)) for i in ips]


def test_candidates_start_after_the_hint_and_wrap() -> None:
    pools = [{"start": "10.0.0.10", "end": "10.0.0.12"}, {"start": "10.0.0.2", "end": "10.0.0.4"}]
    assert list(ipam._candidates(pools, None)) == _ints("10.0.0.2", "10.0.0.3", "10.0.0.4",
                                                        "10.0.0.10", "10.0.0.11", "10.0.0.12")
    after = list(ipam._candidates(pools, int(netaddr.IPAddress("10.0.0.3"))))
    assert after[:4] == _ints("10.0.0.4", "10.0.0.10", "10.0.0.11", "10.0.0.12")
    assert set(after) == set(_ints("10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.10", "10.0.0.11", "10.0.0.12"))


# --- against a database ---------------------------------------------------------------
@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = make_engine("sqlite://")
    load_all().create_all(eng)
    yield eng
    eng.dispose()


def _subnet(engine: Engine, cidr: str, pools: list[dict[str, str]], sid: str) -> SimpleNamespace:
    now = dt.datetime(2026, 1, 1)
    std = {"project_id": "p", "name": "", "description": "", "created_at": now, "updated_at": now,
           "revision_number": 0}
    with write_txn(engine) as conn:
        if conn.execute(select(t.networks.c.id).where(t.networks.c.id == "net")).first() is None:
            conn.execute(insert(t.networks).values(id="net", **std))
        conn.execute(insert(t.subnets).values(id=sid, network_id="net", ip_version=netaddr.IPNetwork(cidr).version,
                                              cidr=cidr, allocation_pools=pools, **std))
        for i in range(8):
            pid = f"{sid}-port{i}"
            conn.execute(insert(t.ports).values(id=pid, network_id="net", mac_address=f"fa:16:3e:00:00:{i:02x}-{sid}",
                                                **std))
    ipam.forget(sid)
    return SimpleNamespace(id=sid, network_id="net", ip_version=netaddr.IPNetwork(cidr).version,
                           allocation_pools=pools)


def test_allocate_any_fills_the_pool_once(engine: Engine) -> None:
    sub = _subnet(engine, "10.0.0.0/29", [{"start": "10.0.0.2", "end": "10.0.0.4"}], "s1")
    got = []
    with write_txn(engine) as conn:
        for i in range(4):
            got.append(ipam.allocate_any(conn, f"s1-port{i}", sub))
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.4", None]


def test_allocate_any_reuses_released_addresses(engine: Engine) -> None:
    sub = _subnet(engine, "10.0.0.0/29", [{"start": "10.0.0.2", "end": "10.0.0.4"}], "s2")
    with write_txn(engine) as conn:
        for i in range(3):
            ipam.allocate_any(conn, f"s2-port{i}", sub)
        conn.execute(t.ip_allocations.delete().where(t.ip_allocations.c.ip_address == "10.0.0.3"))
        # The hint is past .4: the search wraps around to the freed address.
        assert ipam.allocate_any(conn, "s2-port3", sub) == "10.0.0.3"
        assert ipam.allocate_any(conn, "s2-port4", sub) is None


def test_allocate_any_skips_specific_allocations(engine: Engine) -> None:
    sub = _subnet(engine, "10.0.0.0/24", [{"start": "10.0.0.2", "end": "10.0.0.254"}], "s3")
    with write_txn(engine) as conn:
        assert ipam.insert_allocation(conn, "s3-port0", sub, "10.0.0.2")
        assert not ipam.insert_allocation(conn, "s3-port1", sub, "10.0.0.2")
        assert ipam.insert_allocation(conn, "s3-port1", sub, "10.0.0.3")
        assert ipam.allocate_any(conn, "s3-port2", sub) == "10.0.0.4"
    rows = sorted(r.ip_address for r in engine.connect().execute(select(t.ip_allocations)))
    assert rows == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]


def test_allocate_any_large_ipv6_pool(engine: Engine) -> None:
    pools = [{"start": "2001:db8::2", "end": "2001:db8::ffff:ffff:ffff:ffff"}]
    sub = _subnet(engine, "2001:db8::/64", pools, "s4")
    with write_txn(engine) as conn:
        assert [ipam.allocate_any(conn, f"s4-port{i}", sub) for i in range(3)] == \
            ["2001:db8::2", "2001:db8::3", "2001:db8::4"]
