"""The authorization matrix as data: who may create, show, list, update and
delete what, per Neutron's default (secure-RBAC) policies
(``neutron/conf/policies/*.py``: ADMIN, PROJECT_MEMBER, PROJECT_READER,
``rule:shared``, ``rule:external``, the network-owner rules).

Actors:

  admin  project ``adminp``, roles admin,member,reader
  A      project ``pa``, member,reader
  B      project ``pb``, member,reader
  rA     project ``pa``, reader only

Every :class:`Row` is one resource *as owned by somebody* (a seed built by
tests/api/test_authz_matrix.py). ``see`` are the actors for whom it exists
(show 200, in their lists; everybody else 404 and absent), ``write`` those
who may update it (a visible but not writable one: 403; a reader: 403),
``drop`` those who may delete it (default ``write``). ``create`` is the
answer to each actor's attempt to make one like it (what is attempted is
written next to each kind in the test module). ``status`` overrides single
cells: ``{"delete": "A:409"}``.

:func:`cells` expands the rows into the test table; a cell's id names the
row, the actor and the operation: ``port-onsharednet-B-update``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACTORS = ("admin", "A", "B", "rA")
OPS = ("create", "show", "list", "update", "delete")
ALL = "admin A B rA"
OWN_A = "admin A rA"  # visible to A's project (member and reader) and to admins


def _statuses(spec: str) -> dict[str, int]:
    out = {}
    for part in spec.split():
        actor, _, code = part.partition(":")
        assert actor in ACTORS, part
        out[actor] = int(code)
    return out


# Creating a top-level resource "like" one owned by somebody else means
# naming the owner's project: 400 for a member (only admins may name
# another project), 403 for a reader (no writes at all).
FOR_ADMIN = "admin:201 A:400 B:400 rA:403"
FOR_A = "admin:201 A:201 B:400 rA:403"
ADMIN_ONLY = "admin:201 A:403 B:403 rA:403"


@dataclass(frozen=True)
class Row:
    key: str
    kind: str
    see: str
    write: str = ""
    drop: str | None = None
    create: str | None = None
    delete_ok: int = 204
    fresh_delete: bool = True  # delete cells act on a throwaway copy
    fresh_update: bool = False
    ops: tuple[str, ...] = OPS
    status: dict[str, str] = field(default_factory=dict)

    def expected(self, op: str, actor: str) -> int | None:
        """The HTTP status Neutron answers; for ``list`` whether the item is
        in the actor's list (1) or not (0). None: no such cell."""
        if op in self.status and actor in _statuses(self.status[op]):
            return _statuses(self.status[op])[actor]
        visible = actor in self.see.split()
        if op == "create":
            return None if self.create is None else _statuses(self.create)[actor]
        if op == "show":
            return 200 if visible else 404
        if op == "list":
            return 1 if visible else 0
        if not visible:
            return 404
        allowed = self.write if op == "update" else (self.write if self.drop is None else self.drop)
        if actor in allowed.split():
            return 200 if op == "update" else self.delete_ok
        return 403


ROWS: tuple[Row, ...] = (
    # -- networks ---------------------------------------------------------
    Row("net-private-admin", "network", see="admin", write="admin", create=FOR_ADMIN),
    Row("net-private-A", "network", see=OWN_A, write="admin A", create=FOR_A),
    Row("net-shared", "network", see=ALL, write="admin", create=ADMIN_ONLY),
    Row("net-external", "network", see=ALL, write="admin", create=ADMIN_ONLY),
    # admin's network shared with project pa through an RBAC policy
    Row("net-rbacshared-admin", "network", see=OWN_A, write="admin"),
    # A's network shared with project pb through A's own RBAC policy
    Row("net-rbac-A", "network", see=ALL, write="admin A"),
    # -- subnets: create = a subnet (own project) on the row's network ----
    Row("sub-private-admin", "subnet", see="admin", write="admin", create="admin:201 A:404 B:404 rA:403"),
    Row("sub-private-A", "subnet", see=OWN_A, write="admin A", create="admin:201 A:201 B:404 rA:403"),
    Row("sub-shared", "subnet", see=ALL, write="admin", create=ADMIN_ONLY),
    # get_subnet has rule:shared but no rule:external: an external
    # network's subnets stay hidden (tempest test_external_network_visibility)
    Row("sub-external", "subnet", see="admin", write="admin", create="admin:201 A:404 B:404 rA:403"),
    Row("sub-rbacshared-admin", "subnet", see=OWN_A, write="admin", create="admin:201 A:403 B:404 rA:403"),
    Row("sub-rbac-A", "subnet", see=ALL, write="admin A", create="admin:201 A:201 B:403 rA:403"),
    # -- ports: create = a port (own project) on the row's network --------
    Row("port-admin", "port", see="admin", write="admin", create="admin:201 A:404 B:404 rA:403"),
    Row("port-A", "port", see=OWN_A, write="admin A", create="admin:201 A:201 B:404 rA:403"),
    # A's port on admin's shared network
    Row("port-onsharednet", "port", see=OWN_A, write="admin A", create="admin:201 A:201 B:201 rA:403"),
    # A's port on admin's network shared with pa by RBAC
    Row("port-onrbacnet", "port", see=OWN_A, write="admin A", create="admin:201 A:201 B:404 rA:403"),
    # B's port on A's network (shared with pb): A, the network owner, may
    # see it (NET_OWNER_READER) and delete it (NET_OWNER_MEMBER) but not
    # update it (update_port is ADMIN_OR_PROJECT_MEMBER of the port's project)
    Row("port-onAnet-byB", "port", see=ALL, write="admin B", drop="admin A B",
        create="admin:201 A:201 B:201 rA:403"),
    # router-A's interface port on sub-private-A (project pa): a service
    # port, ServicePortInUse 409 for everybody allowed to delete it;
    # create = a port with device_owner network:router_interface
    Row("port-routerif-A", "port", see=OWN_A, write="admin A", delete_ok=409, fresh_delete=False,
        create="admin:201 A:201 B:404 rA:403"),
    # router-A's gateway port on the external network: project '', admins only
    Row("port-routergw-A", "port", see="admin", write="admin", delete_ok=409, fresh_delete=False,
        create="admin:201 A:404 B:404 rA:403"),
    # -- routers and floating IPs -------------------------------------------
    Row("router-admin", "router", see="admin", write="admin", create=FOR_ADMIN),
    Row("router-A", "router", see=OWN_A, write="admin A", create=FOR_A),
    Row("fip-admin", "floatingip", see="admin", write="admin", create=FOR_ADMIN),
    Row("fip-A", "floatingip", see=OWN_A, write="admin A", create=FOR_A),
    # -- security groups and rules ---------------------------------------
    Row("sg-admin", "security_group", see="admin", write="admin", create=FOR_ADMIN),
    Row("sg-A", "security_group", see=OWN_A, write="admin A", create=FOR_A),
    # A's group shared with pb through an RBAC policy
    Row("sg-shared-A", "security_group", see=ALL, write="admin A"),
    # default groups: only an admin may delete one (SecurityGroupCannotRemoveDefault 409)
    Row("sg-default-admin", "security_group", see="admin", write="admin"),
    Row("sg-default-A", "security_group", see=OWN_A, write="admin A", drop="admin", status={"delete": "A:409"}),
    # create = a rule (own project) in the row's group
    Row("sgrule-admin", "security_group_rule", see="admin", write="admin", create="admin:201 A:404 B:404 rA:403"),
    Row("sgrule-A", "security_group_rule", see=OWN_A, write="admin A", create="admin:201 A:201 B:404 rA:403"),
    # a rule of the shared group: get_security_group_rule is the rule's
    # project or the group's owner, not the projects the group is shared with
    Row("sgrule-sharedsg", "security_group_rule", see=OWN_A, write="admin A",
        create="admin:201 A:201 B:403 rA:403"),
    # -- RBAC policies: seen by their project (not by their target) --------
    # create = a policy on the row's object for another project; on an
    # object one does not own: InvalidInput 400 (Neutron's RBAC callback)
    Row("rbac-admin", "rbac_policy", see="admin", write="admin", create=FOR_ADMIN, fresh_update=True),
    Row("rbac-A", "rbac_policy", see=OWN_A, write="admin A", create=FOR_A, fresh_update=True),
    Row("rbac-sg-A", "rbac_policy", see=OWN_A, write="admin A", create=FOR_A, fresh_update=True),
    # -- subnet pools and address scopes ----------------------------------
    Row("subnetpool-admin", "subnetpool", see="admin", write="admin", create=FOR_ADMIN),
    Row("subnetpool-A", "subnetpool", see=OWN_A, write="admin A", create=FOR_A),
    Row("subnetpool-shared", "subnetpool", see=ALL, write="admin", create=ADMIN_ONLY),
    Row("addrscope-admin", "address_scope", see="admin", write="admin", create=FOR_ADMIN),
    Row("addrscope-A", "address_scope", see=OWN_A, write="admin A", create=FOR_A),
    Row("addrscope-shared", "address_scope", see=ALL, write="admin", create=ADMIN_ONLY),
    # -- agents (admin only; no POST) --------------------------------------
    Row("agent", "agent", see="admin", write="admin", ops=("show", "list", "update", "delete")),
    # -- quotas: a project reads its own; only admins list, change, reset -
    Row("quota-admin", "quota", see="admin", ops=("show", "list", "update", "delete"),
        status={"show": "A:403 B:403 rA:403", "list": "admin:200 A:403 B:403 rA:403",
                "update": "admin:200 A:403 B:403 rA:403", "delete": "admin:204 A:403 B:403 rA:403"}),
    Row("quota-A", "quota", see=OWN_A, ops=("show", "list", "update", "delete"),
        status={"show": "B:403", "list": "admin:200 A:403 B:403 rA:403",
                "update": "admin:200 A:403 B:403 rA:403", "delete": "admin:204 A:403 B:403 rA:403"}),
    # -- network IP availability: admins only (lists filtered to nothing) -
    Row("ipavail-net-private-A", "ip_availability", see="admin", ops=("show", "list")),
    Row("ipavail-net-shared", "ip_availability", see="admin", ops=("show", "list")),
    Row("ipavail-net-external", "ip_availability", see="admin", ops=("show", "list")),
    # -- tags: show = GET …/tags, list = ?tags=, create = PUT …/tags/{t},
    # update = PUT …/tags, delete = DELETE …/tags/{t}; as the parent's update
    Row("tag-net-private-A", "tag", see=OWN_A, write="admin A", create="auto"),
    Row("tag-net-shared", "tag", see=ALL, write="admin", create="auto"),
    Row("tag-net-rbac-A", "tag", see=ALL, write="admin A", create="auto"),
    Row("tag-sub-shared", "tag", see=ALL, write="admin", create="auto"),
    Row("tag-port-A", "tag", see=OWN_A, write="admin A", create="auto"),
    Row("tag-router-admin", "tag", see="admin", write="admin", create="auto"),
    Row("tag-fip-A", "tag", see=OWN_A, write="admin A", create="auto"),
    Row("tag-sg-shared-A", "tag", see=ALL, write="admin A", create="auto"),
    Row("tag-subnetpool-shared", "tag", see=ALL, write="admin", create="auto"),
)


def _auto_create(row: Row) -> Row:
    """Tags: adding one is an update of the parent."""
    if row.create != "auto":
        return row
    codes = " ".join(f"{a}:{row.expected('update', a) if row.expected('update', a) != 200 else 201}"
                     for a in ACTORS)
    return Row(**{**row.__dict__, "create": codes})


ROWS = tuple(_auto_create(r) for r in ROWS)


# Attribute-level policies (create_X:attr / update_X:attr): an explicit list
# of (id, expected status). The test module knows what each one sends.
ATTRIBUTE_CASES: tuple[tuple[str, int], ...] = (
    ("net-private-A-A-create:provider", 403),
    ("net-private-A-A-update:shared", 403),
    ("net-private-A-A-update:router:external", 403),
    ("net-private-A-A-update:provider", 403),
    ("net-private-A-admin-update:shared", 200),
    ("sub-private-A-A-create:service_types", 403),
    ("port-A-A-create:binding:host_id", 403),
    ("port-A-A-create:binding:profile", 403),
    ("port-A-A-update:binding:host_id", 403),
    ("port-A-A-update:binding:profile", 403),
    ("port-A-A-create:mac_address", 201),  # network owner
    ("port-A-A-create:ip_address", 201),
    ("port-onsharednet-B-create:mac_address", 403),
    ("port-onsharednet-B-create:ip_address", 403),
    ("port-onsharednet-B-create:subnet_id", 201),  # rule:shared
    ("port-onsharednet-B-create:device_owner", 403),
    ("port-onsharednet-B-create:allowed_address_pairs", 403),
    ("port-onsharednet-B-create:port_security_enabled", 403),
    ("port-onsharednet-A-update:ip_address", 403),
    ("port-onsharednet-A-update:subnet_id", 403),  # update_port:fixed_ips has no rule:shared
    ("port-onsharednet-A-update:allowed_address_pairs", 403),
    ("port-onsharednet-A-update:port_security_enabled", 403),
    ("port-A-A-update:allowed_address_pairs", 200),  # network owner
    ("port-A-A-update:mac_address", 403),  # update_port:mac_address is admin (or service) only
    ("port-onsharednet-A-update:mac_address", 403),
    ("port-onsharednet-admin-update:mac_address", 200),
    ("router-A-A-create:enable_snat", 403),
    ("router-A-A-create:external_fixed_ips", 403),
    ("router-A-admin-create:enable_snat", 201),
    ("fip-A-A-create:floating_ip_address", 403),
    ("fip-A-admin-create:floating_ip_address", 201),
    ("subnetpool-A-A-create:is_default", 403),
    ("subnetpool-A-A-create:shared", 403),
    ("addrscope-A-A-update:shared", 403),
    ("rbac-A-A-create:wildcard", 403),
    ("rbac-A-admin-create:wildcard", 201),
    ("sg-A-B-create:port-with-foreign-sg", 404),
    ("router-A-B-add_router_interface", 404),
    ("router-A-rA-add_router_interface", 403),
    ("router-A-B-gateway-on-private-net", 404),
)


# Cells where kaon knowingly differs from Neutron (strict xfail: they fail
# loudly once fixed). Not counted as leaks; listed by test_zz_leak_count.
KNOWN_GAPS: dict[str, str] = {}


@dataclass(frozen=True)
class Cell:
    row: Row
    actor: str
    op: str
    expected: int

    @property
    def id(self) -> str:
        return f"{self.row.key}-{self.actor}-{self.op}"


def cells() -> list[Cell]:
    out = []
    for row in ROWS:
        for op in row.ops:
            for actor in ACTORS:
                want = row.expected(op, actor)
                if want is not None:
                    out.append(Cell(row, actor, op, want))
    return out


# Lists scanned for items a non-admin should not see (and for items it
# should see but does not), against an oracle built from the admin's view.
SCANNED = ("networks", "subnets", "ports", "routers", "floatingips", "security-groups", "security-group-rules",
           "rbac-policies", "subnetpools", "address-scopes", "agents", "network-ip-availabilities")
