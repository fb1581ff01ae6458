"""Settings of the embedded identity service, read once by the server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_TOKEN_TTL = 12 * 3600


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

    @property
    def identity_root(self) -> str:
        if self.identity_url:
            return self.identity_url.rstrip("/")
        return self.network_url.rstrip("/") + "/identity"

    @property
    def network_root(self) -> str:
        return self.network_url.rstrip("/")
