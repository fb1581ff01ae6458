"""The compiler's invariants (DESIGN.md, "compiler invariants"): whatever the
order in which the same changes arrive, every host gets the same intent, and
the intents stored pass after pass (one pass per change, sections reused as
the server reuses them) equal a full recompute of the final state.

A seeded random world — ports on several hosts and networks (VXLAN peers,
VLAN), security groups with remote groups, DHCP, routers with floating IPs —
is written as a list of row changes; the database returns rows in whatever
order they were written unless the reader orders them (kaon.core.agents.snapshot),
so :func:`build` keeps exactly the orders the reader guarantees and no other.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TypeVar

import pytest

from kaon.compiler.dhcp_section import DhcpOptions, DhcpSection
from kaon.compiler.firewall_section import FirewallSection
from kaon.compiler.l2_section import L2Section
from kaon.compiler.l3_section import RoutersSection
from kaon.compiler.sections import Section, project
from kaon.compiler.snapshot import (
    BoundPort,
    DhcpData,
    DhcpServed,
    FirewallData,
    L3Data,
    PortAddress,
    PortRow,
    PortSecurity,
    RouterPort,
    RouterRow,
    Rule,
    SegmentRow,
    Snapshot,
    SubnetRow,
)
from kaon.model.intent import HostIntent
from kaon.model.typed_json import encode

HOSTS = ("h1", "h2", "h3", "h4")
SEEDS = range(40)
ORDERS = 6


T = TypeVar("T")


@dataclass(frozen=True)
class OnNetwork:
    network_id: str
    subnet: SubnetRow


@dataclass(frozen=True)
class InGroup:
    group_id: str
    rule: Rule


@dataclass(frozen=True)
class Fip:
    router_id: str
    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True)
class Change:
    """One row written (or, with ``delete``, removed) by the API."""
    kind: str
    key: str
    row: object
    delete: bool = False


def sections() -> list[Section]:
    return [L2Section(), RoutersSection(), DhcpSection(DhcpOptions(isolated_metadata=True)), FirewallSection()]


def world(rng: random.Random) -> list[Change]:
    """A random but consistent set of rows: what a burst of API writes leaves behind."""
    changes: list[Change] = []
    nets = [f"net{i}" for i in range(rng.randint(1, 4))]
    groups = [f"sg{i}" for i in range(rng.randint(1, 3))]
    for i, net in enumerate(nets):
        vxlan = rng.random() < 0.7
        changes.append(Change("segment", f"seg-{net}", SegmentRow(
            f"seg-{net}", net, "vxlan" if vxlan else "vlan", None if vxlan else "physnet1", 1000 + i)))
        changes.append(Change("mtu", net, 1450 if vxlan else 1500))
        changes.append(Change("subnet", f"sub-{net}", OnNetwork(net, SubnetRow(
            f"sub-{net}", f"10.{i}.0.0/24", 4, f"10.{i}.0.1", rng.random() < 0.8, ("8.8.8.8",),
            (("172.16.0.0/16", f"10.{i}.0.9"),)))))
    for host in HOSTS:
        if rng.random() < 0.8:
            changes.append(Change("vtep", host, f"192.0.2.{HOSTS.index(host) + 1}"))
    for g in groups:
        changes.append(Change("group", g, rng.random() < 0.8))
        for r in range(rng.randint(0, 3)):
            remote = rng.choice([None, *groups])
            changes.append(Change("rule", f"{g}-rule{r}", InGroup(g, Rule(
                rng.choice(["ingress", "egress"]), rng.choice(["IPv4", "IPv6"]), rng.choice([None, 6, 17]),
                22, 22, None if remote else rng.choice([None, "10.9.0.0/16"]), remote))))
    for p in range(rng.randint(0, 12)):
        net = rng.choice(nets)
        port_id = f"port{p:02d}"
        ip = f"10.{nets.index(net)}.0.{10 + p}"
        owner = rng.choice(["compute:nova", "compute:nova", "network:router_interface"])
        host = rng.choice(HOSTS)
        changes.append(Change("port", port_id, BoundPort(
            port_id, net, host, f"fa:16:3e:00:00:{p:02x}", rng.random() < 0.9, owner, f"seg-{net}", (ip,))))
        # Address pairs: none, a CIDR, a VIP of its own (l2population answers for it), a VIP other
        # ports may list too (then nobody does, and the network floods ARP).
        n = nets.index(net)
        pairs = rng.choice([(), ((f"10.{n}.1.0/28", None),), ((f"10.{n}.3.{p}", None),),
                            ((f"10.{n}.2.200", None),), ((f"10.{n}.4.{p}", f"fa:16:3e:00:01:{p:02x}"),)])
        changes.append(Change("security", port_id, PortSecurity(
            rng.random() < 0.8, pairs, tuple(sorted(rng.sample(groups, rng.randint(0, len(groups))))))))
        changes.append(Change("dhcp_port", port_id, PortRow(
            port_id, net, f"fa:16:3e:00:00:{p:02x}", owner, f"vm{p}", host, (("mtu", "1400", 4),),
            ((f"sub-{net}", ip),), "project")))
    for net in nets:
        if rng.random() < 0.7:
            host = rng.choice(HOSTS)
            changes.append(Change("served", net, DhcpServed(net, host, f"dhcp-{net}")))
            changes.append(Change("dhcp_port", f"dhcp-{net}", PortRow(
                f"dhcp-{net}", net, "fa:16:3e:00:01:00", "network:dhcp", f"dhcp-{net}", host, (),
                ((f"sub-{net}", f"10.{nets.index(net)}.0.2"),))))
    for r in range(rng.randint(0, 2)):
        host = rng.choice(HOSTS)
        changes.append(Change("l3_host", host, True))
        changes.append(Change("router", f"router{r}", RouterRow(f"router{r}", host, rng.random() < 0.5)))
        changes.append(Change("router_port", f"qr{r}", RouterPort(
            f"qr{r}", f"router{r}", False, "fa:16:3e:00:02:00", 1450, (PortAddress("10.0.0.1", "10.0.0.0/24", None),))))
        if rng.random() < 0.7:
            changes.append(Change("router_port", f"qg{r}", RouterPort(
                f"qg{r}", f"router{r}", True, "fa:16:3e:00:02:01", 1500,
                (PortAddress("198.51.100.10", "198.51.100.0/24", "198.51.100.1"),))))
            changes.append(Change("fip", f"fip{r}", Fip(f"router{r}", "198.51.100.20", "10.0.0.10")))
    # Some rows come and go again within the burst.
    for change in rng.sample(changes, k=min(3, len(changes))):
        if change.kind in ("port", "rule", "fip", "vtep"):
            changes.append(replace(change, delete=True))
    return changes


def apply(state: dict[tuple[str, str], object], change: Change) -> None:
    if change.delete:
        state.pop((change.kind, change.key), None)
    else:
        state[(change.kind, change.key)] = change.row


def live_order(changes: Iterable[Change]) -> dict[tuple[str, str], object]:
    """The rows that remain, in the order they were (last) written."""
    state: dict[tuple[str, str], object] = {}
    for change in changes:
        apply(state, change)
    return state


def build(state: dict[tuple[str, str], object], known_hosts: frozenset[str] = frozenset()) -> Snapshot:
    """The snapshot kaon.core.agents.snapshot would read from these rows (its ORDER BYs kept, nothing else)."""
    def keyed(kind: str, cls: type[T]) -> dict[str, T]:
        out = {key: row for (k, key), row in state.items() if k == kind}
        assert all(isinstance(row, cls) for row in out.values())
        return out  # type: ignore[return-value]  # checked just above

    def rows(kind: str, cls: type[T]) -> list[T]:
        return list(keyed(kind, cls).values())

    ports = rows("port", BoundPort)
    port_ids = {p.id for p in ports}
    security = {k: v for k, v in keyed("security", PortSecurity).items() if k in port_ids}
    stateful = keyed("group", bool)
    used = sorted({g for sec in security.values() if sec.enabled for g in sec.groups})
    rules: dict[str, list[Rule]] = {}
    for _, in_group in sorted(keyed("rule", InGroup).items()):  # ORDER BY id
        if in_group.group_id in used:
            rules.setdefault(in_group.group_id, []).append(in_group.rule)
    remote = {r.remote_group_id for rs in rules.values() for r in rs if r.remote_group_id}
    no_security = PortSecurity(False, (), ())
    members = {g: tuple(sorted({ip for p in ports if g in security.get(p.id, no_security).groups for ip in p.ips}))
               for g in remote}
    firewall = FirewallData(security, frozenset(p.host for p in ports if p.id in security),
                            {g: stateful[g] for g in used if g in stateful}, {g: tuple(rs) for g, rs in rules.items()},
                            members)
    subnets: dict[str, list[SubnetRow]] = {}
    for on in sorted(rows("subnet", OnNetwork), key=lambda o: o.subnet.id):
        subnets.setdefault(on.network_id, []).append(on.subnet)
    dhcp_ports: dict[str, list[PortRow]] = {}
    for row in sorted(rows("dhcp_port", PortRow), key=lambda r: r.id):
        dhcp_ports.setdefault(row.network_id, []).append(row)
    routed = frozenset(sid for rs in dhcp_ports.values() for r in rs if r.device_owner == "network:router_interface"
                       for sid, _ in r.ips)
    mtu = keyed("mtu", int)
    dhcp = DhcpData(tuple(sorted(rows("served", DhcpServed), key=lambda s: (s.network_id, s.host))),
                    {k: tuple(v) for k, v in subnets.items()}, {k: tuple(v) for k, v in dhcp_ports.items()},
                    mtu, routed)
    router_ports: dict[str, list[RouterPort]] = {}
    for rp in sorted(rows("router_port", RouterPort), key=lambda p: p.id):
        router_ports.setdefault(rp.router_id, []).append(rp)
    fips: dict[str, list[tuple[str, str]]] = {}
    for fip in rows("fip", Fip):
        fips.setdefault(fip.router_id, []).append((fip.floating_ip, fip.fixed_ip))
    l3 = L3Data(frozenset(keyed("l3_host", bool)), tuple(sorted(rows("router", RouterRow), key=lambda r: r.id)),
                {k: tuple(v) for k, v in router_ports.items()}, {k: tuple(sorted(v)) for k, v in fips.items()})
    segments = {s.id: s for s in rows("segment", SegmentRow)}
    return Snapshot(tuple(ports), segments, mtu, keyed("vtep", str), known_hosts, dhcp, l3, firewall)


def as_json(intents: dict[str, HostIntent]) -> dict[str, dict[str, object]]:
    return {host: intent.to_json() for host, intent in intents.items()}


@pytest.mark.parametrize("seed", SEEDS)
def test_the_order_of_the_changes_does_not_matter(seed: int) -> None:
    rng = random.Random(seed)
    changes = world(rng)
    expected = as_json(project(build(live_order(changes)), sections()))
    assert expected, "the world gives some host an intent"
    for _ in range(ORDERS):
        shuffled = list(changes)
        rng.shuffle(shuffled)
        # A delete only removes what was written before it: keep each delete after its write.
        shuffled.sort(key=lambda c: c.delete)
        assert as_json(project(build(live_order(shuffled)), sections())) == expected


@pytest.mark.parametrize("seed", SEEDS)
def test_pass_after_pass_equals_a_full_recompute(seed: int) -> None:
    rng = random.Random(seed)
    changes = world(rng)
    rng.shuffle(changes)
    changes.sort(key=lambda c: c.delete)
    reused = sections()  # the server keeps its sections from pass to pass
    stored: dict[str, tuple[int, str, dict[str, object]]] = {}  # host -> (generation, digest, intent)
    state: dict[tuple[str, str], object] = {}
    for change in changes:
        apply(state, change)
        for host, intent in project(build(state, frozenset(stored)), reused).items():
            generation, old, _ = stored.get(host, (0, "", {}))
            if intent.digest() != old:
                stored[host] = (generation + 1, intent.digest(), intent.to_json())
    full = as_json(project(build(state, frozenset(stored)), sections()))
    assert {host: intent for host, (_, _, intent) in stored.items()} == full
    # Hosts that once had something keep an intent, emptied, so their agents sweep.
    assert set(full) == set(stored)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_fast_json_form_is_the_generic_one_and_reads_back(seed: int) -> None:
    intents = project(build(live_order(world(random.Random(seed)))), sections())
    for intent in intents.values():
        assert intent.to_json() == encode(intent)
        assert HostIntent.from_json(intent.to_json()) == intent
        assert HostIntent.from_json(intent.to_json()).digest() == intent.digest()
