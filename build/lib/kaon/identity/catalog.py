"""The service catalog a token carries: the network API and identity itself."""

from __future__ import annotations

import uuid
from typing import Any

from kaon.identity.config import IdentityConfig

INTERFACES = ("public", "internal", "admin")

# (type, name, url attribute of IdentityConfig)
SERVICES = (("network", "neutron", "network_root"), ("identity", "keystone", "identity_root"))


def _id(*parts: str) -> str:
    # Stable ids, so a client caching the catalog sees the same ids after a restart.
    return uuid.uuid5(uuid.NAMESPACE_URL, "kaon:" + ":".join(parts)).hex


def build_catalog(cfg: IdentityConfig) -> list[dict[str, Any]]:
    catalog = []
    for type_, name, attr in SERVICES:
        url = getattr(cfg, attr)
        endpoints = [
            {
                "id": _id(type_, interface),
                "interface": interface,
                "region": cfg.region,
                "region_id": cfg.region,
                "url": url,
            }
            for interface in INTERFACES
        ]
        catalog.append({"id": _id(type_), "type": type_, "name": name, "endpoints": endpoints})
    return catalog
