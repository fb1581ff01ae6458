"""``vxlan``: VNIs 1 to 2**24-1 from ``[ml2_type_vxlan] vni_ranges``."""

from __future__ import annotations

from kaon.config import MAX_VNI, Config
from kaon.ml2.types.tunnel import TunnelTypeDriver, overlay_mtu

VXLAN_ENCAP_OVERHEAD = 30  # outer Ethernet 14 + UDP 8 + VXLAN 8; the outer IP header is added by version


def build(config: Config) -> TunnelTypeDriver:
    return TunnelTypeDriver("vxlan", config.ml2_type_vxlan.vni_ranges, MAX_VNI,
                            overlay_mtu(config, VXLAN_ENCAP_OVERHEAD))
