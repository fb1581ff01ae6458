"""A whole kaon on one machine for fullstack tests: a real ``kaon server``
process, a ``kaon lab`` of simulated hosts (one namespace each) with one real
``kaon agent`` process per host, VMs as namespaces.

Every namespace has the test run's unique prefix; ``Stack.close`` takes the
lab down (agents killed by pid, namespaces deleted by exact name) and stops
the server by pid.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from kaon.lab.api_client import load_cloud, password_token
from kaon.lab.lab import Lab
from tests.fixtures import require
from tests.fixtures.server import KaonServer, start_kaon_server

SERVER_CONF: dict[str, dict[str, Any]] = {
    "ml2": {"type_drivers": "local,flat,vlan,vxlan", "tenant_network_types": "vxlan",
            "mechanism_drivers": "linuxbridge,l2population"},
    "ml2_type_flat": {"flat_networks": "provider,default"},  # the lab's two physical networks
    "ml2_type_vlan": {"network_vlan_ranges": "provider:100:200"},
    "ml2_type_vxlan": {"vni_ranges": "1000:1999"},
    # Agents report every second here, so "dead" comes after 4 s, not 75.
    "agent": {"report_interval": "1", "resync_interval": "5"},
    # Security groups enforced, as `kaon up`'s config does (the lab's agents
    # read the server's config first).
    "securitygroup": {"firewall_driver": "nftables"},
    # Benchmarks and the restart test make hundreds of ports in one project.
    "quotas": {"quota_port": "-1", "quota_network": "-1", "quota_subnet": "-1"},
}


# What a stack with Open vSwitch hosts adds: the openvswitch driver, and GRE/Geneve (OVS carries them);
# seed 002's VLAN ranges on the lab's second physical network.
OVS_CONF: dict[str, dict[str, Any]] = {
    "ml2": {"type_drivers": "local,flat,vlan,vxlan,gre,geneve", "tenant_network_types": "vxlan",
            "mechanism_drivers": "linuxbridge,openvswitch,l2population"},
    "ml2_type_vlan": {"network_vlan_ranges": "provider:100:200,default:100:101,default:200:201"},
    "ml2_type_gre": {"tunnel_id_ranges": "1:1000"},
    "ml2_type_geneve": {"vni_ranges": "1:1000"},
}
L2_AGENT_TYPES = ("Linux bridge agent", "Open vSwitch agent")
LB, OVS = "linuxbridge", "openvswitch"  # the hosts' mechanisms, as fullstack modules parametrize them


def require_root() -> None:
    require(os.geteuid() == 0, "needs root: builds namespaces, bridges and VXLAN devices")
    require(Path("/usr/sbin/ip").exists() or Path("/sbin/ip").exists() or Path("/bin/ip").exists(),
            "needs iproute2")


def unique_prefix() -> str:
    return f"kf{uuid.uuid4().hex[:4]}-"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Stack:
    def __init__(self, server: KaonServer, lab: Lab, token: str | None = None) -> None:
        self.server = server
        self.lab = lab
        headers = {"X-Auth-Token": token} if token else {}
        self.http = httpx.Client(base_url=server.url, timeout=30, headers=headers)

    # -- API ----------------------------------------------------------------
    def api(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        r = self.http.request(method, path, json=body, params=params or None)
        if r.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {r.status_code}: {r.text}")
        return r.json() if r.content else None

    def network(self, name: str, cidr: str, gateway: str | None = "auto", enable_dhcp: bool = True,
                **attrs: Any) -> dict[str, Any]:
        net = self.api("POST", "/v2.0/networks", {"network": {"name": name, **attrs}})["network"]
        subnet: dict[str, Any] = {"network_id": net["id"], "cidr": cidr, "ip_version": 4, "name": f"{name}-subnet",
                                  "enable_dhcp": enable_dhcp}
        if gateway != "auto":
            subnet["gateway_ip"] = gateway
        self.api("POST", "/v2.0/subnets", {"subnet": subnet})
        return net

    def port(self, port_id: str) -> dict[str, Any]:
        return self.api("GET", f"/v2.0/ports/{port_id}")["port"]

    def agents(self) -> list[dict[str, Any]]:
        """The L2 agents (Linux bridge or Open vSwitch: a host runs one of them)."""
        return [a for a in self.api("GET", "/v2.0/agents")["agents"] if a["agent_type"] in L2_AGENT_TYPES]

    def wait_agents(self, hosts: list[str], timeout: float = 30.0) -> None:
        def alive() -> bool:
            live = {a["host"] for a in self.agents() if a["alive"]}
            return set(hosts) <= live
        wait_for(f"live agents on {hosts}", alive, timeout)

    def wait_converged(self, timeout: float = 20.0) -> dict[str, Any]:
        body = self.api("GET", "/v2.0/host-intents", wait=str(timeout))
        assert body["converged"], body
        return body

    def wait_active(self, port_id: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(f"port {port_id} ACTIVE", lambda: (p := self.port(port_id))["status"] == "ACTIVE" and p,
                        timeout)

    def open_default_groups(self, protocols: tuple[str, ...] = ("icmp", "tcp")) -> None:
        """Let the outside in: ingress rules for ``protocols`` in every ``default`` group there is.

        The agents enforce security groups; a default group admits only its
        own members, and tests that reach VMs from the lab's outside say so.
        """
        r = self.http.get("/v2.0/security-groups", params={"name": "default"})
        groups = r.json()["security_groups"]
        if not groups:  # made on first use: a list by a project member creates it
            self.api("GET", "/v2.0/security-groups")
            groups = self.api("GET", "/v2.0/security-groups", name="default")["security_groups"]
        for group in groups:
            for proto in protocols:
                rule = {"security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
                        "protocol": proto, "remote_ip_prefix": "0.0.0.0/0"}
                r = self.http.post("/v2.0/security-group-rules", json={"security_group_rule": rule})
                assert r.status_code in (201, 409), r.text

    # -- VMs and hosts --------------------------------------------------------
    def vm(self, name: str, host: str, network: str, **kw: Any) -> dict[str, Any]:
        record = self.lab.create_vm(name, host, network, **kw)
        self.wait_active(record["port_id"])
        return record

    def ping(self, vm: str, address: str, count: int = 1, wait: float = 1.0) -> bool:
        r = self.lab.exec(vm, ["ping", "-c", str(count), "-W", str(wait), "-i", "0.2", address], capture=True)
        return r.returncode == 0

    def host(self, host: str, *cmd: str) -> str:
        r = self.lab.host_exec(host, list(cmd), capture=True, check=True)
        return str(r.stdout)

    def mechanism(self, host: str) -> str:
        rec = self.lab.state()["hosts"][host]  # type: ignore[index]
        return str(rec.get("mechanism") or "linuxbridge")

    def ovs_flows(self, host: str, bridge: str) -> list[Any]:
        """kaon's flows on ``bridge`` of an Open vSwitch host (through its private OVS's mgmt socket)."""
        from kaon.dataplane.openflow import OpenFlow
        from kaon.dataplane.ovs_daemons import OvsDaemons
        from kaon.dataplane.ovs_model import KAON_COOKIE

        d = OvsDaemons(self.lab.state()["hosts"][host]["ovs"]["rundir"])  # type: ignore[index]
        return [f for f in OpenFlow(d.mgmt, d.env()).dump(bridge) if f.cookie == KAON_COOKIE]

    def vsctl(self, host: str, *args: str) -> str:
        """``ovs-vsctl`` against an Open vSwitch host's private OVS."""
        from kaon.dataplane.ovs_daemons import OvsDaemons

        rundir = self.lab.state()["hosts"][host]["ovs"]["rundir"]  # type: ignore[index]
        return self.host(host, "ovs-vsctl", f"--db={OvsDaemons(rundir).db_remote}", *args)

    def ovs_ports(self, host: str, bridge: str = "br-int") -> dict[str, int | None]:
        """The ports of ``bridge`` on an Open vSwitch host: name -> tag (None when untagged)."""
        on_bridge = set(self.vsctl(host, "list-ports", bridge).split())
        rows = json.loads(self.vsctl(host, "--format=json", "--columns=name,tag", "list", "Port"))["data"]
        return {name: tag if isinstance(tag, int) else None for name, tag in rows if name in on_bridge}

    def l2_snapshot(self, host: str) -> Any:
        """What ``host``'s L2 agent has made, to compare across a restart (changed or duplicated?).

        Open vSwitch: kaon's flows (by cookie) on every bridge and br-int's ports with their tags.
        Linux bridge: the host's links and the bridge each is enslaved to.
        """
        if self.mechanism(host) == "openvswitch":
            bridges = self.vsctl(host, "list-br").split()
            flows = sorted(f"{br} {f.add_line()}" for br in bridges for f in self.ovs_flows(host, br))
            return flows, self.ovs_ports(host)
        out = self.host(host, "ip", "-o", "link", "show")
        links = sorted((line.split(": ")[1].split("@")[0], line.split(" master ")[1].split()[0] if " master " in line
                        else "") for line in out.splitlines())
        # A starting agent's kernel-feature probe (kaon.dataplane.features) makes and deletes scratch
        # devices kp<6 hex><kind> for a moment: not L2 wiring.
        return [(name, master) for name, master in links
                if not re.fullmatch(r"kp[0-9a-f]{6}(br|vx|va|vb|vl)", name)]

    def flood_entries(self, host: str, vni: int) -> set[str]:
        """The VTEPs ``host`` floods a VXLAN network's frames to (l2population's flood list)."""
        if self.mechanism(host) == "openvswitch":
            # br-tun: table 4 maps the VNI to the local VLAN; table 22 floods that VLAN to tunnel ports
            # named <type>-<remote IPv4 in hex>.
            flows = self.ovs_flows(host, "br-tun")
            vlans = [int(f.actions.split("set_field:")[1].split("->")[0]) - 4096 for f in flows
                     if f.table == 4 and f.match == f"tun_id={vni:#x}"]
            outputs = [a.split(":", 1)[1] for f in flows if vlans and f.table == 22 and f.match == f"dl_vlan={vlans[0]}"
                       for a in f.actions.split(",") if a.startswith("output:")]
            return {str(ipaddress.ip_address(int(name.split("-", 1)[1], 16))) for name in outputs}
        out = self.host(host, "bridge", "fdb", "show", "dev", f"vxlan-{vni}")
        return {line.split(" dst ")[1].split()[0] for line in out.splitlines()
                if line.startswith("00:00:00:00:00:00") and " dst " in line}

    def close(self) -> None:
        self.http.close()


@contextlib.contextmanager
def stack(tmp: Path, hosts: int, db_url: str | None = None, transport_url: str = "",
          extra_conf: dict[str, dict[str, Any]] | None = None, auth_strategy: str = "noauth",
          host_names_prefix: str = "h", network_nodes: list[str] | None = None,
          mechanism: str | dict[str, str] = "linuxbridge") -> Iterator[Stack]:
    """A server, a lab of ``hosts`` hosts with their agents alive; ``auth_strategy="kaon"`` for the CLI.

    ``mechanism``: the hosts' L2 agent, ``linuxbridge`` or ``openvswitch``, or per host name (mixed).
    """
    require_root()
    uses_ovs = "openvswitch" in ([mechanism] if isinstance(mechanism, str) else mechanism.values())
    if uses_ovs:
        require(shutil.which("ovs-vswitchd") is not None, "needs openvswitch-switch (scripts/bootstrap.sh)")
    conf = {**SERVER_CONF, **(OVS_CONF if uses_ovs else {}), **(extra_conf or {})}
    conf["DEFAULT"] = {"agent_down_time": "4", **conf.get("DEFAULT", {})}
    if transport_url:
        conf["DEFAULT"]["transport_url"] = transport_url
    with start_kaon_server(tmp / "server", db_url=db_url, auth_strategy=auth_strategy, extra_conf=conf) as server:
        token = None
        auth: dict[str, Any] = {}
        if auth_strategy == "kaon":
            auth = {"cloud": "kaon-admin", "clouds_yaml": str(server.clouds_yaml)}
            token, _ = password_token(load_cloud("kaon-admin", [server.clouds_yaml]))
        lab = Lab(unique_prefix(), tmp / "lab", config_files=[str(server.conf_path)], network_url=server.url,
                  host_names_prefix=host_names_prefix, **auth)
        s = Stack(server, lab, token)
        try:
            lab.up(hosts, network_nodes=network_nodes, mechanism=mechanism)
            s.wait_agents([f"{host_names_prefix}{i}" for i in range(1, hosts + 1)])
            yield s
        finally:
            s.close()
            with contextlib.suppress(Exception):
                lab.down()
            leftover = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
                        .stdout.split() if n.startswith(lab.prefix)]
            for name in leftover:  # down() failed half-way: still only our own, by exact name
                subprocess.run(["ip", "netns", "delete", name], check=False)
