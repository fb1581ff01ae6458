"""kaon.agent.ovs_fw_conntrack: the entries a security group change stops allowing, as OVS flush tuples."""

from __future__ import annotations

from kaon.agent.fw_conntrack import Flow as Stale
from kaon.agent.ovs_fw_conntrack import EXPAND, ConntrackCleaner, ct_tuples
from kaon.model.intent import FirewallIntent, FirewallPort, FirewallRule, PortIntent, SecurityGroupIntent


def test_tuples_follow_direction_protocol_and_port() -> None:
    # ingress: connections opened towards the port; egress: opened by it.
    assert ct_tuples(Stale(3, "ipv4", "10.0.0.5", False, "tcp", 22)) == [
        "ct_nw_dst=10.0.0.5,ct_nw_proto=6,ct_tp_dst=22"]
    # ICMP by address only: OVS 3.1 matches an ICMP tuple only whole (id, type, code).
    assert ct_tuples(Stale(3, "ipv4", "10.0.0.5", True, "icmp", None, "10.0.0.9")) == [
        "ct_nw_src=10.0.0.5,ct_nw_dst=10.0.0.9"]
    assert ct_tuples(Stale(3, "ipv6", "2001:db8::5", False, "icmpv6")) == ["ct_ipv6_dst=2001:db8::5"]


def test_a_remote_cidr_is_expanded_when_small_and_dropped_when_wide() -> None:
    small = ct_tuples(Stale(3, "ipv4", "10.0.0.5", False, None, None, "10.0.0.8/30"))
    assert small == [f"ct_nw_dst=10.0.0.5,ct_nw_src=10.0.0.{n}" for n in range(8, 12)]
    assert EXPAND < 256
    # No masks in a flush tuple: the port's every entry in that direction goes (they are looked up afresh).
    assert ct_tuples(Stale(3, "ipv4", "10.0.0.5", False, "udp", 53, "10.1.0.0/16")) == [
        "ct_nw_dst=10.0.0.5,ct_nw_proto=17,ct_tp_dst=53"]


def intent(rules: tuple[FirewallRule, ...], members: tuple[str, ...] = ("10.0.0.7",)) -> FirewallIntent:
    port = FirewallPort("tapa", "fa:16:3e:00:00:0a", True, ("10.0.0.5",), ("g",))
    return FirewallIntent({"pa": port}, {"g": SecurityGroupIntent(True, rules)}, {"sg4-g": members})


SSH = FirewallRule("ingress", "IPv4", 6, 22, 22, None, None)
FROM_GROUP = FirewallRule("ingress", "IPv4", 1, None, None, None, "sg4-g")
PORTS = {"pa": PortIntent("net", "tapa", "fa:16:3e:00:00:0a", ("10.0.0.5",), True, "compute:nova")}


def test_the_cleaner_flushes_removed_rules_and_departed_members_in_the_networks_local_vlan() -> None:
    calls: list[tuple[int, str]] = []
    cleaner = ConntrackCleaner(lambda zone, t: calls.append((zone, t)))
    assert cleaner.after(intent((SSH, FROM_GROUP), ("10.0.0.7", "10.0.0.9")), PORTS, {"net": 4}) == ()
    assert calls == []  # the first intent: nothing to compare with
    cleaner.after(intent((SSH, FROM_GROUP), ("10.0.0.7", "10.0.0.9")), PORTS, {"net": 4})
    assert calls == []  # unchanged
    cleaner.after(intent((FROM_GROUP,), ("10.0.0.7",)), PORTS, {"net": 4})
    assert sorted(calls) == [(4, "ct_nw_dst=10.0.0.5,ct_nw_proto=6,ct_tp_dst=22"),  # rule gone
                             (4, "ct_nw_dst=10.0.0.5,ct_nw_src=10.0.0.9")]  # member gone (ICMP: by address)
    assert cleaner.flushed == 2


def test_a_failed_flush_is_reported_not_raised() -> None:
    def fail(zone: int, t: str) -> None:
        raise RuntimeError("ovs-vswitchd is gone")

    cleaner = ConntrackCleaner(fail)
    cleaner.after(intent((SSH,)), PORTS, {"net": 4})
    assert cleaner.after(intent(()), PORTS, {"net": 4}) == (("conntrack", "ovs-vswitchd is gone"),)
