"""Settings of the embedded identity service, read once by the server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

# Keystone's [token] expiration and [security_compliance] lockout_duration.
DEFAULT_TOKEN_TTL = 3600
DEFAULT_LOCKOUT_DURATION = 1800
# Keystone leaves lockout off by default; kaon's identity faces the same
# network as its API, so it locks a user after 6 failures in a row (the
# PCI-DSS figure Keystone's documentation uses). 0 turns it off.
DEFAULT_LOCKOUT_ATTEMPTS = 6


@dataclass(frozen=True)
class IdentityConfig:
    """What the identity service needs to know about the node it runs on.

    ``network_url`` is the root of the Neutron API as clients reach it
    (``http://127.0.0.1:9696``, without ``/v2.0``); the identity service is
    mounted at ``<network_url>/identity`` unless ``identity_url`` says
    otherwise. Both go into the token catalog. The token signing key is
    ``secret_key`` if given, else ``<state_dir>/identity.key`` (created on
    first start); one of them is required.
    """

    network_url: str
    state_dir: Path | None = None
    identity_url: str | None = None
    region: str = "RegionOne"
    token_ttl: int = DEFAULT_TOKEN_TTL
    secret_key: bytes | None = None
    lockout_failure_attempts: int = DEFAULT_LOCKOUT_ATTEMPTS
    lockout_duration: int = DEFAULT_LOCKOUT_DURATION

    @property
    def identity_root(self) -> str:
        if self.identity_url:
            return self.identity_url.rstrip("/")
        return self.network_url.rstrip("/") + "/identity"

    @property
    def network_root(self) -> str:
        return self.network_url.rstrip("/")


class IdentityOptions(TypedDict):
    """The :class:`IdentityConfig` keywords that come from kaon's config file."""

    token_ttl: int
    lockout_failure_attempts: int
    lockout_duration: int


def options_from(cfg: Any) -> IdentityOptions:
    """IdentityConfig keywords from Keystone's option names in kaon's config:
    ``[token] expiration``, ``[security_compliance] lockout_failure_attempts``
    and ``lockout_duration``."""
    from kaon.config import ConfigError, parse_int

    def read(section: str, option: str, default: int, low: int) -> int:
        value = int(cfg.get_typed(section, option, parse_int, default))
        if value < low:
            raise ConfigError(f"{value} is below the minimum of {low}", section=section, option=option)
        return value

    return {
        "token_ttl": read("token", "expiration", DEFAULT_TOKEN_TTL, 1),
        "lockout_failure_attempts": read("security_compliance", "lockout_failure_attempts",
                                         DEFAULT_LOCKOUT_ATTEMPTS, 0),
        "lockout_duration": read("security_compliance", "lockout_duration", DEFAULT_LOCKOUT_DURATION, 1),
    }
