"""ML2 type drivers and the TypeManager: validation, allocation, release, MTU, concurrency."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, MetaData, String, Table, event, insert, select
from sqlalchemy.exc import IntegrityError

from kaon.config import ConfigError, load_config
from kaon.db import ml2_tables
from kaon.db.engine import make_engine, read_txn, write_txn
from kaon.errors import InUse, InvalidInput, NoNetworkAvailable
from kaon.ml2.segments import Segment, TypeManager, provider_attributes
from kaon.ml2.types import pool
from kaon.ml2.types.errors import (
    FlatNetworkInUse,
    SegmentsContainDuplicateEntry,
    SegmentsSetInConjunctionWithProviders,
    TunnelIdInUse,
    VlanIdInUse,
)
from kaon.ml2.types.registry import TYPE_DRIVERS

# A stand-in for the lead's networks table, on a MetaData of the test's own, so
# these tests need nothing but kaon.db.ml2_tables.
_md = MetaData()
networks = Table("networks", _md, Column("id", String(36), primary_key=True))
for _table in (ml2_tables.network_segments, ml2_tables.ml2_segment_allocations):
    _table.to_metadata(_md)

ML2 = {
    "ml2": {"type_drivers": "local,flat,vlan,gre,vxlan,geneve", "project_network_types": "vxlan"},
    "ml2_type_flat": {"flat_networks": "provider,public"},
    "ml2_type_vlan": {"network_vlan_ranges": "default:100:101,default:200:201,physnet1"},
    "ml2_type_vxlan": {"vni_ranges": "1:3"},
    "ml2_type_gre": {"tunnel_id_ranges": "10:11"},
    "ml2_type_geneve": {"vni_ranges": "5:5"},
}


def manager(**sections: dict[str, Any]) -> TypeManager:
    merged = {name: dict(values) for name, values in ML2.items()}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return TypeManager.from_config(load_config([], merged))


def make_schema(url: str) -> Engine:
    engine = make_engine(url)
    _md.create_all(engine)
    return engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_schema(f"sqlite:///{tmp_path / 'ml2.sqlite'}")
    yield eng
    eng.dispose()


def create(engine: Engine, mgr: TypeManager, provider: dict[str, Any] | None = None,
           **kw: Any) -> list[Segment]:
    with write_txn(engine) as conn:
        net_id = str(uuid.uuid4())
        conn.execute(insert(networks).values(id=net_id))
        return mgr.create_network_segments(conn, net_id, provider, **kw)


def release(engine: Engine, mgr: TypeManager, net_id: str) -> None:
    with write_txn(engine) as conn:
        mgr.release_network_segments(conn, net_id)


def ids(segments: list[Segment]) -> list[tuple[str, str | None, int | None]]:
    return [(s.network_type, s.physical_network, s.segmentation_id) for s in segments]


def provider(network_type: str, physnet: str | None = None, seg_id: Any = None) -> dict[str, Any]:
    return {"provider:network_type": network_type, "provider:physical_network": physnet,
            "provider:segmentation_id": seg_id}


def error_of(engine: Engine, mgr: TypeManager, body: dict[str, Any] | None) -> Exception:
    with pytest.raises(Exception) as info:
        create(engine, mgr, body)
    return info.value


# --- project ("tenant") networks ---

def test_registry_names() -> None:
    assert list(TYPE_DRIVERS) == ["local", "flat", "vlan", "gre", "vxlan", "geneve"]


def test_default_config_gives_local_networks(engine: Engine) -> None:
    mgr = TypeManager.from_config(load_config([]))
    segments = create(engine, mgr)
    assert ids(segments) == [("local", None, None)]
    assert mgr.network_mtu(segments) == 1500


def test_vxlan_allocation_order_and_exhaustion(engine: Engine) -> None:
    mgr = manager()
    assert [ids(create(engine, mgr))[0][2] for _ in range(3)] == [1, 2, 3]
    err = error_of(engine, mgr, None)
    assert isinstance(err, NoNetworkAvailable) and err.status == 503
    assert str(err) == "Unable to create the network. No tenant network is available for allocation."


def test_non_contiguous_vlan_ranges(engine: Engine) -> None:
    mgr = manager(ml2={"project_network_types": "vlan"})
    got = [ids(create(engine, mgr))[0] for _ in range(4)]
    assert got == [("vlan", "default", 100), ("vlan", "default", 101), ("vlan", "default", 200),
                   ("vlan", "default", 201)]
    assert isinstance(error_of(engine, mgr, None), NoNetworkAvailable)


def test_first_type_with_a_free_id_wins(engine: Engine) -> None:
    mgr = manager(ml2={"project_network_types": "flat,geneve,gre"})
    assert ids(create(engine, mgr)) == [("geneve", None, 5)]  # flat has no project networks
    assert ids(create(engine, mgr)) == [("gre", None, 10)]


def test_release_and_reuse(engine: Engine) -> None:
    mgr = manager()
    first, second = create(engine, mgr), create(engine, mgr)
    release(engine, mgr, first[0].network_id)
    assert ids(create(engine, mgr)) == [("vxlan", None, 1)]
    assert ids(create(engine, mgr)) == [("vxlan", None, 3)]
    with read_txn(engine) as conn:
        assert mgr.segments_for(conn, [first[0].network_id, second[0].network_id]) == {
            first[0].network_id: [], second[0].network_id: second}


def test_external_network_type(engine: Engine) -> None:
    mgr = manager(ml2={"external_network_type": "vlan"})
    assert ids(create(engine, mgr, None, external=True)) == [("vlan", "default", 100)]
    assert ids(create(engine, mgr, None, external=False)) == [("vxlan", None, 1)]


# --- provider networks: flat ---

def test_flat_reserve_in_use_and_release(engine: Engine) -> None:
    mgr = manager()
    seg = create(engine, mgr, provider("flat", "provider"))
    assert ids(seg) == [("flat", "provider", None)]
    err = error_of(engine, mgr, provider("flat", "provider"))
    assert isinstance(err, FlatNetworkInUse) and isinstance(err, InUse) and err.status == 409
    assert err.type == "FlatNetworkInUse"
    assert str(err) == "Unable to create the flat network. Physical network provider is in use."
    assert ids(create(engine, mgr, provider("flat", "public"))) == [("flat", "public", None)]
    release(engine, mgr, seg[0].network_id)
    assert ids(create(engine, mgr, provider("flat", "provider"))) == [("flat", "provider", None)]


@pytest.mark.parametrize(
    ("flat_networks", "body", "message"),
    [
        ("provider", provider("flat"), "physical_network required for flat provider network"),
        ("provider", provider("flat", "other"), "physical_network 'other' unknown for flat provider network"),
        ("", provider("flat", "provider"), "Flat provider networks are disabled"),
        ("*", provider("flat", "any", 5), "segmentation_id prohibited for flat provider network"),
    ],
)
def test_flat_validation(engine: Engine, flat_networks: str, body: dict[str, Any], message: str) -> None:
    err = error_of(engine, manager(ml2_type_flat={"flat_networks": flat_networks}), body)
    assert isinstance(err, InvalidInput) and err.status == 400
    assert str(err) == f"Invalid input for operation: {message}."


def test_flat_wildcard_allows_any_physnet(engine: Engine) -> None:
    mgr = manager(ml2_type_flat={"flat_networks": "*"})
    assert ids(create(engine, mgr, provider("flat", "whatever"))) == [("flat", "whatever", None)]


# --- provider networks: vlan ---

@pytest.mark.parametrize(
    ("body", "message"),
    [
        (provider("vlan", "nope", 5), "physical_network 'nope' unknown for VLAN provider network"),
        (provider("vlan", "default", 4095), "segmentation_id out of range (1 through 4094)"),
        (provider("vlan", "default", 0), "segmentation_id out of range (1 through 4094)"),
        (provider("vlan", None, 100), "segmentation_id requires physical_network for VLAN provider network"),
    ],
)
def test_vlan_validation(engine: Engine, body: dict[str, Any], message: str) -> None:
    err = error_of(engine, manager(), body)
    assert isinstance(err, InvalidInput) and str(err) == f"Invalid input for operation: {message}."


def test_vlan_provider_ids(engine: Engine) -> None:
    mgr = manager()
    # Outside the ranges, and on a physnet listed without ranges: fine for an admin.
    assert ids(create(engine, mgr, provider("vlan", "default", 3000))) == [("vlan", "default", 3000)]
    assert ids(create(engine, mgr, provider("vlan", "physnet1", 100))) == [("vlan", "physnet1", 100)]
    err = error_of(engine, mgr, provider("vlan", "default", 3000))
    assert isinstance(err, VlanIdInUse) and err.status == 409
    assert str(err) == "Unable to create the network. The VLAN 3000 on physical network default is in use."
    # A provider VLAN inside the range takes it out of the project pool.
    create(engine, mgr, provider("vlan", "default", 100))
    assert ids(create(engine, mgr, provider("vlan", "default"))) == [("vlan", "default", 101)]
    assert ids(create(engine, mgr, provider("vlan"))) == [("vlan", "default", 200)]
    # A physnet without ranges has nothing to allocate from.
    assert isinstance(error_of(engine, mgr, provider("vlan", "physnet1")), NoNetworkAvailable)


def test_vlan_segmentation_id_as_string(engine: Engine) -> None:
    mgr = manager()
    assert ids(create(engine, mgr, provider("vlan", "default", "150"))) == [("vlan", "default", 150)]
    err = error_of(engine, mgr, provider("vlan", "default", "abc"))
    assert str(err) == "Invalid input for operation: 'abc' is not an integer."


def test_update_vlan_segmentation_id(engine: Engine) -> None:
    mgr = manager()
    seg = create(engine, mgr, provider("vlan", "default", 100))[0]
    with write_txn(engine) as conn:
        moved = mgr.update_segmentation_id(conn, seg.network_id, 300)
    assert (moved.id, moved.segmentation_id) == (seg.id, 300)
    assert ids(create(engine, mgr, provider("vlan", "default", 100))) == [("vlan", "default", 100)]
    with pytest.raises(VlanIdInUse), write_txn(engine) as conn:
        mgr.update_segmentation_id(conn, seg.network_id, 100)
    vx = create(engine, mgr)[0]
    with pytest.raises(InvalidInput, match="Only VLAN type networks can be updated."), write_txn(engine) as conn:
        mgr.update_segmentation_id(conn, vx.network_id, 7)


# --- provider networks: tunnels and local ---

@pytest.mark.parametrize("network_type", ["vxlan", "gre", "geneve"])
def test_tunnel_provider(engine: Engine, network_type: str) -> None:
    mgr = manager()
    err = error_of(engine, mgr, provider(network_type, "default", 5))
    assert str(err) == (f"Invalid input for operation: provider:physical_network specified for "
                        f"{network_type} network.")
    # Outside the ranges is allowed, but only once.
    assert ids(create(engine, mgr, provider(network_type, None, 777))) == [(network_type, None, 777)]
    err = error_of(engine, mgr, provider(network_type, None, 777))
    assert isinstance(err, TunnelIdInUse) and err.status == 409
    assert str(err) == "Unable to create the network. The tunnel ID 777 is in use."
    partial = create(engine, mgr, provider(network_type))
    assert partial[0].segmentation_id is not None


def test_tunnel_id_bounds(engine: Engine) -> None:
    mgr = manager()
    err = error_of(engine, mgr, provider("vxlan", None, 2**24))
    assert str(err) == "Invalid input for operation: segmentation_id out of range (1 through 16777215)."
    assert ids(create(engine, mgr, provider("gre", None, 2**32 - 1))) == [("gre", None, 2**32 - 1)]


def test_local_rejects_physnet_and_id(engine: Engine) -> None:
    mgr = manager()
    err = error_of(engine, mgr, provider("local", "default"))
    assert str(err) == "Invalid input for operation: physical_network prohibited for local provider network."
    err = error_of(engine, mgr, provider("local", None, 3))
    assert str(err) == "Invalid input for operation: segmentation_id prohibited for local provider network."
    assert ids(create(engine, mgr, provider("local"))) == [("local", None, None)]


# --- the request shape ---

def test_network_type_required_and_supported(engine: Engine) -> None:
    mgr = manager(ml2={"type_drivers": "vxlan,vlan"})
    err = error_of(engine, mgr, {"provider:physical_network": "default", "provider:segmentation_id": 5})
    assert str(err) == "Invalid input for operation: network_type required."
    err = error_of(engine, mgr, provider("flat", "provider"))
    assert str(err) == "Invalid input for operation: network_type value 'flat' not supported."


def test_multi_provider_segments(engine: Engine) -> None:
    mgr = manager()
    body = {"segments": [provider("vxlan"), provider("vxlan", None, 1), provider("vlan", "default", 200)]}
    segments = create(engine, mgr, body)
    # The partial VXLAN segment does not steal VNI 1 from the segment that names it.
    assert ids(segments) == [("vxlan", None, 2), ("vxlan", None, 1), ("vlan", "default", 200)]
    assert [s.segment_index for s in segments] == [0, 1, 2]
    assert provider_attributes(segments) == {"segments": [
        {"provider:network_type": "vxlan", "provider:physical_network": None, "provider:segmentation_id": 2},
        {"provider:network_type": "vxlan", "provider:physical_network": None, "provider:segmentation_id": 1},
        {"provider:network_type": "vlan", "provider:physical_network": "default",
         "provider:segmentation_id": 200}]}
    assert mgr.network_mtu(segments) == 1450


def test_multi_provider_errors(engine: Engine) -> None:
    mgr = manager()
    err = error_of(engine, mgr, {**provider("vxlan"), "segments": [provider("vxlan")]})
    assert isinstance(err, SegmentsSetInConjunctionWithProviders) and err.status == 400
    assert str(err) == "Segments and provider values cannot both be set."
    err = error_of(engine, mgr, {"segments": [provider("vlan", "default", 7), provider("vlan", "default", 7)]})
    assert isinstance(err, SegmentsContainDuplicateEntry)
    err = error_of(engine, mgr, {"segments": [{"provider:network_type": "vxlan", "mtu": 1}]})
    assert str(err) == "Invalid input for operation: Unrecognized attribute(s) 'mtu'."
    # Two partial segments of one type are not duplicates: each gets its own ID.
    assert ids(create(engine, mgr, {"segments": [provider("gre"), provider("gre")]})) == [
        ("gre", None, 10), ("gre", None, 11)]


def test_whole_network_body_and_single_segment_view(engine: Engine) -> None:
    mgr = manager()
    body = {"name": "ext", "admin_state_up": True, **provider("flat", "public")}
    segments = create(engine, mgr, body)
    assert provider_attributes(segments) == {"provider:network_type": "flat",
                                             "provider:physical_network": "public",
                                             "provider:segmentation_id": None}
    assert provider_attributes([]) == {"provider:network_type": None, "provider:physical_network": None,
                                       "provider:segmentation_id": None}


def test_failed_request_leaves_nothing_behind(engine: Engine) -> None:
    mgr = manager()
    create(engine, mgr, provider("vlan", "default", 200))
    with pytest.raises(VlanIdInUse):
        create(engine, mgr, {"segments": [provider("vxlan", None, 1), provider("vlan", "default", 200)]})
    assert ids(create(engine, mgr, provider("vxlan", None, 1))) == [("vxlan", None, 1)]


# --- lookups and release ---

def test_segments_for_is_one_query(engine: Engine) -> None:
    mgr = manager()
    nets = [create(engine, mgr)[0].network_id for _ in range(3)]
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with read_txn(engine) as conn:
        found = mgr.segments_for(conn, [*nets, "missing"])
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert [found[n][0].segmentation_id for n in nets] == [1, 2, 3] and found["missing"] == []


def test_deleting_the_network_frees_its_ids(engine: Engine) -> None:
    mgr = manager()
    seg = create(engine, mgr, provider("vlan", "default", 42))[0]
    with write_txn(engine) as conn:
        conn.execute(networks.delete().where(networks.c.id == seg.network_id))
    assert ids(create(engine, mgr, provider("vlan", "default", 42))) == [("vlan", "default", 42)]


def test_release_sweeps_types_no_longer_configured(engine: Engine) -> None:
    seg = create(engine, manager(), provider("gre", None, 99))[0]
    release(engine, manager(ml2={"type_drivers": "vxlan", "project_network_types": "vxlan"}), seg.network_id)
    with read_txn(engine) as conn:
        assert conn.execute(select(ml2_tables.ml2_segment_allocations)).all() == []


def test_lost_race_moves_to_the_next_id(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """What PostgreSQL does to a loser: both checks said "free", then the INSERT hit the key."""
    mgr = manager()
    create(engine, mgr)  # takes VNI 1
    real, lies = pool.is_taken, [False, False]  # first_free's check and claim's pre-check are stale

    def stale(*args: Any) -> bool:
        return lies.pop() if lies else real(*args)

    monkeypatch.setattr(pool, "is_taken", stale)
    with write_txn(engine) as conn:
        conn.execute(insert(networks).values(id="n2"))
        assert pool.allocate(conn, "vxlan", None, ((1, 3),), "n2") == 2


def test_claim_reraises_what_is_not_a_conflict(engine: Engine) -> None:
    with pytest.raises(IntegrityError), write_txn(engine) as conn:
        pool.claim(conn, "vxlan", None, 50, "no-such-network")


# --- MTU ---

@pytest.mark.parametrize(
    ("options", "segment", "mtu"),
    [
        ({}, provider("vxlan"), 1450),
        ({"ml2": {"overlay_ip_version": 6}}, provider("vxlan"), 1430),
        ({"ml2": {"path_mtu": 9000}}, provider("vxlan"), 1450),
        ({"DEFAULT": {"global_physnet_mtu": 9000}, "ml2": {"path_mtu": 1500}}, provider("vxlan"), 1450),
        ({"DEFAULT": {"global_physnet_mtu": 9000}}, provider("vxlan"), 8950),
        ({}, provider("gre"), 1458),
        ({}, provider("geneve"), 1450),
        ({"ml2_type_geneve": {"max_header_size": 38}}, provider("geneve"), 1442),
        ({}, provider("flat", "provider"), 1500),
        ({"ml2": {"physical_network_mtus": "default:1400"}}, provider("vlan", "default", 3), 1400),
        ({"ml2": {"physical_network_mtus": "default:9000"}}, provider("vlan", "default", 3), 1500),
        ({"ml2": {"path_mtu": 1000}}, provider("vlan", "default", 3), 1500),  # path_mtu is the overlay's
        ({"DEFAULT": {"global_physnet_mtu": 9000}}, provider("local"), 9000),
    ],
)
def test_mtu(engine: Engine, options: dict[str, Any], segment: dict[str, Any], mtu: int) -> None:
    mgr = manager(**options)
    assert mgr.network_mtu(create(engine, mgr, segment)) == mtu


def test_network_mtu_is_the_smallest_segment() -> None:
    mgr = manager(ml2={"physical_network_mtus": "default:1400"})
    segs = [Segment("a", "n", "vxlan", None, 1), Segment("b", "n", "vlan", "default", 5, 1)]
    assert mgr.network_mtu(segs) == 1400 and mgr.network_mtu([]) == 1500


# --- configuration errors ---

def test_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"\[ml2\] type_drivers: unknown type driver 'vxlan2'"):
        TypeManager.from_config(load_config([], {"ml2": {"type_drivers": "vxlan2"}}))
    with pytest.raises(ConfigError, match=r"\[ml2\] tenant_network_types: No type driver for tenant network_type: "
                                          r"vlan"):
        TypeManager.from_config(load_config([], {"ml2": {"type_drivers": "vxlan",
                                                         "tenant_network_types": "vlan"}}))
    with pytest.raises(ConfigError, match="external network_type: gre"):
        TypeManager.from_config(load_config([], {"ml2": {"type_drivers": "local",
                                                         "external_network_type": "gre"}}))


# --- concurrency ---

def _concurrent_allocations(url: str, workers: int = 20) -> list[int]:
    engine = make_schema(url)
    mgr = manager(ml2={"project_network_types": "vxlan"}, ml2_type_vxlan={"vni_ranges": "1:100"})
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers)

    def work() -> None:
        try:
            barrier.wait()
            segment = create(engine, mgr)[0]
            assert segment.segmentation_id is not None
            results.append(segment.segmentation_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    engine.dispose()
    assert not errors, errors
    return results


def test_concurrent_project_networks_get_distinct_vnis(db_url: str) -> None:
    results = _concurrent_allocations(db_url)
    assert sorted(results) == list(range(1, 21))
