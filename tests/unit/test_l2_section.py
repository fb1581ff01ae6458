"""The L2 section's peers (kaon.compiler.l2_section): which addresses and MACs
a host learns of the ports on other hosts, allowed address pairs included."""

from __future__ import annotations

from kaon.compiler.l2_section import L2Section
from kaon.compiler.snapshot import BoundPort, FirewallData, PortSecurity, SegmentRow, Snapshot
from kaon.model.intent import HostIntent, NetworkIntent, PeerPort

VTEPS = {"h1": "10.99.0.1", "h2": "10.99.0.2", "h3": "10.99.0.3"}
MAC = {name: f"fa:16:3e:00:00:{i:02x}" for i, name in enumerate(("a", "b", "c", "d"), 1)}


def port(name: str, host: str, ip: str) -> BoundPort:
    return BoundPort(name, "n1", host, MAC[name], True, "compute:nova", "s1", (ip,))


Pairs = dict[str, tuple[tuple[str, str | None], ...]]


def network(pairs: Pairs, host: str = "h1", kind: str = "vxlan") -> NetworkIntent:
    ports = (port("a", "h1", "10.0.0.11"), port("b", "h2", "10.0.0.12"), port("c", "h3", "10.0.0.13"))
    security = {p.id: PortSecurity(True, pairs.get(p.id, ()), ()) for p in ports}
    segment = SegmentRow("s1", "n1", kind, "provider" if kind != "vxlan" else None, 1001 if kind == "vxlan" else None)
    snap = Snapshot(ports, {"s1": segment}, {"n1": 1450}, VTEPS, firewall=FirewallData(security, frozenset(VTEPS)))
    return L2Section().project(snap, host, HostIntent(host)).networks["n1"]


def peers(pairs: Pairs, host: str = "h1") -> dict[str, tuple[PeerPort, ...]]:
    return dict(network(pairs, host).peers)


def test_fixed_ips_only_without_pairs() -> None:
    assert peers({}) == {"10.99.0.2": (PeerPort(MAC["b"], ("10.0.0.12",)),),
                         "10.99.0.3": (PeerPort(MAC["c"], ("10.0.0.13",)),)}


def test_a_vip_in_a_remote_ports_pairs_is_answered_with_its_mac() -> None:
    got = peers({"b": (("10.0.0.100", None), ("10.0.0.101/32", MAC["b"]))})
    assert got["10.99.0.2"] == (PeerPort(MAC["b"], ("10.0.0.12", "10.0.0.100", "10.0.0.101")),)
    # The VIP moves: the pairs of both ports change, and so does the answer.
    got = peers({"c": (("10.0.0.100", None),)})
    assert got == {"10.99.0.2": (PeerPort(MAC["b"], ("10.0.0.12",)),),
                   "10.99.0.3": (PeerPort(MAC["c"], ("10.0.0.13", "10.0.0.100")),)}


def test_a_pair_with_its_own_mac_is_an_entry_of_its_own() -> None:
    got = peers({"b": (("10.0.0.100", "fa:16:3e:aa:bb:cc"), ("2001:db8::64", "fa:16:3e:aa:bb:cc"))})
    assert got["10.99.0.2"] == (PeerPort(MAC["b"], ("10.0.0.12",)),
                                PeerPort("fa:16:3e:aa:bb:cc", ("10.0.0.100", "2001:db8::64")))


def test_a_host_learns_nothing_of_its_own_ports_pairs() -> None:
    got = peers({"a": (("10.0.0.100", None),)})
    assert all("10.0.0.100" not in p.ips for ports in got.values() for p in ports)
    assert peers({"a": (("10.0.0.100", None),)}, host="h2")["10.99.0.1"] == (
        PeerPort(MAC["a"], ("10.0.0.11", "10.0.0.100")),)


def test_no_entry_for_what_no_single_port_holds() -> None:
    # A CIDR: no one address to answer for.
    assert peers({"b": (("10.0.0.64/28", None),)}) == peers({})
    # The same VIP on two ports (keepalived on both): either may hold it now.
    assert peers({"b": (("10.0.0.100", None),), "c": (("10.0.0.100", None),)}) == peers({})
    # A VIP on one port with a MAC another port's pair names too (VRRP's virtual MAC): it moves between hosts.
    vrrp = "00:00:5e:00:01:07"
    assert peers({"b": (("10.0.0.100", vrrp),), "c": (("10.0.0.101", vrrp),)}) == peers({})
    # Another port's fixed IP stays that port's.
    assert peers({"b": (("10.0.0.13", None),)}) == peers({})


def test_a_pair_on_a_port_of_the_own_host_hides_a_remote_claim() -> None:
    # h1's own port lists the VIP too: h1 must not answer with h2's port for it.
    assert peers({"a": (("10.0.0.100", None),), "b": (("10.0.0.100", None),)}) == peers({})


def test_arp_floods_on_a_network_with_a_pair_no_entry_answers_for() -> None:
    vrrp = "00:00:5e:00:01:07"
    answered: list[Pairs] = [{}, {"b": (("10.0.0.100", None), ("10.0.0.12", None))},
                             {"b": (("10.0.0.100", "fa:16:3e:aa:bb:cc"),)}]
    for pairs in answered:
        assert network(pairs).flood_arp is False, pairs
    unanswered: list[Pairs] = [{"b": (("10.0.0.64/28", None),)},
                               {"b": (("10.0.0.100", None),), "c": (("10.0.0.100", None),)},
                               {"b": (("10.0.0.100", vrrp),), "c": (("10.0.0.101", vrrp),)},
                               {"b": (("10.0.0.13", None),)}]
    for pairs in unanswered:
        # On every host of the network, the pair's own included: the flag is the network's.
        assert [network(pairs, h).flood_arp for h in VTEPS] == [True, True, True], pairs
    # A flat network has no VXLAN device to answer ARP.
    assert network({"b": (("10.0.0.64/28", None),)}, kind="flat").flood_arp is False
