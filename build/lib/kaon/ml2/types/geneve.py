"""``geneve``: VNIs 1 to 2**24-1 from ``[ml2_type_geneve] vni_ranges``.

Geneve headers grow with options, so the overhead is the configured
``max_header_size`` (default 30 = Neutron's GENEVE_ENCAP_MIN_OVERHEAD: outer
Ethernet 14 + UDP 8 + Geneve 8 without options; OVN needs at least 38).
"""

from __future__ import annotations

from kaon.config import MAX_VNI, Config
from kaon.ml2.types.tunnel import TunnelTypeDriver, overlay_mtu


def build(config: Config) -> TunnelTypeDriver:
    return TunnelTypeDriver("geneve", config.ml2_type_geneve.vni_ranges, MAX_VNI,
                            overlay_mtu(config, config.ml2_type_geneve.max_header_size))
