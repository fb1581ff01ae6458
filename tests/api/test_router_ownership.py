"""Who may tie a port or a subnet to a router (issue 13, defects 2 and 7):

- a port's ``device_id`` may not name another project's router when its
  ``device_owner`` is a router's (create and update): 409
  ``DeviceIDNotOwnedByTenant``, as Neutron's
  ``_enforce_device_owner_not_router_intf_or_device_id``;
- a subnet shared with the caller's project through RBAC may be attached to
  the caller's own router (Neutron since 2023.1); a subnet of a network shared
  with everyone may not.

On SQLite and PostgreSQL, against an in-process server.
"""

from __future__ import annotations

import pytest

from tests.api.l3_env import Env, l3_env


@pytest.fixture
def env(db_url, tmp_path) -> Env:
    return l3_env(db_url, tmp_path)


@pytest.mark.parametrize("owner", ["network:router_interface", "network:router_gateway"])
def test_port_cannot_name_another_projects_router(env: Env, owner: str) -> None:
    alt_router = env.router(env.alt, gateway=False)
    net = env.seed["private"]
    err = env.demo.error("POST", "/ports", {"port": {"network_id": net["id"], "device_id": alt_router["id"],
                                                     "device_owner": owner}}, 409, "DeviceIDNotOwnedByTenant")
    assert alt_router["id"] in err["message"]
    assert env.ports_of(alt_router["id"]) == []
    # Update: either half of the pair may be the one that completes it.
    port = env.port(env.demo, net["id"], device_owner=owner)
    env.demo.error("PUT", f"/ports/{port['id']}", {"port": {"device_id": alt_router["id"]}},
                   409, "DeviceIDNotOwnedByTenant")
    other = env.port(env.demo, net["id"], device_id=alt_router["id"])
    env.demo.error("PUT", f"/ports/{other['id']}", {"port": {"device_owner": owner}},
                   409, "DeviceIDNotOwnedByTenant")
    assert env.demo.get(f"/ports/{other['id']}")["port"]["device_owner"] == ""
    # Nothing blocks the router's deletion.
    env.alt.delete(f"/routers/{alt_router['id']}")


def test_port_may_name_own_router_or_unknown_device(env: Env) -> None:
    own = env.router(env.demo, gateway=False)
    net = env.seed["private"]
    port = env.port(env.demo, net["id"], device_id=own["id"], device_owner="network:router_interface")
    assert port["device_id"] == own["id"]
    # A device id that is no router at all is the caller's business (Neutron: RouterNotFound -> allowed).
    env.port(env.demo, net["id"], device_id="00000000-0000-0000-0000-00000000abcd",
             device_owner="network:router_interface")
    # An admin may point a port anywhere.
    alt_router = env.router(env.alt, gateway=False)
    made = env.admin.post("/ports", {"port": {"network_id": net["id"], "device_id": alt_router["id"],
                                              "device_owner": "network:router_interface"}})["port"]
    assert made["device_id"] == alt_router["id"]


def test_rbac_shared_subnet_on_own_router(env: Env) -> None:
    net, sub = env.network(env.alt, "10.44.0.0/24", name="alt-shared")
    env.alt.post("/rbac-policies", {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                                    "action": "access_as_shared", "target_tenant": "demo"}})
    router = env.router(env.demo, gateway=False)
    info = env.add_interface(env.demo, router["id"], subnet_id=sub["id"])
    assert info["subnet_id"] == sub["id"] and info["network_id"] == net["id"]
    port = env.admin.get(f"/ports/{info['port_id']}")["port"]
    assert port["device_id"] == router["id"] and port["project_id"] == "demo"
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.44.0.1"}]
    env.remove_interface(env.demo, router["id"], subnet_id=sub["id"])
    assert env.ports_of(router["id"]) == []


def test_subnet_shared_with_everyone_stays_refused(env: Env) -> None:
    net, sub = env.network(env.alt, "10.45.0.0/24", name="alt-everyone")
    env.admin.post("/rbac-policies", {"rbac_policy": {"object_type": "network", "object_id": net["id"],
                                                      "action": "access_as_shared", "target_tenant": "*"}})
    router = env.router(env.demo, gateway=False)
    err = env.demo.error("PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]}, 400)
    assert "not owned by project" in err["message"]
    # Shared with a third project only: still not the caller's.
    net3, sub3 = env.network(env.alt, "10.46.0.0/24", name="alt-third")
    env.alt.post("/rbac-policies", {"rbac_policy": {"object_type": "network", "object_id": net3["id"],
                                                    "action": "access_as_shared", "target_tenant": "third"}})
    env.demo.error("PUT", f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub3["id"]}, 404)
