"""The seeds' scenarios in one command: ``kaon lab seed 001|002|004``.

Each builds, through the Neutron API, what the user in that field note was
trying to reach, then plugs the VMs into the lab (DHCP unless the scenario
pins addresses) and prints what to try. Idempotent: resources found by name
are reused, VMs that exist are kept.

* 001 — ext-net (flat, external, 192.168.100.0/24 without DHCP, pool
  .10–.90, gateway .1 = the lab's outside namespace), private-net (VXLAN,
  10.0.0.0/24, pool .10–.200), router1 with gateway and interface, test_sg
  allowing tcp 22, 80, 8888, a VM and a floating IP.
* 002 — a shared flat provider network with DHCP and no router; the VM gets
  its address and the metadata route from the DHCP namespace (the server
  needs ``enable_isolated_metadata = true``).
* 004 — two routers, two networks that are both 192.168.101.0/24, a VM at
  .3 on each, a floating IP each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kaon.lab.api_client import ApiError, NeutronClient
from kaon.lab.lab import Lab

EXT = {"provider:network_type": "flat", "provider:physical_network": "provider", "router:external": True}


def _one(client: NeutronClient, collection: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    key = collection.replace("-", "_")
    found = client.get(collection, name=name)[key]
    if found:
        return found[0]  # type: ignore[no-any-return]
    return client.post(collection, {key[:-1]: {"name": name, **body}})[key[:-1]]  # type: ignore[no-any-return]


def _network(c: NeutronClient, name: str, cidr: str, net: dict[str, Any] | None = None,
             **subnet: Any) -> dict[str, Any]:
    network = _one(c, "networks", name, net or {})
    _one(c, "subnets", subnet.pop("subnet_name", f"{name}-subnet"),
         {"network_id": network["id"], "cidr": cidr, "ip_version": 4, **subnet})
    return network


def _ext_net(c: NeutronClient) -> dict[str, Any]:
    return _network(c, "ext-net", "192.168.100.0/24", EXT, subnet_name="ext-subnet", enable_dhcp=False,
                    gateway_ip="192.168.100.1",
                    allocation_pools=[{"start": "192.168.100.10", "end": "192.168.100.90"}])


def _router(c: NeutronClient, name: str, ext: dict[str, Any], subnet_name: str) -> dict[str, Any]:
    router = _one(c, "routers", name, {"external_gateway_info": {"network_id": ext["id"]}})
    subnet = c.find("subnets", subnet_name)
    ports = c.get("ports", device_id=router["id"], network_id=subnet["network_id"])["ports"]
    if not ports:
        c.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    return router


def _floating_ip(c: NeutronClient, ext: dict[str, Any], port_id: str) -> str:
    existing = c.get("floatingips", port_id=port_id)["floatingips"]
    if existing:
        return str(existing[0]["floating_ip_address"])
    fip = c.post("floatingips", {"floatingip": {"floating_network_id": ext["id"], "port_id": port_id}})
    return str(fip["floatingip"]["floating_ip_address"])


def _vm(lab: Lab, name: str, host: str, network: str, **kw: Any) -> dict[str, Any]:
    try:
        return lab.vm(name)
    except Exception:  # not made yet
        return lab.create_vm(name, host, network, **kw)


def _test_sg(c: NeutronClient) -> dict[str, Any]:
    sg = _one(c, "security-groups", "test_sg", {"description": "Test security group allowing port 8888"})
    for port in (22, 80, 8888):
        try:
            c.post("security-group-rules", {"security_group_rule": {
                "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                "port_range_min": port, "port_range_max": port, "remote_ip_prefix": "0.0.0.0/0"}})
        except ApiError as exc:
            if exc.status != 409:  # the rule is there already
                raise
    return sg


def seed_001(lab: Lab, host: str) -> list[str]:
    c = lab.client
    ext = _ext_net(c)
    _network(c, "private-net", "10.0.0.0/24", subnet_name="private-subnet", gateway_ip="10.0.0.1",
             allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.200"}])
    _router(c, "router1", ext, "private-subnet")
    sg = _test_sg(c)
    vm = _vm(lab, "test-instance", host, "private-net", dhcp=True, security_groups=[sg["id"], "default"])
    fip = _floating_ip(c, ext, vm["port_id"])
    return [f"test-instance on {host}: {', '.join(vm.get('ips', []))}, floating IP {fip}",
            "try: kaon lab vm exec test-instance -- ping -c1 192.168.100.1",
            f"     ip netns exec {lab.names.outside} ping -c1 {fip}",
            "     kaon lab vm exec test-instance -- wget -qO- http://169.254.169.254/latest/meta-data/instance-id"]


def seed_002(lab: Lab, host: str) -> list[str]:
    c = lab.client
    _network(c, "provider", "192.168.100.0/24", {"provider:network_type": "flat",
                                                 "provider:physical_network": "provider", "shared": True},
             gateway_ip="192.168.100.1", allocation_pools=[{"start": "192.168.100.100", "end": "192.168.100.150"}])
    vm = _vm(lab, "provider-instance", host, "provider", dhcp=True)
    return [f"provider-instance on {host}: {', '.join(vm.get('ips', []))} (DHCP, no router)",
            "try: kaon lab vm exec provider-instance -- ip route    # 169.254.169.254 via the DHCP port",
            "     kaon lab vm exec provider-instance -- wget -qO- http://169.254.169.254/latest/meta-data/instance-id"]


def seed_004(lab: Lab, host: str) -> list[str]:
    c = lab.client
    ext = _ext_net(c)
    lines = []
    for n in (1, 2):
        _network(c, f"net{n}", "192.168.101.0/24", subnet_name=f"subnet{n}")
        _router(c, f"router{n}", ext, f"subnet{n}")
        vm = _vm(lab, f"vm{n}", host, f"net{n}", ip_address="192.168.101.3")
        lines.append(f"vm{n} on net{n}: 192.168.101.3, floating IP {_floating_ip(c, ext, vm['port_id'])}")
    return [*lines, "both VMs are 192.168.101.3; each floating IP reaches its own"]


SEEDS: dict[str, Callable[[Lab, str], list[str]]] = {"001": seed_001, "002": seed_002, "004": seed_004}


def run_seed(lab: Lab, seed: str, host: str | None = None) -> list[str]:
    if seed not in SEEDS:
        raise ValueError(f"unknown seed {seed!r} (known: {', '.join(SEEDS)})")
    hosts = sorted(lab.state()["hosts"]) if lab.state() else []
    if not hosts:
        raise ValueError("no lab: run `kaon lab up --hosts 2` first")
    # A compute host other than the network node when there is one, as in the seeds.
    lines = SEEDS[seed](lab, host or (hosts[1] if len(hosts) > 1 else hosts[0]))
    _settle(lab.client)
    return lines


def _settle(client: NeutronClient, seconds: float = 30.0) -> None:
    """Wait until every host applied the scenario (admins only; others just go on)."""
    try:
        client.get("host-intents", wait=str(seconds))
    except ApiError as exc:
        if exc.status != 403:
            raise
