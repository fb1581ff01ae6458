"""An operator's ``policy.yaml`` changes what a running server allows
(``[oslo_policy] policy_file``, or policy.yaml next to the configuration),
and the attribute rules Neutron applies only to values other than the
default. A real server process (tests/fixtures/server.py), callers by role
through the noauth headers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.server import KaonServer, start_kaon_server

OVERRIDES = """\
# Members may place their ports on a host; only admins make networks.
"create_port:binding:host_id": "rule:admin_only or role:member"
"create_network": "rule:admin_only"
"""


def client(srv: KaonServer, project: str, roles: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, timeout=10.0,
                        headers={"X-Project-Id": project, "X-User-Id": f"u-{project}", "X-Roles": roles})


@pytest.fixture(scope="module", params=["next-to-config", "policy_file-option"])
def srv(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    work = tmp_path_factory.mktemp("policy")
    extra: dict[str, Any] = {}
    if request.param == "next-to-config":
        (work / "policy.yaml").write_text(OVERRIDES)  # beside kaon.conf: Neutron's default lookup
    else:
        elsewhere = tmp_path_factory.mktemp("etc") / "neutron-policy.yaml"
        elsewhere.write_text(OVERRIDES)
        extra = {"oslo_policy": {"policy_file": str(elsewhere)}}
    with start_kaon_server(work, auth_strategy="noauth", extra_conf=extra) as server:
        yield server


def test_override_forbids_members_to_create_networks(srv: KaonServer) -> None:
    with client(srv, "pa", "member,reader") as member, client(srv, "adminp", "admin,member,reader") as admin:
        r = member.post("/v2.0/networks", json={"network": {"name": "mine"}})
        assert r.status_code == 403, r.text
        assert r.json()["NeutronError"]["message"] == "(create_network) is disallowed by policy"
        r = admin.post("/v2.0/networks", json={"network": {"name": "for-pa", "project_id": "pa"}})
        assert r.status_code == 201, r.text
        # What the file does not name keeps Neutron's default.
        r = member.post("/v2.0/security-groups", json={"security_group": {"name": "sg"}})
        assert r.status_code == 201, r.text


def test_override_lets_a_member_set_binding_host_id(srv: KaonServer) -> None:
    with client(srv, "pb", "member,reader") as member, client(srv, "adminp", "admin,member,reader") as admin:
        net = admin.post("/v2.0/networks", json={"network": {"name": "pb-net", "project_id": "pb"}}).json()["network"]
        r = member.post("/v2.0/ports", json={"port": {"network_id": net["id"], "binding:host_id": "compute-7"}})
        assert r.status_code == 201, r.text
        port = r.json()["port"]
        # get_port:binding:host_id is still admin only: the member does not read it back.
        assert "binding:host_id" not in port
        shown = admin.get(f"/v2.0/ports/{port['id']}").json()["port"]
        assert shown["binding:host_id"] == "compute-7"
        # update_port:binding:host_id was not overridden.
        r = member.put(f"/v2.0/ports/{port['id']}", json={"port": {"binding:host_id": "compute-8"}})
        assert r.status_code == 403, r.text
        assert "rule:update_port:binding:host_id" in r.json()["NeutronError"]["message"]


def test_defaults_without_a_policy_file(tmp_path: Path) -> None:
    """The same requests against a server with no policy.yaml: Neutron's
    defaults (so the overrides above are what changed the answers)."""
    with start_kaon_server(tmp_path, auth_strategy="noauth") as server, \
            client(server, "pa", "member,reader") as member:
        r = member.post("/v2.0/networks", json={"network": {"name": "mine"}})
        assert r.status_code == 201, r.text
        net = r.json()["network"]
        r = member.post("/v2.0/ports", json={"port": {"network_id": net["id"], "binding:host_id": "compute-7"}})
        assert r.status_code == 403, r.text
        assert r.json()["NeutronError"]["message"] == "(rule:create_port:binding:host_id) is disallowed by policy"
