"""Errors the type drivers raise, with Neutron's type names and messages."""

from __future__ import annotations

from kaon.errors import InUse, InvalidInput, define

FlatNetworkInUse = define(
    "FlatNetworkInUse", InUse,
    "Unable to create the flat network. Physical network {physical_network} is in use.",
)
VlanIdInUse = define(
    "VlanIdInUse", InUse,
    "Unable to create the network. The VLAN {vlan_id} on physical network {physical_network} is in use.",
)
TunnelIdInUse = define(
    "TunnelIdInUse", InUse, "Unable to create the network. The tunnel ID {tunnel_id} is in use."
)
SegmentsSetInConjunctionWithProviders = define(
    "SegmentsSetInConjunctionWithProviders", InvalidInput, "Segments and provider values cannot both be set."
)
SegmentsContainDuplicateEntry = define(
    "SegmentsContainDuplicateEntry", InvalidInput, "Duplicate segment entry in request."
)
