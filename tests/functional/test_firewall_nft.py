"""kaon's nftables firewall against the kernel (in a throwaway namespace): a
port's change is one small transaction that leaves every other object alone,
the read-back finds a hand edit and the next pass repairs it, and the tables
read back as exactly what was planned after every step."""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest

from kaon.agent import fw_plan
from kaon.agent.config import AgentConfig
from kaon.agent.firewall import Firewall
from kaon.agent.manager import Step
from kaon.dataplane import nft
from kaon.model.intent import SCHEMA_VERSION, HostIntent

pytestmark = pytest.mark.needs_root

RULE = {"direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
        "port_range_max": None, "remote_ip_prefix": None, "remote_set": "sg4-g1"}


def port(n: int, stateful: bool = True) -> dict[str, Any]:
    return {"device": f"tapp{n}", "mac": f"fa:16:3e:00:00:{n:02x}", "ips": [f"10.0.0.{n}"], "port_security": True,
            "stateful": stateful, "security_groups": ["g1"]}


def intent(*ports: int) -> dict[str, Any]:
    return {"version": SCHEMA_VERSION, "host": "h1", "ports": {},
            "networks": {"n1": {"bridge": "brqn1", "network_type": "vxlan", "segmentation_id": 1,
                                "physical_network": None, "mtu": 1450}},
            "firewall": {"ports": {f"p{n}": port(n) for n in ports},
                         "groups": {"g1": {"stateful": True, "rules": [
                             RULE, {**RULE, "remote_set": None, "protocol": 6, "port_range_min": 22,
                                    "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"},
                             {**RULE, "direction": "egress", "remote_set": None}]}},
                         "sets": {"sg4-g1": [f"10.0.0.{n}" for n in ports]}}}


def with_ports(raw: dict[str, Any], *numbers: int) -> dict[str, Any]:
    """The ports' networks in the intent: the bridge each port's frames cross is known, so the
    firewall finds the receiving port by MAC (fw_plan.by_mac) where the kernel hooks chains to
    devices by name — no bridge forward hook."""
    raw["ports"] = {f"p{n}": {"network_id": "n1", "device": f"tapp{n}", "mac": f"fa:16:3e:00:00:{n:02x}",
                              "ips": [f"10.0.0.{n}"], "admin_state_up": True, "device_owner": "compute:nova"}
                    for n in numbers}
    return raw


def handles(ns: str) -> dict[tuple[str, str], list[int]]:
    """Rule handles per chain, both tables."""
    out: dict[tuple[str, str], list[int]] = {}
    for family in fw_plan.FAMILIES:
        listing = nft.run(ns, f"list table {family} {fw_plan.TABLE}", nft.OUTPUT_JSON | nft.OUTPUT_HANDLE)
        for item in json.loads(listing)["nftables"]:
            if "rule" in item:
                out.setdefault((family, item["rule"]["chain"]), []).append(item["rule"]["handle"])
    return out


def read_back(ns: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for family in fw_plan.FAMILIES:
        found.update(fw_plan.read_summary(nft.run(ns, f"list table {family} {fw_plan.TABLE}", nft.OUTPUT_JSON)))
    return found


def planned(firewall: Firewall) -> dict[str, int]:
    """The read-back shape of what the firewall last wrote."""
    assert firewall.applied is not None
    return fw_plan.summary(firewall.applied)


@pytest.fixture
def fw(make_netns: Any) -> tuple[Firewall, str]:
    ns = make_netns("fw")
    return Firewall(AgentConfig(host="h1", firewall_driver="nftables", namespace=ns)), ns


def sync(fw: Firewall, raw: dict[str, Any]) -> None:
    fw.update(HostIntent.from_json(raw))
    assert fw.apply(Step(sweep=True)).ok


def test_a_port_change_touches_only_that_port(fw: tuple[Firewall, str]) -> None:
    firewall, ns = fw
    sync(firewall, intent(1, 2))
    assert firewall.rebuilds == 1 and firewall.applied is not None
    assert read_back(ns) == fw_plan.summary(firewall.applied)
    before = handles(ns)
    # A third port: its own chains and map elements come, nothing else is rewritten.
    sync(firewall, intent(1, 2, 3))
    after = handles(ns)
    assert firewall.rebuilds == 1 and firewall.updates == 1
    assert {k: v for k, v in after.items() if "tapp3" not in k[1]} == before
    assert ("inet", "in-tapp3") in after and read_back(ns) == fw_plan.summary(firewall.applied)
    # The first port goes: its chains go, the others keep their handles (and port 3 its mark).
    sync(firewall, intent(2, 3))
    gone = handles(ns)
    assert not any("tapp1" in chain for _, chain in gone)
    assert {k: v for k, v in after.items() if "tapp1" not in k[1]} == gone
    assert firewall.applied.numbers == {"p2": 2, "p3": 3}
    # A rule change refills the group's chains only.
    changed = intent(2, 3)
    changed["firewall"]["groups"]["g1"]["rules"].pop(1)
    sync(firewall, changed)
    now = handles(ns)
    assert {k for k in now if now[k] != gone[k]} == {("inet", "sg-g1-in")}
    assert len(now["inet", "sg-g1-in"]) == 1 and firewall.rebuilds == 1
    assert read_back(ns) == fw_plan.summary(firewall.applied)
    # No ports left: both tables go.
    empty = intent()
    sync(firewall, empty)
    with pytest.raises(nft.NftError):
        nft.run(ns, f"list table inet {fw_plan.TABLE}")


def test_a_stateless_port_is_untracked(fw: tuple[Firewall, str]) -> None:
    firewall, ns = fw
    raw = with_ports(intent(1, 2), 1, 2)
    sync(firewall, raw)
    stateless = copy.deepcopy(raw)
    stateless["firewall"]["ports"]["p2"] = port(2, stateful=False)
    sync(firewall, stateless)
    assert firewall.rebuilds == 1
    listing = nft.run(ns, f"list table inet {fw_plan.TABLE}")
    assert "tapp2" not in listing and "ct state untracked accept" in listing  # p1 is stateful: zones, not for p2
    # Filtered in the bridge family, with no conntrack shortcut; untracked there, before br_netfilter
    # and conntrack: what it sends and what goes to its MAC.
    bridge = nft.run(ns, f"list table bridge {fw_plan.TABLE}")
    assert "elements = { fa:16:3e:00:00:02 }" in bridge and "ether daddr @untracked_mac notrack\n" in bridge
    # What it sends: on its tap's own hook where the kernel hooks chains by name, else at bridge
    # prerouting; what it receives: on its tap's egress hook then (its bridge known: no bridge
    # forward hook), else at bridge forward.
    here = nft.run(ns, f"list table netdev {fw_plan.TABLE}") if firewall._per_device else bridge
    assert "chain from-tapp2 {\n" in here and "\t\tnotrack\n" in here.split("chain from-tapp2 {")[1]
    to = here.split("chain to-tapp2 {\n")[1]
    assert to.startswith('\t\ttype filter hook egress device "tapp2"' if firewall._per_device else "\t\tether")
    assert "\t\tether type != ip ether type != ip6 accept\n\t\tjump sg-g1-in\n" in to.split("}")[0]
    assert ("chain forward" in bridge) is not firewall._per_device
    assert read_back(ns) == planned(firewall)


def test_a_host_of_stateless_ports_has_no_inet_hook_and_no_ct_expression(fw: tuple[Firewall, str]) -> None:
    firewall, ns = fw
    raw = intent(1, 2)
    raw["firewall"]["ports"] = {f"p{n}": port(n, stateful=False) for n in (1, 2)}
    raw["firewall"]["groups"]["g1"]["stateful"] = False
    sync(firewall, raw)
    inet = nft.run(ns, f"list table inet {fw_plan.TABLE}")
    assert "hook" not in inet and "ct state" not in inet and "ct zone set" not in inet and "tapp" not in inet
    assert read_back(ns) == planned(firewall)
    # A stateful port joins: the inet base chains come in place (no rewrite), and go with it.
    both = copy.deepcopy(raw)
    both["firewall"]["ports"]["p3"] = {**port(3), "security_groups": []}
    sync(firewall, both)
    inet = nft.run(ns, f"list table inet {fw_plan.TABLE}")
    assert "type filter hook forward priority filter; policy accept;" in inet and "ct zone set" in inet
    assert firewall.rebuilds == 1 and read_back(ns) == planned(firewall)
    sync(firewall, raw)
    assert "hook" not in nft.run(ns, f"list table inet {fw_plan.TABLE}")
    assert firewall.rebuilds == 1 and firewall.updates == 2 and read_back(ns) == planned(firewall)


def test_a_rule_deleted_by_hand_is_put_back_on_the_next_resync(make_netns: Any) -> None:
    ns = make_netns("fw")
    scripts: list[str] = []

    def run(namespace: str | None, script: str, flags: int = 0) -> str:
        scripts.append(script)
        return nft.run(namespace, script, flags)

    firewall = Firewall(AgentConfig(host="h1", firewall_driver="nftables", namespace=ns), run=run)
    sync(firewall, intent(1, 2))
    firewall.mark_dirty()  # nothing changed since kaon's write (the ruleset generation says so): no listing
    sync(firewall, intent(1, 2))
    assert len(scripts) == 1
    victim = handles(ns)["inet", "sg-g1-in"][0]
    nft.run(ns, f"delete rule inet {fw_plan.TABLE} sg-g1-in handle {victim}")
    sync(firewall, intent(1, 2))  # an ordinary pass trusts what it wrote
    assert firewall.repairs == 0 and len(handles(ns)["inet", "sg-g1-in"]) == 1
    firewall.mark_dirty()  # the periodic resync
    sync(firewall, intent(1, 2))
    assert any(s.startswith("list table") for s in scripts)
    assert firewall.repairs == 1 and firewall.rebuilds == 2
    assert len(handles(ns)["inet", "sg-g1-in"]) == 2
    assert firewall.applied is not None and read_back(ns) == fw_plan.summary(firewall.applied)
    # A whole table gone is drift too.
    nft.run(ns, f"delete table bridge {fw_plan.TABLE}")
    firewall.mark_dirty()
    sync(firewall, intent(1, 2))
    assert firewall.repairs == 2 and read_back(ns) == fw_plan.summary(firewall.applied)
    # Nothing changed: the read-back finds nothing and nothing is written.
    firewall.mark_dirty()
    sync(firewall, intent(1, 2))
    assert firewall.repairs == 2 and firewall.rebuilds == 3


def test_rules_merged_into_a_port_set_load(fw: tuple[Firewall, str]) -> None:
    firewall, ns = fw
    raw = intent(1)
    tcp = {**RULE, "remote_set": None, "protocol": 6, "remote_ip_prefix": "10.0.0.0/8"}
    raw["firewall"]["groups"]["g1"]["rules"] = [
        {**tcp, "port_range_min": 20000 + i, "port_range_max": 20000 + i} for i in range(0, 1000, 2)] + [
        {**tcp, "port_range_min": 5201, "port_range_max": 5201}]
    sync(firewall, raw)
    chain = nft.run(ns, f"list chain inet {fw_plan.TABLE} sg-g1-in")
    assert chain.count("accept") == 1 and "5201, 20000, 20002," in chain


@pytest.mark.parametrize("stateful", [True, False])
def test_every_kind_of_rule_loads_in_both_families(fw: tuple[Firewall, str], stateful: bool) -> None:
    """A stateless port's group is rendered in the bridge or netdev family (``ether type`` instead
    of ``meta nfproto``): the kernel takes every kind of rule there as it does in inet."""
    firewall, ns = fw
    raw = with_ports(intent(1), 1)
    raw["firewall"]["ports"]["p1"] = {**port(1, stateful), "allowed_address_pairs": [
        {"ip_address": "fd00::5", "mac_address": "fa:16:3e:00:00:99"}]}
    raw["firewall"]["groups"]["g1"]["stateful"] = stateful
    v6 = {**RULE, "ethertype": "IPv6", "remote_set": "sg6-g1"}
    raw["firewall"]["groups"]["g1"]["rules"] += [
        {**RULE, "remote_set": None, "protocol": 1, "port_range_min": 8, "port_range_max": 0},
        {**RULE, "remote_set": None, "protocol": 17, "port_range_min": 53, "port_range_max": 54},
        {**RULE, "remote_set": None, "protocol": 6, "port_range_min": 80, "port_range_max": 80},
        {**RULE, "remote_set": None, "protocol": 132, "remote_ip_prefix": "192.168.0.0/16"},
        {**v6, "protocol": 58, "port_range_min": 128, "port_range_max": None},
        {**v6, "direction": "egress", "remote_set": None, "remote_ip_prefix": "fd00::/64"}]
    raw["firewall"]["sets"]["sg6-g1"] = ["fd00::1"]
    sync(firewall, raw)
    # A stateless port's rules: bridge family, or netdev on its tap's hooks where the kernel hooks
    # chains to devices by name.
    family = "inet" if stateful else "netdev" if firewall._per_device else "bridge"
    other = "bridge" if family != "bridge" else "inet"
    assert ("hook forward" in nft.run(ns, f"list table bridge {fw_plan.TABLE}")) is not firewall._per_device
    chain = nft.run(ns, f"list chain {family} {fw_plan.TABLE} sg-g1-in")
    assert "icmp type echo-request icmp code net-unreachable accept" in chain
    assert "ip6 saddr @sg6-g1 icmpv6 type echo-request accept" in chain and "udp dport 53-54 accept" in chain
    assert "ip saddr 192.168.0.0/16 meta l4proto sctp accept" in chain
    assert ("meta nfproto ipv4 tcp dport 80" if stateful else "ether type ip tcp dport 80") in chain
    assert "ip6 daddr fd00::/64 " in nft.run(ns, f"list chain {family} {fw_plan.TABLE} sg-g1-out")
    with pytest.raises(nft.NftError):  # the group's chains are in one family only
        nft.run(ns, f"list chain {other} {fw_plan.TABLE} sg-g1-in")
    assert read_back(ns) == planned(firewall)


def _ping(ns: str, address: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", address],
                          capture_output=True).returncode == 0


@pytest.mark.parametrize("by_mac", [True, False], ids=["by-mac", "forward-hook"])
def test_a_stateless_and_a_stateful_port_on_one_bridge(make_netns: Any, by_mac: bool) -> None:
    """Traffic through the kernel: a stateless port's rules are in the bridge family (or netdev, on
    its tap's hooks), a stateful port's in inet; between them on one bridge, the sender's egress and
    the receiver's ingress both decide, and the stateless port's packets stay untracked. With the
    ports' bridge known (``by_mac``), on a kernel that hooks chains to devices by name, neither port
    needs the bridge forward hook: the stateless port's ingress rules are its tap's egress hook."""
    host = make_netns("fwh")
    vms = {n: make_netns(f"vm{n}") for n in (1, 2)}
    for cmd in (["link", "add", "brqn1", "type", "bridge"], ["link", "set", "brqn1", "up"]):
        subprocess.run(["ip", "-n", host, *cmd], check=True)
    for n, vm in vms.items():
        subprocess.run(["ip", "-n", host, "link", "add", f"tapp{n}", "type", "veth", "peer", "name", "eth0",
                        "netns", vm], check=True)
        subprocess.run(["ip", "-n", host, "link", "set", f"tapp{n}", "master", "brqn1", "up"], check=True)
        subprocess.run(["ip", "-n", vm, "link", "set", "eth0", "address", f"fa:16:3e:00:00:{n:02x}", "up"], check=True)
        subprocess.run(["ip", "-n", vm, "addr", "add", f"10.0.0.{n}/24", "dev", "eth0"], check=True)
    icmp = {**RULE, "remote_set": None, "protocol": 1}
    egress = {**RULE, "direction": "egress", "remote_set": None}
    raw = intent(1, 2)
    raw["firewall"]["ports"] = {"p1": {**port(1, stateful=False), "security_groups": ["free"]},
                                "p2": {**port(2), "security_groups": ["full"]}}
    raw["firewall"]["groups"] = {"free": {"stateful": False, "rules": [icmp, egress]},
                                 "full": {"stateful": True, "rules": [icmp, egress]}}
    raw["firewall"]["sets"] = {}
    if by_mac:
        with_ports(raw, 1, 2)
    firewall = Firewall(AgentConfig(host="h1", firewall_driver="nftables", namespace=host))
    sync(firewall, raw)
    if by_mac and not firewall._per_device:
        pytest.skip("this kernel hooks no nftables chain to a device by name (Linux 6.16 on does)")
    if firewall._per_device:
        assert ("hook forward" in nft.run(host, f"list table bridge {fw_plan.TABLE}")) is not by_mac
        assert ('hook egress device "tapp1"' in nft.run(host, f"list table netdev {fw_plan.TABLE}")) is by_mac
    assert _ping(vms[1], "10.0.0.2") and _ping(vms[2], "10.0.0.1")
    # Untracked: nothing in the host's conntrack table has the stateless port's address.
    entries = subprocess.run(["ip", "netns", "exec", host, "conntrack", "-L"], capture_output=True, text=True)
    assert "10.0.0.1" not in entries.stdout
    # The stateful receiver's ingress (inet) judges the stateless sender's packets: no ICMP rule, no
    # ping — neither requests nor replies to its own pings, which come untracked, never "established".
    no_icmp = copy.deepcopy(raw)
    no_icmp["firewall"]["groups"]["full"]["rules"] = [egress]
    sync(firewall, no_icmp)
    assert not _ping(vms[1], "10.0.0.2") and not _ping(vms[2], "10.0.0.1")
    # The stateless receiver's ingress (bridge) judges too: without its ICMP rule the replies to
    # the stateful port's pings do not come back (no conntrack shortcut for it).
    no_free_icmp = copy.deepcopy(raw)
    no_free_icmp["firewall"]["groups"]["free"]["rules"] = [egress]
    sync(firewall, no_free_icmp)
    assert not _ping(vms[2], "10.0.0.1") and not _ping(vms[1], "10.0.0.2")
    # And the stateless sender's egress (bridge): no egress rule, nothing out.
    no_free_out = copy.deepcopy(raw)
    no_free_out["firewall"]["groups"]["free"]["rules"] = [icmp]
    sync(firewall, no_free_out)
    assert not _ping(vms[1], "10.0.0.2")
    sync(firewall, raw)
    assert _ping(vms[1], "10.0.0.2") and firewall.rebuilds == 1


def _plug(host: str, vm: str, n: int) -> None:
    subprocess.run(["ip", "-n", host, "link", "add", f"tapp{n}", "type", "veth", "peer", "name", "eth0", "netns", vm],
                   check=True)
    subprocess.run(["ip", "-n", host, "link", "set", f"tapp{n}", "master", "brqn1", "up"], check=True)
    subprocess.run(["ip", "-n", vm, "link", "set", "eth0", "address", f"fa:16:3e:00:00:{n:02x}", "up"], check=True)
    subprocess.run(["ip", "-n", vm, "addr", "add", f"10.0.0.{n}/24", "dev", "eth0"], check=True)


@pytest.mark.parametrize("per_device", [None, False], ids=["probed", "bridge-prerouting"])
def test_anti_spoofing_before_and_after_the_tap(make_netns: Any, per_device: bool | None) -> None:
    """A stateful port's anti-spoofing is in force on a tap plugged after the rules were written, and
    again on the tap Nova deletes and plugs anew: on the tap's own hook where the kernel hooks chains
    by name (probed; this one does), and through the bridge's prerouting chain where it does not."""
    host, vm1, vm2 = make_netns("fwd"), make_netns("vm1"), make_netns("vm2")
    for cmd in (["link", "add", "brqn1", "type", "bridge"], ["link", "set", "brqn1", "up"]):
        subprocess.run(["ip", "-n", host, *cmd], check=True)
    firewall = Firewall(AgentConfig(host="h1", firewall_driver="nftables", namespace=host), per_device=per_device)
    raw = intent(1, 2)
    raw["firewall"]["groups"]["g1"]["rules"].append({**RULE, "remote_set": None, "protocol": 1})  # icmp in
    sync(firewall, raw)  # before either tap exists
    if per_device is None:
        if not firewall._per_device:
            pytest.skip("this kernel hooks no nftables chain to a device by name (Linux 6.16 on does)")
        assert 'hook ingress device "tapp1"' in nft.run(host, f"list table netdev {fw_plan.TABLE}")
        assert "from-tapp1" not in nft.run(host, f"list table bridge {fw_plan.TABLE}")
    else:
        assert "from-tapp1" in nft.run(host, f"list table bridge {fw_plan.TABLE}")
    _plug(host, vm1, 1)
    _plug(host, vm2, 2)
    assert _ping(vm1, "10.0.0.2")

    def spoofed() -> bool:  # vm1 sends from an address that is not its own
        subprocess.run(["ip", "-n", vm1, "addr", "add", "10.0.0.99/24", "dev", "eth0"], check=True)
        try:
            return subprocess.run(["ip", "netns", "exec", vm1, "ping", "-c", "1", "-W", "1", "-I", "10.0.0.99",
                                   "10.0.0.2"], capture_output=True).returncode == 0
        finally:
            subprocess.run(["ip", "-n", vm1, "addr", "del", "10.0.0.99/24", "dev", "eth0"], check=True)

    assert not spoofed()
    subprocess.run(["ip", "-n", host, "link", "delete", "tapp1"], check=True)  # the VM goes, and comes back
    _plug(host, vm1, 1)
    assert _ping(vm1, "10.0.0.2") and not spoofed()
    assert firewall.rebuilds == 1


def _count_echo_requests(ns: str, address: str) -> None:
    """Count, in VM ``ns``, the ICMP echo requests to ``address`` its eth0 receives (see _echo_requests)."""
    nft.run(ns, "table netdev seen {\n chain in {\n"
                '  type filter hook ingress device "eth0" priority filter; policy accept;\n'
                f"  ip daddr {address} icmp type echo-request counter\n }}\n}}\n")


def _echo_requests(ns: str) -> int:
    listing = json.loads(nft.run(ns, "list chain netdev seen in", nft.OUTPUT_JSON))["nftables"]
    return sum(e["counter"]["packets"] for i in listing if "rule" in i for e in i["rule"]["expr"] if "counter" in e)


def _broadcast_reaches(sender: str, receiver: str) -> bool:
    """UDP to 10.0.0.255:5000 from ``sender``: does ``receiver``'s listener get it?"""
    listen = subprocess.Popen(
        ["ip", "netns", "exec", receiver, "python3", "-c",
         "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 5000)); "
         "s.settimeout(3); print(s.recvfrom(64)[0].decode())"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True)
    send = ("import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n"
            "for _ in range(8):\n    s.sendto(b'hello', ('10.0.0.255', 5000)); time.sleep(0.25)")
    subprocess.run(["ip", "netns", "exec", sender, "python3", "-c", send], check=True)
    out, _ = listen.communicate(timeout=10)
    return out.strip() == "hello"


@pytest.mark.parametrize("by_mac", [True, False], ids=["by-mac", "forward-hook"])
def test_a_stateful_port_found_by_its_mac_gets_its_own_frames_and_group_frames_its_rules_allow(
        make_netns: Any, by_mac: bool) -> None:
    """Traffic through the kernel, where the kernel hooks chains to devices by name: with every
    filtered port's bridge known, the receiving stateful port is found by its MAC in the inet chain
    and there is no bridge forward hook. A unicast frame the bridge floods reaches only the port
    whose MAC it is there (the forward-hook design delivers it to every port, as the bridge does); a
    broadcast meets the receiver's ingress rules; ping works both ways, and a rule change takes."""
    host = make_netns("fwm")
    vms = {n: make_netns(f"vm{n}") for n in (1, 2, 3)}
    for cmd in (["link", "add", "brqn1", "type", "bridge"], ["link", "set", "brqn1", "up"]):
        subprocess.run(["ip", "-n", host, *cmd], check=True)
    firewall = Firewall(AgentConfig(host="h1", firewall_driver="nftables", namespace=host))
    raw = intent(1, 2, 3)
    icmp = {**RULE, "remote_set": None, "protocol": 1}
    raw["firewall"]["groups"]["g1"]["rules"] = [icmp, {**RULE, "direction": "egress", "remote_set": None}]
    raw["firewall"]["sets"] = {}
    if by_mac:  # the ports' networks: the bridge each port's frames cross
        raw["ports"] = {f"p{n}": {"network_id": "n1", "device": f"tapp{n}", "mac": f"fa:16:3e:00:00:{n:02x}",
                                  "ips": [f"10.0.0.{n}"], "admin_state_up": True, "device_owner": "compute:nova"}
                        for n in (1, 2, 3)}
    sync(firewall, raw)
    if not firewall._per_device:
        pytest.skip("this kernel hooks no nftables chain to a device by name (Linux 6.16 on does)")
    assert ("hook forward" in nft.run(host, f"list table bridge {fw_plan.TABLE}")) is not by_mac
    assert ('hook egress device "tapp2"' in nft.run(host, f"list table netdev {fw_plan.TABLE}")) is by_mac
    for n, vm in vms.items():  # IPv4 only: no multicast of their own (ND, MLD) in the count below
        subprocess.run(["ip", "netns", "exec", vm, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"], check=True)
        _plug(host, vm, n)
    # The bridge never learns vm2's MAC: every frame to it is flooded, to vm3's tap too.
    subprocess.run(["ip", "-n", host, "link", "set", "tapp2", "type", "bridge_slave", "learning", "off"], check=True)
    assert _ping(vms[1], "10.0.0.2") and _ping(vms[2], "10.0.0.1") and _ping(vms[3], "10.0.0.2")
    # Counted by what they are: vm3 may also get broadcasts (ARP) meanwhile, which it should.
    _count_echo_requests(vms[3], "10.0.0.2")
    subprocess.run(["ip", "netns", "exec", vms[1], "ping", "-c", "20", "-i", "0.05", "-W", "1", "10.0.0.2"],
                   capture_output=True, check=True)
    flooded = _echo_requests(vms[3])
    assert flooded == 0 if by_mac else flooded >= 20, flooded
    # A broadcast: the receiver's ingress rules decide (no UDP rule: not delivered), at its tap.
    assert not _broadcast_reaches(vms[1], vms[2])
    udp = copy.deepcopy(raw)
    udp["firewall"]["groups"]["g1"]["rules"].append({**RULE, "remote_set": None, "protocol": 17,
                                                     "port_range_min": 5000, "port_range_max": 5000})
    sync(firewall, udp)
    assert _broadcast_reaches(vms[1], vms[2])
    # Unicast by MAC: without the ICMP rule, no new ping in.
    no_icmp = copy.deepcopy(raw)
    no_icmp["firewall"]["groups"]["g1"]["rules"] = [{**RULE, "direction": "egress", "remote_set": None}]
    sync(firewall, no_icmp)
    assert not _ping(vms[1], "10.0.0.2")
    assert read_back(host) == planned(firewall) and firewall.rebuilds == 1
