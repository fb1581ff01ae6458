"""The seeds' scenarios in one command: ``kaon lab seed 001|002|004 [--delete]``.

Each builds, through the Neutron API, what the user in that field note was
trying to reach, then plugs the VMs into the lab (DHCP unless the scenario
pins addresses) and prints what to try -- commands that work as printed,
with the lab's ``--prefix``/``--state-dir`` when they are not the defaults --
and, where the scenario is about what goes on the wire (802.1Q tags, a
tunnel), a ``tcpdump`` to watch it with. Idempotent: resources found by name
are reused (a network found with another segment type is an error, not
silently reused), VMs that exist are kept. Removable: ``--delete`` removes
what the seed made (VMs and their floating IPs, routers, networks, security
groups), and the external network once no other seed uses it. The three
live side by side in one lab: each has names of its own, and their physical
segments do not overlap. Before making anything a seed checks that the
hosts can carry it (kaon.lab.seed_needs) and says what is missing.

* 001 — ext-net (flat on ``provider``, external, 192.168.100.0/24 without
  DHCP, pool .10–.90, gateway .1 = the lab's outside namespace),
  private-net (10.0.0.0/24, pool .10–.200; the server's tenant network type,
  or ``--tunnel-type vxlan|gre|geneve``), router1 with gateway and
  interface, test_sg allowing tcp 22, 80, 8888 (as in the seed) and ICMP (so
  that the floating IP answers the printed ping), a VM and a floating IP.
* 002 — pub100, pub101, pub200, pub201: shared VLAN provider networks on the
  seed's physical network ``default``, segments 100/101/200/201 (the server's
  ``network_vlan_ranges`` must hold ``default:100:101,default:200:201``),
  10.10.<vlan>.0/24 with DHCP and no router; a VM on each, of the projects
  ``demo`` and ``alt_demo`` in turn, gets its address and the metadata route
  from the network's DHCP namespace (the server needs
  ``enable_isolated_metadata = true``). The hosts must carry 802.1Q: Open
  vSwitch does; the Linux bridge agent cannot on a kernel without 802.1Q
  devices, and the seed says so. ``--flat`` is the variant every lab can
  carry: one shared flat pub100 on ``default``, its gateway .1 in the
  outside namespace.
* 004 — router01 and router02, net01 and net02 that are both
  192.168.101.0/24, vm01 and vm02 at .3 on each, a floating IP each, and a
  security group opening ICMP and SSH so that each floating IP answers. As in
  the seed, net01 and net02 are VLANs 101 and 102 when the hosts carry
  802.1Q (on ``provider``, since seed 002 has 101 on ``default``), else the
  server's tenant network type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kaon.lab import seed_needs
from kaon.lab.api_client import ApiError, NeutronClient
from kaon.lab.lab import DEFAULT_PREFIX, LOG, Lab, LabError, default_state_dir
from kaon.lab.topology import PHYSICAL_NETWORK, SECOND_PHYSICAL_NETWORK

EXT = {"provider:network_type": "flat", "provider:physical_network": PHYSICAL_NETWORK, "router:external": True}
PUB100 = {"provider:network_type": "flat", "provider:physical_network": SECOND_PHYSICAL_NETWORK, "shared": True}
# Seed 002: four VLANs in two non-contiguous ranges on its physical network "default".
SEED002_VLANS = (100, 101, 200, 201)
SEED002_RANGES = {SECOND_PHYSICAL_NETWORK: ((100, 101), (200, 201))}
SEED002_PROJECTS = ("demo", "alt_demo")  # kaon up's identity has both
# Seed 004's net01/net02 are VLANs 101/102 (its physnet2); here on "provider", as 002 has 101 on "default".
SEED004_PHYSNET = PHYSICAL_NETWORK
# What a tcpdump on the underlay catches of each tunnel type.
TUNNEL_FILTERS = {"vxlan": "udp port 4789", "gre": "ip proto 47", "geneve": "udp port 6081"}
TUNNEL_TYPES = tuple(TUNNEL_FILTERS)
SEGMENT_KEYS = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")


@dataclass(frozen=True)
class SeedOptions:
    """``kaon lab seed`` options: the tunnel type of seed 001's private-net; seed 002's flat variant."""

    tunnel_type: str | None = None
    flat: bool = False


def _one(client: NeutronClient, collection: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    key = collection.replace("-", "_")
    found = client.get(collection, name=name)[key]
    if found:
        return found[0]
    LOG.info("seed: creating %s %s", key[:-1].replace("_", " "), name)
    return client.post(collection, {key[:-1]: {"name": name, **body}})[key[:-1]]


def _segment(net: dict[str, Any]) -> str:
    kind = net.get("provider:network_type") or "?"
    seg = net.get("provider:segmentation_id")
    physnet = net.get("provider:physical_network")
    return f"{kind}{f' {seg}' if seg else ''}{f' on {physnet}' if physnet else ''}"


def _network(c: NeutronClient, name: str, cidr: str, net: dict[str, Any] | None = None,
             **subnet: Any) -> dict[str, Any]:
    network = _one(c, "networks", name, net or {})
    differs = [k for k in SEGMENT_KEYS if k in (net or {}) and network.get(k) != (net or {})[k]]
    if differs:
        raise LabError(f"network {name} exists as {_segment(network)}, but this seed makes it "
                       f"{_segment(net or {})}: remove it first (`kaon lab seed ... --delete` of the seed "
                       "that made it)")
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
        LOG.info("seed: router %s: interface on %s", name, subnet_name)
        c.put(f"routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    return router


def _floating_ip(c: NeutronClient, ext: dict[str, Any], port_id: str) -> str:
    existing = c.get("floatingips", port_id=port_id)["floatingips"]
    if existing:
        return str(existing[0]["floating_ip_address"])
    LOG.info("seed: floating IP for port %s", port_id)
    fip = c.post("floatingips", {"floatingip": {"floating_network_id": ext["id"], "port_id": port_id}})
    return str(fip["floatingip"]["floating_ip_address"])


def _vm(lab: Lab, name: str, host: str, network: str, **kw: Any) -> dict[str, Any]:
    try:
        return lab.vm(name)
    except Exception:  # not made yet
        LOG.info("seed: VM %s on %s (network %s)", name, host, network)
        return lab.create_vm(name, host, network, **kw)


def _open_sg(c: NeutronClient, name: str, description: str, tcp_ports: tuple[int, ...]) -> dict[str, Any]:
    """A security group opening ICMP and ``tcp_ports`` from anywhere (IPv4)."""
    sg = _one(c, "security-groups", name, {"description": description})
    rules: list[dict[str, Any]] = [{"protocol": "icmp"}]
    rules += [{"protocol": "tcp", "port_range_min": p, "port_range_max": p} for p in tcp_ports]
    for rule in rules:
        try:
            c.post("security-group-rules", {"security_group_rule": {
                "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv4",
                "remote_ip_prefix": "0.0.0.0/0", **rule}})
        except ApiError as exc:
            if exc.status != 409:  # the rule is there already
                raise
    return sg


def _groups(c: NeutronClient, sg: dict[str, Any]) -> list[str]:
    """``sg`` and the ``default`` group of its project (seed 002 gives other projects theirs too)."""
    own = c.get("security-groups", name="default", project_id=sg["project_id"])["security_groups"]
    return [sg["id"], own[0]["id"] if own else "default"]


def lab_options(lab: Lab) -> str:
    """The options a printed ``kaon lab`` command needs to find this lab."""
    opts = "" if lab.prefix == DEFAULT_PREFIX else f" --prefix {lab.prefix}"
    if lab.state_dir.resolve() != default_state_dir().resolve():
        opts += f" --state-dir {lab.state_dir}"
    return opts


def _exec(lab: Lab, vm: str, command: str) -> str:
    return f"kaon lab vm exec {vm}{lab_options(lab)} -- {command}"


METADATA = "busybox wget -q -O - http://169.254.169.254/latest/meta-data/instance-id"


def _involved(lab: Lab, host: str) -> list[str]:
    """The hosts a seed's traffic touches: the network nodes (DHCP, routers) and the VMs' host."""
    return sorted({*lab.network_nodes(), host})


def _watch(lab: Lab, host: str, network: str, expression: str) -> str:
    """A tcpdump of what ``host`` puts on ``network`` (``underlay`` or a physical network), link headers shown."""
    ns, dev = lab.names.link(network, int((lab.state() or {})["hosts"][host]["index"]))
    return f"watch: ip netns exec {ns} tcpdump -e -nn -l -i {dev} {expression}    # in another terminal"


def _projects(c: NeutronClient) -> list[tuple[str, str]]:
    """(name, id) of seed 002's two projects: from the identity service, or the names themselves
    where there is none (``auth_strategy = noauth`` takes any project id)."""
    out = []
    for name in SEED002_PROJECTS:
        found = (c.identity_get("projects", name=name) or {}).get("projects") or []
        out.append((name, str(found[0]["id"]) if found else name))
    return out


def seed_001(lab: Lab, host: str, opts: SeedOptions) -> list[str]:
    c = lab.client
    attrs: dict[str, Any] = {}
    if opts.tunnel_type:
        seed_needs.require_tunnel(lab, opts.tunnel_type, _involved(lab, host), lab_options(lab))
        attrs["provider:network_type"] = opts.tunnel_type
    ext = _ext_net(c)
    private = _network(c, "private-net", "10.0.0.0/24", attrs, subnet_name="private-subnet", gateway_ip="10.0.0.1",
                       allocation_pools=[{"start": "10.0.0.10", "end": "10.0.0.200"}])
    _router(c, "router1", ext, "private-subnet")
    sg = _open_sg(c, "test_sg", "Test security group allowing port 8888", (22, 80, 8888))
    vm = _vm(lab, "test-instance", host, "private-net", dhcp=True, security_groups=_groups(c, sg))
    fip = _floating_ip(c, ext, vm["port_id"])
    kind = private.get("provider:network_type")
    lines = [f"test-instance on {host}: {', '.join(vm.get('ips', []))}, floating IP {fip}",
             f"private-net: {_segment(private)}; router1 on {', '.join(lab.network_nodes())}"]
    if kind in TUNNEL_FILTERS and host not in lab.network_nodes():
        lines.append(_watch(lab, host, "underlay", TUNNEL_FILTERS[kind]))
    return [*lines,
            f"try: {_exec(lab, 'test-instance', 'ping -c1 192.168.100.1')}",
            f"     ip netns exec {lab.names.outside} ping -c1 {fip}",
            f"     {_exec(lab, 'test-instance', METADATA)}"]


def _seed_002_flat(lab: Lab, host: str) -> list[str]:
    c = lab.client
    _network(c, "pub100", "10.10.100.0/24", PUB100, subnet_name="pub100-subnet", gateway_ip="10.10.100.1",
             allocation_pools=[{"start": "10.10.100.100", "end": "10.10.100.150"}])
    vm = _vm(lab, "provider-instance", host, "pub100", dhcp=True)
    return [f"provider-instance on {host}: {', '.join(vm.get('ips', []))} (DHCP, no router)",
            f"try: {_exec(lab, 'provider-instance', 'ip route')}    # 169.254.169.254 via the DHCP port",
            f"     {_exec(lab, 'provider-instance', 'ping -c1 10.10.100.1')}",
            f"     {_exec(lab, 'provider-instance', METADATA)}"]


def seed_002(lab: Lab, host: str, opts: SeedOptions) -> list[str]:
    if opts.flat:
        return _seed_002_flat(lab, host)
    options = lab_options(lab)
    seed_needs.require_vlan(lab, SECOND_PHYSICAL_NETWORK, _involved(lab, host), options,
                            fallback=f"`kaon lab seed 002 --flat{options}` makes the one flat provider network "
                                     "pub100 every lab can carry")
    seed_needs.require_vlan_ranges(lab, SEED002_RANGES)
    c = lab.client
    projects = _projects(c)
    lines, tries = [], []
    for i, vlan in enumerate(SEED002_VLANS):
        name = f"pub{vlan}"
        net = _network(c, name, f"10.10.{vlan}.0/24", {
            "provider:network_type": "vlan", "provider:physical_network": SECOND_PHYSICAL_NETWORK,
            "provider:segmentation_id": vlan, "shared": True}, subnet_name=f"{name}-subnet")
        project, project_id = projects[i % 2]
        vm = _vm(lab, f"vm{vlan}", host, name, dhcp=True, project_id=project_id)
        dhcp = [ip["ip_address"] for p in c.get("ports", network_id=net["id"], device_owner="network:dhcp")["ports"]
                for ip in p["fixed_ips"]]
        lines.append(f"vm{vlan} (project {project}) on {name}, vlan {vlan}: {', '.join(vm.get('ips', []))} "
                     f"by DHCP from {', '.join(dhcp) or '?'}")
        tries.append(_exec(lab, f"vm{vlan}", METADATA))
    lines.append("shared: both projects' VMs on the admin's provider networks; no router (the data centre's "
                 "gateways .1 are not in the lab)")
    if host not in lab.network_nodes():  # else DHCP and metadata never leave the host
        lines.append(_watch(lab, host, SECOND_PHYSICAL_NETWORK, "vlan"))
    return [*lines,
            f"try: {_exec(lab, 'vm100', 'ip route')}    # 169.254.169.254 via the DHCP port",
            *(f"     {t}" for t in tries)]


def seed_004(lab: Lab, host: str, opts: SeedOptions) -> list[str]:
    c = lab.client
    # VLANs as in the seed where every host involved carries 802.1Q; else the tenant network type.
    vlan = seed_needs.carries_vlan(lab, SEED004_PHYSNET, _involved(lab, host))
    ext = _ext_net(c)
    sg = _open_sg(c, "seed004", "ICMP and SSH to the VMs of seed 004", (22,))
    lines, tries = [], []
    for n in ("01", "02"):
        attrs = {"provider:network_type": "vlan", "provider:physical_network": SEED004_PHYSNET,
                 "provider:segmentation_id": 100 + int(n)} if vlan else {}
        net = _network(c, f"net{n}", "192.168.101.0/24", attrs, subnet_name=f"net{n}_subnet01")
        _router(c, f"router{n}", ext, f"net{n}_subnet01")
        vm = _vm(lab, f"vm{n}", host, f"net{n}", ip_address="192.168.101.3", security_groups=_groups(c, sg))
        fip = _floating_ip(c, ext, vm["port_id"])
        lines.append(f"vm{n} on net{n} ({_segment(net)}): 192.168.101.3, floating IP {fip}")
        tries.append(f"ip netns exec {lab.names.outside} ping -c1 {fip}")
    tries.append(_exec(lab, "vm01", "ping -c1 192.168.100.1"))
    if vlan and host not in lab.network_nodes():
        lines.append(_watch(lab, host, SEED004_PHYSNET, "vlan"))
    return [*lines, "both VMs are 192.168.101.3; each floating IP reaches its own",
            f"try: {tries[0]}", *(f"     {t}" for t in tries[1:])]


@dataclass(frozen=True)
class Made:
    """What a seed made, by name, for ``--delete`` (in the order it goes)."""

    vms: tuple[str, ...]
    routers: tuple[tuple[str, str], ...]  # (router, subnet)
    networks: tuple[str, ...]
    security_groups: tuple[str, ...] = ()
    external: bool = False


MADE: dict[str, Made] = {
    "001": Made(("test-instance",), (("router1", "private-subnet"),), ("private-net",), ("test_sg",), True),
    "002": Made(("provider-instance", *(f"vm{v}" for v in SEED002_VLANS)), (),
                tuple(f"pub{v}" for v in SEED002_VLANS)),
    "004": Made(("vm01", "vm02"), (("router01", "net01_subnet01"), ("router02", "net02_subnet01")),
                ("net01", "net02"), ("seed004",), True),
}


def delete_seed(lab: Lab, seed: str) -> list[str]:
    """Remove what ``seed`` made; what was removed. Fine when (some of) it is gone already."""
    c = lab.client
    made = MADE[seed]
    gone: list[str] = []
    for name in made.vms:
        try:
            vm = lab.vm(name)
        except Exception:  # noqa: BLE001 - not in the lab (any more)
            continue
        for fip in c.get("floatingips", port_id=vm["port_id"])["floatingips"]:
            c.delete(f"floatingips/{fip['id']}")
        lab.delete_vm(name)
        gone.append(f"vm {name}")
    for router_name, subnet_name in made.routers:
        for router in c.get("routers", name=router_name)["routers"]:
            for subnet in c.get("subnets", name=subnet_name)["subnets"]:
                try:
                    c.put(f"routers/{router['id']}/remove_router_interface", {"subnet_id": subnet["id"]})
                except ApiError as exc:
                    if exc.status != 404:
                        raise
            c.delete(f"routers/{router['id']}")
            gone.append(f"router {router_name}")
    for name in made.networks:
        for net in c.get("networks", name=name)["networks"]:
            c.delete(f"networks/{net['id']}")
            gone.append(f"network {name}")
    for name in made.security_groups:
        for sg in c.get("security-groups", name=name)["security_groups"]:
            c.delete(f"security-groups/{sg['id']}")
            gone.append(f"security group {name}")
    if made.external:
        for net in c.get("networks", name="ext-net")["networks"]:
            # Shared by seeds 001 and 004: it goes with the last of them.
            if not c.get("ports", network_id=net["id"])["ports"]:
                c.delete(f"networks/{net['id']}")
                gone.append("network ext-net")
    return gone


SEEDS: dict[str, Callable[[Lab, str, SeedOptions], list[str]]] = {
    "001": seed_001, "002": seed_002, "004": seed_004}


def run_seed(lab: Lab, seed: str, host: str | None = None, *, delete: bool = False, mechanism: str | None = None,
             options: SeedOptions = SeedOptions()) -> list[str]:
    """Build (or ``delete``) ``seed`` on the lab; the lines to print.

    ``mechanism``: the seed is meant for hosts running it (``--mechanism``): refused, with the
    commands that remake the lab, when any host runs another."""
    if seed not in SEEDS:
        raise ValueError(f"unknown seed {seed!r} (known: {', '.join(SEEDS)})")
    if options.tunnel_type and seed != "001":
        raise ValueError("--tunnel-type is seed 001's (the type of its private-net)")
    if options.tunnel_type and options.tunnel_type not in TUNNEL_TYPES:
        raise ValueError(f"--tunnel-type {options.tunnel_type}: one of {', '.join(TUNNEL_TYPES)}")
    if options.flat and seed != "002":
        raise ValueError("--flat is seed 002's (one flat provider network instead of four VLANs)")
    if not (lab.state() or {}).get("hosts"):
        raise ValueError("no lab: run `kaon lab up --hosts 2` first")
    if delete:
        gone = delete_seed(lab, seed)
        return [f"seed {seed}: removed " + (", ".join(gone) if gone else "nothing (it was not there)")]
    if mechanism:
        seed_needs.require_mechanism(lab, mechanism, lab_options(lab))
    # A compute host other than the network node when there is one, as in the seeds.
    lines = SEEDS[seed](lab, host or lab.compute_host(), options)
    LOG.info("seed %s: waiting until every host applied it", seed)
    _settle(lab.client)
    return lines


def _settle(client: NeutronClient, seconds: float = 30.0) -> None:
    """Wait until every host applied the scenario (admins only; others just go on)."""
    try:
        client.get("host-intents", wait=str(seconds))
    except ApiError as exc:
        if exc.status != 403:
            raise
