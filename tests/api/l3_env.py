"""In-process server and seed topology for the router and floating IP API
tests (tests/api/test_routers.py, tests/api/test_floatingips.py).

``l3_env(db_url, tmp_path, **overrides)`` builds the server with
``auth_strategy=noauth`` and returns an :class:`Env` with callers for an
admin, the ``demo`` project (member), a ``demo`` reader and the ``alt``
project, plus the seed: an external flat network ``ext`` with subnet
192.168.100.0/24 (pool .10-.90, no DHCP) and demo's ``private`` network
with 10.0.0.0/24.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kaon.cli.server import build
from kaon.config import load_config

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient


@dataclass
class Caller:
    client: TestClient
    project: str
    roles: str

    def call(self, method: str, path: str, body: Any = None, status: int | None = None) -> Any:
        r = self.client.request(method, "/v2.0" + path, json=body,
                                headers={"X-Project-Id": self.project, "X-Roles": self.roles})
        if status is not None:
            assert r.status_code == status, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    def get(self, path: str, status: int | None = 200) -> Any:
        return self.call("GET", path, None, status)

    def post(self, path: str, body: Any, status: int | None = 201) -> Any:
        return self.call("POST", path, body, status)

    def put(self, path: str, body: Any, status: int | None = 200) -> Any:
        return self.call("PUT", path, body, status)

    def delete(self, path: str, status: int | None = 204) -> Any:
        return self.call("DELETE", path, None, status)

    def error(self, method: str, path: str, body: Any, status: int, type_: str | None = None) -> dict[str, Any]:
        """The NeutronError of a call expected to fail."""
        err = self.call(method, path, body, status)["NeutronError"]
        if type_ is not None:
            assert err["type"] == type_, err
        return err


@dataclass
class Env:
    admin: Caller
    demo: Caller
    reader: Caller
    alt: Caller
    seed: dict[str, Any] = field(default_factory=dict)

    # -- helpers used by both test modules ----------------------------
    def network(self, caller: Caller, cidr: str | None, name: str = "net", **subnet: Any) -> tuple[dict, dict | None]:
        net = caller.post("/networks", {"network": {"name": name}})["network"]
        sub = None
        if cidr is not None:
            sub = caller.post("/subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4,
                                                      **subnet}})["subnet"]
        return net, sub

    def router(self, caller: Caller, gateway: bool = True, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"name": "r", **fields}
        if gateway:
            body["external_gateway_info"] = {"network_id": self.seed["ext"]["id"]}
        return caller.post("/routers", {"router": body})["router"]

    def add_interface(self, caller: Caller, router_id: str, status: int = 200, **info: Any) -> Any:
        return caller.put(f"/routers/{router_id}/add_router_interface", info, status)

    def remove_interface(self, caller: Caller, router_id: str, status: int = 200, **info: Any) -> Any:
        return caller.put(f"/routers/{router_id}/remove_router_interface", info, status)

    def port(self, caller: Caller, net_id: str, **fields: Any) -> dict[str, Any]:
        return caller.post("/ports", {"port": {"network_id": net_id, **fields}})["port"]

    def ports_of(self, device_id: str) -> list[dict[str, Any]]:
        return self.admin.get(f"/ports?device_id={device_id}")["ports"]


def l3_env(db_url: str, tmp_path: Path, **overrides: Any) -> Env:
    conf = {
        "auth_strategy": "noauth",
        "state_path": str(tmp_path / "state"),
        "database.connection": db_url,
        "ml2.type_drivers": "flat,vxlan",
        "ml2.tenant_network_types": "vxlan",
        "ml2_type_vxlan.vni_ranges": "1:1000",
        "ml2_type_flat.flat_networks": "*",
        **overrides,
    }
    app, _ = build(load_config([], conf))
    client = TestClient(app)
    env = Env(admin=Caller(client, "admin", "admin"), demo=Caller(client, "demo", "member"),
              reader=Caller(client, "demo", "reader"), alt=Caller(client, "alt", "member"))
    ext = env.admin.post("/networks", {"network": {
        "name": "ext-net", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public"}})["network"]
    ext_sub = env.admin.post("/subnets", {"subnet": {
        "network_id": ext["id"], "cidr": "192.168.100.0/24", "ip_version": 4, "enable_dhcp": False,
        "allocation_pools": [{"start": "192.168.100.10", "end": "192.168.100.90"}]}})["subnet"]
    private, private_sub = env.network(env.demo, "10.0.0.0/24", name="private-net")
    env.seed.update(ext=ext, ext_sub=ext_sub, private=private, private_sub=private_sub)
    return env
