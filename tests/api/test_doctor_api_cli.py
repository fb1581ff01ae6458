"""``GET /v2.0/doctor`` on a real server (admin only, Neutron's error format
for others) and ``kaon doctor`` on the same server's configuration file:
exit 0 healthy, 1 with a finding, 2 when a check could not look."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from kaon.cli.main import main
from tests.fixtures import start_kaon_server
from tests.fixtures.server import KaonServer

FIELDS = {"check", "severity", "host", "subject", "evidence", "fix"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KaonServer]:
    with start_kaon_server(tmp_path_factory.mktemp("doctor"), auth_strategy="kaon") as srv:
        yield srv


def token(server: KaonServer, cloud: str) -> str:
    auth = yaml.safe_load(server.clouds_yaml.read_text())["clouds"][cloud]["auth"]
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": auth["username"], "domain": {"name": auth["user_domain_name"]}, "password": auth["password"]}}},
        "scope": {"project": {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}}}}
    r = httpx.post(f"{auth['auth_url']}/auth/tokens", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["x-subject-token"]


def get(server: KaonServer, path: str, cloud: str = "kaon-admin") -> httpx.Response:
    return httpx.get(server.url + path, headers={"X-Auth-Token": token(server, cloud)}, timeout=30)


def doctor_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["doctor", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_healthy_then_a_finding_through_the_api_and_the_cli(server: KaonServer,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    r = get(server, "/v2.0/doctor")
    assert r.status_code == 200, r.text
    healthy = r.json()["doctor"]
    assert (healthy["findings"], healthy["not_checked"], healthy["exit_code"]) == ([], [], 0)
    assert "binding_failed" in healthy["passed"] and "database" in healthy["passed"]
    # No agents here: nothing reports tunnels, dnsmasq processes, device MTUs or a clock.
    assert {s["check"] for s in healthy["not_applicable"]} == {"rabbitmq", "keystone", "tunnels", "tunnel_mtu",
                                                                "ovsdb_lost", "dnsmasq", "mtu", "clock_skew"}
    code, out, _ = doctor_cli(capsys, "--config-file", str(server.conf_path))
    assert (code, out) == (0, f"healthy: {len(healthy['passed'])} checks passed\n")

    admin = {"X-Auth-Token": token(server, "kaon-admin")}
    net = httpx.post(server.url + "/v2.0/networks", json={"network": {"name": "n"}}, headers=admin).json()["network"]
    port = httpx.post(server.url + "/v2.0/ports", headers=admin, json={"port": {
        "network_id": net["id"], "binding:host_id": "ghost"}}).json()["port"]
    found = get(server, "/v2.0/doctor").json()["doctor"]
    assert found["exit_code"] == 1
    [finding] = found["findings"]
    assert set(finding) == FIELDS
    assert (finding["check"], finding["severity"], finding["host"]) == ("binding_failed", "error", "ghost")
    assert finding["subject"] == f"port {port['id']}"

    code, out, err = doctor_cli(capsys, "--config-file", str(server.conf_path), "--verbose")
    assert code == 1
    assert out.splitlines() == [f"ghost: port {port['id']}: {finding['evidence']} — {finding['fix']}"]
    assert "doctor: binding_failed checked in " in err and " checks in " in err
    code, out, _ = doctor_cli(capsys, "--config-file", str(server.conf_path), "--json")
    assert code == 1 and json.loads(out)["findings"] == [finding]
    httpx.delete(f"{server.url}/v2.0/ports/{port['id']}", headers=admin)


def test_others_get_403_in_neutrons_format(server: KaonServer) -> None:
    r = get(server, "/v2.0/doctor", cloud="kaon-demo")
    assert r.status_code == 403
    assert r.json()["NeutronError"]["type"] == "PolicyNotAuthorized"


def test_exit_2_when_a_check_could_not_look(server: KaonServer, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "linuxbridge_agent.ini"  # an [agent] namespace that is not there: the sysctls cannot be read
    extra.write_text("[agent]\nnamespace = kaon-doctor-no-such-ns\n[securitygroup]\nfirewall_driver = iptables\n")
    code, out, _ = doctor_cli(capsys, "--config-file", str(server.conf_path), "--config-file", str(extra))
    assert code == 2, out
    assert out.startswith("not checked: br_netfilter: cannot read the sysctls in namespace kaon-doctor-no-such-ns")


def test_a_config_error_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.ini"
    bad.write_text("[DEFAULT]\nbind_port = many\n")
    code, _, err = doctor_cli(capsys, "--config-file", str(bad))
    assert code == 2 and "bind_port" in err
