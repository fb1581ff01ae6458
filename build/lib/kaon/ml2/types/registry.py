"""The one registry of type drivers, keyed by the names ``[ml2] type_drivers`` uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from kaon.config import Config, ConfigError
from kaon.ml2.types import flat, geneve, gre, local, vlan, vxlan
from kaon.ml2.types.base import TypeDriver

TYPE_DRIVERS: Mapping[str, Callable[[Config], TypeDriver]] = MappingProxyType({
    "local": local.build,
    "flat": flat.build,
    "vlan": vlan.build,
    "gre": gre.build,
    "vxlan": vxlan.build,
    "geneve": geneve.build,
})


def build_type_drivers(config: Config) -> dict[str, TypeDriver]:
    """The drivers ``[ml2] type_drivers`` names, in that order; an unknown name is a ConfigError."""
    drivers: dict[str, TypeDriver] = {}
    for name in config.ml2.type_drivers:
        if name not in TYPE_DRIVERS:
            raise ConfigError(f"unknown type driver '{name}' (known: {', '.join(TYPE_DRIVERS)})",
                              file=config.origins.get(("ml2", "type_drivers")), section="ml2",
                              option="type_drivers")
        drivers[name] = TYPE_DRIVERS[name](config)
    return drivers
