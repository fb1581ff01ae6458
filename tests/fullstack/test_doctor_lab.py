"""``kaon doctor`` on a healthy three-host lab (server on SQLite, one agent
per host): the server's run and each host's run (server files + the host's
agent ini, as the agent itself is started) find nothing and exit 0; a VM
bound to a host whose agent was stopped is then named. Each run's time is
printed (--verbose); the issue's figure is ≤ 2 s for 3 hosts, not asserted
on a shared machine."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from kaon.config import load_config
from kaon.dataplane import nft
from kaon.db.agent_tables import agents
from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = [pytest.mark.needs_root]

HOSTS = ("h1", "h2", "h3")


@pytest.fixture(scope="module")
def lab3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("doctor-lab"), hosts=3) as s:
        yield s


def doctor(s: Stack, *files: str) -> tuple[int, str, str, float]:
    argv = [sys.executable, "-m", "kaon", "doctor", "--verbose", "--config-file", str(s.server.conf_path)]
    for f in files:
        argv += ["--config-file", f]
    t0 = time.monotonic()
    res = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    seconds = time.monotonic() - t0
    print(f"kaon doctor {' '.join(Path(f).name for f in files) or '(server)'}: exit {res.returncode} in "
          f"{seconds:.2f} s wall; {res.stderr.strip().splitlines()[-1]}")
    return res.returncode, res.stdout, res.stderr, seconds


def test_a_healthy_lab_then_a_stopped_agent(lab3: Stack) -> None:
    net = lab3.network("tenant", "10.20.0.0/24")
    router = lab3.api("POST", "/v2.0/routers", {"router": {"name": "r"}})["router"]
    subnet = lab3.api("GET", "/v2.0/subnets", network_id=net["id"])["subnets"][0]
    lab3.api("PUT", f"/v2.0/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    vm = lab3.vm("d1", "h1", net["id"])
    lab3.wait_converged()
    code, out, err, _ = doctor(lab3)
    assert code == 0 and out.startswith("healthy: "), out + err
    for host in HOSTS:
        code, out, err, _ = doctor(lab3, str(lab3.lab.directory / f"{host}.ini"))
        if importlib.util.find_spec("kaon.config_check") is None:  # branch firsthour's local_ip validation
            assert (code, out) == (2, "not checked: local_ip: kaon.config_check (local_ip validation) is not in "
                                      "this build\n"), out + err
        else:
            assert code == 0 and out.startswith("healthy: "), out + err
        assert "doctor: local_ip checked in" in err and "doctor: br_netfilter checked in" in err

    lab3.lab.stop_agents(["h1"])
    wait_for("h1's agent dead", lambda: not any(a["alive"] for a in lab3.agents() if a["host"] == "h1"))
    code, out, err, _ = doctor(lab3)
    assert code == 1, out + err
    assert f"h1: host h1: 1 port(s) ACTIVE ({vm['port_id']}) but its Linux bridge agent is dead" in out
    lab3.lab.start_agents()


def doctor_json(s: Stack) -> dict[str, Any]:
    res = subprocess.run([sys.executable, "-m", "kaon", "doctor", "--json", "--config-file", str(s.server.conf_path)],
                         capture_output=True, text=True, timeout=60)
    return dict(json.loads(res.stdout))


def stored_tunnels(s: Stack) -> dict[str, Any]:
    cfg = load_config([str(s.server.conf_path)])
    engine = create_engine(cfg.database.connection)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(agents.c.host, agents.c.health)
                                .where(agents.c.agent_type == "Linux bridge agent")).all()
    finally:
        engine.dispose()
    return {r.host: (r.health or {}).get("tunnels") for r in rows}


def tunnel_lines(s: Stack) -> list[str]:
    report = doctor_json(s)
    assert not any(x["check"] == "tunnels" for x in report["not_checked"]), report
    return sorted(f"{f['host']}: {f['subject']}: {f['evidence']}" for f in report["findings"]
                  if f["check"] == "tunnels")


def test_vxlan_blocked_between_two_hosts_is_named_and_clears(lab3: Stack) -> None:
    """The agents' probes travel as VXLAN on udp/4789: an nft rule in h3 that drops
    udp/4789 from h2 alone makes both ends report the other silent; removing it clears."""
    lab3.wait_agents(list(HOSTS))
    net = lab3.network("probed", "10.21.0.0/24")
    for host in HOSTS:  # a port on every host: each is the others' l2population peer
        lab3.vm(f"p{host}", host, net["id"])
    lab3.wait_converged()
    # What the agents report (stored by the server): every host hears both others.
    peers = {"h1": {"10.99.0.2": True, "10.99.0.3": True}, "h2": {"10.99.0.1": True, "10.99.0.3": True},
             "h3": {"10.99.0.1": True, "10.99.0.2": True}}
    wait_for("every tunnel answered", lambda: stored_tunnels(lab3) == peers, timeout=30, interval=0.5)
    assert tunnel_lines(lab3) == [] and "tunnels" in doctor_json(lab3)["passed"]
    table = f"{lab3.lab.prefix.rstrip('-')}probe"
    h3 = lab3.lab.host_namespace("h3")
    # libnftables, as the agents' own firewall (no nft binary on every machine)
    nft.run(h3, f"add table inet {table}\n"
                f"add chain inet {table} input {{ type filter hook input priority -300; }}\n"
                f"add rule inet {table} input ip saddr 10.99.0.2 udp dport 4789 drop\n")
    try:
        want = ["h2: VXLAN to 10.99.0.3 (h3): gets no answer on udp/4789, though h2 reports generation",
                "h3: VXLAN to 10.99.0.2 (h2): gets no answer on udp/4789, though h3 reports generation"]

        def both_named() -> list[str] | None:
            got = tunnel_lines(lab3)
            return got if len(got) == 2 and all(g.startswith(w) for g, w in zip(got, want, strict=True)) else None

        found = wait_for("both ends of the blocked tunnel named", both_named, timeout=30, interval=0.5)
        print("\n".join(found))
        line = next(f for f in doctor_json(lab3)["findings"] if f["check"] == "tunnels" and f["host"] == "h3")
        assert line["fix"] == ("open udp/4789 between the hosts' local_ip addresses (10.99.0.3 on h3, "
                               "10.99.0.2 on h2) in both directions")
    finally:
        nft.run(h3, f"delete table inet {table}")
    wait_for("the tunnel answered again", lambda: tunnel_lines(lab3) == [], timeout=30, interval=0.5)
