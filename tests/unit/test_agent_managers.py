"""The agent runtime over the manager contract (kaon.agent.manager), with fakes
checked against the protocols they stand for: the bus (kaon.bus.base.AgentBus),
the managers, and the kernel driver (kaon.dataplane.l2_driver.BridgeDriver).

What it proves: managers run in the documented order whatever order they are
given in; what one holds back the later ones see; nothing is reported applied
while a manager failed; the first full sync is followed by a sweeping pass;
a new intent reaches every manager typed; an intent of another schema version
is refused and the one in force stays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from kaon.agent.config import AgentConfig
from kaon.agent.dhcp_role import DhcpRole
from kaon.agent.firewall import Firewall
from kaon.agent.l2_manager import LinuxBridgeManager
from kaon.agent.l3_role import L3Role
from kaon.agent.manager import ORDER, AgentRecord, Manager, Outcome, PortStatus, Step, Wanted, Watcher
from kaon.agent.runtime import Agent
from kaon.bus.base import AgentBus, MessageCallback, ReconnectCallback
from kaon.dataplane.l2_driver import BridgeDriver, LinkLike
from kaon.dataplane.linux_l2 import LinuxL2
from kaon.model.intent import SCHEMA_VERSION, HostIntent, IntentVersionError, NetworkIntent, PortIntent

CFG = AgentConfig(host="h1", local_ip="10.99.0.1")
PORT, NET = "p1", "n1"


def intent_json(generation: int, version: int = SCHEMA_VERSION) -> dict[str, Any]:
    return {"version": version, "host": "h1",
            "networks": {NET: {"bridge": "brqn1", "network_type": "vxlan", "segmentation_id": 7,
                               "physical_network": None, "mtu": 1450, "peers": {}}},
            "ports": {PORT: {"network_id": NET, "device": "tapp1", "mac": "fa:16:3e:00:00:01",
                             "ips": [f"10.0.0.{generation}"], "admin_state_up": True, "device_owner": "compute:nova"}}}


class FakeBus:
    """The server side of ``get_intent``/``update_devices``/``report_applied``, in memory."""

    def __init__(self) -> None:
        self.generation = 1
        self.intent = intent_json(1)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, method: str, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        self.calls.append((method, payload))
        if method == "get_intent":
            same = payload["known_generation"] == self.generation
            return {"generation": self.generation, "intent": None if same else self.intent}
        return {}

    def listen(self, host: str, on_message: MessageCallback, on_reconnect: ReconnectCallback | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    def sent(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.calls if m == method]


@dataclass
class FakeManager:
    name: str
    log: list[str]
    hold: frozenset[str] = frozenset()
    ok: bool = True
    ports: PortStatus | None = None
    seen: list[Step] = field(default_factory=list)
    intents: list[HostIntent] = field(default_factory=list)
    dirty: int = 0

    def update(self, intent: HostIntent) -> None:
        self.intents.append(intent)

    def mark_dirty(self) -> None:
        self.dirty += 1

    def apply(self, step: Step) -> Outcome:
        self.log.append(self.name)
        self.seen.append(step)
        return Outcome(self.ok, self.hold, self.ports)

    def close(self) -> None:
        pass


def managers(log: list[str]) -> dict[str, FakeManager]:
    return {
        "l2": FakeManager("l2", log, ports=PortStatus((PORT,), ())),
        "firewall": FakeManager("firewall", log, hold=frozenset({"p9"})),
        "l3": FakeManager("l3", log),
        "dhcp": FakeManager("dhcp", log),
    }


def test_fakes_and_real_parts_fulfil_the_protocols() -> None:
    bus: AgentBus = FakeBus()  # mypy checks these assignments against the protocols
    fake: Manager = FakeManager("l2", [])
    driver: BridgeDriver = FakeDriver()
    assert isinstance(driver, BridgeDriver) and isinstance(fake, Manager) and bus is not None
    l2 = LinuxBridgeManager(CFG, driver)
    real: list[Manager] = [l2, Firewall(CFG)]
    assert all(isinstance(m, Manager) for m in real)
    assert isinstance(l2, AgentRecord) and isinstance(l2, Watcher)
    assert isinstance(LinuxL2, type) and all(hasattr(LinuxL2, m) for m in ("links", "ensure_vxlan", "watch"))
    for role in (DhcpRole, L3Role):  # the roles' classes carry the whole contract and an agent record
        assert all(callable(getattr(role, m)) for m in ("update", "mark_dirty", "apply", "close", "configurations"))
        assert role.name in ORDER


def test_managers_run_in_the_documented_order_and_see_what_earlier_ones_hold() -> None:
    log: list[str] = []
    by_name = managers(log)
    bus = FakeBus()
    agent = Agent(CFG, bus, list(by_name.values()))
    assert agent.sync_once()
    assert log == list(ORDER) == ["dhcp", "l3", "firewall", "l2"]
    assert by_name["l2"].seen[0].hold == {"p9"} and by_name["firewall"].seen[0].hold == frozenset()
    assert all(m.intents and m.intents[0].ports[PORT].ips == ("10.0.0.1",) for m in by_name.values())
    assert bus.sent("update_devices") == [{"host": "h1", "up": [PORT], "down": []}]
    assert bus.sent("report_applied") == [{"host": "h1", "generation": 1}]
    # The first full sync is done: every manager looks again, and the next pass may sweep.
    assert all(m.dirty == 1 for m in by_name.values())
    assert agent.sync_once() and by_name["dhcp"].seen[-1].sweep and not by_name["dhcp"].seen[0].sweep


def test_a_failed_manager_keeps_the_generation_unapplied() -> None:
    log: list[str] = []
    by_name = managers(log)
    by_name["l3"].ok = False
    bus = FakeBus()
    agent = Agent(CFG, bus, list(by_name.values()))
    assert not agent.sync_once()
    assert log == list(ORDER)  # the others still ran
    assert bus.sent("report_applied") == [] and not agent.synced


def test_a_new_generation_reaches_every_manager_and_another_schema_is_refused() -> None:
    log: list[str] = []
    by_name = managers(log)
    bus = FakeBus()
    agent = Agent(CFG, bus, list(by_name.values()))
    assert agent.sync_once()
    bus.generation, bus.intent = 2, intent_json(2)
    agent._need_fetch = True
    assert agent.sync_once() and agent.generation == 2
    assert by_name["l2"].intents[-1].ports[PORT].ips == ("10.0.0.2",)
    bus.generation, bus.intent = 3, intent_json(3, version=SCHEMA_VERSION + 1)
    agent._need_fetch = True
    with pytest.raises(IntentVersionError, match="schema version"):
        agent.sync_once()
    assert agent.generation == 2 and len(by_name["l2"].intents) == 2  # the intent in force stays


def test_an_unknown_manager_name_is_refused() -> None:
    with pytest.raises(ValueError, match="no place in the order"):
        Agent(CFG, FakeBus(), [FakeManager("ovs-dpdk", [])])


def test_wanted_is_clean_only_after_a_sweeping_pass_went_well() -> None:
    wanted: Wanted[int] = Wanted()
    synced: list[str] = []
    wanted.take({"a": 1})

    def sync_one(key: str, item: int) -> None:
        synced.append(key)

    def sweep(keep: set[str]) -> bool:
        return True

    log = logging.getLogger("test")
    assert wanted.reconcile("item", Step(sweep=False), sync_one, sweep, log) and wanted.dirty
    assert wanted.reconcile("item", Step(sweep=True), sync_one, sweep, log) and not wanted.dirty
    assert wanted.reconcile("item", Step(sweep=True), sync_one, sweep, log) and synced == ["a", "a"]
    wanted.take({"a": 1})  # the same part: still clean
    assert not wanted.dirty
    wanted.take({"a": 2, "b": 3})
    assert wanted.dirty

    def broken(key: str, item: int) -> None:
        if key == "a":
            raise OSError("dnsmasq would not start")
        synced.append(key)

    # One broken item: the others still go, and the whole part stays dirty for the next pass.
    assert not wanted.reconcile("item", Step(sweep=True), broken, sweep, log)
    assert synced[-1] == "b" and wanted.dirty


# -- the L2 manager against a fake kernel -------------------------------------
@dataclass(frozen=True)
class Link:
    name: str
    kind: str = "veth"
    master: str | None = None
    up: bool = True
    mtu: int = 1500
    alias: str = ""
    vxlan_id: int | None = None
    vxlan_local: str | None = None
    vxlan_proxy: bool | None = None


class FakeDriver:
    """Links in a dict; records what was asked."""

    def __init__(self, links: Mapping[str, Link] | None = None) -> None:
        self.state: dict[str, Link] = dict(links or {})
        self.ops: list[str] = []

    def links(self) -> Mapping[str, LinkLike]:
        return dict(self.state)

    def fdb(self, dev: str) -> set[tuple[str, str]]:
        return set()

    def neighbours(self, dev: str) -> set[tuple[str, str]]:
        return set()

    def ensure_bridge(self, name: str, mtu: int | None = None, alias: str | None = None,
                      netfilter: bool | None = None) -> None:
        self.ops.append(f"bridge {name}" + (f" netfilter={netfilter}" if netfilter is not None else ""))
        self.state[name] = Link(name, "bridge", alias=alias or "")

    def ensure_vxlan(self, name: str, vni: int, local_ip: str, dev: str | None, *, dstport: int = 4789,
                     learning: bool = False, proxy: bool = True, group: str | None = None,
                     mtu: int | None = None, alias: str | None = None) -> None:
        self.ops.append(f"vxlan {name}")
        self.state[name] = Link(name, "vxlan", mtu=mtu or 1500, alias=alias or "", vxlan_id=vni, vxlan_local=local_ip,
                                 vxlan_proxy=proxy)

    def set_master(self, dev: str, bridge: str | None) -> None:
        self.ops.append(f"master {dev} {bridge}")
        self.state[dev] = replace(self.state[dev], master=bridge)

    def set_up(self, dev: str, up: bool = True) -> None:
        self.state[dev] = replace(self.state[dev], up=up)

    def set_mtu(self, dev: str, mtu: int) -> None:
        self.state[dev] = replace(self.state[dev], mtu=mtu)

    def fdb_add(self, dev: str, mac: str, dst: str) -> None:
        pass

    def fdb_del(self, dev: str, mac: str, dst: str) -> None:
        pass

    def neigh_replace(self, dev: str, ip: str, mac: str) -> None:
        pass

    def neigh_del(self, dev: str, ip: str, mac: str) -> None:
        pass

    def delete_link(self, name: str, missing_ok: bool = True) -> None:
        self.state.pop(name, None)

    def watch(self, callback: Callable[[str, str], None]) -> Callable[[], None]:
        self.callback = callback
        return lambda: None

    def close(self) -> None:
        pass


def test_the_l2_manager_plugs_what_is_not_held_and_wakes_on_its_devices_only() -> None:
    driver = FakeDriver({"tapp1": Link("tapp1"), "tapp2": Link("tapp2")})
    l2 = LinuxBridgeManager(CFG, driver)
    net = NetworkIntent("brqn1", "vxlan", 7, None, 1450)
    ports = {p: PortIntent(NET, f"tap{p}", "fa:16:3e:00:00:01", (), True, "compute:nova") for p in ("p1", "p2")}
    l2.update(HostIntent("h1", {NET: net}, ports))
    outcome = l2.apply(Step(sweep=True, hold=frozenset({"p2"})))
    assert outcome.ok and outcome.ports == PortStatus(("p1",), ("p2",))
    assert driver.state["tapp1"].master == "brqn1" and driver.state["tapp2"].master is None
    assert l2.configurations()["devices"] == 2
    woken: list[bool] = []
    l2.watch(lambda: woken.append(True))
    driver.callback("new", "eth0")
    driver.callback("new", "tapx")
    assert woken == [True]
