"""The firewall planner (kaon.agent.fw_plan, pure) and the firewall's decisions
(kaon.agent.firewall with a fake nft): set changes in place, rebuilds only on
rule changes, fail closed."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kaon.agent import fw_plan
from kaon.agent.config import AgentConfig
from kaon.agent.firewall import Firewall, FirewallUnavailable, enabled
from kaon.agent.manager import Manager, Outcome, Step
from kaon.config import ConfigError
from kaon.model.intent import SCHEMA_VERSION, FirewallIntent, HostIntent

RULE = {"direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
        "port_range_max": None, "remote_ip_prefix": None, "remote_set": "sg4-g1"}


def intent(stateful: bool = True) -> dict[str, Any]:
    return {"networks": {"n1": {"bridge": "brqn1"}}, "firewall": {
        "ports": {"p1": {"device": "tapp1", "mac": "fa:16:3e:00:00:01", "ips": ["10.0.0.1"], "port_security": True,
                         "stateful": stateful, "security_groups": ["g1"],
                         "allowed_address_pairs": [{"ip_address": "10.0.0.64/28", "mac_address": "fa:16:3e:00:00:01"}]},
                  "p2": {"device": "tapp2", "mac": "fa:16:3e:00:00:02", "port_security": False}},
        "groups": {"g1": {"stateful": stateful, "rules": [
            RULE, {**RULE, "remote_set": None, "protocol": 6, "port_range_min": 22, "port_range_max": 22,
                   "remote_ip_prefix": "0.0.0.0/0"},
            {**RULE, "remote_set": None, "protocol": 1, "port_range_min": 8, "port_range_max": None},
            {**RULE, "direction": "egress", "remote_set": None}]}},
        "sets": {"sg4-g1": ["10.0.0.1", "10.0.0.2"]}}}


def typed(raw: dict[str, Any]) -> HostIntent:
    networks = {nid: {"network_type": "vxlan", "segmentation_id": 1, "physical_network": None, "mtu": 1450, **net}
                for nid, net in raw.get("networks", {}).items()}
    return HostIntent.from_json({"version": SCHEMA_VERSION, "host": "h1", "ports": {}, **raw, "networks": networks})


def firewall_part(raw: dict[str, Any]) -> FirewallIntent:
    part = typed(raw).firewall
    assert part is not None
    return part


def sync(fw: Firewall, raw: dict[str, Any]) -> Outcome:
    fw.update(typed(raw))
    return fw.apply(Step(sweep=True))


def test_the_ruleset_filters_secured_ports_only() -> None:
    rs = fw_plan.build(firewall_part(intent()), typed(intent()).networks)
    script = fw_plan.full_script(rs)
    assert rs.guarded == {"p1"} and rs.elements["inet", "sg4-g1"] == {"10.0.0.1": "", "10.0.0.2": ""}
    assert 'add element bridge kaon-sg from_port { "tapp1" : jump from-tapp1 }' in script
    assert "tapp2" not in script
    # anti-spoofing: own address and the pair's, DHCP client, no DHCP server, no RA
    assert "ip saddr { 10.0.0.1, 10.0.0.64/28 } meta mark set 0x00000001 accept" in script
    assert "udp sport 68 udp dport 67 meta mark set 0x00000001" in script
    assert "ether type ip udp sport 67 drop" in script and "nd-router-advert drop" in script
    # rules: remote set, port, ICMP type; default drop; conntrack for a stateful port
    assert "meta nfproto ipv4 ip saddr @sg4-g1 accept" in script
    assert "meta nfproto ipv4 meta l4proto 6 th dport 22 accept" in script  # /0 adds no match
    assert "meta l4proto 1 icmp type 8 accept" in script
    assert "chain in-tapp1 {\n    ct state established,related accept" in script
    assert f'add element inet kaon-sg zone_of {{ "brqn1" : {fw_plan.zone("n1")} }}' in script
    # hot path first in the anti-spoofing chain; egress passes on to ingress (one forward hook)
    assert "chain from-tapp1 {\n    ether saddr fa:16:3e:00:00:01 ether type ip ip saddr { 10.0.0.1, 10.0.0.64/28 } " \
           "meta l4proto != udp meta mark set 0x00000001 accept" in script
    assert "chain out-tapp1 {\n    ct state established,related goto ingress" in script
    assert "meta nfproto ipv4 goto ingress" in script  # the egress rule: allowed, ingress still checks
    # stateful only: tracked, zoned, nothing untracked
    assert rs.elements["bridge", "untracked_mac"] == {} and "notrack" not in script
    assert rs.chains["inet", "zones"] == ("ct zone set iifname map @zone_of",)
    assert rs.chains["bridge", "prerouting"] == ("iifname vmap @from_port",)


def test_every_port_lets_dhcpv6_client_traffic_through_and_no_server_out() -> None:
    script = fw_plan.full_script(fw_plan.build(firewall_part(intent()), typed(intent()).networks))
    out = script.split("chain out-tapp1 {")[1].split("\n  }\n")[0]
    into = script.split("chain in-tapp1 {")[1].split("\n  }\n")[0]
    assert "meta nfproto ipv6 udp sport 546 udp dport 547 goto ingress" in out
    assert "meta nfproto ipv6 udp sport 547 udp dport 546 accept" in into
    assert "ether type ip6 udp sport 547 drop" in script  # a VM answering DHCPv6 is still dropped


def test_a_stateless_port_is_filtered_in_the_bridge_family_untracked() -> None:
    raw = intent(stateful=False)
    rs = fw_plan.build(firewall_part(raw), typed(raw).networks)
    chains = {key: rules for key, rules in rs.chains.items() if "tapp1" in key[1]}
    # No conntrack needed: all of it in the bridge family — anti-spoofing, then egress at prerouting,
    # ingress at forward; no inet chain, no inet map element, no mark.
    assert set(chains) == {("bridge", "from-tapp1"), ("bridge", "out-tapp1"), ("bridge", "to-tapp1")}
    assert rs.elements["inet", "out_port"] == {} and rs.elements["inet", "in_port"] == {}
    assert not any("ct state" in r or "meta mark" in r for rules in chains.values() for r in rules)
    assert "ether saddr fa:16:3e:00:00:01 ether type ip ip saddr { 10.0.0.1, 10.0.0.64/28 } " \
           "meta l4proto != udp goto out-tapp1" in rs.chains["bridge", "from-tapp1"]
    assert rs.chains["bridge", "out-tapp1"][0] == "jump sg-g1-out" and rs.chains["bridge", "out-tapp1"][-1] == "drop"
    # Ingress filters IP only, as the inet chains (br_netfilter hands them IP only): ARP passes.
    assert rs.chains["bridge", "to-tapp1"][:2] == ("ether type != ip ether type != ip6 accept", "jump sg-g1-in")
    assert "ether type ip6 udp sport 547 udp dport 546 accept" in rs.chains["bridge", "to-tapp1"]
    # The group's rules and the remote set they name, in the bridge family (both verdicts accept:
    # egress and ingress are two hooks here).
    assert rs.chains["bridge", "sg-g1-in"] == ("ether type ip ip saddr @sg4-g1 accept",
                                               "ether type ip meta l4proto 6 th dport 22 accept",
                                               "ether type ip meta l4proto 1 icmp type 8 accept")
    assert rs.chains["bridge", "sg-g1-out"] == ("ether type ip accept",)
    assert rs.elements["bridge", "sg4-g1"] == {"10.0.0.1": "", "10.0.0.2": ""}
    assert ("inet", "sg-g1-in") not in rs.chains and ("inet", "sg4-g1") not in rs.decls
    # Untracked in the bridge family, i.e. before br_netfilter hands the packet to conntrack:
    # what it sends (first rule of its anti-spoofing chain), what goes to its MACs (pairs' too).
    assert rs.chains["bridge", "from-tapp1"][0] == "notrack"
    assert rs.elements["bridge", "untracked_mac"] == {"fa:16:3e:00:00:01": ""}
    assert rs.chains["bridge", "prerouting"] == ("ether daddr @untracked_mac notrack", "iifname vmap @from_port")
    # No stateful port on the host: no ct expression anywhere (conntrack stays off in the namespace),
    # and no inet base chain for packets to run.
    assert not any(r.startswith("ct ") or " ct " in r for rules in rs.chains.values() for r in rules)
    assert set(rs.hooks) == {("bridge", "prerouting"), ("bridge", "forward")}
    # Its first stateful port brings them, in place.
    raw["firewall"]["ports"]["p3"] = {"device": "tapp3", "mac": "fa:16:3e:00:00:03", "ips": ["10.0.0.3"],
                                      "port_security": True, "stateful": True, "security_groups": []}
    after = fw_plan.build(firewall_part(raw), typed(raw).networks, rs.numbers)
    script = fw_plan.change_script(rs, after)
    assert script is not None and "tapp1" not in script
    assert "add chain inet kaon-sg forward { type filter hook forward priority 0; policy accept; }\n" in script
    assert "add rule inet kaon-sg zones ct state untracked accept\n" in script
    # And it going takes them away again.
    back = fw_plan.change_script(after, fw_plan.build(firewall_part(intent(stateful=False)), typed(raw).networks,
                                                       after.numbers))
    assert back is not None and "delete chain inet kaon-sg zones\n" in back


def test_a_host_with_both_kinds_zones_only_tracked_packets() -> None:
    raw = intent()
    raw["firewall"]["ports"]["p3"] = {"device": "tapp3", "mac": "fa:16:3e:00:00:03", "ips": ["10.0.0.3"],
                                      "port_security": True, "stateful": False, "security_groups": ["g2"]}
    raw["firewall"]["groups"]["g2"] = {"stateful": False, "rules": [RULE]}
    rs = fw_plan.build(firewall_part(raw), typed(raw).networks)
    # Setting a zone would give an untracked packet a conntrack template again.
    assert rs.chains["inet", "zones"] == ("ct state untracked accept", "ct zone set iifname map @zone_of")
    assert rs.chains["inet", "forward"][1] == "ct state established,related accept"
    assert rs.chains["bridge", "from-tapp3"][0] == "notrack" and "notrack" not in rs.chains["bridge", "from-tapp1"]
    assert rs.elements["bridge", "untracked_mac"] == {"fa:16:3e:00:00:03": ""}
    assert ("bridge", "sg-g2-in") in rs.chains and ("inet", "sg-g2-in") not in rs.chains
    assert ("inet", "sg-g1-in") in rs.chains and ("bridge", "sg-g1-in") not in rs.chains
    # The stateless port going stateful is a change in place: its chains move to the inet family,
    # the base chains are refilled, nothing else is rewritten.
    raw["firewall"]["ports"]["p3"]["stateful"] = raw["firewall"]["groups"]["g2"]["stateful"] = True
    after = fw_plan.build(firewall_part(raw), typed(raw).networks, rs.numbers)
    script = fw_plan.change_script(rs, after)
    assert script is not None and "flush chain inet kaon-sg zones\n" in script
    assert "delete element bridge kaon-sg untracked_mac { fa:16:3e:00:00:03 }" in script
    assert "add chain inet kaon-sg in-tapp3\n" in script and "delete chain bridge kaon-sg out-tapp3\n" in script
    assert "add element inet kaon-sg in_port { 0x00020000 : goto in-tapp3 }" in script
    assert "delete chain bridge kaon-sg sg-g2-in\n" in script and "tapp1" not in script


def test_group_rules_come_before_the_dhcp_and_nd_special_cases() -> None:
    rs = fw_plan.build(firewall_part(intent()), {})
    # After conntrack's verdicts (whose drop must come first), only allowing rules: the groups first.
    assert rs.chains["inet", "in-tapp1"][:3] == ("ct state established,related accept", "ct state invalid drop",
                                                 "jump sg-g1-in")
    assert rs.chains["inet", "out-tapp1"][2] == "jump sg-g1-out"


def test_established_traffic_is_accepted_before_any_port_lookup() -> None:
    rs = fw_plan.build(firewall_part(intent()), {})
    # On kaon's bridges with the port marks cleared (a marked packet would leave by VXLAN without the
    # tunnel's cached route), on other bridges and routed traffic with its mark as it is.
    assert rs.chains["inet", "forward"][:2] == (
        'ct state established,related iifname "brq*" meta mark set 0x0 accept', "ct state established,related accept")


def test_rules_differing_only_in_ports_are_one_rule_with_a_port_set() -> None:
    raw = intent()
    tcp = {**RULE, "remote_set": None, "protocol": 6, "remote_ip_prefix": "10.0.0.0/8"}
    raw["firewall"]["groups"]["g1"]["rules"] = [
        {**tcp, "port_range_min": 20000 + i, "port_range_max": 20000 + i} for i in range(1000)] + [
        {**tcp, "port_range_min": 5201, "port_range_max": 5201}, {**tcp, "port_range_min": 10, "port_range_max": 20},
        {**tcp, "port_range_min": 15, "port_range_max": 30},  # overlaps: one interval
        {**tcp, "protocol": 17, "port_range_min": 53, "port_range_max": 53},  # udp: a rule of its own
        {**RULE, "protocol": 1, "port_range_min": 8, "port_range_max": None}]
    rs = fw_plan.build(firewall_part(raw), {})
    assert rs.chains["inet", "sg-g1-in"] == (
        "meta nfproto ipv4 ip saddr 10.0.0.0/8 meta l4proto 6 th dport { 10-30, 5201, 20000-20999 } accept",
        "meta nfproto ipv4 ip saddr 10.0.0.0/8 meta l4proto 17 th dport 53 accept",
        "meta nfproto ipv4 ip saddr @sg4-g1 meta l4proto 1 icmp type 8 accept")


def test_nothing_to_filter_removes_the_tables() -> None:
    rs = fw_plan.build(firewall_part({"firewall": {"ports": {"p2": {"device": "tapp2", "mac": "m",
                                                                   "port_security": False}},
                                                   "groups": {}, "sets": {}}}), {})
    assert fw_plan.full_script(rs) == ("table netdev kaon-sg {}\ndelete table netdev kaon-sg\n"
                                       "table bridge kaon-sg {}\ndelete table bridge kaon-sg\n"
                                       "table inet kaon-sg {}\ndelete table inet kaon-sg\n") and not rs.guarded


def test_port_numbers_stay_while_the_port_lives() -> None:
    assert fw_plan.number_ports({}, ["b", "a"]) == {"a": 1, "b": 2}
    assert fw_plan.number_ports({"a": 1, "b": 2}, ["b", "c"]) == {"b": 2, "c": 1}  # a's number is free again


def test_element_changes_delete_before_adding() -> None:
    old = fw_plan.build(firewall_part(intent()), {})
    raw = intent()
    raw["firewall"]["sets"]["sg4-g1"] = ["10.0.0.2", "10.0.0.0/28"]
    script = fw_plan.change_script(old, fw_plan.build(firewall_part(raw), {}, old.numbers))
    assert script == ("delete element inet kaon-sg sg4-g1 { 10.0.0.1 }\n"
                      "add element inet kaon-sg sg4-g1 { 10.0.0.0/28 }\n")
    assert fw_plan.change_script(old, old) == ""


def test_a_new_port_is_its_chains_and_map_elements() -> None:
    old = fw_plan.build(firewall_part(intent()), {})
    raw = intent()
    raw["firewall"]["ports"]["p3"] = {**raw["firewall"]["ports"]["p1"], "device": "tapp3",
                                      "mac": "fa:16:3e:00:00:03", "ips": ["10.0.0.3"], "allowed_address_pairs": []}
    new = fw_plan.build(firewall_part(raw), {}, old.numbers)
    script = fw_plan.change_script(old, new)
    assert script is not None and new.numbers == {"p1": 1, "p3": 2}
    lines = script.splitlines()
    assert [line for line in lines if not line.startswith("add rule")] == [
        "add chain bridge kaon-sg from-tapp3", "add chain bridge kaon-sg to-tapp3",
        "add chain inet kaon-sg out-tapp3", "add chain inet kaon-sg in-tapp3",
        'add element bridge kaon-sg from_port { "tapp3" : jump from-tapp3 }',
        'add element bridge kaon-sg to_port { "tapp3" : jump to-tapp3 }',
        "add element inet kaon-sg in_port { 0x00020000 : goto in-tapp3 }",
        "add element inet kaon-sg out_port { 0x00000002 : goto out-tapp3 }"]
    assert all("tapp3" in line for line in lines if line.startswith("add rule"))
    # and back: the map elements go before the chains they name, the chains are emptied first
    back = fw_plan.change_script(new, old)
    assert back is not None
    lines = back.splitlines()
    assert lines.index('delete element bridge kaon-sg from_port { "tapp3" }') < lines.index(
        "flush chain bridge kaon-sg from-tapp3") < lines.index("delete chain bridge kaon-sg from-tapp3")
    assert not any("tapp1" in line for line in lines)


def test_the_read_back_shape_matches_the_plan() -> None:
    rs = fw_plan.build(firewall_part(intent()), typed(intent()).networks)
    listing = {"nftables": [{"metainfo": {}}, {"chain": {"family": "inet", "name": "in-tapp1"}},
                            {"rule": {"family": "inet", "chain": "in-tapp1"}},
                            {"map": {"family": "inet", "name": "out_port", "elem": [[1, 2]]}},
                            {"set": {"family": "inet", "name": "sg4-g1", "flags": ["interval"], "elem": []}}]}
    found = fw_plan.read_summary(json.dumps(listing))
    want = fw_plan.summary(rs)
    assert found == {"chain inet in-tapp1": 1, "set inet out_port": 1, "set inet sg4-g1": -1}
    assert want["set inet out_port"] == 1 and want["set inet sg4-g1"] == -1
    assert want["chain inet in-tapp1"] == len(rs.chains["inet", "in-tapp1"]) > 1


class FakeNft:
    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.fail = False

    def __call__(self, namespace: str | None, script: str, flags: int = 0) -> str:
        if self.fail:
            raise RuntimeError("nft failed: Error: Could not process rule")
        self.scripts.append(script)
        return ""

    def generation(self, namespace: str | None) -> int:
        return len(self.scripts)  # one commit per script


def firewall(nft: FakeNft, ensure: Any = None, forgotten: list[list[str]] | None = None,
             set_bridge: Any = None, per_device: bool = False) -> Firewall:
    cfg = AgentConfig(host="h1", firewall_driver="iptables_hybrid", netfilter_all_bridges=set_bridge is None)
    log = forgotten if forgotten is not None else []
    return Firewall(cfg, run=nft, ensure=ensure or (lambda ns, all_bridges: None),
                    forget=lambda ns, args: log.append(args), generation=nft.generation, set_bridge=set_bridge,
                    per_device=per_device)


def test_changes_are_written_in_place_after_the_first_sync() -> None:
    nft = FakeNft()
    fw = firewall(nft)
    want = intent()
    assert sync(fw, want).ok and fw.rebuilds == 1
    assert sync(fw, want).ok and len(nft.scripts) == 1  # nothing changed, nothing written
    fw.mark_dirty()
    assert sync(fw, want).ok and len(nft.scripts) == 1  # no commit since ours: nothing listed either
    want["firewall"]["sets"]["sg4-g1"] = ["10.0.0.1", "10.0.0.3"]
    assert sync(fw, want).ok and fw.rebuilds == 1 and fw.updates == 1
    assert nft.scripts[-1] == ("delete element inet kaon-sg sg4-g1 { 10.0.0.2 }\n"
                               "add element inet kaon-sg sg4-g1 { 10.0.0.3 }\n")
    want["firewall"]["groups"]["g1"]["rules"].pop()
    assert sync(fw, want).ok and fw.rebuilds == 1 and fw.updates == 2
    assert nft.scripts[-1] == "flush chain inet kaon-sg sg-g1-out\n"


def test_a_removed_rule_forgets_the_flows_it_allowed() -> None:
    forgotten: list[list[str]] = []
    fw = firewall(FakeNft(), forgotten=forgotten)
    want = intent()
    want["ports"] = {"p1": {"network_id": "n1", "device": "tapp1", "mac": "fa:16:3e:00:00:01", "ips": ["10.0.0.1"],
                            "admin_state_up": True, "device_owner": "compute:nova"}}
    assert sync(fw, want).ok and forgotten == []
    want["firewall"]["groups"]["g1"]["rules"].pop(1)  # tcp 22 from anywhere
    assert sync(fw, want).ok
    zone = str(fw_plan.zone("n1"))
    assert forgotten == [["-f", "ipv4", "-w", zone, "-p", "tcp", "--dport", "22", "-d", "10.0.0.1"]]
    # A remote group losing a member: the flows between the port and that member.
    want["firewall"]["sets"]["sg4-g1"] = ["10.0.0.1"]
    assert sync(fw, want).ok
    assert forgotten[-1] == ["-f", "ipv4", "-w", zone, "-d", "10.0.0.1", "-s", "10.0.0.2"]
    # A member joining can merge elements (10.0.0.1 + 10.0.0.0 → 10.0.0.0/31): nobody left, nothing to forget.
    want["firewall"]["sets"]["sg4-g1"] = ["10.0.0.0/31"]
    assert sync(fw, want).ok and len(forgotten) == 2
    # A stateless port has no entries to forget; nor does a change that removes nothing.
    assert sync(fw, want).ok and len(forgotten) == 2
    stateless = intent(stateful=False)
    none: list[list[str]] = []
    fw2 = firewall(FakeNft(), forgotten=none)
    assert sync(fw2, stateless).ok
    stateless["firewall"]["groups"]["g1"]["rules"].pop(1)
    assert sync(fw2, stateless).ok and none == []


def test_fail_closed_when_br_netfilter_cannot_be_enabled() -> None:
    def broken(namespace: str | None, all_bridges: bool) -> None:
        raise FirewallUnavailable("no /proc/sys/net/bridge")

    result = sync(firewall(FakeNft(), broken), intent())
    assert not result.ok and result.hold == {"p1"}  # p2 has no port security: it passes anyway


def test_a_refused_ruleset_holds_only_ports_the_old_one_does_not_cover() -> None:
    nft = FakeNft()
    fw = firewall(nft)
    assert sync(fw, intent()).ok
    bigger = copy.deepcopy(intent())
    bigger["firewall"]["ports"]["p3"] = {**bigger["firewall"]["ports"]["p1"], "device": "tapp3"}
    nft.fail = True
    result = sync(fw, bigger)
    assert not result.ok and result.hold == {"p3"}
    nft.fail = False
    assert sync(fw, bigger).ok and fw.rebuilds == 2  # unknown state: rewritten whole


def test_driver_names() -> None:
    assert not enabled(AgentConfig(host="h"))  # unset: noop, as in Neutron
    assert not enabled(AgentConfig(host="h", firewall_driver="iptables", enable_security_group=False))
    assert enabled(AgentConfig(host="h", firewall_driver="nftables"))
    with pytest.raises(ConfigError):
        enabled(AgentConfig(host="h", firewall_driver="openvswitch"))
    assert sync(Firewall(AgentConfig(host="h")), intent()).ok  # disabled: nothing held, nothing run


def test_the_firewall_is_a_manager() -> None:
    fw: Manager = firewall(FakeNft())  # mypy checks the contract; isinstance the runtime shape
    assert isinstance(fw, Manager) and fw.name == "firewall"


def _ports_on_n1(raw: dict[str, Any]) -> dict[str, Any]:
    raw["ports"] = {pid: {"network_id": "n1", "device": p["device"], "mac": p["mac"], "ips": p.get("ips", []),
                          "admin_state_up": True, "device_owner": "compute:nova"}
                    for pid, p in raw["firewall"]["ports"].items()}
    return raw


def test_per_bridge_br_netfilter_is_turned_on_for_stateful_ports_bridges_only() -> None:
    calls: list[tuple[str | None, str, bool]] = []
    modes: list[bool] = []
    fw = firewall(FakeNft(), ensure=lambda ns, all_bridges: modes.append(all_bridges),
                  set_bridge=lambda ns, bridge, on: calls.append((ns, bridge, on)))
    want = _ports_on_n1(intent())
    want["networks"]["n2"] = {"bridge": "brqn2"}  # no filtered port: its traffic skips netfilter
    assert sync(fw, want).ok and modes == [False] and calls == [(None, "brqn1", True), (None, "brqn2", False)]
    assert sync(fw, want).ok and len(calls) == 2  # set once, not every pass
    fw.mark_dirty()  # the periodic resync sets them again (someone may have changed one)
    assert sync(fw, want).ok and len(calls) == 4
    # A stateless port's bridge needs none: it is filtered in the bridge family.
    calls.clear()
    fw2 = firewall(FakeNft(), set_bridge=lambda ns, bridge, on: calls.append((ns, bridge, on)))
    assert sync(fw2, _ports_on_n1(intent(stateful=False))).ok and calls == [(None, "brqn1", False)]


def test_per_bridge_br_netfilter_goes_off_after_the_last_stateful_port_once_its_rules_are_gone() -> None:
    nft = FakeNft()
    calls: list[tuple[str, bool, int]] = []  # (bridge, on, scripts written by then)
    fw = firewall(nft, set_bridge=lambda ns, bridge, on: calls.append((bridge, on, len(nft.scripts))))
    assert sync(fw, _ports_on_n1(intent())).ok and calls == [("brqn1", True, 0)]  # on before the rules
    calls.clear()
    stateless = _ports_on_n1(intent(stateful=False))
    assert sync(fw, stateless).ok and calls == [("brqn1", False, 2)]  # off after the stateless ruleset
    assert "delete chain inet kaon-sg in-tapp1" in nft.scripts[-1]  # that change took its inet rules away
    assert sync(fw, stateless).ok and len(calls) == 1  # once
    assert sync(fw, _ports_on_n1(intent())).ok and calls[-1] == ("brqn1", True, 2)  # stateful again: on first

    # An operator's bridge (a mapped flat network) is turned off only if this agent turned it on.
    calls.clear()
    cfg = AgentConfig(host="h1", firewall_driver="iptables_hybrid", netfilter_all_bridges=False,
                      bridge_mappings={"physnet1": "br-op"})
    fw = Firewall(cfg, run=FakeNft(), ensure=lambda ns, all_bridges: None, forget=lambda ns, args: None,
                  generation=FakeNft().generation, per_device=False,
                  set_bridge=lambda ns, bridge, on: calls.append((bridge, on, 0)))
    flat = {"bridge": "brqn1", "network_type": "flat", "physical_network": "physnet1"}
    assert sync(fw, {**_ports_on_n1(intent(stateful=False)), "networks": {"n1": flat}}).ok and calls == []
    assert sync(fw, {**_ports_on_n1(intent()), "networks": {"n1": flat}}).ok and calls == [("br-op", True, 0)]
    assert sync(fw, {**_ports_on_n1(intent(stateful=False)), "networks": {"n1": flat}}).ok
    assert calls[-1] == ("br-op", False, 0)


def test_per_bridge_a_bridge_that_refuses_to_go_off_only_logs() -> None:
    def refused(ns: str | None, bridge: str, on: bool) -> None:
        if not on:
            raise OSError("Operation not permitted")

    fw = firewall(FakeNft(), set_bridge=refused)
    result = sync(fw, _ports_on_n1(intent(stateful=False)))
    assert result.ok and not result.hold  # a saving missed, nothing unfiltered


def test_per_bridge_a_missing_bridge_is_left_to_l2_a_failing_one_holds_its_ports() -> None:
    from kaon.dataplane import LinkNotFound

    def missing(ns: str | None, bridge: str, on: bool) -> None:
        raise LinkNotFound(bridge)

    assert sync(firewall(FakeNft(), set_bridge=missing), _ports_on_n1(intent())).ok

    def refused(ns: str | None, bridge: str, on: bool) -> None:
        raise OSError("Operation not permitted")

    result = sync(firewall(FakeNft(), set_bridge=refused), _ports_on_n1(intent()))
    assert not result.ok and result.hold == {"p1"}  # p2 has no port security: not held


def test_l2_makes_a_stateful_ports_bridge_with_br_netfilter_on() -> None:
    from kaon.agent import l2_plan

    raw = _ports_on_n1(intent())
    raw["networks"]["n2"] = {"bridge": "brqn2", "segmentation_id": 2}
    cfg = AgentConfig(host="h1", local_ip="192.0.2.1")
    seen = l2_plan.Observed(links={})
    made = {a.dev: a.arg("netfilter") for a in l2_plan.plan(typed(raw), seen, cfg, sweep=False,
                                                           netfilter=frozenset({"n1"})).actions
            if a.op == "ensure_bridge"}
    assert made == {"brqn1": True, "brqn2": None}
    made = {a.dev: a.arg("netfilter") for a in l2_plan.plan(typed(raw), seen, cfg, sweep=False).actions
            if a.op == "ensure_bridge"}
    assert made == {"brqn1": None, "brqn2": None}


def test_zones_only_where_two_networks_meet_in_conntrack() -> None:
    assert fw_plan.zones_needed(True, set()) and fw_plan.zones_needed(True, {"n1"})  # every bridge tracked
    assert not fw_plan.zones_needed(False, {"n1"}) and fw_plan.zones_needed(False, {"n1", "n2"})
    raw = intent()
    alone = fw_plan.build(firewall_part(raw), typed(raw).networks, zones=False)
    assert ("inet", "zones") not in alone.chains and ("inet", "zone_of") not in alone.decls
    assert ("inet", "zone_of") not in alone.elements
    # A second tracked network turns them on in place: the raw chain and its map are added.
    zoned = fw_plan.build(firewall_part(raw), typed(raw).networks, alone.numbers, zones=True)
    script = fw_plan.change_script(alone, zoned)
    assert script is not None and "add chain inet kaon-sg zones { type filter hook prerouting priority raw;" in script
    assert "add map inet kaon-sg zone_of" in script and "from-tapp1" not in script
    back = fw_plan.change_script(zoned, alone)
    assert back is not None and "delete chain inet kaon-sg zones\n" in back and "delete map inet kaon-sg zone_of\n" in back


def test_per_bridge_one_tracked_network_has_no_zones_and_forgets_in_zone_0() -> None:
    forgotten: list[list[str]] = []
    nft = FakeNft()
    fw = firewall(nft, forgotten=forgotten, set_bridge=lambda ns, bridge, on: None)
    want = _ports_on_n1(intent())
    assert sync(fw, want).ok and "chain zones" not in nft.scripts[0] and "zone_of" not in nft.scripts[0]
    want["firewall"]["groups"]["g1"]["rules"].pop(1)  # tcp 22 from anywhere
    assert sync(fw, want).ok
    assert forgotten == [["-f", "ipv4", "-w", "0", "-p", "tcp", "--dport", "22", "-d", "10.0.0.1"]]
    # A stateful port on a second network: zones, for both.
    want["networks"]["n2"] = {"bridge": "brqn2"}
    want["firewall"]["ports"]["p3"] = {"device": "tapp3", "mac": "fa:16:3e:00:00:03", "ips": ["10.0.1.3"],
                                      "port_security": True, "stateful": True, "security_groups": ["g1"]}
    want["ports"]["p3"] = {"network_id": "n2", "device": "tapp3", "mac": "fa:16:3e:00:00:03", "ips": ["10.0.1.3"],
                           "admin_state_up": True, "device_owner": "compute:nova"}
    assert sync(fw, want).ok and "add chain inet kaon-sg zones" in nft.scripts[-1]


def test_per_device_a_stateful_ports_anti_spoofing_is_on_its_taps_own_hook() -> None:
    raw = intent()
    rs = fw_plan.build(firewall_part(raw), typed(raw).networks, per_device=True)
    assert rs.hooks["netdev", "from-tapp1"] == ('type filter hook ingress device "tapp1" priority filter; '
                                               "policy accept;")
    assert rs.chains["netdev", "from-tapp1"][0].endswith("meta mark set 0x00000001 accept")
    assert ("bridge", "from-tapp1") not in rs.chains and rs.elements["bridge", "from_port"] == {}
    # No port left for the bridge's prerouting dispatch: no such base chain, nothing for other traffic to run.
    assert ("bridge", "prerouting") not in rs.hooks and ("bridge", "prerouting") not in rs.chains
    assert rs.elements["netdev", "udp_icmpv6"] and rs.elements["netdev", "dad_types"]
    # A port more is its own base chain, added in place with its hook.
    raw["firewall"]["ports"]["p3"] = {"device": "tapp3", "mac": "fa:16:3e:00:00:03", "ips": ["10.0.0.3"],
                                      "port_security": True, "stateful": True, "security_groups": ["g1"]}
    more = fw_plan.build(firewall_part(raw), typed(raw).networks, rs.numbers, per_device=True)
    script = fw_plan.change_script(rs, more)
    assert script is not None and ('add chain netdev kaon-sg from-tapp3 { type filter hook ingress device "tapp3" '
                                   "priority filter; policy accept; }") in script
    # A stateless port: anti-spoofing then its egress rules on its tap's hook, its groups' chains
    # in the netdev table too; ingress rules at bridge forward. Untracked (``notrack``, and its MAC
    # in bridge prerouting) only where its packets can meet conntrack.
    raw["firewall"]["ports"]["p3"]["stateful"] = False
    mixed = fw_plan.build(firewall_part(raw), typed(raw).networks, rs.numbers, per_device=True)
    assert mixed.chains["netdev", "from-tapp3"][0] == "notrack"
    assert mixed.chains["netdev", "from-tapp3"][1].endswith("goto out-tapp3")
    assert mixed.chains["netdev", "out-tapp3"][0] == "jump sg-g1-out" and ("netdev", "sg-g1-out") in mixed.chains
    assert ("netdev", "sg4-g1") in mixed.decls and ("bridge", "to-tapp3") in mixed.chains
    assert mixed.elements["bridge", "from_port"] == {} and mixed.elements["bridge", "untracked_mac"]
    assert mixed.chains["bridge", "prerouting"] == ("ether daddr @untracked_mac notrack",)
    assert fw_plan.change_script(more, mixed) is not None
    quiet = fw_plan.build(firewall_part(raw), typed(raw).networks, rs.numbers, per_device=True,
                          tracked=frozenset({"tapp1"}))  # tapp3's bridge does not go through conntrack
    assert "notrack" not in quiet.chains["netdev", "from-tapp3"] and quiet.elements["bridge", "untracked_mac"] == {}
    assert ("bridge", "prerouting") not in quiet.chains


# -- stateful ingress found by bridge and destination MAC (per device) ---------------------------
def _by_mac_intent() -> dict[str, Any]:
    raw = intent()
    raw["firewall"]["ports"]["p3"] = {"device": "tapp3", "mac": "fa:16:3e:00:00:03", "ips": ["10.0.0.3"],
                                      "port_security": True, "security_groups": ["g1"],
                                      "allowed_address_pairs": [{"ip_address": "10.0.0.99",
                                                                 "mac_address": "fa:16:3e:00:00:99"}]}
    return raw


def test_a_stateful_port_is_found_by_its_bridge_and_macs_and_needs_no_bridge_forward_hook() -> None:
    raw = _by_mac_intent()
    rs = fw_plan.build(firewall_part(raw), typed(raw).networks, per_device=True,
                       bridges={"p1": "brqn1", "p2": "brqn1", "p3": "brqn1"})
    assert ("bridge", "forward") not in rs.hooks and ("bridge", "to_port") not in rs.decls
    assert rs.chains["inet", "ingress"] == ("iifname . ether daddr vmap @in_mac", "accept")
    assert rs.elements["inet", "in_mac"] == {'"brqn1" . fa:16:3e:00:00:01': "goto in-tapp1",
                                             '"brqn1" . fa:16:3e:00:00:03': "goto in-tapp3",
                                             '"brqn1" . fa:16:3e:00:00:99': "goto in-tapp3"}  # its pair's MAC too
    assert ("inet", "in_port") not in rs.decls and rs.elements["inet", "out_port"]["0x00000002"] == "goto out-tapp3"
    # The tap's own egress hook: its MACs were judged in inet; another MAC (flooded) drops; a group
    # address meets the ingress rules without conntrack.
    to = rs.chains["netdev", "to-tapp3"]
    assert rs.hooks["netdev", "to-tapp3"] == 'type filter hook egress device "tapp3" priority filter; policy accept;'
    assert to[:2] == ("ether daddr { fa:16:3e:00:00:03, fa:16:3e:00:00:99 } accept",
                      "ether daddr & 01:00:00:00:00:00 == 00:00:00:00:00:00 drop")
    # the group's rules, without conntrack: one chain for the ports of the same groups
    assert len(to) == 3 and to[2].startswith("goto in-groups-") and rs.chains["netdev", "to-tapp1"][2] == to[2]
    groups = rs.chains["netdev", to[2].removeprefix("goto ")]
    assert groups[:2] == ("ether type != ip ether type != ip6 accept", "jump sg-g1-in")
    assert not any("ct " in r for r in groups) and groups[-1] == "drop"
    assert rs.chains["netdev", "sg-g1-in"] and ("netdev", "sg4-g1") in rs.decls  # the rules, and their sets
    assert ("netdev", "nd_ingress") in rs.decls and "icmpv6 type @nd_ingress accept" in groups
    assert rs.chains["netdev", "to-tapp1"][0] == "ether daddr fa:16:3e:00:00:01 accept"
    other = copy.deepcopy(raw)  # a port of other groups has a chain of its own
    other["firewall"]["groups"]["g2"] = other["firewall"]["groups"]["g1"]
    other["firewall"]["ports"]["p3"]["security_groups"] = ["g1", "g2"]
    more = fw_plan.build(firewall_part(other), typed(other).networks, per_device=True,
                         bridges={"p1": "brqn1", "p2": "brqn1", "p3": "brqn1"})
    theirs = more.chains["netdev", "to-tapp3"][2]
    assert theirs != to[2] and "jump sg-g2-in" in more.chains["netdev", theirs.removeprefix("goto ")]
    script = fw_plan.full_script(rs)
    assert "hook forward priority filter" not in script and "meta mark set meta mark or" not in script


@pytest.mark.parametrize("bridges", [None, {"p1": "brqn1"}, {"p1": "brqn1", "p3": "brqn1", "shared": True}],
                         ids=["no-bridges", "a-port-without-bridge", "a-mac-shared-on-one-bridge"])
def test_without_a_key_for_every_port_the_bridge_forward_hook_names_the_receiver(bridges: Any) -> None:
    raw = _by_mac_intent()
    if bridges and bridges.pop("shared", False):  # p3's address pair carries p1's MAC
        raw["firewall"]["ports"]["p3"]["allowed_address_pairs"][0]["mac_address"] = "fa:16:3e:00:00:01"
    rs = fw_plan.build(firewall_part(raw), typed(raw).networks, per_device=True, bridges=bridges)
    assert rs.chains["bridge", "forward"] == ("oifname vmap @to_port",)
    assert rs.chains["inet", "ingress"] == ("meta mark and 0xffff0000 vmap @in_port", "accept")
    assert ("netdev", "to-tapp3") not in rs.chains and ("inet", "in_mac") not in rs.decls
    assert rs.elements["inet", "in_port"]["0x00020000"] == "goto in-tapp3"


def test_the_same_mac_on_two_bridges_is_two_keys() -> None:
    raw = _by_mac_intent()
    raw["firewall"]["ports"]["p3"]["mac"] = "fa:16:3e:00:00:01"
    keys = fw_plan.by_mac(firewall_part(raw).ports, {"p1": "brqn1", "p2": "brqn1", "p3": "brqn2"})
    assert keys is not None and keys["p1"][0] == '"brqn1" . fa:16:3e:00:00:01'
    assert keys["p3"][0] == '"brqn2" . fa:16:3e:00:00:01'


def test_a_stateless_port_beside_ports_found_by_mac_has_its_ingress_rules_on_its_taps_egress_hook() -> None:
    raw = _by_mac_intent()
    raw["firewall"]["ports"]["p1"]["stateful"] = False
    everyone = {"p1": "brqn1", "p2": "brqn1", "p3": "brqn1"}
    rs = fw_plan.build(firewall_part(raw), typed(raw).networks, per_device=True, bridges=everyone)
    # No bridge forward hook left on the host: every bridged frame is spared it.
    assert ("bridge", "forward") not in rs.hooks and ("bridge", "to_port") not in rs.decls
    assert rs.hooks["netdev", "to-tapp1"] == 'type filter hook egress device "tapp1" priority filter; policy accept;'
    to = rs.chains["netdev", "to-tapp1"]  # the port's ingress rules themselves, without conntrack
    assert to[:2] == ("ether type != ip ether type != ip6 accept", "jump sg-g1-in") and to[-1] == "drop"
    assert not any("ct " in r for r in to) and "icmpv6 type @nd_ingress accept" in to
    assert rs.chains["netdev", "sg-g1-in"] and ("bridge", "to-tapp1") not in rs.chains
    assert not any(family == "bridge" and name.startswith("sg") for family, name in rs.chains)
    assert set(rs.elements["inet", "in_mac"].values()) == {"goto in-tapp3"}  # the stateful one
    assert ("netdev", "to-tapp3") in rs.chains and ("bridge", "to-tapp3") not in rs.chains
    assert rs.chains["netdev", "from-tapp1"][-1] == "drop"  # its anti-spoofing, as before
    # A host of stateless ports only: the same, and nothing in inet to run.
    for port in raw["firewall"]["ports"].values():
        port["stateful"] = False
    alone = fw_plan.build(firewall_part(raw), typed(raw).networks, rs.numbers, per_device=True, bridges=everyone)
    assert ("bridge", "forward") not in alone.hooks and ("netdev", "to-tapp3") in alone.hooks
    assert not any(family == "inet" for family, _ in alone.hooks)
    assert alone.chains["netdev", "to-tapp3"] == to
    # A port turning stateless (or back) is one transaction on this layout too.
    there, back = fw_plan.change_script(rs, alone), fw_plan.change_script(alone, rs)
    assert there is not None and back is not None and "add element inet" in back
    # Where the forward hook stays (a port without a known bridge), so does its stateless to- chain.
    fallback = fw_plan.build(firewall_part(raw), typed(raw).networks, per_device=True, bridges={"p1": "brqn1"})
    assert fallback.elements["bridge", "to_port"]['"tapp1"'] == "jump to-tapp1"
    assert ("bridge", "to-tapp1") in fallback.chains and ("netdev", "to-tapp1") not in fallback.hooks


def test_changing_between_forward_hook_and_by_mac_is_one_transaction_or_a_rewrite() -> None:
    raw = _by_mac_intent()
    everyone = {"p1": "brqn1", "p2": "brqn1", "p3": "brqn1"}
    by_mac = fw_plan.build(firewall_part(raw), typed(raw).networks, per_device=True, bridges=everyone)
    forward = fw_plan.build(firewall_part(raw), typed(raw).networks, by_mac.numbers, per_device=True)
    # A port that comes or goes moves the host between the two: one transaction, not a rewrite
    # (tests/functional/test_firewall_nft.py loads both into the kernel).
    there, back = fw_plan.change_script(by_mac, forward), fw_plan.change_script(forward, by_mac)
    assert there is not None and back is not None
    assert "add rule inet kaon-sg ingress meta mark and 0xffff0000 vmap @in_port" in there
    assert "delete chain netdev kaon-sg to-tapp3" in there and "delete map inet kaon-sg in_mac" in there
    assert "add rule inet kaon-sg ingress iifname . ether daddr vmap @in_mac" in back
    assert "delete chain bridge kaon-sg forward" in back and "delete map bridge kaon-sg to_port" in back
