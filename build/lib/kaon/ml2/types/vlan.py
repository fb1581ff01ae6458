"""``vlan``: 802.1Q tags 1-4094 on a physical network.

``network_vlan_ranges`` names the physnets VLAN networks may use and, for
some, the tag ranges project networks are allocated from (in the order
written; several, non-contiguous ranges per physnet are fine). An admin may
ask for any tag on a known physnet, inside the ranges or not.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy import Connection

from kaon.config import MAX_VLAN, Config
from kaon.errors import NoNetworkAvailable
from kaon.ml2.types import pool
from kaon.ml2.types.base import SegmentSpec, check_no_extra, invalid, physnet_mtu
from kaon.ml2.types.errors import VlanIdInUse

MIN_VLAN = 1


class VlanTypeDriver:
    network_type = "vlan"

    def __init__(self, ranges: Mapping[str, tuple[tuple[int, int], ...]], *, global_mtu: int = 1500,
                 physnet_mtus: Mapping[str, int] = MappingProxyType({})) -> None:
        self.ranges = ranges
        self.global_mtu, self.physnet_mtus = global_mtu, physnet_mtus

    def validate_provider_segment(self, spec: SegmentSpec) -> None:
        physnet, vlan_id = spec.physical_network, spec.segmentation_id
        if physnet:
            if physnet not in self.ranges:
                raise invalid(f"physical_network '{physnet}' unknown for VLAN provider network")
            if vlan_id is not None and not MIN_VLAN <= vlan_id <= MAX_VLAN:
                raise invalid(f"segmentation_id out of range ({MIN_VLAN} through {MAX_VLAN})")
        elif vlan_id is not None:
            raise invalid("segmentation_id requires physical_network for VLAN provider network")
        check_no_extra(spec, ("physical_network", "segmentation_id"), "VLAN")

    def is_partial_segment(self, spec: SegmentSpec) -> bool:
        return spec.segmentation_id is None

    def reserve_provider_segment(self, conn: Connection, spec: SegmentSpec, network_id: str) -> SegmentSpec:
        if spec.segmentation_id is None:
            physnets = [spec.physical_network] if spec.physical_network else list(self.ranges)
            found = self._allocate(conn, physnets, network_id)
            if found is None:
                raise NoNetworkAvailable()
            return found
        physnet = spec.physical_network or ""
        if not pool.claim(conn, self.network_type, physnet, spec.segmentation_id, network_id):
            raise VlanIdInUse(vlan_id=spec.segmentation_id, physical_network=physnet)
        return SegmentSpec(self.network_type, physnet, spec.segmentation_id)

    def allocate_tenant_segment(self, conn: Connection, network_id: str) -> SegmentSpec | None:
        return self._allocate(conn, list(self.ranges), network_id)

    def _allocate(self, conn: Connection, physnets: list[str], network_id: str) -> SegmentSpec | None:
        for physnet in physnets:
            vlan_id = pool.allocate(conn, self.network_type, physnet, self.ranges.get(physnet, ()), network_id)
            if vlan_id is not None:
                return SegmentSpec(self.network_type, physnet, vlan_id)
        return None

    def release_segment(self, conn: Connection, spec: SegmentSpec) -> None:
        if spec.segmentation_id is not None:
            pool.release(conn, self.network_type, spec.physical_network, spec.segmentation_id)

    def get_mtu(self, physical_network: str | None) -> int:
        return physnet_mtu(self.global_mtu, self.physnet_mtus, physical_network)


def build(config: Config) -> VlanTypeDriver:
    return VlanTypeDriver(config.ml2_type_vlan.network_vlan_ranges, global_mtu=config.default.global_physnet_mtu,
                          physnet_mtus=config.ml2.physical_network_mtus)
