"""The one registry of mechanism drivers, keyed by the names ``[ml2] mechanism_drivers`` uses."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from kaon.config import Config, ConfigError
from kaon.ml2.mech.base import MechanismDriver
from kaon.ml2.mech.l2population import L2PopulationDriver
from kaon.ml2.mech.linuxbridge import LinuxBridgeDriver
from kaon.ml2.mech.openvswitch import OpenVSwitchDriver

MECHANISM_DRIVERS: Mapping[str, Callable[[], MechanismDriver]] = MappingProxyType({
    "linuxbridge": LinuxBridgeDriver,
    "openvswitch": OpenVSwitchDriver,
    "l2population": L2PopulationDriver,
})


def build_mechanism_drivers(config: Config) -> tuple[MechanismDriver, ...]:
    """The drivers ``[ml2] mechanism_drivers`` names, in that order; an unknown name is a ConfigError."""
    drivers = []
    for name in config.ml2.mechanism_drivers:
        if name not in MECHANISM_DRIVERS:
            raise ConfigError(f"unknown mechanism driver '{name}' (known: {', '.join(MECHANISM_DRIVERS)})",
                              file=config.origins.get(("ml2", "mechanism_drivers")), section="ml2",
                              option="mechanism_drivers")
        drivers.append(MECHANISM_DRIVERS[name]())
    return tuple(drivers)
