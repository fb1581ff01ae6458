"""Seed 002's two projects come from kaon's identity service when the server has one (no root)."""

from __future__ import annotations

from pathlib import Path

from kaon.lab.api_client import NeutronClient, client_for_cloud, load_cloud
from kaon.lab.seeds import _projects
from tests.fixtures.server import start_kaon_server


def test_seed_002_projects_are_the_identity_services_demo_and_alt_demo(tmp_path: Path) -> None:
    with start_kaon_server(tmp_path / "kaon", auth_strategy="kaon") as server:
        admin = client_for_cloud(load_cloud("kaon-admin", [server.clouds_yaml]), server.url)
        demo = client_for_cloud(load_cloud("kaon-demo", [server.clouds_yaml]), server.url)
        try:
            projects = dict(_projects(admin))
            assert set(projects) == {"demo", "alt_demo"} and len(set(projects.values())) == 2
            assert all(pid != name and len(pid) == 32 for name, pid in projects.items()), projects
            # The id is the demo user's own project: a port the admin makes for it is the demo user's to see.
            net = admin.post("networks", {"network": {"name": "pub100", "shared": True}})["network"]
            admin.post("ports", {"port": {"network_id": net["id"], "project_id": projects["demo"], "name": "vm100"}})
            admin.post("ports", {"port": {"network_id": net["id"], "project_id": projects["alt_demo"], "name": "vm101"}})
            assert [p["name"] for p in demo.get("ports")["ports"]] == ["vm100"]
        finally:
            admin.close()
            demo.close()
    with start_kaon_server(tmp_path / "noauth") as server:
        client = NeutronClient(server.url)
        try:
            assert _projects(client) == [("demo", "demo"), ("alt_demo", "alt_demo")]  # noauth: any id
        finally:
            client.close()
