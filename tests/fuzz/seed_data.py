"""Data made before a fuzz run and checked after it: a network, subnet,
port and router (with an interface) per role's project. The fuzzer never
learns these ids, so nothing it sends may change them; "intact" means each
GET answers exactly what it answered before (revision, timestamps and all).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.fuzz.fuzz_support import ROLES


def _ok(r: httpx.Response, status: int) -> Any:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json() if r.content else None


def make(client: httpx.Client) -> dict[str, list[str]]:
    """Create the objects; return collection -> ids."""
    made: dict[str, list[str]] = {"networks": [], "subnets": [], "ports": [], "routers": []}
    for n, (role, headers) in enumerate(ROLES.items()):
        def post(collection: str, body: dict[str, Any], headers: dict[str, str] = headers) -> str:
            key = collection[:-1]
            rid: str = _ok(client.post(f"/v2.0/{collection}", json={key: body}, headers=headers), 201)[key]["id"]
            made[collection].append(rid)
            return rid

        net = post("networks", {"name": f"fuzz-seed-{role}"})
        subnet = post("subnets", {"network_id": net, "ip_version": 4, "cidr": f"10.{77 + n}.0.0/24",
                                  "name": f"fuzz-seed-{role}"})
        post("ports", {"network_id": net, "name": f"fuzz-seed-{role}"})
        router = post("routers", {"name": f"fuzz-seed-{role}"})
        _ok(client.put(f"/v2.0/routers/{router}/add_router_interface", json={"subnet_id": subnet},
                       headers=headers), 200)
    return made


def snapshot(client: httpx.Client, made: dict[str, list[str]]) -> dict[str, Any]:
    """What the admin sees of each object, and of the interface ports."""
    admin = ROLES["admin"]
    out: dict[str, Any] = {}
    for collection, ids in made.items():
        for rid in ids:
            out[f"{collection}/{rid}"] = _ok(client.get(f"/v2.0/{collection}/{rid}", headers=admin), 200)
    for router in made["routers"]:
        out[f"ports?device_id={router}"] = _ok(
            client.get("/v2.0/ports", params={"device_id": router}, headers=admin), 200)
    return out
