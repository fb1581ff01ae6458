"""Service providers (the ``service-type`` extension): which driver serves
which advanced service.

Neutron with its L3 router plugin always lists the four L3_ROUTER_NAT
providers its driver controller loads (``single_node`` the default, and
``ha``, ``dvr``, ``dvrha``, whatever ``enable_dvr``/``l3_ha`` say); clients
(openstacksdk, Horizon) read this list to learn the router flavors a cloud
knows. kaon lists the same, in Neutron's order. Routers are single-node in
kaon: asking for an HA router is refused (kaon.core.l3.routers), and kaon has no
``dvr`` extension, so ``distributed`` cannot be asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

L3_ROUTER_NAT = "L3_ROUTER_NAT"
FIELDS = ("service_type", "name", "default")

PROVIDERS: tuple[dict[str, Any], ...] = tuple(
    {"service_type": L3_ROUTER_NAT, "name": name, "default": name == "single_node"}
    for name in ("dvrha", "dvr", "ha", "single_node")
)


def list_providers(filters: Mapping[str, Sequence[Any]], fields: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The providers matching every filter (any of its values); only ``fields`` if any are given
    (unknown names select nothing, as in Neutron)."""
    out = []
    for provider in PROVIDERS:
        if all(provider[key] in wanted for key, wanted in filters.items()):
            shown = [f for f in FIELDS if f in fields] if fields else FIELDS
            out.append({f: provider[f] for f in shown})
    return out
