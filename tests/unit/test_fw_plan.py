"""The firewall planner (kaon.agent.fw_plan, pure) and the firewall's decisions
(kaon.agent.firewall with a fake nft): set changes in place, rebuilds only on
rule changes, fail closed."""

from __future__ import annotations

import copy
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
    assert rs.guarded == {"p1"} and rs.elements == {"sg4-g1": frozenset({"10.0.0.1", "10.0.0.2"})}
    assert '"tapp1" : jump from-tapp1' in rs.script and "tapp2" not in rs.script
    # anti-spoofing: own address and the pair's, DHCP client, no DHCP server, no RA
    assert "ip saddr { 10.0.0.1, 10.0.0.64/28 } meta mark set 0x00000001 accept" in rs.script
    assert "udp sport 68 udp dport 67 meta mark set 0x00000001" in rs.script
    assert "ether type ip udp sport 67 drop" in rs.script and "nd-router-advert drop" in rs.script
    # rules: remote set, port, ICMP type; default drop; conntrack for a stateful port
    assert "meta nfproto ipv4 ip saddr @sg4-g1 accept" in rs.script
    assert "meta nfproto ipv4 meta l4proto 6 th dport 22 accept" in rs.script  # /0 adds no match
    assert "meta l4proto 1 icmp type 8 accept" in rs.script
    assert "chain in-tapp1 {\n    ct state established,related accept" in rs.script
    assert f'ct zone set iifname map {{ "brqn1" : {fw_plan.zone("n1")} }}' in rs.script
    # hot path first in the anti-spoofing chain; egress passes on to ingress (one forward hook)
    assert "chain from-tapp1 {\n    ether saddr fa:16:3e:00:00:01 ether type ip ip saddr { 10.0.0.1, 10.0.0.64/28 } " \
           "meta l4proto != udp meta mark set 0x00000001 accept" in rs.script
    assert "chain out-tapp1 {\n    ct state established,related goto ingress" in rs.script
    assert "meta nfproto ipv4 goto ingress" in rs.script  # the egress rule: allowed, ingress still checks


def test_every_port_lets_dhcpv6_client_traffic_through_and_no_server_out() -> None:
    rs = fw_plan.build(firewall_part(intent()), typed(intent()).networks)
    out = rs.script.split("chain out-tapp1 {")[1].split("\n  }\n")[0]
    into = rs.script.split("chain in-tapp1 {")[1].split("\n  }\n")[0]
    assert "meta nfproto ipv6 udp sport 546 udp dport 547 goto ingress" in out
    assert "meta nfproto ipv6 udp sport 547 udp dport 546 accept" in into
    assert "ether type ip6 udp sport 547 drop" in rs.script  # a VM answering DHCPv6 is still dropped


def test_a_stateless_port_has_no_conntrack_shortcut() -> None:
    rs = fw_plan.build(firewall_part(intent(stateful=False)), {})
    assert "ct state" not in rs.script and "jump sg-g1-in\n    drop" in rs.script


def test_nothing_to_filter_removes_both_tables() -> None:
    rs = fw_plan.build(firewall_part({"firewall": {"ports": {"p2": {"device": "tapp2", "mac": "m",
                                                                   "port_security": False}},
                                                   "groups": {}, "sets": {}}}), {})
    assert rs.script == ("table bridge kaon-sg {}\ndelete table bridge kaon-sg\n"
                         "table inet kaon-sg {}\ndelete table inet kaon-sg\n") and not rs.guarded


def test_element_changes_delete_before_adding() -> None:
    old = {"s": frozenset({"10.0.0.1", "10.0.0.2"})}
    new = {"s": frozenset({"10.0.0.2", "10.0.0.0/28"})}
    assert fw_plan.element_script(old, new) == ("delete element inet kaon-sg s { 10.0.0.1 }\n"
                                                "add element inet kaon-sg s { 10.0.0.0/28 }\n")
    assert fw_plan.element_script(new, new) == ""


class FakeNft:
    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.fail = False

    def __call__(self, namespace: str | None, script: str) -> str:
        if self.fail:
            raise RuntimeError("nft failed: Error: Could not process rule")
        self.scripts.append(script)
        return ""


def firewall(nft: FakeNft, ensure: Any = None) -> Firewall:
    cfg = AgentConfig(host="h1", firewall_driver="iptables_hybrid")
    return Firewall(cfg, run=nft, ensure=ensure or (lambda ns: None))


def test_membership_changes_update_sets_in_place_and_rule_changes_rebuild() -> None:
    nft = FakeNft()
    fw = firewall(nft)
    want = intent()
    assert sync(fw, want).ok and fw.rebuilds == 1
    assert sync(fw, want).ok and len(nft.scripts) == 1  # nothing changed, nothing written
    want["firewall"]["sets"]["sg4-g1"] = ["10.0.0.1", "10.0.0.3"]
    assert sync(fw, want).ok and fw.rebuilds == 1 and fw.set_updates == 1
    assert nft.scripts[-1] == ("delete element inet kaon-sg sg4-g1 { 10.0.0.2 }\n"
                               "add element inet kaon-sg sg4-g1 { 10.0.0.3 }\n")
    want["firewall"]["groups"]["g1"]["rules"].pop()
    assert sync(fw, want).ok and fw.rebuilds == 2


def test_fail_closed_when_br_netfilter_cannot_be_enabled() -> None:
    def broken(namespace: str | None) -> None:
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
