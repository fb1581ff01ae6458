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


def targets(client: httpx.Client) -> dict[str, dict[str, str]]:
    """Objects of the member's project that the fuzzer is given to change
    and delete (not checked afterwards): path prefix -> path parameters."""
    member = ROLES["member"]

    def post(collection: str, key: str, body: dict[str, Any]) -> str:
        rid: str = _ok(client.post(f"/v2.0/{collection}", json={key: body}, headers=member), 201)[key]["id"]
        return rid

    net = post("networks", "network", {"name": "fuzz-target"})
    subnet = post("subnets", "subnet", {"network_id": net, "ip_version": 4, "cidr": "10.90.0.0/24"})
    port = post("ports", "port", {"network_id": net, "name": "fuzz-target"})
    router = post("routers", "router", {"name": "fuzz-target"})
    group = post("security-groups", "security_group", {"name": "fuzz-target"})
    scope = post("address-scopes", "address_scope", {"name": "fuzz-target", "ip_version": 4})
    pool = post("subnetpools", "subnetpool", {"name": "fuzz-target", "prefixes": ["10.200.0.0/16"],
                                              "default_prefixlen": 26})
    rule = _ok(client.get("/v2.0/security-group-rules", params={"security_group_id": group},
                          headers=member), 200)["security_group_rules"][0]["id"]
    return {
        "/v2.0/networks": {"id": net}, "/v2.0/subnets": {"id": subnet}, "/v2.0/ports": {"id": port},
        "/v2.0/routers": {"id": router}, "/v2.0/security-groups": {"id": group},
        "/v2.0/security-group-rules": {"id": rule}, "/v2.0/address-scopes": {"id": scope},
        "/v2.0/subnetpools": {"id": pool}, "/v2.0/network-ip-availabilities": {"id": net},
        "/v2.0/quotas": {"project": member["X-Project-Id"]},
    }
