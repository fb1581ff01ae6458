"""What GRE, VXLAN and Geneve have in common: IDs without a physical network.

Project networks take the first free ID of the configured ranges. An admin
may ask for any valid ID, inside the ranges or not; it must only be unused.
"""

from __future__ import annotations

from sqlalchemy import Connection

from kaon.config import Config
from kaon.errors import NoNetworkAvailable
from kaon.ml2.types import pool
from kaon.ml2.types.base import SegmentSpec, check_no_extra, invalid
from kaon.ml2.types.errors import TunnelIdInUse

IP_HEADER_LENGTH = {4: 20, 6: 40}


def overlay_mtu(config: Config, encap_overhead: int) -> int:
    """min(global_physnet_mtu, path_mtu) less the outer IP header and the encapsulation (Neutron's rule)."""
    candidates = [m for m in (config.default.global_physnet_mtu, config.ml2.path_mtu) if m > 0]
    if not candidates:
        return 0
    return min(candidates) - IP_HEADER_LENGTH[config.ml2.overlay_ip_version] - encap_overhead


class TunnelTypeDriver:
    def __init__(self, network_type: str, ranges: tuple[tuple[int, int], ...], max_id: int, mtu: int) -> None:
        self.network_type, self.ranges, self.max_id, self.mtu = network_type, ranges, max_id, mtu

    def validate_provider_segment(self, spec: SegmentSpec) -> None:
        if spec.physical_network:
            raise invalid(f"provider:physical_network specified for {self.network_type} network")
        # Neutron stops here and lets a VNI of 0 or 2**24 through to the agents; kaon refuses it.
        if spec.segmentation_id is not None and not 1 <= spec.segmentation_id <= self.max_id:
            raise invalid(f"segmentation_id out of range (1 through {self.max_id})")
        check_no_extra(spec, ("segmentation_id",), self.network_type)

    def is_partial_segment(self, spec: SegmentSpec) -> bool:
        return spec.segmentation_id is None

    def reserve_provider_segment(self, conn: Connection, spec: SegmentSpec, network_id: str) -> SegmentSpec:
        if spec.segmentation_id is None:
            found = self.allocate_tenant_segment(conn, network_id)
            if found is None:
                raise NoNetworkAvailable()
            return found
        if not pool.claim(conn, self.network_type, None, spec.segmentation_id, network_id):
            raise TunnelIdInUse(tunnel_id=spec.segmentation_id)
        return SegmentSpec(self.network_type, None, spec.segmentation_id)

    def allocate_tenant_segment(self, conn: Connection, network_id: str) -> SegmentSpec | None:
        ident = pool.allocate(conn, self.network_type, None, self.ranges, network_id)
        return None if ident is None else SegmentSpec(self.network_type, None, ident)

    def release_segment(self, conn: Connection, spec: SegmentSpec) -> None:
        if spec.segmentation_id is not None:
            pool.release(conn, self.network_type, None, spec.segmentation_id)

    def get_mtu(self, physical_network: str | None) -> int:
        return self.mtu
