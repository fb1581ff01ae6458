"""The authorization matrix: three projects (an admin, two members) and a
reader × every resource × create/show/list/update/delete, each answer as
Neutron's default policy gives it (table: tests/api/authz_cases.py).

One world per backend (sqlite, pg) is seeded by :class:`World`; each cell
is a test named after the row, the actor and the operation
(``port-onsharednet-B-update``). Beside the cells:

* every show and list of networks and ports by a non-admin is checked for
  admin-only attributes (``provider:*``, ``binding:*``), also through
  ``?fields=``;
* ``test_scan`` lists every collection as each non-admin and compares the
  ids with an oracle built from the admin's view (ownership, ``shared`` /
  ``router:external``, RBAC grants, network ownership): an item the actor
  should not see is a leak, one it should see and does not is a miss;
* ``test_zz_leak_count`` prints the tally per backend and asserts 0 leaks
  (a leak: success, 403 instead of 404, or a list entry, where Neutron
  would refuse or hide) and 0 other disagreements.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.api import agent_support
from tests.api.authz_cases import ACTORS, ATTRIBUTE_CASES, KNOWN_GAPS, SCANNED, Cell, Row, cells
from tests.api.core_support import ADMIN, MEMBER, READER, Api, Caller, build_api
from tests.fixtures.mariadb import create_mysql_database, drop_mysql_database
from tests.fixtures.postgres import create_pg_database, drop_pg_database

PROJECTS = {"admin": "adminp", "A": "pa", "B": "pb", "rA": "pa"}
ROLES = {"admin": ADMIN, "A": MEMBER, "B": MEMBER, "rA": READER}
SUBNET_HIDDEN = ("segment_id",)  # get_subnet:segment_id is admin only
NET_HIDDEN = ("provider:network_type", "provider:physical_network", "provider:segmentation_id", "segments")
PORT_HIDDEN = ("binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details",
               "binding:failure_reason")
HIDDEN = {"network": NET_HIDDEN, "port": PORT_HIDDEN, "subnet": SUBNET_HIDDEN}
GENEROUS = {"network": 500, "subnet": 500, "port": 1000, "router": 100, "floatingip": 100,
            "security_group": 100, "security_group_rule": 500, "rbac_policy": 100}

# kind -> (collection path, singular key, plural key)
KINDS = {
    "network": ("networks", "network", "networks"),
    "subnet": ("subnets", "subnet", "subnets"),
    "port": ("ports", "port", "ports"),
    "router": ("routers", "router", "routers"),
    "floatingip": ("floatingips", "floatingip", "floatingips"),
    "security_group": ("security-groups", "security_group", "security_groups"),
    "security_group_rule": ("security-group-rules", "security_group_rule", "security_group_rules"),
    "rbac_policy": ("rbac-policies", "rbac_policy", "rbac_policies"),
    "subnetpool": ("subnetpools", "subnetpool", "subnetpools"),
    "address_scope": ("address-scopes", "address_scope", "address_scopes"),
    "agent": ("agents", "agent", "agents"),
}
KIND_OF_COLLECTION = {v[0]: k for k, v in KINDS.items()}

# Results per backend: cell id -> (expected, actual, leak?)
RESULTS: dict[str, dict[str, tuple[Any, Any, bool]]] = {}


class World:
    """The seeded topology plus recipes to make more of each row."""

    def __init__(self, api: Api, backend: str) -> None:
        self.api = api
        self.backend = backend
        self.who = {a: Caller(api, PROJECTS[a], ROLES[a]) for a in ACTORS}
        self.admin = self.who["admin"]
        self.ids: dict[str, str] = {}
        self.seq = itertools.count(1)

    # -- plumbing ------------------------------------------------------
    def n(self) -> int:
        return next(self.seq)

    def cidr(self) -> str:
        n = self.n()
        return f"10.{100 + n // 256}.{n % 256}.0/24"

    def post(self, actor: str, collection: str, body: dict[str, Any]) -> Any:
        return self.who[actor].post(f"/v2.0/{collection}", json=body)

    def make(self, actor: str, kind: str, **attrs: Any) -> dict[str, Any]:
        collection, name, _ = KINDS[kind]
        r = self.post(actor, collection, {name: attrs})
        assert r.status_code == 201, f"seed {kind} as {actor}: {r.status_code} {r.text}"
        return r.json()[name]

    def admin_delete(self, kind: str, rid: str) -> None:
        self.admin.delete(f"/v2.0/{KINDS[kind][0]}/{rid}")

    def add_interface(self, actor: str, router_id: str, subnet_id: str) -> Any:
        return self.who[actor].put(f"/v2.0/routers/{router_id}/add_router_interface",
                                   json={"subnet_id": subnet_id})

    # -- seed ----------------------------------------------------------
    def seed(self) -> None:
        for project in ("adminp", "pa", "pb"):
            r = self.admin.put(f"/v2.0/quotas/{project}", json={"quota": GENEROUS})
            assert r.status_code == 200, r.text
        ids = self.ids
        for key in ("net-private-admin", "net-private-A", "net-shared", "net-external", "net-rbacshared-admin",
                    "net-rbac-A"):
            ids[key] = self.make_row(key)
        ids["rbac-admin"] = self.rbac_of(ids["net-rbacshared-admin"])
        ids["rbac-A"] = self.rbac_of(ids["net-rbac-A"])
        self.make("B", "network", name="net-private-B")
        ids["sub-external"] = self.make("admin", "subnet", network_id=ids["net-external"], cidr="192.168.100.0/24",
                                        ip_version=4, enable_dhcp=False)["id"]
        for key in ("sub-private-admin", "sub-private-A", "sub-shared", "sub-rbacshared-admin", "sub-rbac-A"):
            ids[key] = self.make_row(key)
        for key in ("router-admin", "router-A"):
            ids[key] = self.make_row(key)
        r = self.add_interface("A", ids["router-A"], ids["sub-private-A"])
        assert r.status_code == 200, r.text
        ids["port-routerif-A"] = r.json()["port_id"]
        gw = self.admin.get("/v2.0/ports", params={"device_id": ids["router-A"],
                                                   "device_owner": "network:router_gateway"}).json()["ports"]
        assert len(gw) == 1, gw
        ids["port-routergw-A"] = gw[0]["id"]
        for key in ("port-admin", "port-A", "port-onsharednet", "port-onrbacnet", "port-onAnet-byB",
                    "fip-admin", "fip-A", "sg-admin", "sg-A", "sg-shared-A", "sg-default-admin", "sg-default-A",
                    "subnetpool-admin", "subnetpool-A", "subnetpool-shared",
                    "addrscope-admin", "addrscope-A", "addrscope-shared", "agent"):
            ids[key] = self.make_row(key)
        ids["rbac-sg-A"] = self.rbac_of(ids["sg-shared-A"])
        for key in ("sgrule-admin", "sgrule-A", "sgrule-sharedsg"):
            ids[key] = self.make_row(key)
        for row_key, (collection, parent) in TAG_PARENTS.items():
            r = self.admin.put(f"/v2.0/{collection}/{ids[parent]}/tags/seed-{row_key}")
            assert r.status_code == 201, r.text

    # -- one more of a row, as its owner -------------------------------
    def make_row(self, key: str, as_actor: str | None = None) -> str:
        recipe = RECIPES[key]
        return recipe(self, as_actor)

    def _rbac_for(self, net_id: str, owner: str | None = None, target: str | None = None) -> str:
        owner = owner or self._owner_of_net(net_id)
        target = target or ("pa" if owner == "admin" else "pb")
        return self.make(owner, "rbac_policy", object_type="network", object_id=net_id,
                         action="access_as_shared", target_tenant=target)["id"]

    def rbac_of(self, object_id: str) -> str:
        found = self.admin.get("/v2.0/rbac-policies", params={"object_id": object_id}).json()["rbac_policies"]
        assert len(found) == 1, found
        return found[0]["id"]

    def _sg_rbac(self, sg_id: str, target: str = "pb") -> str:
        return self.make("A", "rbac_policy", object_type="security_group", object_id=sg_id,
                         action="access_as_shared", target_tenant=target)["id"]

    def _owner_of_net(self, net_id: str) -> str:
        project = self.admin.get(f"/v2.0/networks/{net_id}").json()["network"]["project_id"]
        return {"adminp": "admin", "pa": "A", "pb": "B"}[project]

    def default_sg(self, project: str) -> str:
        caller = Caller(self.api, project, MEMBER)
        groups = [g for g in caller.get("/v2.0/security-groups", params={"name": "default"}).json()
                  ["security_groups"] if g["project_id"] == project]
        assert len(groups) == 1, groups
        return groups[0]["id"]

    def report_agent(self) -> str:
        result = agent_support.report(self.api, "ovs", f"host-{self.n()}")
        return result.agent_id


def _net(owner: str, **attrs: Any) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        return w.make(owner, "network", name="n", **attrs)["id"]
    return make


def _net_with_rbac(owner: str) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        net = w.make(owner, "network", name="n")["id"]
        w._rbac_for(net, owner)
        return net
    return make


def _sub(owner: str, parent: str) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        return w.make(owner, "subnet", network_id=w.ids[parent], cidr=w.cidr(), ip_version=4)["id"]
    return make


def _port(owner: str, parent: str) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        return w.make(owner, "port", network_id=w.ids[parent], name="p")["id"]
    return make


def _router(owner: str) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        return w.make(owner, "router", name="r", external_gateway_info={"network_id": w.ids["net-external"]})["id"]
    return make


def _fip(owner: str) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        return w.make(owner, "floatingip", floating_network_id=w.ids["net-external"])["id"]
    return make


def _sg(owner: str, shared: bool = False) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        sg = w.make(owner, "security_group", name=f"sg{w.n()}")["id"]
        if shared:
            w._sg_rbac(sg)
        return sg
    return make


def _default_sg(project: str) -> Callable[[World, str | None], str]:
    def make(w: World, actor: str | None) -> str:
        # An admin's delete works: give it the default group of a throwaway
        # project (the same relation: an admin and a group not its own).
        if actor == "admin":
            return w.default_sg(f"throwaway-{w.n()}")
        return w.default_sg(project)
    return make


def _rule(owner: str, parent: str) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        port = 1000 + w.n()
        return w.make(owner, "security_group_rule", security_group_id=w.ids[parent], direction="ingress",
                      protocol="tcp", port_range_min=port, port_range_max=port)["id"]
    return make


def _rbac(owner: str, kind: str) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        if kind == "network":
            obj = w.make(owner, "network", name="rbac-obj")["id"]
        else:
            obj = w.make(owner, "security_group", name=f"rbac-obj{w.n()}")["id"]
        return w.make(owner, "rbac_policy", object_type=kind, object_id=obj, action="access_as_shared",
                      target_tenant=f"pz{w.n()}")["id"]
    return make


def _pool(owner: str, **attrs: Any) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        n = w.n()
        return w.make(owner, "subnetpool", name=f"pool{n}", prefixes=[f"172.{16 + n // 256}.{n % 256}.0/24"],
                      default_prefixlen=28, **attrs)["id"]
    return make


def _scope(owner: str, **attrs: Any) -> Callable[[World, str | None], str]:
    def make(w: World, _actor: str | None) -> str:
        return w.make(owner, "address_scope", name=f"scope{w.n()}", ip_version=4, **attrs)["id"]
    return make


RECIPES: dict[str, Callable[[World, str | None], str]] = {
    "net-private-admin": _net("admin"),
    "net-private-A": _net("A"),
    "net-shared": _net("admin", shared=True),
    "net-external": _net("admin", **{"router:external": True}),
    "net-rbacshared-admin": _net_with_rbac("admin"),
    "net-rbac-A": _net_with_rbac("A"),
    "sub-private-admin": _sub("admin", "net-private-admin"),
    "sub-private-A": _sub("A", "net-private-A"),
    "sub-shared": _sub("admin", "net-shared"),
    "sub-external": _sub("admin", "net-external"),
    "sub-rbacshared-admin": _sub("admin", "net-rbacshared-admin"),
    "sub-rbac-A": _sub("A", "net-rbac-A"),
    "port-admin": _port("admin", "net-private-admin"),
    "port-A": _port("A", "net-private-A"),
    "port-onsharednet": _port("A", "net-shared"),
    "port-onrbacnet": _port("A", "net-rbacshared-admin"),
    "port-onAnet-byB": _port("B", "net-rbac-A"),
    "router-admin": _router("admin"),
    "router-A": _router("A"),
    "fip-admin": _fip("admin"),
    "fip-A": _fip("A"),
    "sg-admin": _sg("admin"),
    "sg-A": _sg("A"),
    "sg-shared-A": _sg("A", shared=True),
    "sg-default-admin": _default_sg("adminp"),
    "sg-default-A": _default_sg("pa"),
    "sgrule-admin": _rule("admin", "sg-admin"),
    "sgrule-A": _rule("A", "sg-A"),
    "sgrule-sharedsg": _rule("A", "sg-shared-A"),
    "rbac-admin": _rbac("admin", "network"),
    "rbac-A": _rbac("A", "network"),
    "rbac-sg-A": _rbac("A", "security_group"),
    "subnetpool-admin": _pool("admin"),
    "subnetpool-A": _pool("A"),
    "subnetpool-shared": _pool("admin", shared=True),
    "addrscope-admin": _scope("admin"),
    "addrscope-A": _scope("A"),
    "addrscope-shared": _scope("admin", shared=True),
    "agent": lambda w, _a: w.report_agent(),
}

# create attempts: what an actor sends to make "one like" the row
PARENT_NET = {"sub-private-admin": "net-private-admin", "sub-private-A": "net-private-A", "sub-shared": "net-shared",
              "sub-external": "net-external", "sub-rbacshared-admin": "net-rbacshared-admin",
              "sub-rbac-A": "net-rbac-A",
              "port-admin": "net-private-admin", "port-A": "net-private-A", "port-onsharednet": "net-shared",
              "port-onrbacnet": "net-rbacshared-admin", "port-onAnet-byB": "net-rbac-A",
              "port-routerif-A": "net-private-A", "port-routergw-A": "net-external"}
OWNER_PROJECT = {"admin": "adminp", "A": "pa"}

# tag rows -> (collection, parent seed)
TAG_PARENTS = {
    "tag-net-private-A": ("networks", "net-private-A"),
    "tag-net-shared": ("networks", "net-shared"),
    "tag-net-rbac-A": ("networks", "net-rbac-A"),
    "tag-sub-shared": ("subnets", "sub-shared"),
    "tag-port-A": ("ports", "port-A"),
    "tag-router-admin": ("routers", "router-admin"),
    "tag-fip-A": ("floatingips", "fip-A"),
    "tag-sg-shared-A": ("security-groups", "sg-shared-A"),
    "tag-subnetpool-shared": ("subnetpools", "subnetpool-shared"),
}

IP_AVAIL_NET = {"ipavail-net-private-A": "net-private-A", "ipavail-net-shared": "net-shared",
                "ipavail-net-external": "net-external"}


def _owner_suffix(key: str) -> str:
    return "admin" if key.endswith("-admin") else "A"


def create_attempt(w: World, row: Row, actor: str) -> tuple[Any, str | None]:
    """POST what the row's create cell means; returns (response, kind of what was made)."""
    key, kind = row.key, row.kind
    if kind == "subnet":
        return w.post(actor, "subnets", {"subnet": {"network_id": w.ids[PARENT_NET[key]], "cidr": w.cidr(),
                                                    "ip_version": 4}}), kind
    if kind == "port":
        body: dict[str, Any] = {"network_id": w.ids[PARENT_NET[key]]}
        if key == "port-routerif-A":
            body.update(device_owner="network:router_interface", device_id=f"dev-{w.n()}")
        return w.post(actor, "ports", {"port": body}), kind
    if kind == "security_group_rule":
        parent = {"sgrule-admin": "sg-admin", "sgrule-A": "sg-A", "sgrule-sharedsg": "sg-shared-A"}[key]
        port = 1000 + w.n()
        return w.post(actor, "security-group-rules", {"security_group_rule": {
            "security_group_id": w.ids[parent], "direction": "ingress", "protocol": "tcp",
            "port_range_min": port, "port_range_max": port}}), kind
    if kind == "rbac_policy":
        owner = _owner_suffix(key)
        obj_kind, obj = (("security_group", w.ids["sg-A"]) if key == "rbac-sg-A" else
                         ("network", w.ids["net-private-admin" if owner == "admin" else "net-private-A"]))
        return w.post(actor, "rbac-policies", {"rbac_policy": {
            "object_type": obj_kind, "object_id": obj, "action": "access_as_shared",
            "target_tenant": f"pz{w.n()}"}}), kind
    if kind == "tag":
        collection, parent = TAG_PARENTS[key]
        return w.who[actor].put(f"/v2.0/{collection}/{w.ids[parent]}/tags/new-{w.n()}"), None
    collection, name, _ = KINDS[kind]
    attrs: dict[str, Any] = {}
    if key in ("net-shared", "subnetpool-shared", "addrscope-shared"):
        attrs["shared"] = True
    elif key == "net-external":
        attrs["router:external"] = True
    else:
        attrs["project_id"] = OWNER_PROJECT[_owner_suffix(key)]
    n = w.n()
    if kind == "network":
        attrs["name"] = f"c{n}"
    elif kind == "router":
        attrs.update(name=f"c{n}", external_gateway_info={"network_id": w.ids["net-external"]})
    elif kind == "floatingip":
        attrs["floating_network_id"] = w.ids["net-external"]
    elif kind == "security_group":
        attrs["name"] = f"c{n}"
    elif kind == "subnetpool":
        attrs.update(name=f"c{n}", prefixes=[f"172.{16 + n // 256}.{n % 256}.0/24"], default_prefixlen=28)
    elif kind == "address_scope":
        attrs.update(name=f"c{n}", ip_version=4)
    return w.post(actor, collection, {name: attrs}), kind


def update_call(w: World, row: Row, actor: str, rid: str) -> Any:
    caller = w.who[actor]
    if row.kind == "tag":
        collection, parent = TAG_PARENTS[row.key]
        return caller.put(f"/v2.0/{collection}/{w.ids[parent]}/tags",
                          json={"tags": [f"seed-{row.key}", f"upd-{actor}"]})
    if row.kind == "quota":
        return caller.put(f"/v2.0/quotas/{rid}", json={"quota": GENEROUS})
    collection, name, _ = KINDS[row.kind]
    body: dict[str, Any] = {"description": f"by {actor}"}
    if row.kind == "rbac_policy":
        body = {"target_tenant": f"pz{w.n()}"}
    elif row.kind == "agent":
        body = {"description": f"by {actor}"}
    elif row.kind in ("network", "port", "router", "subnet", "subnetpool", "address_scope"):
        body = {"name": f"by-{actor}"}
    return caller.put(f"/v2.0/{collection}/{rid}", json={name: body})


def target_of(w: World, row: Row, actor: str, op: str) -> str:
    """The id the cell acts on: the seed, or a fresh copy for destructive cells."""
    if row.kind == "quota":
        return OWNER_PROJECT[_owner_suffix(row.key)]
    if row.kind in ("tag", "ip_availability"):
        return ""
    fresh = (op == "delete" and row.fresh_delete) or (op == "update" and row.fresh_update)
    if fresh:
        return w.make_row(row.key, actor)
    if row.key == "sg-default-A" and op == "delete" and actor == "admin":
        return w.make_row(row.key, actor)
    return w.ids[row.key]


def _is_leak(expected: Any, actual: Any, op: str) -> bool:
    if op == "list":
        return bool(actual) and not expected
    if expected >= 400 and 200 <= actual < 300:
        return True
    return expected == 404 and actual == 403  # tells that the invisible thing exists


def _record(w: World, cell_id: str, expected: Any, actual: Any, op: str) -> None:
    RESULTS.setdefault(w.backend, {})[cell_id] = (expected, actual, _is_leak(expected, actual, op))


def check_hidden(body: dict[str, Any], kind: str, actor: str, where: str) -> None:
    hidden = HIDDEN.get(kind, ())
    if actor == "admin" or not hidden:
        return
    shown = [k for k in hidden if k in body]
    assert not shown, f"{where}: admin-only attributes shown to {actor}: {shown}"


def run_cell(w: World, cell: Cell) -> tuple[Any, str]:
    """Perform the cell; return (actual, detail)."""
    row, actor, op = cell.row, cell.actor, cell.op
    caller = w.who[actor]
    if row.kind == "quota":
        project = target_of(w, row, actor, op)
        if op == "show":
            r = caller.get(f"/v2.0/quotas/{project}")
            details = caller.get(f"/v2.0/quotas/{project}/details")
            assert details.status_code == r.status_code, f"details {details.status_code} vs show {r.status_code}"
            return r.status_code, r.text
        if op == "list":
            r = caller.get("/v2.0/quotas")
            if r.status_code == 200:
                assert project in [q["project_id"] for q in r.json()["quotas"]], r.text
            return r.status_code, r.text
        if op == "update":
            r = update_call(w, row, actor, project)
            return r.status_code, r.text
        r = caller.delete(f"/v2.0/quotas/{project}")
        w.admin.put(f"/v2.0/quotas/{project}", json={"quota": GENEROUS})  # restore
        return r.status_code, r.text
    if row.kind == "ip_availability":
        net_id = w.ids[IP_AVAIL_NET[row.key]]
        if op == "show":
            r = caller.get(f"/v2.0/network-ip-availabilities/{net_id}")
            return r.status_code, r.text
        r = caller.get("/v2.0/network-ip-availabilities")
        assert r.status_code == 200, f"list -> {r.status_code} {r.text}"
        return int(net_id in [i["network_id"] for i in r.json()["network_ip_availabilities"]]), ""
    if row.kind == "tag":
        collection, parent = TAG_PARENTS[row.key]
        base = f"/v2.0/{collection}/{w.ids[parent]}/tags"
        if op == "create":
            r, _ = create_attempt(w, row, actor)
            return r.status_code, r.text
        if op == "show":
            r = caller.get(base)
            return r.status_code, r.text
        if op == "list":
            r = caller.get(f"/v2.0/{collection}", params={"tags": f"seed-{row.key}"})
            assert r.status_code == 200, r.text
            return int(w.ids[parent] in [i["id"] for i in r.json()[collection.replace("-", "_")]]), ""
        if op == "update":
            r = update_call(w, row, actor, "")
            return r.status_code, r.text
        tag = f"del-{w.n()}"
        assert w.admin.put(f"{base}/{tag}").status_code == 201
        r = caller.delete(f"{base}/{tag}")
        return r.status_code, r.text

    collection, name, plural = KINDS[row.kind]
    if op == "create":
        r, kind = create_attempt(w, row, actor)
        if r.status_code == 201 and kind is not None:
            made = r.json()[KINDS[kind][1]]
            check_hidden(made, kind, actor, "create")
            if not made.get("device_owner", "").startswith("network:"):  # service ports stay (409)
                w.admin_delete(kind, made["id"])
        return r.status_code, r.text
    rid = target_of(w, row, actor, op)
    if op == "show":
        r = caller.get(f"/v2.0/{collection}/{rid}")
        if r.status_code == 200:
            check_hidden(r.json()[name], row.kind, actor, "show")
            if row.kind in HIDDEN:
                asked = caller.get(f"/v2.0/{collection}/{rid}", params={"fields": ["id", *HIDDEN[row.kind]]})
                check_hidden(asked.json()[name], row.kind, actor, "show ?fields=")
            if actor == "admin" and row.kind == "port":
                assert "binding:host_id" in r.json()[name]
            if actor == "admin" and row.kind == "network":
                assert "provider:network_type" in r.json()[name]
        return r.status_code, r.text
    if op == "list":
        r = caller.get(f"/v2.0/{collection}")
        assert r.status_code == 200, f"list -> {r.status_code} {r.text}"
        items = r.json()[plural]
        for item in items:
            check_hidden(item, row.kind, actor, "list")
        return int(rid in [i["id"] for i in items]), ""
    if op == "update":
        r = update_call(w, row, actor, rid)
        if r.status_code == 200:
            check_hidden(r.json()[name], row.kind, actor, "update")
        if row.fresh_update:
            w.admin_delete(row.kind, rid)
        return r.status_code, r.text
    r = caller.delete(f"/v2.0/{collection}/{rid}")
    if row.fresh_delete and r.status_code != 204:
        w.admin_delete(row.kind, rid)  # tidy up what the refused actor left
    return r.status_code, r.text


# -- fixtures ------------------------------------------------------------------
@pytest.fixture(scope="module", params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="pg", marks=pytest.mark.needs_postgres),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.needs_mariadb),
])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    state = tmp_path_factory.mktemp("authz")
    drop_mysql = None
    if request.param == "sqlite":
        url, drop = f"sqlite:///{state / 'kaon.sqlite'}", None
    elif request.param == "mariadb":
        url = drop_mysql = create_mysql_database(request.getfixturevalue("mariadb_url"), prefix="authz")
        drop = None
    else:
        url = create_pg_database(request.getfixturevalue("postgres_server"), prefix="authz")
        drop = url
    api = build_api(url, state)
    w = World(api, request.param)
    try:
        w.seed()
        yield w
    finally:
        api.close()
        if drop is not None:
            drop_pg_database(drop)
        if drop_mysql is not None:
            drop_mysql_database(drop_mysql)


# -- the matrix ----------------------------------------------------------------
CELLS = cells()


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_cell(world: World, cell: Cell) -> None:
    actual, detail = run_cell(world, cell)
    _record(world, cell.id, cell.expected, actual, cell.op)
    if cell.op == "list":
        want = "listed" if cell.expected else "not listed"
        assert actual == cell.expected, f"{cell.id}: expected {want}"
    else:
        assert actual == cell.expected, f"{cell.id}: expected {cell.expected}, got {actual}: {detail}"


# -- attribute-level policies -------------------------------------------------------
def attribute_case(w: World, case: str) -> Any:
    ids, who = w.ids, w.who
    sub_a = who["admin"].get(f"/v2.0/subnets/{ids['sub-private-A']}").json()["subnet"]
    shared_sub = ids["sub-shared"]

    def port_on(actor: str, net: str, **attrs: Any) -> Any:
        return w.post(actor, "ports", {"port": {"network_id": ids[net], **attrs}})

    def put(actor: str, collection: str, rid: str, name: str, **attrs: Any) -> Any:
        return who[actor].put(f"/v2.0/{collection}/{rid}", json={name: attrs})

    mac = f"fa:16:3e:00:{w.n() % 256:02x}:{w.n() % 256:02x}"
    ip_a = sub_a["cidr"].rsplit(".", 1)[0] + f".{100 + w.n() % 100}"
    ext = {"network_id": ids["net-external"]}
    table: dict[str, Callable[[], Any]] = {
        "net-private-A-A-create:provider": lambda: w.post("A", "networks", {"network": {
            "provider:network_type": "vxlan"}}),
        "net-private-A-A-update:shared": lambda: put("A", "networks", ids["net-private-A"], "network", shared=True),
        "net-private-A-A-update:router:external": lambda: put("A", "networks", ids["net-private-A"], "network",
                                                              **{"router:external": True}),
        "net-private-A-A-update:provider": lambda: put("A", "networks", ids["net-private-A"], "network",
                                                       **{"provider:segmentation_id": 4000}),
        "net-private-A-admin-update:shared": lambda: put("admin", "networks", w.make_row("net-private-A"),
                                                         "network", shared=True),
        "sub-private-A-A-create:service_types": lambda: w.post("A", "subnets", {"subnet": {
            "network_id": ids["net-private-A"], "cidr": w.cidr(), "ip_version": 4,
            "service_types": ["compute:nova"]}}),
        "port-A-A-create:binding:host_id": lambda: port_on("A", "net-private-A", **{"binding:host_id": "h1"}),
        "port-A-A-create:binding:profile": lambda: port_on("A", "net-private-A", **{"binding:profile": {"a": 1}}),
        "port-A-A-update:binding:host_id": lambda: put("A", "ports", ids["port-A"], "port",
                                                       **{"binding:host_id": "h1"}),
        "port-A-A-update:binding:profile": lambda: put("A", "ports", ids["port-A"], "port",
                                                       **{"binding:profile": {"a": 1}}),
        "port-A-A-create:mac_address": lambda: port_on("A", "net-private-A", mac_address=mac),
        "port-A-A-create:ip_address": lambda: port_on("A", "net-private-A", fixed_ips=[{"ip_address": ip_a}]),
        "port-onsharednet-B-create:mac_address": lambda: port_on("B", "net-shared", mac_address=mac),
        "port-onsharednet-B-create:ip_address": lambda: port_on("B", "net-shared", fixed_ips=[
            {"subnet_id": shared_sub, "ip_address": "10.0.0.77"}]),
        "port-onsharednet-B-create:subnet_id": lambda: port_on("B", "net-shared", fixed_ips=[
            {"subnet_id": shared_sub}]),
        "port-onsharednet-B-create:device_owner": lambda: port_on("B", "net-shared", device_owner="network:dhcp"),
        "port-onsharednet-B-create:allowed_address_pairs": lambda: port_on("B", "net-shared", allowed_address_pairs=[
            {"ip_address": "10.9.9.9"}]),
        "port-onsharednet-B-create:port_security_enabled": lambda: port_on("B", "net-shared",
                                                                           port_security_enabled=True),
        "port-onsharednet-A-update:subnet_id": lambda: put("A", "ports", ids["port-onsharednet"], "port",
                                                           fixed_ips=[{"subnet_id": shared_sub}]),
        "port-onsharednet-A-update:allowed_address_pairs": lambda: put(
            "A", "ports", ids["port-onsharednet"], "port", allowed_address_pairs=[{"ip_address": "10.9.9.9"}]),
        "port-onsharednet-A-update:port_security_enabled": lambda: put("A", "ports", ids["port-onsharednet"], "port",
                                                                       port_security_enabled=True),
        "port-A-A-update:allowed_address_pairs": lambda: put("A", "ports", ids["port-A"], "port",
                                                             allowed_address_pairs=[{"ip_address": "10.9.9.9"}]),
        "port-A-A-update:mac_address": lambda: put("A", "ports", ids["port-A"], "port", mac_address=mac),
        "port-onsharednet-A-update:ip_address": lambda: put("A", "ports", ids["port-onsharednet"], "port",
                                                            fixed_ips=[{"ip_address": "10.0.0.78"}]),
        "port-onsharednet-A-update:mac_address": lambda: put("A", "ports", ids["port-onsharednet"], "port",
                                                             mac_address=mac),
        "port-onsharednet-admin-update:mac_address": lambda: put("admin", "ports", ids["port-onsharednet"], "port",
                                                                 mac_address=mac),
        "router-A-A-create:enable_snat": lambda: w.post("A", "routers", {"router": {
            "external_gateway_info": {**ext, "enable_snat": False}}}),
        "router-A-A-create:external_fixed_ips": lambda: w.post("A", "routers", {"router": {
            "external_gateway_info": {**ext, "external_fixed_ips": [{"ip_address": "192.168.100.250"}]}}}),
        "router-A-admin-create:enable_snat": lambda: w.post("admin", "routers", {"router": {
            "project_id": "pa", "external_gateway_info": {**ext, "enable_snat": False}}}),
        "fip-A-A-create:floating_ip_address": lambda: w.post("A", "floatingips", {"floatingip": {
            "floating_network_id": ids["net-external"], "floating_ip_address": "192.168.100.240"}}),
        "fip-A-admin-create:floating_ip_address": lambda: w.post("admin", "floatingips", {"floatingip": {
            "project_id": "pa", "floating_network_id": ids["net-external"],
            "floating_ip_address": "192.168.100.241"}}),
        "subnetpool-A-A-create:is_default": lambda: w.post("A", "subnetpools", {"subnetpool": {
            "name": "d", "prefixes": ["172.31.0.0/24"], "is_default": True}}),
        "subnetpool-A-A-create:shared": lambda: w.post("A", "subnetpools", {"subnetpool": {
            "name": "s", "prefixes": ["172.31.1.0/24"], "shared": True}}),
        "addrscope-A-A-update:shared": lambda: put("A", "address-scopes", ids["addrscope-A"], "address_scope",
                                                   shared=True),
        "rbac-A-A-create:wildcard": lambda: w.post("A", "rbac-policies", {"rbac_policy": {
            "object_type": "network", "object_id": ids["net-private-A"], "action": "access_as_shared",
            "target_tenant": "*"}}),
        "rbac-A-admin-create:wildcard": lambda: w.post("admin", "rbac-policies", {"rbac_policy": {
            "object_type": "network", "object_id": w.make_row("net-private-A"), "action": "access_as_shared",
            "target_tenant": "*"}}),
        "sg-A-B-create:port-with-foreign-sg": lambda: port_on("B", "net-shared", security_groups=[ids["sg-A"]]),
        "router-A-B-add_router_interface": lambda: w.add_interface("B", ids["router-A"], shared_sub),
        "router-A-rA-add_router_interface": lambda: w.add_interface("rA", ids["router-A"], ids["sub-rbac-A"]),
        "router-A-B-gateway-on-private-net": lambda: w.post("B", "routers", {"router": {
            "external_gateway_info": {"network_id": ids["net-private-A"]}}}),
    }
    return table[case]()


ATTRIBUTE_PARAMS = [
    pytest.param(case, expected, id=case,
                 marks=[pytest.mark.xfail(strict=True, reason=KNOWN_GAPS[case])] if case in KNOWN_GAPS else [])
    for case, expected in ATTRIBUTE_CASES
]


@pytest.mark.parametrize(("case", "expected"), ATTRIBUTE_PARAMS)
def test_attribute_policy(world: World, case: str, expected: int) -> None:
    r = attribute_case(world, case)
    if case not in KNOWN_GAPS:
        _record(world, case, expected, r.status_code, case.rsplit("-", 1)[-1])
    assert r.status_code == expected, f"{case}: expected {expected}, got {r.status_code}: {r.text}"
    if r.status_code == 201:  # tidy up what was made
        body = r.json()
        (kind, item), = body.items()
        if kind != "port" or not str(item.get("device_owner", "")).startswith("network:"):
            world.admin_delete({v[1]: k for k, v in KINDS.items()}[kind], item["id"])


# -- list scans against an oracle -----------------------------------------------------
class Oracle:
    """Who may see what, from the admin's view of the world."""

    def __init__(self, w: World) -> None:
        def all_of(collection: str) -> list[dict[str, Any]]:
            r = w.admin.get(f"/v2.0/{collection}")
            assert r.status_code == 200, r.text
            return r.json()[collection.replace("-", "_")]

        self.nets = {n["id"]: n for n in all_of("networks")}
        self.sgs = {g["id"]: g for g in all_of("security-groups")}
        self.pools = {p["id"]: p for p in all_of("subnetpools")}
        self.scopes = {s["id"]: s for s in all_of("address-scopes")}
        self.grants = all_of("rbac-policies")

    def granted(self, otype: str, oid: str, project: str, actions: tuple[str, ...]) -> bool:
        return any(g["object_type"] == otype and g["object_id"] == oid and g["action"] in actions
                   and g["target_tenant"] in ("*", project) for g in self.grants)

    def net_owner(self, net_id: str) -> str | None:
        net = self.nets.get(net_id)
        return None if net is None else net["project_id"]

    def visible(self, collection: str, item: dict[str, Any], project: str) -> bool:
        owner = item.get("project_id")
        if collection in ("agents", "network-ip-availabilities"):
            return False
        if owner == project:
            return True
        if collection == "networks":
            return self.granted("network", item["id"], project, ("access_as_shared", "access_as_external"))
        if collection == "subnets":
            return (self.net_owner(item["network_id"]) == project
                    or self.granted("network", item["network_id"], project, ("access_as_shared",)))
        if collection == "ports":
            return self.net_owner(item["network_id"]) == project
        if collection == "security-groups":
            return self.granted("security_group", item["id"], project, ("access_as_shared",))
        if collection == "security-group-rules":
            group = self.sgs.get(item["security_group_id"])
            return group is not None and group["project_id"] == project
        if collection in ("subnetpools", "address-scopes"):
            pool = (self.pools if collection == "subnetpools" else self.scopes)[item["id"]]
            return bool(pool["shared"])  # the admin sees "shared" only for a * grant
        return False  # routers, floating IPs, RBAC policies: their project only


@pytest.mark.parametrize("actor", ["A", "B", "rA"])
@pytest.mark.parametrize("collection", SCANNED)
def test_scan(world: World, collection: str, actor: str) -> None:
    """Every list an actor gets holds exactly what the oracle lets it see."""
    oracle = Oracle(world)
    project = PROJECTS[actor]
    everything = world.admin.get(f"/v2.0/{collection}").json()[collection.replace("-", "_")]
    key = "network_id" if collection == "network-ip-availabilities" else "id"
    should = {i[key] for i in everything if oracle.visible(collection, i, project)}
    r = world.who[actor].get(f"/v2.0/{collection}")
    assert r.status_code == 200, f"{collection} as {actor}: {r.status_code} {r.text}"
    got = r.json()[collection.replace("-", "_")]
    kind = KIND_OF_COLLECTION.get(collection, "")
    for item in got:
        check_hidden(item, kind, actor, f"list {collection}")
    got_ids = {i[key] for i in got}
    extra, missing = got_ids - should, should - got_ids
    leak_projects = sorted({i.get("project_id", "?") for i in got if i[key] in extra})
    _record(world, f"scan-{collection}-{actor}", len(should), len(got_ids), "scan")
    if extra:
        RESULTS[world.backend][f"scan-{collection}-{actor}"] = (sorted(should), sorted(got_ids), True)
    assert not extra, f"{actor} sees {len(extra)} {collection} of projects {leak_projects} it should not"
    assert not missing, f"{actor} misses {len(missing)} {collection} it should see: {sorted(missing)}"


def test_zz_leak_count(world: World) -> None:
    """The tally for this backend (run after the cells): 0 leaks, 0 disagreements."""
    results = RESULTS.get(world.backend, {})
    leaks = sorted(k for k, (_, _, leak) in results.items() if leak)
    wrong = sorted(k for k, (want, got, leak) in results.items() if not leak and want != got
                   and not k.startswith("scan-"))
    print(f"\nauthz matrix [{world.backend}]: {len(results)} cells, {len(leaks)} leaks, "
          f"{len(wrong)} other disagreements")
    for k in leaks:
        print(f"  LEAK {k}: expected {results[k][0]}, got {results[k][1]}")
    for k in wrong:
        print(f"  DIFF {k}: expected {results[k][0]}, got {results[k][1]}")
    for k, why in KNOWN_GAPS.items():
        print(f"  KNOWN {k}: {why}")
    assert not leaks, f"{len(leaks)} leaks: {leaks}"
    assert not wrong, f"{len(wrong)} disagreements with Neutron: {wrong}"

