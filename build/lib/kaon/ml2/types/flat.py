"""``flat``: untagged traffic on a physical network; at most one network per physnet."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy import Connection

from kaon.config import Config
from kaon.ml2.types import pool
from kaon.ml2.types.base import SegmentSpec, check_no_extra, invalid, physnet_mtu
from kaon.ml2.types.errors import FlatNetworkInUse

WHOLE_PHYSNET = 0  # the allocation key's segmentation_id for a flat network


class FlatTypeDriver:
    network_type = "flat"

    def __init__(self, flat_networks: tuple[str, ...], *, global_mtu: int = 1500,
                 physnet_mtus: Mapping[str, int] = MappingProxyType({})) -> None:
        # '*' allows any physnet name (None here); an empty list disables flat networks.
        self.allowed: frozenset[str] | None = None if "*" in flat_networks else frozenset(flat_networks)
        self.global_mtu, self.physnet_mtus = global_mtu, physnet_mtus

    def validate_provider_segment(self, spec: SegmentSpec) -> None:
        if not spec.physical_network:
            raise invalid("physical_network required for flat provider network")
        if self.allowed is not None and not self.allowed:
            raise invalid("Flat provider networks are disabled")
        if self.allowed and spec.physical_network not in self.allowed:
            raise invalid(f"physical_network '{spec.physical_network}' unknown for flat provider network")
        check_no_extra(spec, ("physical_network",), "flat")

    def is_partial_segment(self, spec: SegmentSpec) -> bool:
        return False

    def reserve_provider_segment(self, conn: Connection, spec: SegmentSpec, network_id: str) -> SegmentSpec:
        physnet = spec.physical_network or ""
        if not pool.claim(conn, self.network_type, physnet, WHOLE_PHYSNET, network_id):
            raise FlatNetworkInUse(physical_network=physnet)
        return SegmentSpec(self.network_type, physnet)

    def allocate_tenant_segment(self, conn: Connection, network_id: str) -> SegmentSpec | None:
        return None  # project flat networks are not a thing (Neutron agrees)

    def release_segment(self, conn: Connection, spec: SegmentSpec) -> None:
        pool.release(conn, self.network_type, spec.physical_network, WHOLE_PHYSNET)

    def get_mtu(self, physical_network: str | None) -> int:
        return physnet_mtu(self.global_mtu, self.physnet_mtus, physical_network)


def build(config: Config) -> FlatTypeDriver:
    return FlatTypeDriver(config.ml2_type_flat.flat_networks, global_mtu=config.default.global_physnet_mtu,
                          physnet_mtus=config.ml2.physical_network_mtus)
