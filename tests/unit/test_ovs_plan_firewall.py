"""kaon.agent.ovs_fw_plan: security groups as OVS conntrack flows (pure)."""

from __future__ import annotations

from kaon.agent.ovs_fw_plan import FwPlacement, plan_firewall, port_masks
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


def test_rules_golden_matches() -> None:
    rules = [
        {"direction": "ingress", "ethertype": "IPv4", "protocol": 6, "port_range_min": 22, "port_range_max": 22,
         "remote_ip_prefix": "192.168.0.0/24"},
        {"direction": "ingress", "ethertype": "IPv4", "protocol": 17, "port_range_min": 1024,
         "port_range_max": 2047, "remote_set": "sg4-r"},
        {"direction": "egress", "ethertype": "IPv4", "protocol": 1, "port_range_min": 8, "port_range_max": 0},
        {"direction": "egress", "ethertype": "IPv6", "protocol": 58, "remote_set": "sg6-r"},
        {"direction": "ingress", "ethertype": "IPv6", "protocol": 47},
        {"direction": "egress", "ethertype": "IPv4", "remote_ip_prefix": "0.0.0.0/0"},
    ]
    got = rule_flows(plan_firewall(fw(rules), {"pa": AT}))
    assert got == {
        (82, m(f"tcp,{NEW},tp_dst=22,nw_src=192.168.0.0/24"), COMMIT_OUT),
        (82, m(f"udp,{NEW},tp_dst=0x400/0xfc00,nw_src=10.0.0.0/30"), COMMIT_OUT),
        (82, m(f"udp,{NEW},tp_dst=0x400/0xfc00,nw_src=10.0.1.7"), COMMIT_OUT),
        (72, m(f"icmp,{NEW},icmp_type=8,icmp_code=0"), COMMIT_EGRESS),
        (72, m(f"icmp6,{NEW},ipv6_dst=2001:db8::1"), COMMIT_EGRESS),
        (82, m(f"ipv6,nw_proto=47,{NEW}"), COMMIT_OUT),
        (72, m(f"ip,{NEW}"), COMMIT_EGRESS),  # 0.0.0.0/0 is "any": no address match
    }


def test_remote_group_and_prefix_together_keep_only_members_inside_the_prefix() -> None:
    rules = [{"direction": "ingress", "ethertype": "IPv4", "remote_set": "sg4-r", "remote_ip_prefix": "10.0.1.0/24"}]
    assert rule_flows(plan_firewall(fw(rules), {"pa": AT})) == {(82, m(f"ip,{NEW},nw_src=10.0.1.7"), COMMIT_OUT)}


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
