"""The type-driver contract, and what every driver shares.

A type driver owns one ``network_type``: it validates a provider segment,
reserves one (fully specified: that ID or an "in use" 409; partial: a free ID
from its ranges), allocates a project ("tenant") segment, releases a
segment, and says what MTU a segment of its type can carry. Drivers are
plain classes that satisfy :class:`TypeDriver`; ``registry.TYPE_DRIVERS``
maps config names to the functions that build them from a ``Config``.

Every call that touches the database takes the caller's open transaction
(``conn``): a network and its segments commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection

from kaon.errors import InvalidInput

NETWORK_TYPE = "network_type"
PHYSICAL_NETWORK = "physical_network"
SEGMENTATION_ID = "segmentation_id"


@dataclass(frozen=True)
class SegmentSpec:
    """A segment as requested or as reserved (then segmentation_id is set where the type has IDs)."""

    network_type: str
    physical_network: str | None = None
    segmentation_id: int | None = None


class TypeDriver(Protocol):
    network_type: str

    def validate_provider_segment(self, spec: SegmentSpec) -> None:
        """Raise ``InvalidInput`` (400) with Neutron's message if ``spec`` is not acceptable."""

    def is_partial_segment(self, spec: SegmentSpec) -> bool:
        """True when reserving ``spec`` means picking an ID for it."""

    def reserve_provider_segment(self, conn: Connection, spec: SegmentSpec, network_id: str) -> SegmentSpec:
        """Take ``spec`` for ``network_id``; an in-use ID raises the type's 409."""

    def allocate_tenant_segment(self, conn: Connection, network_id: str) -> SegmentSpec | None:
        """Take a free project segment, or None when this type has none left (or never has any)."""

    def release_segment(self, conn: Connection, spec: SegmentSpec) -> None:
        """Give the segment's ID back; releasing what is not held is not an error."""

    def get_mtu(self, physical_network: str | None) -> int:
        """Largest MTU a segment of this type can carry; 0 means no constraint of its own."""


def invalid(message: str) -> InvalidInput:
    return InvalidInput(error_message=message)


def check_no_extra(spec: SegmentSpec, allowed: tuple[str, ...], label: str) -> None:
    """Neutron's "<key> prohibited for <type> provider network" for set keys a type has no use for."""
    for key, value in ((PHYSICAL_NETWORK, spec.physical_network), (SEGMENTATION_ID, spec.segmentation_id)):
        if value is not None and key not in allowed:
            raise invalid(f"{key} prohibited for {label} provider network")


def physnet_mtu(global_mtu: int, physnet_mtus: Mapping[str, int], physical_network: str | None) -> int:
    """A flat or VLAN segment's MTU: global_physnet_mtu, lowered by physical_network_mtus.

    As in Neutron, ``path_mtu`` is not applied here: it describes the
    overlay (tunnel) path, not provider physical networks.
    """
    candidates = [m for m in (global_mtu, physnet_mtus.get(physical_network or "", 0)) if m > 0]
    return min(candidates) if candidates else 0
