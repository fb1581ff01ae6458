"""``kaon lab`` on real namespaces (root): topology, idempotency, cleanup, VMs on a live server.

Every lab gets a unique prefix (``kt<4 hex>-``); teardown runs ``down()``
and then checks that no namespace with that prefix is left, deleting any
stragglers by exact name so one failure does not leak into the next run.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from kaon.lab import Lab, LabError, agents, ip
from kaon.lab.api_client import ApiError, NeutronClient
from tests.fixtures.require import require
from tests.fixtures.server import REPO_ROOT, start_kaon_server

pytestmark = pytest.mark.needs_root


def _prefix() -> str:
    return f"kt{secrets.token_hex(2)}-"


def _leftovers(prefix: str) -> list[str]:
    return ip.netns_list(prefix)


@pytest.fixture
def make_lab(tmp_path: Path):
    """``make_lab(**kw) -> Lab`` with a unique prefix; torn down and checked at teardown."""
    require(os.geteuid() == 0, "needs root (network namespaces)")
    labs: list[Lab] = []

    def make(**kw) -> Lab:
        lab = Lab(_prefix(), tmp_path / f"state{len(labs)}", **kw)
        labs.append(lab)
        return lab

    yield make
    leaks = []
    for lab in labs:
        lab.down()
        left = _leftovers(lab.prefix)
        for ns in left:
            ip.delete_netns(ns)
        leaks += left
    assert not leaks, f"namespaces left after down(): {leaks}"


def _link_names(ns: str) -> set[str]:
    return set(ip.links(ns))


# ------------------------------------------------------------------ topology
def test_up_makes_the_namespaces_and_links(make_lab):
    lab = make_lab()
    state = lab.up(3, agents=False)
    p = lab.prefix
    expected = {f"{p}ul", f"{p}pn", f"{p}out", f"{p}h1", f"{p}h2", f"{p}h3"}
    assert set(_leftovers(p)) == expected
    assert set(state["namespaces"]) == expected
    assert _link_names(f"{p}ul") == {"lo", "br-ul", "ul-h1", "ul-h2", "ul-h3"}
    assert _link_names(f"{p}pn") == {"lo", "br-pn", "pn-h1", "pn-h2", "pn-h3", "pn-out",
                                     "br-p2", "p2-h1", "p2-h2", "p2-h3", "p2-out"}
    for i in (1, 2, 3):
        links = ip.links(f"{p}h{i}")
        assert set(links) == {"lo", "eth0", "eth1", "eth2"}
        assert all("UP" in links[name]["flags"] for name in links)
        assert ip.addresses(f"{p}h{i}", "eth0") == [f"10.99.0.{i}/24"]
        assert ip.addresses(f"{p}h{i}", "eth1") == []  # the agent enslaves it; no address
        assert ip.links(f"{p}ul")[f"ul-h{i}"]["master"] == "br-ul"
        assert ip.links(f"{p}pn")[f"pn-h{i}"]["master"] == "br-pn"
        assert ip.links(f"{p}pn")[f"p2-h{i}"]["master"] == "br-p2"  # physical network "default"
        assert ip.addresses(f"{p}h{i}", "eth2") == []
        assert state["hosts"][f"h{i}"] == {"index": i, "namespace": f"{p}h{i}",
                                            "local_ip": f"10.99.0.{i}", "agent": None,
                                            "mechanism": "linuxbridge"}
    assert ip.links(f"{p}pn")["pn-out"]["master"] == "br-pn"
    assert state["network_nodes"] == ["h1"]


def test_outside_has_its_addresses(make_lab):
    lab = make_lab()
    lab.up(1, agents=False)
    assert sorted(ip.addresses(f"{lab.prefix}out", "eth0")) == ["192.168.100.1/24", "203.0.113.1/24"]
    assert lab.state()["outside"]["addresses"] == ["192.168.100.1/24", "203.0.113.1/24"]


def test_hosts_reach_each_other_over_the_underlay(make_lab):
    lab = make_lab()
    lab.up(2, agents=False)
    r = lab.host_exec("h1", ["ping", "-c1", "-W2", "10.99.0.2"], capture=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hosts_reach_outside_over_the_provider_bridge(make_lab):
    lab = make_lab()
    lab.up(1, agents=False)
    # eth1 has no address (the agent's job); give one for the test, in the host's namespace only.
    ip.ensure_address(f"{lab.prefix}h1", "eth1", "192.168.100.250/24")
    r = lab.host_exec("h1", ["ping", "-c1", "-W2", "192.168.100.1"], capture=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_up_twice_is_idempotent(make_lab):
    lab = make_lab()
    first = lab.up(2, agents=False)
    links = {ns: _link_names(ns) for ns in first["namespaces"]}
    second = lab.up(2, agents=False)
    assert second == first
    assert {ns: _link_names(ns) for ns in second["namespaces"]} == links
    assert ip.addresses(f"{lab.prefix}h2", "eth0") == ["10.99.0.2/24"]
    third = lab.up(3, agents=False)  # growing is fine
    assert set(third["hosts"]) == {"h1", "h2", "h3"}
    with pytest.raises(LabError, match="already has hosts h3"):
        lab.up(2, agents=False)


def test_up_repairs_a_half_made_host(make_lab):
    lab = make_lab()
    lab.up(2, agents=False)
    ip.delete_link(f"{lab.prefix}ul", "ul-h2")  # the veth goes, both ends
    ip.delete_netns(f"{lab.prefix}out")
    lab.up(2, agents=False)
    assert ip.addresses(f"{lab.prefix}h2", "eth0") == ["10.99.0.2/24"]
    assert lab.host_exec("h1", ["ping", "-c1", "-W2", "10.99.0.2"], capture=True).returncode == 0
    assert lab.status()["missing"] == []


def test_down_removes_everything_and_is_idempotent(make_lab):
    lab = make_lab()
    assert lab.down() == []  # nothing up: fine
    lab.up(2, agents=False)
    deleted = lab.down()
    assert len(deleted) == 5
    assert _leftovers(lab.prefix) == []
    assert not lab.store.path.exists()
    assert lab.down() == []
    assert lab.status() == {"prefix": lab.prefix, "up": False}


def test_agents_are_started_recorded_and_stopped_by_pid(make_lab, monkeypatch, tmp_path):
    # The real `kaon agent` is someone else's; a stand-in process with the
    # same command-line shape (its ini file on it) exercises the pid handling.
    def fake_command(server_configs, ini):
        args = [a for conf in [*server_configs, str(ini)] for a in ("--config-file", str(conf))]
        return [sys.executable, "-c", "import time; time.sleep(120)", *args]

    monkeypatch.setattr(agents, "agent_command", fake_command)
    # No server runs for the stand-ins to join (tests/unit/test_node_conf.py checks that refusal).
    monkeypatch.setattr(Lab, "_require_node", lambda self, configs: None)
    server_conf = tmp_path / "server.conf"
    server_conf.write_text("[DEFAULT]\nauth_strategy = noauth\n")
    lab = make_lab(config_files=[str(server_conf)])
    state = lab.up(2)
    ini = (lab.directory / "h2.ini").read_text()
    assert "host = h2" in ini and f"namespace = {lab.prefix}h2" in ini and "local_ip = 10.99.0.2" in ini
    assert "physical_interface_mappings = provider:eth1,default:eth2" in ini
    pids = {h: rec["agent"]["pid"] for h, rec in state["hosts"].items()}
    assert all(agents.agent_alive(rec["agent"]) for rec in state["hosts"].values())
    assert {h: rec["agent"]["pid"] for h, rec in lab.up(2)["hosts"].items()} == pids  # not restarted
    assert lab.stop_agents(["h1"]) == ["h1"]
    status = lab.status()
    assert status["hosts"]["h1"]["agent_pid"] is None and status["hosts"]["h2"]["agent_alive"]
    lab.start_agents()
    assert agents.agent_alive(lab.state()["hosts"]["h1"]["agent"])
    records = [rec["agent"] for rec in lab.state()["hosts"].values()]
    lab.down()
    assert not any(agents.agent_alive(rec) for rec in records)


def _kaon_lab(args, options, env) -> subprocess.CompletedProcess[str]:
    """``kaon lab SUB [vm SUB] OPTIONS REST...``: options before any ``--``."""
    n = 2 if args[0] == "vm" else 1
    cmd = [sys.executable, "-m", "kaon", "lab", *args[:n], *options, *args[n:]]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def test_cli_up_status_down(tmp_path):
    require(os.geteuid() == 0, "needs root (network namespaces)")
    prefix, state = _prefix(), str(tmp_path / "state")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    def kaon(*args: str) -> subprocess.CompletedProcess[str]:
        return _kaon_lab(args, ["--prefix", prefix, "--state-dir", state], env)

    try:
        r = kaon("up", "--hosts", "2", "--no-agents")
        assert r.returncode == 0, r.stderr
        assert f"h2: namespace {prefix}h2, local_ip 10.99.0.2" in r.stdout
        r = kaon("status", "--json")
        assert json.loads(r.stdout)["hosts"]["h1"]["present"] is True
        assert kaon("vm", "list").stdout == ""
        r = kaon("vm", "exec", "nope", "--", "true")
        assert r.returncode == 1 and "no VM 'nope'" in r.stderr
        r = kaon("up", "--hosts", "2")  # agents wanted, no server config anywhere
        assert r.returncode == 1 and "no server config" in r.stderr
    finally:
        r = kaon("down")
    assert r.returncode == 0 and "deleted 5 namespaces" in r.stdout
    assert _leftovers(prefix) == []


# ------------------------------------------------------------------ VMs on a live server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    require(os.geteuid() == 0, "needs root (network namespaces)")
    with start_kaon_server(tmp_path_factory.mktemp("labsrv"), auth_strategy="noauth") as srv:
        yield srv


def _network(client: NeutronClient, name: str, cidr: str) -> tuple[dict, dict]:
    net = client.post("networks", {"network": {"name": name}})["network"]
    subnet = client.post("subnets", {"subnet": {"network_id": net["id"], "cidr": cidr, "ip_version": 4,
                                                "name": f"{name}-subnet"}})["subnet"]
    return net, subnet


def test_vms_are_plugged_like_nova_would(make_lab, server):
    lab = make_lab(config_files=[str(server.conf_path)])
    lab.up(1, agents=False)
    client = lab.client  # found from the server's config and its server.json (noauth)
    net, subnet = _network(client, f"{lab.prefix}net", "10.20.30.0/24")
    vm1 = lab.create_vm("vm1", "h1", net["name"])
    vm2 = lab.create_vm("vm2", "h1", net["id"], ip_address="10.20.30.77")
    assert vm2["ips"] == ["10.20.30.77/24"]
    with pytest.raises(LabError, match="exists already"):
        lab.create_vm("vm1", "h1", net["id"])
    host_ns = f"{lab.prefix}h1"
    for vm in (vm1, vm2):
        port = client.get(f"ports/{vm['port_id']}")["port"]
        assert port["binding:host_id"] == "h1"
        assert port["device_owner"] == "compute:nova" and port["device_id"] == vm["device_id"]
        assert vm["namespace"] == f"{lab.prefix}vm-{vm['name']}"
        assert vm["tap"] == "tap" + port["id"][:11]
        eth0 = ip.links(vm["namespace"])["eth0"]
        assert eth0["address"] == port["mac_address"] and eth0["mtu"] == net["mtu"]
        assert ip.addresses(vm["namespace"], "eth0") == [f"{port['fixed_ips'][0]['ip_address']}/24"]
        tap = ip.links(host_ns)[vm["tap"]]
        assert "UP" in tap["flags"] and "master" not in tap  # the agent enslaves it, not the lab
        route = lab.exec(vm["name"], ["ip", "-j", "route", "show", "default"], capture=True).stdout
        assert json.loads(route)[0]["gateway"] == subnet["gateway_ip"]
    assert [v["name"] for v in lab.vms()] == ["vm1", "vm2"]

    # Play the agent: both taps into one bridge in the host namespace; then VM1 reaches VM2.
    subprocess.run(["ip", "-n", host_ns, "link", "add", "brq-test", "type", "bridge"], check=True)
    for vm in (vm1, vm2):
        ip.set_up(host_ns, vm["tap"], master="brq-test")
    ip.set_up(host_ns, "brq-test")
    r = lab.exec("vm1", ["ping", "-c1", "-W3", "10.20.30.77"], capture=True)
    assert r.returncode == 0, r.stdout + r.stderr

    lab.delete_vm("vm2")
    assert not ip.netns_exists(vm2["namespace"]) and vm2["tap"] not in ip.links(host_ns)
    with pytest.raises(ApiError, match="404"):
        client.get(f"ports/{vm2['port_id']}")
    assert vm2["namespace"] not in lab.state()["namespaces"]
    # down() deletes the remaining VM's port through the API, then every namespace.
    lab.down()
    with pytest.raises(ApiError, match="404"):
        client.get(f"ports/{vm1['port_id']}")


def test_vm_create_fails_cleanly(make_lab, server):
    lab = make_lab(client=NeutronClient(server.url))
    lab.up(1, agents=False)
    net, _ = _network(lab.client, f"{lab.prefix}net2", "10.20.31.0/24")
    with pytest.raises(ApiError, match="no networks named"):
        lab.create_vm("vm1", "h1", "no-such-network")
    with pytest.raises(LabError, match="no host 'h9'"):
        lab.create_vm("vm1", "h9", net["id"])
    with pytest.raises(ApiError, match="400"):
        lab.create_vm("vm1", "h1", net["id"], ip_address="10.99.99.99")  # not in the subnet
    assert lab.vms() == [] and not ip.netns_exists(f"{lab.prefix}vm-vm1")
    assert lab.client.get("ports", device_owner="compute:nova", network_id=net["id"])["ports"] == []


def test_existing_port_is_bound_and_given_back(make_lab, server):
    lab = make_lab(client=NeutronClient(server.url))
    lab.up(1, agents=False)
    net, _ = _network(lab.client, f"{lab.prefix}net3", "10.20.32.0/24")
    port = lab.client.post("ports", {"port": {"network_id": net["id"], "name": "mine"}})["port"]
    vm = lab.create_vm("vm1", "h1", net["id"], port="mine")
    assert vm["port_id"] == port["id"] and vm["port_created"] is False
    lab.delete_vm("vm1")
    after = lab.client.get(f"ports/{port['id']}")["port"]
    assert after["device_owner"] == "" and after["binding:host_id"] == ""


def test_cli_vm_with_kaon_identity(tmp_path):
    """``kaon lab vm create`` as a user would run it: clouds.yaml credentials, the CLI only."""
    require(os.geteuid() == 0, "needs root (network namespaces)")
    with start_kaon_server(tmp_path / "srv", auth_strategy="kaon") as srv:
        prefix = _prefix()
        base = ["--prefix", prefix, "--state-dir", str(tmp_path / "labstate"),
                "--config-file", str(srv.conf_path)]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        env.pop("OS_CLOUD", None)

        def kaon(*args: str) -> subprocess.CompletedProcess[str]:
            return _kaon_lab(args, base, env)

        try:
            assert kaon("up", "--hosts", "1", "--no-agents").returncode == 0
            from kaon.lab.api_client import resolve_client

            client = resolve_client(None, [str(srv.conf_path)])  # kaon-admin from the server's clouds.yaml
            net, _ = _network(client, "labnet", "10.20.33.0/24")
            r = kaon("vm", "create", "vm1", "--host", "h1", "--network", "labnet", "--json")
            assert r.returncode == 0, r.stderr
            vm = json.loads(r.stdout)
            fixed = client.get(f"ports/{vm['port_id']}")["port"]["fixed_ips"]
            assert vm["ips"] == [f"{fixed[0]['ip_address']}/24"]
            r = kaon("vm", "exec", "vm1", "--", "ip", "-j", "addr", "show", "eth0")
            assert r.returncode == 0
            assert kaon("vm", "exec", "vm1", "--", "sh", "-c", "exit 3").returncode == 3
            assert "vm1: host h1" in kaon("vm", "list").stdout
            r = kaon("vm", "create", "vm2", "--host", "h1", "--network", "labnet", "--os-cloud", "kaon-demo")
            assert r.returncode == 1 and "no networks named or with id 'labnet'" in r.stderr  # admin's
            assert not ip.netns_exists(f"{prefix}vm-vm2")
            assert kaon("vm", "delete", "vm1").returncode == 0
            assert client.get("ports", network_id=net["id"], device_owner="compute:nova")["ports"] == []
        finally:
            kaon("down")
        assert _leftovers(prefix) == []


def test_wait_for_agents_reports_an_agent_that_died(make_lab, server, monkeypatch):
    def failing_command(server_configs, ini):
        return [sys.executable, "-c", "import sys; print('agent says boom'); sys.exit(3)",
                "--config-file", str(ini)]

    monkeypatch.setattr(agents, "agent_command", failing_command)
    lab = make_lab(config_files=[str(server.conf_path)], client=NeutronClient(server.url))
    lab.up(1)
    with pytest.raises(LabError, match="(?s)agent of h1 is not running.*agent says boom"):
        lab.wait_for_agents(timeout=10)
    assert lab.status()["hosts"]["h1"]["agent_alive"] is False
