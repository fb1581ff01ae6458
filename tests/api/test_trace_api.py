"""``GET /v2.0/trace`` (kaon.api.trace_routes) over what the server stored: real ports bound by ML2,
the compiler's stored intents, the security group rules' ids (kaon.trace.source), on SQLite and
PostgreSQL; admin only."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api import core_support
from tests.api.core_support import Api, neutron_error
from tests.api.test_intents import compile_now, vm
from tests.api.test_l3_intents import api as l3_api  # noqa: F401  (fixture: LB agents on h1, h2)
from tests.api.test_l3_intents import ext_net, l3_agent, router_with

make_api = core_support.make_api


@pytest.fixture
def cloud(l3_api: Api) -> dict[str, Any]:  # noqa: F811
    admin = l3_api.admin()
    l3_agent(l3_api, "h1")
    ext, _ = ext_net(admin)
    net, sub = admin.net_with_subnet("10.0.0.0/24")
    router = router_with(admin, ext["id"], sub["id"])
    a = vm(l3_api, net["id"], "h1", name="trace-a")
    b = vm(l3_api, net["id"], "h2", name="trace-b")
    fip = admin.create("floatingips", floating_network_id=ext["id"], port_id=b["id"])
    compile_now(l3_api)
    return {"api": l3_api, "a": a, "b": b, "router": router, "fip": fip, "net": net}


def trace(api: Api, **params: Any) -> dict[str, Any]:
    r = api.admin().get("/v2.0/trace", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json()["trace"])


def default_rule(api: Api, port: dict[str, Any], direction: str) -> str:
    r = api.admin().get("/v2.0/security-group-rules", params={"security_group_id": port["security_groups"][0]})
    rules = r.json()["security_group_rules"]
    return next(r["id"] for r in rules if r["direction"] == direction and r["ethertype"] == "IPv4")


def ip(port: dict[str, Any]) -> str:
    return str(port["fixed_ips"][0]["ip_address"])


def test_same_network_across_hosts_by_name_with_the_default_groups_rule_ids(cloud: dict[str, Any]) -> None:
    api, a, b = cloud["api"], cloud["a"], cloud["b"]
    t = trace(api, from_port="trace-a", to=f"{ip(b)}:22", protocol="tcp")
    assert t["delivered"] is True, t
    hops = {h["step"]: h for h in t["hops"]}
    assert hops["egress"]["ids"]["rule_id"] == default_rule(api, a, "egress")
    assert hops["ingress"]["ids"]["rule_id"] == default_rule(api, b, "ingress")  # remote group: default
    assert "10.99.0.1 → 10.99.0.2" in hops["l2"]["text"]
    assert t["hops"][-1]["ids"]["port_id"] == b["id"]


def test_outside_with_snat_and_floating_ip_inbound_blocked_by_the_default_group(cloud: dict[str, Any]) -> None:
    api, b = cloud["api"], cloud["b"]
    t = trace(api, from_port=cloud["a"]["id"], to="8.8.8.8")
    assert t["delivered"] and any(h["step"] == "nat" and "SNAT" in h["text"] for h in t["hops"])
    assert t["verdict"].endswith("via next hop 192.168.100.1 (kaon's part ends at the router's gateway)")
    fip = cloud["fip"]["floating_ip_address"]
    t = trace(api, from_external="203.0.113.9", to=fip)
    assert not t["delivered"] and t["hops"][-1]["step"] == "ingress"  # the default group admits only members
    assert any(h["text"] == f"floating IP: destination {fip} → {ip(b)}" for h in t["hops"])
    r = api.admin().post("/v2.0/security-group-rules", json={"security_group_rule": {
        "security_group_id": b["security_groups"][0], "direction": "ingress", "protocol": "icmp",
        "remote_ip_prefix": "0.0.0.0/0"}})
    assert r.status_code == 201, r.text
    rule = r.json()["security_group_rule"]
    compile_now(api)
    t = trace(api, from_external="203.0.113.9", to=fip)
    assert t["delivered"] and [h for h in t["hops"] if h["step"] == "ingress"][0]["ids"]["rule_id"] == rule["id"]


def test_an_unbound_port_is_a_drop_with_its_reason(cloud: dict[str, Any]) -> None:
    api = cloud["api"]
    loose = api.admin().port(cloud["net"]["id"], name="loose")
    t = trace(api, from_port="loose", to=ip(cloud["b"]))
    assert not t["delivered"] and "not bound to any host" in t["verdict"]
    del loose


def test_bad_questions_and_who_may_ask(cloud: dict[str, Any]) -> None:
    api = cloud["api"]
    admin = api.admin()
    neutron_error(admin.get("/v2.0/trace", params={"from_port": "nope", "to": "10.0.0.1"}), 404, "PortNotFound")
    neutron_error(admin.get("/v2.0/trace", params={"from_port": "trace-a", "to": "10.0.0.1", "protocol": "gre"}),
                  400, "TraceError")
    neutron_error(admin.get("/v2.0/trace", params={"from_port": "trace-a", "to": "10.0.0.1", "protocol": "tcp"}),
                  400, "TraceError", "needs a destination port")
    neutron_error(admin.get("/v2.0/trace", params={"from_port": "trace-a"}), 400, "TraceError")
    r = api.member(cloud["a"]["project_id"]).get("/v2.0/trace", params={"from_port": "trace-a", "to": "10.0.0.1"})
    neutron_error(r, 403, "PolicyNotAuthorized")


def test_the_cli_reads_the_same_database(cloud: dict[str, Any], tmp_path: Any,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from kaon.cli.main import main

    api, b = cloud["api"], cloud["b"]
    conf = tmp_path / "kaon.conf"
    conf.write_text(f"[database]\nconnection = {api.engine.url.render_as_string(hide_password=False)}\n")
    code = main(["trace", "--config-file", str(conf), "--from", "trace-a", "--to", ip(b), "--verbose"])
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert code == 0 and lines[0].startswith(" 1. source") and lines[-1].startswith(f"{len(lines):>2}. delivered")
    assert "trace: " in out.err and " ms" in out.err  # --verbose: the time it took
    code = main(["trace", "--config-file", str(conf), "--from", "trace-a", "--to", ip(b), "--source", "10.0.0.250",
                 "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["delivered"] is False and data["hops"][-1]["step"] == "port-security"
    code = main(["trace", "--config-file", str(conf), "--from", "nope", "--to", ip(b)])
    assert code == 2 and "no port has the id or name 'nope'" in capsys.readouterr().err


def test_the_cli_asks_a_real_server_with_os_cloud(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """``--os-cloud``: the same trace over ``GET /v2.0/trace`` with a token; the database is not read."""
    import httpx
    import yaml

    from kaon.cli.main import main
    from tests.fixtures import start_kaon_server

    with start_kaon_server(tmp_path, auth_strategy="kaon") as srv:
        auth = yaml.safe_load(srv.clouds_yaml.read_text())["clouds"]["kaon-admin"]["auth"]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "domain": {"name": auth["user_domain_name"]}, "password": auth["password"]}}},
            "scope": {"project": {"name": auth["project_name"], "domain": {"name": auth["project_domain_name"]}}}}}
        token = httpx.post(f"{auth['auth_url']}/auth/tokens", json=body, timeout=10).headers["x-subject-token"]
        api = httpx.Client(base_url=srv.url, headers={"x-auth-token": token}, timeout=10)
        net = api.post("/v2.0/networks", json={"network": {"name": "cli-net"}}).json()["network"]
        api.post("/v2.0/subnets", json={"subnet": {"network_id": net["id"], "cidr": "10.7.0.0/24", "ip_version": 4}})
        port = api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "name": "cli-port"}}).json()["port"]
        argv = ["trace", "--os-cloud", "kaon-admin", "--os-client-config-file", str(srv.clouds_yaml),
                "--from", "cli-port", "--to", "10.7.0.1"]
        capsys.readouterr()
        code = main([*argv, "--json"])
        data = json.loads(capsys.readouterr().out)
        assert code == 1 and data["hops"][-1]["ids"] == {"port_id": port["id"]}
        assert "not bound to any host" in data["verdict"]
        code = main(argv)
        assert code == 1 and "DROPPED: port cli-port" in capsys.readouterr().out
        code = main([*argv[:-4], "--from", "nope", "--to", "10.7.0.1"])
        assert code == 2 and "no port has the id or name 'nope'" in capsys.readouterr().err
