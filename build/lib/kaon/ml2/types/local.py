"""``local``: a network that exists on one host only; no IDs, no MTU of its own."""

from __future__ import annotations

from sqlalchemy import Connection

from kaon.config import Config
from kaon.ml2.types.base import SegmentSpec, check_no_extra


class LocalTypeDriver:
    network_type = "local"

    def validate_provider_segment(self, spec: SegmentSpec) -> None:
        check_no_extra(spec, (), "local")

    def is_partial_segment(self, spec: SegmentSpec) -> bool:
        return False

    def reserve_provider_segment(self, conn: Connection, spec: SegmentSpec, network_id: str) -> SegmentSpec:
        return SegmentSpec(self.network_type)

    def allocate_tenant_segment(self, conn: Connection, network_id: str) -> SegmentSpec | None:
        return SegmentSpec(self.network_type)

    def release_segment(self, conn: Connection, spec: SegmentSpec) -> None:
        return None

    def get_mtu(self, physical_network: str | None) -> int:
        return 0  # the network's MTU falls back to global_physnet_mtu


def build(config: Config) -> LocalTypeDriver:
    return LocalTypeDriver()
