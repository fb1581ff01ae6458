"""kaon.agent.ovs_fw_plan: security groups as OVS conntrack flows (pure)."""

from __future__ import annotations

from typing import Any

from kaon.agent.ovs_fw_plan import FwPlacement, conjunction_ids, plan_firewall, port_masks
from kaon.dataplane.ovs_model import Flow

MAC = "fa:16:3e:00:00:0a"
AT = FwPlacement("tapa", 5, 3)
NEW = "ct_state=+new-est+trk,reg5=0x5"
COMMIT_OUT = "ct(commit,zone=NXM_NX_REG6[0..15]),output:tapa"
COMMIT_EGRESS = "ct(commit,zone=NXM_NX_REG6[0..15]),resubmit(,73)"


def fw(rules: list[dict], **port: object) -> dict:
    p = {"port_security": True, "mac": MAC, "ips": ["10.0.0.10"], "security_groups": ["g"], **port}
    return {"ports": {"pa": p}, "groups": {"g": {"rules": rules}},
            "sets": {"sg4-r": ["10.0.0.0/30", "10.0.1.7"], "sg6-r": ["2001:db8::1"]}}


def rule_flows(flows: tuple[Flow, ...]) -> set[tuple[int, frozenset[str], str]]:
    """Rule flows as (table, match fields as a set, actions): OpenFlow ignores the field order."""
    return {(f.table, f.key[2], f.actions) for f in flows if f.priority == 70 and f.table in (72, 82)}


def m(text: str) -> frozenset[str]:
    return frozenset(text.split(","))


def test_port_ranges_become_neutrons_bitmask_matches() -> None:
    assert port_masks(22, 22) == ["22"]
    assert port_masks(5, 12) == ["5", "0x6/0xfffe", "0x8/0xfffc", "12"]
    assert port_masks(1024, 2047) == ["0x400/0xfc00"]
    assert port_masks(0, 65535) == ["0x0/0x0"]
    assert port_masks(65534, 65535) == ["0xfffe/0xfffe"]


def conj(flows: tuple[Flow, ...]) -> set[tuple[int, frozenset[str], str]]:
    """The conjunctive flows (priority 69) as (table, match fields, actions)."""
    return {(f.table, f.key[2], f.actions) for f in flows if f.priority == 69}


def cid(name: str, direction: str, v4: bool = True, stateful: bool = True) -> int:
    return conjunction_ids([(name, direction, v4, stateful)])[(name, direction, v4, stateful)]


def test_rules_golden_matches() -> None:
    rules: list[dict[str, Any]] = [
        {"direction": "ingress", "ethertype": "IPv4", "protocol": 6, "port_range_min": 22, "port_range_max": 22,
         "remote_ip_prefix": "192.168.0.0/24"},
        {"direction": "ingress", "ethertype": "IPv4", "protocol": 17, "port_range_min": 1024,
         "port_range_max": 2047, "remote_set": "sg4-r"},
        {"direction": "egress", "ethertype": "IPv4", "protocol": 1, "port_range_min": 8, "port_range_max": 0},
        {"direction": "egress", "ethertype": "IPv6", "protocol": 58, "remote_set": "sg6-r"},
        {"direction": "ingress", "ethertype": "IPv6", "protocol": 47},
        {"direction": "egress", "ethertype": "IPv4", "remote_ip_prefix": "0.0.0.0/0"},
    ]
    flows = plan_firewall(fw(rules), {"pa": AT})
    assert rule_flows(flows) == {
        (82, m(f"tcp,{NEW},tp_dst=22,nw_src=192.168.0.0/24"), COMMIT_OUT),
        (72, m(f"icmp,{NEW},icmp_type=8,icmp_code=0"), COMMIT_EGRESS),
        (82, m(f"ipv6,nw_proto=47,{NEW}"), COMMIT_OUT),
        (72, m(f"ip,{NEW}"), COMMIT_EGRESS),  # 0.0.0.0/0 is "any": no address match
    }
    # Remote groups: the port's rule is one half of a conjunction, the group's members the other.
    udp, icmp6 = cid("sg4-r", "ingress"), cid("sg6-r", "egress", v4=False)
    assert conj(flows) == {
        (82, m(f"udp,{NEW},tp_dst=0x400/0xfc00"), f"conjunction({udp},2/2)"),
        (82, m("ip,nw_src=10.0.0.0/30"), f"conjunction({udp},1/2)"),
        (82, m("ip,nw_src=10.0.1.7"), f"conjunction({udp},1/2)"),
        (82, m(f"conj_id={udp},ip"), "ct(commit,zone=NXM_NX_REG6[0..15]),output:NXM_NX_REG5[]"),
        (72, m(f"icmp6,{NEW}"), f"conjunction({icmp6},2/2)"),
        (72, m("ipv6,ipv6_dst=2001:db8::1"), f"conjunction({icmp6},1/2)"),
        (72, m(f"conj_id={icmp6},ipv6"), COMMIT_EGRESS),
    }


def test_remote_group_and_prefix_together_keep_only_members_inside_the_prefix() -> None:
    rules = [{"direction": "ingress", "ethertype": "IPv4", "remote_set": "sg4-r", "remote_ip_prefix": "10.0.1.0/24"}]
    i = cid("sg4-r", "ingress")
    # Both halves must match: the prefix on the port's side, the members on the group's.
    assert (82, m(f"ip,{NEW},nw_src=10.0.1.0/24"), f"conjunction({i},2/2)") in conj(
        plan_firewall(fw(rules), {"pa": AT}))


def test_a_new_member_adds_one_flow_per_direction_however_many_ports_name_the_group() -> None:
    rules = [{"direction": "ingress", "ethertype": "IPv4", "remote_set": "sg4-g"},
             {"direction": "egress", "ethertype": "IPv4", "protocol": 6, "remote_set": "sg4-g"}]
    ports = {f"p{n}": {"port_security": True, "mac": f"fa:16:3e:00:01:{n:02x}", "ips": [f"10.0.0.{n}"],
                       "security_groups": ["g"]} for n in range(1, 51)}
    placement = {pid: FwPlacement(f"tap{pid}", n, 3) for n, pid in enumerate(sorted(ports), start=1)}

    def planned(members: list[str]) -> set[Flow]:
        return set(plan_firewall({"ports": ports, "groups": {"g": {"rules": rules}},
                                  "sets": {"sg4-g": members}}, placement))

    before = planned([f"10.0.0.{n}" for n in range(1, 51, 2)])  # odd addresses: no two merge into a CIDR
    after = planned([f"10.0.0.{n}" for n in range(1, 51, 2)] + ["10.0.9.9"])
    i, e = cid("sg4-g", "ingress"), cid("sg4-g", "egress")
    assert after - before == {Flow(82, 69, "ip,nw_src=10.0.9.9", f"conjunction({i},1/2)"),
                              Flow(72, 69, "ip,nw_dst=10.0.9.9", f"conjunction({e},1/2)")}
    assert before <= after


def test_rules_sharing_a_match_share_one_flow_naming_each_conjunction() -> None:
    rules_g = [{"direction": "ingress", "ethertype": "IPv4", "remote_set": "sg4-g"}]
    rules_h = [{"direction": "ingress", "ethertype": "IPv4", "remote_set": "sg4-h"}]
    intent = {"ports": {"pa": {"port_security": True, "mac": MAC, "ips": ["10.0.0.10"],
                               "security_groups": ["g", "h"]}},
              "groups": {"g": {"rules": rules_g}, "h": {"rules": rules_h}},
              "sets": {"sg4-g": ["10.0.0.1"], "sg4-h": ["10.0.0.1", "10.0.0.2"]}}
    g, h = sorted([cid("sg4-g", "ingress"), cid("sg4-h", "ingress")])
    got = conj(plan_firewall(intent, {"pa": AT}))
    # One flow per (table, priority, match): OpenFlow would let the second replace the first.
    assert (82, m(f"ip,{NEW}"), f"conjunction({g},2/2),conjunction({h},2/2)") in got
    assert (82, m("ip,nw_src=10.0.0.1"), f"conjunction({g},1/2),conjunction({h},1/2)") in got


def test_conjunction_ids_are_stable_and_unique() -> None:
    keys = [(f"sg4-{n}", d, True, True) for n in range(2000) for d in ("ingress", "egress")]
    ids = conjunction_ids(keys)
    assert len(set(ids.values())) == len(keys) and 0 not in ids.values()
    assert conjunction_ids(keys[:10]) == {k: ids[k] for k in keys[:10]}  # others coming and going move nothing


def test_a_stateless_port_never_meets_conntrack() -> None:
    rules = [{"direction": "ingress", "ethertype": "IPv4", "protocol": 1},
             {"direction": "egress", "ethertype": "IPv4", "protocol": 6, "remote_set": "sg4-r"}]
    flows = plan_firewall(fw(rules, stateful=False), {"pa": AT})
    assert not [f for f in flows if "ct(" in f.actions or "ct_state" in f.match or f.actions == "ct_clear"]
    have = {(f.table, f.priority, f.match, f.actions) for f in flows}
    assert (71, 65, f"ip,reg5=0x5,dl_src={MAC},nw_src=10.0.0.10", "resubmit(,72)") in have
    assert (81, 90, "ip,reg5=0x5", "resubmit(,82)") in have
    assert (82, 70, "icmp,reg5=0x5", "output:tapa") in have  # every packet, replies included
    e = cid("sg4-r", "egress", stateful=False)
    assert (72, 69, f"conj_id={e},ip", "resubmit(,73)") in have
    assert (72, 69, "tcp,reg5=0x5", f"conjunction({e},2/2)") in have
    # No established shortcut: only the rules let anything in or out.
    assert not [f for f in flows if f.table in (72, 82) and f.priority == 75]


def test_base_flows_registers_anti_spoofing_and_conntrack() -> None:
    flows = plan_firewall(fw([], allowed_address_pairs=[{"ip_address": "10.0.0.200"},
                                                        {"mac_address": "fa:16:3e:00:00:ff",
                                                         "ip_address": "10.9.0.0/24"}]), {"pa": AT})
    have = {(f.table, f.priority, f.match, f.actions) for f in flows}
    regs = "load:0x5->NXM_NX_REG5[],load:0x3->NXM_NX_REG6[]"
    assert (0, 100, "in_port=tapa", f"{regs},resubmit(,71)") in have
    # IP out only from the port's addresses (own MAC: its IP and its pair without MAC; the pair's MAC: its CIDR)
    ct_egress = {(m, a) for t, p, m, a in have if t == 71 and p == 65 and m.startswith("ct_state=-trk,ip,")}
    assert ct_egress == {
        (f"ct_state=-trk,ip,reg5=0x5,dl_src={MAC},nw_src=10.0.0.10", "ct(table=72,zone=NXM_NX_REG6[0..15])"),
        (f"ct_state=-trk,ip,reg5=0x5,dl_src={MAC},nw_src=10.0.0.200", "ct(table=72,zone=NXM_NX_REG6[0..15])"),
        ("ct_state=-trk,ip,reg5=0x5,dl_src=fa:16:3e:00:00:ff,nw_src=10.9.0.0/24",
         "ct(table=72,zone=NXM_NX_REG6[0..15])"),
    }
    assert (71, 95, f"arp,reg5=0x5,dl_src={MAC},arp_spa=0.0.0.0", "resubmit(,94)") in have  # RFC 5227 probes
    assert (71, 10, "reg5=0x5", "drop") in have  # anything else from the port
    assert (71, 70, "udp,reg5=0x5,tp_src=67,tp_dst=68", "drop") in have  # no DHCP server in a VM
    # ingress: from a trunk (tagged with the local VLAN) and from local ports (untagged)
    assert (60, 100, f"dl_vlan=3,dl_dst={MAC}", f"pop_vlan,{regs},resubmit(,81)") in have
    assert (60, 90, f"vlan_tci=0x0000/0x1fff,dl_dst={MAC}", f"{regs},resubmit(,81)") in have
    assert (82, 75, "ct_state=+est-inv+trk,reg5=0x5", "output:tapa") in have
    assert (82, 10, "reg5=0x5", "drop") in have


def test_local_destinations_on_the_same_network_go_through_ingress_and_zones_follow_networks() -> None:
    ports = {"pa": {"port_security": True, "mac": MAC, "ips": ["10.0.0.10"]},
             "pb": {"port_security": True, "mac": "fa:16:3e:00:00:0b", "ips": ["10.0.0.11"]},
             "pc": {"port_security": True, "mac": "fa:16:3e:00:00:0c", "ips": ["10.0.0.12"]},
             "off": {"port_security": False}}
    placement = {"pa": AT, "pb": FwPlacement("tapb", 6, 3), "pc": FwPlacement("tapc", 7, 4),
                 "off": FwPlacement("tapoff", 8, 3)}
    flows = plan_firewall({"ports": ports}, placement)
    local = {(f.match, f.actions) for f in flows if f.table == 73 and f.priority == 100}
    assert local == {
        (f"reg6=0x3,dl_dst={MAC}", "ct_clear,load:0x5->NXM_NX_REG5[],resubmit(,81)"),
        ("reg6=0x3,dl_dst=fa:16:3e:00:00:0b", "ct_clear,load:0x6->NXM_NX_REG5[],resubmit(,81)"),
        ("reg6=0x4,dl_dst=fa:16:3e:00:00:0c", "ct_clear,load:0x7->NXM_NX_REG5[],resubmit(,81)"),
    }
    assert not [f for f in flows if "tapoff" in f.match or "tapoff" in f.actions]  # port security off: NORMAL
    assert plan_firewall({"ports": {"off": {"port_security": False}}}, placement) == ()
