"""A network's segments: what ``provider:*`` / ``segments`` ask for, and what ML2 gave.

:class:`TypeManager` turns a network's provider attributes into segments,
using the type drivers ``[ml2] type_drivers`` names:

* no provider attributes: a project network; the first type of
  ``[ml2] project_network_types`` (formerly ``tenant_network_types``) with a
  free ID wins, else ``NoNetworkAvailable`` (503);
* ``provider:network_type`` (+ ``physical_network``, ``segmentation_id``):
  one provider segment, validated by its driver, then reserved (an ID in use
  is a 409 of the type's own class);
* ``segments``: several such segments (multi-provider).

Every method that touches the database runs in the caller's transaction
(``conn`` from ``write_txn`` / ``read_txn``), so a network and its segments
are created and deleted together.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from kaon.config import Config, ConfigError
from kaon.db.ml2_tables import network_segments as seg_table
from kaon.errors import NoNetworkAvailable
from kaon.ml2.types import pool
from kaon.ml2.types.base import SegmentSpec, TypeDriver, invalid
from kaon.ml2.types.errors import SegmentsContainDuplicateEntry, SegmentsSetInConjunctionWithProviders
from kaon.ml2.types.registry import build_type_drivers

NETWORK_TYPE = "provider:network_type"
PHYSICAL_NETWORK = "provider:physical_network"
SEGMENTATION_ID = "provider:segmentation_id"
PROVIDER_ATTRIBUTES = (NETWORK_TYPE, PHYSICAL_NETWORK, SEGMENTATION_ID)
SEGMENTS = "segments"
_IN_CHUNK = 500  # ids per IN (...) list: far below any database's bound-parameter limit


@dataclass(frozen=True)
class Segment:
    id: str
    network_id: str
    network_type: str
    physical_network: str | None
    segmentation_id: int | None
    segment_index: int = 0

    @property
    def spec(self) -> SegmentSpec:
        return SegmentSpec(self.network_type, self.physical_network, self.segmentation_id)


def provider_attributes(segments: Sequence[Segment]) -> dict[str, Any]:
    """The network's API view: ``provider:*`` for one segment, ``segments`` for several (Neutron's rule)."""
    if len(segments) > 1:
        return {SEGMENTS: [{NETWORK_TYPE: s.network_type, PHYSICAL_NETWORK: s.physical_network,
                            SEGMENTATION_ID: s.segmentation_id} for s in segments]}
    first = segments[0] if segments else None
    return {NETWORK_TYPE: first and first.network_type, PHYSICAL_NETWORK: first and first.physical_network,
            SEGMENTATION_ID: first and first.segmentation_id}


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise invalid(f"'{value}' is not an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"'{value}' is not an integer") from None


class TypeManager:
    """Segments for networks, from the configured type drivers."""

    def __init__(self, drivers: Mapping[str, TypeDriver], project_network_types: Sequence[str], *,
                 external_network_type: str | None = None, default_mtu: int = 1500) -> None:
        self.drivers = dict(drivers)
        self.project_network_types = tuple(project_network_types)
        self.external_network_type = external_network_type
        self.default_mtu = default_mtu

    @classmethod
    def from_config(cls, config: Config) -> TypeManager:
        drivers = build_type_drivers(config)
        option = "project_network_types" if ("ml2", "project_network_types") in config.origins \
            else "tenant_network_types"
        for name in config.ml2.project_network_types:
            if name not in drivers:
                raise ConfigError(f"No type driver for tenant network_type: {name}",
                                  file=config.origins.get(("ml2", option)), section="ml2", option=option)
        external = config.ml2.external_network_type
        if external and external not in drivers:
            raise ConfigError(f"No type driver for external network_type: {external}",
                              file=config.origins.get(("ml2", "external_network_type")), section="ml2",
                              option="external_network_type")
        return cls(drivers, config.ml2.project_network_types, external_network_type=external,
                   default_mtu=config.default.global_physnet_mtu)

    # --- validation (no database) ---

    def parse_provider(self, provider: Mapping[str, Any] | None) -> list[SegmentSpec]:
        """Validated segment requests; ``[]`` means "allocate a project segment".

        ``provider`` may be the whole network body: only the provider
        attributes and ``segments`` are looked at.
        """
        if not provider:
            return []
        segments = provider.get(SEGMENTS)
        if any(provider.get(key) is not None for key in PROVIDER_ATTRIBUTES):
            if segments is not None:
                raise SegmentsSetInConjunctionWithProviders()
            return [self._process(provider)]
        if not segments:
            return []
        if not isinstance(segments, list) or not all(isinstance(s, Mapping) for s in segments):
            raise invalid("segments must be a list of objects")
        for entry in segments:
            unknown = sorted(set(entry) - set(PROVIDER_ATTRIBUTES))
            if unknown:
                raise invalid(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        specs = [self._process(entry) for entry in segments]
        full = [s for s in specs if not self.drivers[s.network_type].is_partial_segment(s)]
        if len(set(full)) != len(full):
            raise SegmentsContainDuplicateEntry()
        return specs

    def _process(self, attrs: Mapping[str, Any]) -> SegmentSpec:
        network_type = attrs.get(NETWORK_TYPE)
        if network_type is None:
            raise invalid("network_type required")
        if not isinstance(network_type, str) or network_type not in self.drivers:
            raise invalid(f"network_type value '{network_type}' not supported")
        physnet = attrs.get(PHYSICAL_NETWORK)
        if physnet is not None and not isinstance(physnet, str):
            raise invalid(f"'{physnet}' is not a valid string")
        if physnet is not None and len(physnet) > 64:
            raise invalid(f"'{physnet}' exceeds maximum length of 64")
        seg_id = attrs.get(SEGMENTATION_ID)
        spec = SegmentSpec(network_type, physnet or None, None if seg_id is None else _to_int(seg_id))
        self.drivers[network_type].validate_provider_segment(spec)
        return spec

    # --- the database side ---

    def create_network_segments(self, conn: Connection, network_id: str,
                                provider: Mapping[str, Any] | None = None, *,
                                external: bool = False) -> list[Segment]:
        """Reserve or allocate the network's segments and store them; returns them in index order.

        ``external`` (the network is ``router:external``) makes a network
        without provider attributes use ``[ml2] external_network_type`` when set.
        """
        specs = self.parse_provider(provider)
        if not specs:
            types = (self.external_network_type,) if external and self.external_network_type \
                else self.project_network_types
            reserved = {0: self._allocate(conn, types, network_id)}
        else:
            # Fully specified segments first, so that a partial one in the same
            # request cannot take the very ID another segment names.
            order = sorted(range(len(specs)), key=lambda i: self.drivers[specs[i].network_type]
                           .is_partial_segment(specs[i]))
            reserved = {i: self.drivers[specs[i].network_type].reserve_provider_segment(conn, specs[i], network_id)
                        for i in order}
        segments = [Segment(str(uuid.uuid4()), network_id, spec.network_type, spec.physical_network,
                            spec.segmentation_id, index) for index, spec in sorted(reserved.items())]
        conn.execute(insert(seg_table), [
            {"id": s.id, "network_id": s.network_id, "network_type": s.network_type,
             "physical_network": s.physical_network, "segmentation_id": s.segmentation_id,
             "segment_index": s.segment_index, "is_dynamic": False} for s in segments])
        return segments

    def _allocate(self, conn: Connection, types: Iterable[str], network_id: str) -> SegmentSpec:
        for network_type in types:
            spec = self.drivers[network_type].allocate_tenant_segment(conn, network_id)
            if spec is not None:
                return spec
        raise NoNetworkAvailable()

    def update_segmentation_id(self, conn: Connection, network_id: str, segmentation_id: Any) -> Segment:
        """Move a VLAN network to another tag on the same physnet (the only provider update Neutron allows).

        Checking that no port is bound is the caller's business.
        """
        segments = self.segments_for(conn, [network_id])[network_id]
        if len(segments) != 1 or segments[0].network_type != "vlan":
            raise invalid("Only VLAN type networks can be updated.")
        if not segmentation_id:
            raise invalid("Only segmentation_id field can be updated in VLAN type networks")
        old = segments[0]
        new_spec = SegmentSpec("vlan", old.physical_network, _to_int(segmentation_id))
        if new_spec == old.spec:
            return old
        driver = self.drivers["vlan"]
        driver.validate_provider_segment(new_spec)
        driver.reserve_provider_segment(conn, new_spec, network_id)
        conn.execute(update(seg_table).where(seg_table.c.id == old.id)
                     .values(segmentation_id=new_spec.segmentation_id))
        driver.release_segment(conn, old.spec)
        return Segment(old.id, network_id, "vlan", old.physical_network, new_spec.segmentation_id,
                       old.segment_index)

    def release_network_segments(self, conn: Connection, network_id: str) -> None:
        """Give back every ID the network holds and delete its segments (before deleting the network)."""
        for segment in self.segments_for(conn, [network_id])[network_id]:
            driver = self.drivers.get(segment.network_type)
            if driver is not None:
                driver.release_segment(conn, segment.spec)
        # Also what a type no longer in type_drivers left behind.
        pool.release_network(conn, network_id)
        conn.execute(delete(seg_table).where(seg_table.c.network_id == network_id))

    def segments_for(self, conn: Connection, network_ids: Iterable[str]) -> dict[str, list[Segment]]:
        """Segments of many networks at once (one query per 500 ids); every id asked for is a key."""
        ids = list(dict.fromkeys(network_ids))
        result: dict[str, list[Segment]] = {net_id: [] for net_id in ids}
        for start in range(0, len(ids), _IN_CHUNK):
            query = (select(seg_table).where(seg_table.c.network_id.in_(ids[start:start + _IN_CHUNK]))
                     .order_by(seg_table.c.network_id, seg_table.c.segment_index))
            for row in conn.execute(query).mappings():
                result[row["network_id"]].append(Segment(
                    row["id"], row["network_id"], row["network_type"], row["physical_network"],
                    None if row["segmentation_id"] is None else int(row["segmentation_id"]),
                    row["segment_index"]))
        return result

    # --- MTU ---

    def segment_mtu(self, segment: Segment | SegmentSpec) -> int:
        driver = self.drivers.get(segment.network_type)
        return driver.get_mtu(segment.physical_network) if driver is not None else 0

    def network_mtu(self, segments: Iterable[Segment | SegmentSpec]) -> int:
        """The smallest MTU any segment allows; ``global_physnet_mtu`` when none constrains it (local)."""
        mtus = [m for m in (self.segment_mtu(s) for s in segments) if m > 0]
        return min(mtus) if mtus else self.default_mtu
