"""``gre``: GRE keys 1 to 2**32-1 from ``[ml2_type_gre] tunnel_id_ranges``."""

from __future__ import annotations

from kaon.config import MAX_GRE_ID, Config
from kaon.ml2.types.tunnel import TunnelTypeDriver, overlay_mtu

GRE_ENCAP_OVERHEAD = 22  # outer Ethernet 14 + GRE with key 8; the outer IP header is added by version


def build(config: Config) -> TunnelTypeDriver:
    return TunnelTypeDriver("gre", config.ml2_type_gre.tunnel_id_ranges, MAX_GRE_ID,
                            overlay_mtu(config, GRE_ENCAP_OVERHEAD))
