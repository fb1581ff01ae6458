"""A kaon server with the embedded identity for the page's tests, and callers
holding tokens of its ``admin`` and ``demo`` users."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.server import KaonServer


def password(server: KaonServer, user: str) -> str:
    return str(json.loads((Path(server.state_dir) / "passwords.json").read_text())[user])


def issue_token(server: KaonServer, user: str, project: str) -> str:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password(server, user)}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    r = httpx.post(f"{server.url}/identity/v3/auth/tokens", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"]


class Caller:
    """The v2.0 API as one user."""

    def __init__(self, server: KaonServer, user: str, project: str) -> None:
        self.server = server
        self.token = issue_token(server, user, project)
        self.client = httpx.Client(base_url=server.url, headers={"x-auth-token": self.token}, timeout=10)

    def create(self, collection: str, resource: str, **attrs: Any) -> dict[str, Any]:
        r = self.client.post(f"/v2.0/{collection}", json={resource: attrs})
        assert r.status_code == 201, r.text
        return dict(r.json()[resource])

    def network(self, prefix: str = "net") -> dict[str, Any]:
        return self.create("networks", "network", name=f"{prefix}-{uuid.uuid4().hex[:8]}")

    def ghost_port(self, network_id: str) -> dict[str, Any]:
        """A port bound to a host that has no agent: ML2 cannot bind it (admin only)."""
        host = f"ghost-{uuid.uuid4().hex[:6]}"
        return self.create("ports", "port", network_id=network_id, name=f"vm-port-{host}",
                           device_owner="compute:nova", device_id=str(uuid.uuid4()),
                           **{"binding:host_id": host})

    def topology(self) -> dict[str, Any]:
        r = self.client.get("/ui/api/topology")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def close(self) -> None:
        self.client.close()
