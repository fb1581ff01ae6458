"""Many clients at once against a real server (a ``kaon server`` process), on
SQLite, PostgreSQL and MariaDB: addresses, MACs and segmentation IDs are
never handed out twice, exactly the requests that fit succeed, and a
deadlock between two requests is re-run (kaon.db.retry), never a 500."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select

from kaon.db.core_tables import ip_allocations, ports

MEMBER = {"X-Project-Id": "conc", "X-Roles": "member,reader"}
ADMIN = {"X-Project-Id": "admin", "X-Roles": "admin,member,reader"}


def at_once(n: int, url: str, method: str, path: str, body: Any, headers: dict[str, str]) -> list[httpx.Response]:
    """``n`` requests released together by a barrier, each on its own
    connection; ``body`` may be a function of the request's index."""
    barrier = threading.Barrier(n)

    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=url, headers=headers, timeout=120.0) as client:
            barrier.wait()
            return client.request(method, path, json=body(i) if callable(body) else body)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def ok(r: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()


def test_forty_ports_for_thirty_addresses(live_server, db_url: str) -> None:
    srv = live_server(db_url=db_url)
    with srv.client(headers=MEMBER) as c:
        net = ok(c.post("/v2.0/networks", json={"network": {"name": "conc"}}))["network"]
        ok(c.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4,
            "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.39"}]}}))
    results = at_once(40, srv.url, "POST", "/v2.0/ports", {"port": {"network_id": net["id"]}}, MEMBER)
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 30, 409: 10}, [r.text for r in results if r.status_code not in (201, 409)]
    for r in results:
        if r.status_code == 409:
            err = r.json()["NeutronError"]
            assert err["type"] == "IpAddressGenerationFailure"
            assert err["message"] == f"No more IP addresses available on network {net['id']}."
    created = [r.json()["port"] for r in results if r.status_code == 201]
    addresses = [p["fixed_ips"][0]["ip_address"] for p in created]
    assert sorted(addresses, key=lambda a: int(a.rsplit(".", 1)[1])) == [f"10.0.0.{i}" for i in range(10, 40)]
    assert len({p["mac_address"] for p in created}) == 30
    # What the database holds agrees: 30 ports, 30 allocations, no address or MAC twice.
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(ports)
                                .where(ports.c.network_id == net["id"])).scalar_one() == 30
            rows = conn.execute(select(ip_allocations.c.ip_address)
                                .where(ip_allocations.c.network_id == net["id"])).scalars().all()
            assert len(rows) == len(set(rows)) == 30
            macs = conn.execute(select(ports.c.mac_address).where(ports.c.network_id == net["id"])).scalars().all()
            assert len(macs) == len(set(macs)) == 30
    finally:
        engine.dispose()
    with srv.client(headers=MEMBER) as c:
        listed = ok(c.get("/v2.0/ports", params={"network_id": net["id"]}), 200)["ports"]
        assert sorted(p["id"] for p in listed) == sorted(p["id"] for p in created)


def test_concurrent_networks_get_distinct_vnis(live_server, db_url: str) -> None:
    srv = live_server(db_url=db_url, extra_conf={"ml2_type_vxlan": {"vni_ranges": "100:119"},
                                                 "ml2": {"tenant_network_types": "vxlan"}})
    results = at_once(30, srv.url, "POST", "/v2.0/networks", {"network": {"name": "v"}}, MEMBER)
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 20, 503: 10}, [r.text for r in results if r.status_code not in (201, 503)]
    assert {r.json()["NeutronError"]["type"] for r in results if r.status_code == 503} == {"NoNetworkAvailable"}
    with srv.client(headers=ADMIN) as c:
        nets = ok(c.get("/v2.0/networks", params={"project_id": "conc"}), 200)["networks"]
    assert len(nets) == 20
    vnis = sorted(n["provider:segmentation_id"] for n in nets)
    assert vnis == list(range(100, 120))
    assert {n["provider:network_type"] for n in nets} == {"vxlan"}


def test_concurrent_fixed_address_requests(live_server, db_url: str) -> None:
    """Twenty clients ask for the same address: one gets it."""
    srv = live_server(db_url=db_url)
    with srv.client(headers=MEMBER) as c:
        net = ok(c.post("/v2.0/networks", json={"network": {}}))["network"]
        ok(c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.1.0.0/24",
                                                    "ip_version": 4}}))
    body = {"port": {"network_id": net["id"], "fixed_ips": [{"ip_address": "10.1.0.77"}]}}
    results = at_once(20, srv.url, "POST", "/v2.0/ports", body, MEMBER)
    assert Counter(r.status_code for r in results) == {201: 1, 409: 19}
    assert {r.json()["NeutronError"]["type"] for r in results if r.status_code == 409} == {"IpAddressInUse"}


def test_concurrent_overlapping_subnets(live_server, db_url: str) -> None:
    """Thirty requests add the same CIDR to one network, each for another
    project (so no per-project quota lock orders them): the overlap check
    sees the winner, and exactly one subnet exists afterwards."""
    srv = live_server(db_url=db_url)
    with srv.client(headers=MEMBER) as c:
        net = ok(c.post("/v2.0/networks", json={"network": {}}))["network"]

    def body(i: int) -> dict[str, Any]:
        return {"subnet": {"network_id": net["id"], "cidr": "10.2.0.0/24", "ip_version": 4,
                           "project_id": f"tenant-{i}"}}

    results = at_once(30, srv.url, "POST", "/v2.0/subnets", body, ADMIN)
    assert Counter(r.status_code for r in results) == {201: 1, 400: 29}, [r.text for r in results]
    with srv.client(headers=MEMBER) as c:
        assert len(ok(c.get("/v2.0/subnets", params={"network_id": net["id"]}), 200)["subnets"]) == 1


def test_network_delete_racing_port_creates(live_server, db_url: str) -> None:
    """A network deleted while ports are being created on it: either the
    delete loses (NetworkInUse) or the ports do; a port that was answered
    201 is never taken away by the delete's cascade."""
    srv = live_server(db_url=db_url)
    with srv.client(headers=MEMBER) as c:
        net = ok(c.post("/v2.0/networks", json={"network": {}}))["network"]
        ok(c.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.3.0.0/24",
                                                    "ip_version": 4}}))
    barrier = threading.Barrier(21)

    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=srv.url, headers=MEMBER, timeout=120.0) as client:
            barrier.wait()
            if i == 0:
                return client.delete(f"/v2.0/networks/{net['id']}")
            return client.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})

    with ThreadPoolExecutor(21) as pool:
        deleted, *created = pool.map(one, range(21))
    assert deleted.status_code in (204, 409), deleted.text
    assert all(r.status_code in (201, 404, 409) for r in created), [r.text for r in created]
    made = {r.json()["port"]["id"] for r in created if r.status_code == 201}
    with srv.client(headers=MEMBER) as c:
        left = {p["id"] for p in ok(c.get("/v2.0/ports", params={"network_id": net["id"]}), 200)["ports"]}
        net_left = c.get(f"/v2.0/networks/{net['id']}").status_code
    assert left == made
    assert net_left == (404 if deleted.status_code == 204 else 200)
    if deleted.status_code == 204:
        assert made == set()


def test_rbac_grants_of_one_target_racing(live_server, db_url: str) -> None:
    """Issue 13 defect 3: twenty creates and twenty updates at once, all
    granting one project access to one network. On PostgreSQL the creates
    (foreign key share lock on the network, then the revision bump) and the
    updates (network row locked first) deadlock; kaon re-runs the loser's
    transaction, which then meets the winner's grant: exactly one request
    succeeds, every other one is a 409, none a 500. Three rounds, each on
    its own network, since a round may happen not to collide."""
    srv = live_server(db_url=db_url, extra_conf={"quotas": {"quota_rbac_policy": "-1"}})
    for round_ in range(3):
        _rbac_round(srv, round_)


def _rbac_round(srv: Any, round_: int) -> None:
    with srv.client(headers=MEMBER) as c:
        net = ok(c.post("/v2.0/networks", json={"network": {"name": f"granted-{round_}"}}))["network"]
        policies = [ok(c.post("/v2.0/rbac-policies", json={"rbac_policy": {
            "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
            "target_tenant": f"t-{i}"}}))["rbac_policy"] for i in range(20)]
    barrier = threading.Barrier(40)

    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=srv.url, headers=MEMBER, timeout=120.0) as client:
            barrier.wait()
            if i % 2 == 0:
                return client.post("/v2.0/rbac-policies", json={"rbac_policy": {
                    "object_type": "network", "object_id": net["id"], "action": "access_as_shared",
                    "target_tenant": "same"}})
            return client.put(f"/v2.0/rbac-policies/{policies[i // 2]['id']}",
                              json={"rbac_policy": {"target_tenant": "same"}})

    with ThreadPoolExecutor(40) as pool:
        results = list(pool.map(one, range(40)))
    codes = Counter(r.status_code for r in results)
    assert codes[500] == 0, [r.text for r in results if r.status_code >= 500]
    assert codes[201] + codes[200] == 1 and codes[409] == 39, codes
    with srv.client(headers=MEMBER) as c:
        listed = ok(c.get("/v2.0/rbac-policies", params={"object_id": net["id"]}), 200)["rbac_policies"]
        after = ok(c.get(f"/v2.0/networks/{net['id']}"), 200)["network"]
    assert [p["target_tenant"] for p in listed].count("same") == 1
    assert len(listed) == 20 + codes[201]
    # Every successful change bumped the network once (20 grants, then the winner).
    assert after["revision_number"] == net["revision_number"] + 21


def test_bulk_port_creates_racing_for_a_pool(live_server, db_url: str) -> None:
    """Issue 13 defect 3: twenty bulk creates of ten ports each on a pool of
    150 addresses. A bulk is all or nothing: fifteen fit (201), five do not
    (409 IpAddressGenerationFailure); deadlocks between the bulks' inserts
    are re-run, not answered 500. Three rounds, on three networks."""
    srv = live_server(db_url=db_url)
    for round_ in range(3):
        _bulk_round(srv, round_)


def _bulk_round(srv: Any, round_: int) -> None:
    with srv.client(headers=MEMBER) as c:
        net = ok(c.post("/v2.0/networks", json={"network": {"name": f"bulk-{round_}"}}))["network"]
        ok(c.post("/v2.0/subnets", json={"subnet": {
            "network_id": net["id"], "cidr": "10.4.0.0/24", "ip_version": 4,
            "allocation_pools": [{"start": "10.4.0.10", "end": "10.4.0.159"}]}}))
    body = {"ports": [{"network_id": net["id"]} for _ in range(10)]}
    results = at_once(20, srv.url, "POST", "/v2.0/ports", body, MEMBER)
    codes = Counter(r.status_code for r in results)
    assert codes == {201: 15, 409: 5}, [r.text for r in results if r.status_code not in (201, 409)]
    assert {r.json()["NeutronError"]["type"] for r in results if r.status_code == 409} == {
        "IpAddressGenerationFailure"}
    addresses = [p["fixed_ips"][0]["ip_address"] for r in results if r.status_code == 201
                 for p in r.json()["ports"]]
    assert len(addresses) == len(set(addresses)) == 150
    with srv.client(headers=MEMBER) as c:
        assert len(ok(c.get("/v2.0/ports", params={"network_id": net["id"]}), 200)["ports"]) == 150
