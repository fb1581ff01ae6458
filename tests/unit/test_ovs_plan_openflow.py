"""kaon.dataplane.openflow's pure part: reading dump-flows back and the cookie-scoped diff."""

from __future__ import annotations

import pytest

from kaon.dataplane.openflow import OpenFlowError, diff, numbered, parse_dump
from kaon.dataplane.ovs_model import KAON_COOKIE, Flow

DUMP = """\
 cookie=0x6b616f6e, priority=1,in_port=patch-int actions=resubmit(,2)
 cookie=0x6b616f6e, priority=0 actions=drop
 cookie=0x6b616f6e, table=2, priority=1,dl_vlan=5 actions=pop_vlan,set_field:0x3e9->tun_id,output:"vxlan-ac100002"
 table=20, hard_timeout=300, priority=1,vlan_tci=0x0005/0x0fff,dl_dst=fa:16:3e:00:00:09 actions=load:0->NXM_OF_VLAN_TCI[],output:1
 cookie=0x1, table=40, priority=3 actions=drop
 cookie=0x6b616f6e, table=41 actions=NORMAL
"""


def test_parse_dump_reads_cookie_table_priority_match_actions() -> None:
    flows = parse_dump(DUMP)
    assert flows[0] == Flow(0, 1, "in_port=patch-int", "resubmit(,2)")
    assert flows[1] == Flow(0, 0, "", "drop")
    assert flows[2] == Flow(2, 1, "dl_vlan=5", "pop_vlan,set_field:0x3e9->tun_id,output:vxlan-ac100002")
    # learned flow: cookie 0, timeouts are not match fields
    assert flows[3] == Flow(20, 1, "vlan_tci=0x0005/0x0fff,dl_dst=fa:16:3e:00:00:09",
                            "load:0->NXM_OF_VLAN_TCI[],output:1", 0)
    assert flows[4].cookie == 1
    assert flows[5] == Flow(41, 32768, "", "NORMAL")  # default priority is not printed


def test_diff_adds_missing_and_changed_leaves_same_and_foreign_flows() -> None:
    installed = parse_dump(DUMP)
    wanted = [Flow(0, 1, "in_port=patch-int", "resubmit(,2)"),  # same
              Flow(0, 0, "", "drop"),  # same
              Flow(2, 1, "dl_vlan=5", "pop_vlan,set_field:0x3ea->tun_id,output:vxlan-ac100002"),  # changed
              Flow(40, 3, "", "NORMAL"),  # same match as the operator's flow: kaon's replaces it
              Flow(22, 1, "dl_vlan=5", "drop")]  # new
    d = diff(wanted, installed, sweep=False)
    assert set(d.added) == {wanted[2], wanted[3], wanted[4]}
    assert d.deleted == ()
    swept = diff(wanted, installed, sweep=True)
    assert swept.deleted == (Flow(41, 32768, "", "NORMAL"),)  # kaon's stale flow only; cookie 0 / 0x1 untouched


def test_match_field_order_does_not_matter_and_same_plan_is_a_no_op() -> None:
    installed = [Flow(21, 1, "arp,dl_vlan=1,arp_tpa=10.0.0.9", "IN_PORT")]
    assert not diff([Flow(21, 1, "dl_vlan=1,arp,arp_tpa=10.0.0.9", "IN_PORT")], installed, sweep=True)


def test_two_wanted_flows_with_one_match_and_different_actions_are_refused() -> None:
    with pytest.raises(OpenFlowError, match="one match"):
        diff([Flow(0, 1, "in_port=a", "drop"), Flow(0, 1, "in_port=a", "NORMAL")], [], sweep=False)


def test_bundle_lines_carry_kaon_cookie_and_strict_delete_is_cookie_scoped() -> None:
    f = Flow(2, 1, "dl_vlan=5", "drop")
    assert f.add_line() == f"cookie={KAON_COOKIE:#x},table=2,priority=1,dl_vlan=5,actions=drop"
    assert f.delete_line() == f"delete_strict cookie={KAON_COOKIE:#x}/-1,table=2,priority=1,dl_vlan=5"


def test_port_names_become_ofports_in_what_is_sent_and_unknown_names_refuse_the_translation() -> None:
    ports = {"tapa": 3, "patch-int": 1, "vxlan-ac100002": 12}
    f = Flow(0, 10, "in_port=tapa,dl_src=fa:16:3e:00:00:01",
             "learn(table=20,NXM_OF_VLAN_TCI[0..11],output:OXM_OF_IN_PORT[]),output:patch-int,output:vxlan-ac100002")
    assert numbered(f"add {f.add_line()}", ports) == (
        f"add cookie={KAON_COOKIE:#x},table=0,priority=10,in_port=3,dl_src=fa:16:3e:00:00:01,actions="
        "learn(table=20,NXM_OF_VLAN_TCI[0..11],output:OXM_OF_IN_PORT[]),output:1,output:12")
    assert numbered(Flow(0, 2, "in_port=tapa", "drop").delete_line(), ports).endswith(",in_port=3")
    # Reserved ports, numbers and lines without ports pass as they are.
    assert numbered("add table=1,actions=output:LOCAL,output:7,NORMAL", ports) == "add table=1,actions=output:LOCAL,output:7,NORMAL"
    assert numbered("add table=60,priority=3,actions=resubmit(,61)", {}) == "add table=60,priority=3,actions=resubmit(,61)"
    assert numbered("add table=0,in_port=tapb,actions=drop", ports) is None


def test_a_dump_without_names_reads_back_as_the_names_kaon_wrote() -> None:
    text = (" cookie=0x6b616f6e, table=22, priority=1,in_port=3,dl_vlan=5 actions=pop_vlan,output:12,output:9\n"
            " cookie=0x6b616f6e, table=10, priority=1 actions=learn(table=20,output:OXM_OF_IN_PORT[]),output:1\n")
    flows = parse_dump(text, {3: "tapa", 1: "patch-int", 12: "vxlan-ac100002"})
    assert flows[0] == Flow(22, 1, "in_port=tapa,dl_vlan=5", "pop_vlan,output:vxlan-ac100002,output:9")
    assert flows[1].actions == "learn(table=20,output:OXM_OF_IN_PORT[]),output:patch-int"
