"""The OVS manager's adapter from the typed host intent to the planner's input (pure)."""

from __future__ import annotations

from kaon.agent.ovs_manager import ovs_intent, plugged
from kaon.agent.ovs_plan import OvsNetwork, OvsPeer, OvsPort
from kaon.dataplane.ovsdb import ObservedPort
from kaon.model.intent import HostIntent, NetworkIntent, PeerPort, PortIntent


def seen(name: str, bridge: str = "br-int", ofport: int | None = 5, iface_id: str | None = None) -> ObservedPort:
    return ObservedPort(name=name, bridge=bridge, type="", ofport=ofport, tag=None, options={},
                        iface_external_ids={"iface-id": iface_id} if iface_id else {}, own=False, error=None)


INTENT = HostIntent("h1", networks={
    "n1": NetworkIntent("brq-n1", "vxlan", 1001, None, 1450, {
        "10.0.0.2": (PeerPort("fa:16:3e:00:00:02", ("10.1.0.2", "fd00::2")), PeerPort("fa:16:3e:00:00:03")),
    }),
    "n2": NetworkIntent("brq-n2", "vlan", 100, "default", 1500),
}, ports={
    "p1": PortIntent("n1", "tapp1", "fa:16:3e:00:00:01", ("10.1.0.1",), True, "compute:nova"),
    "p2": PortIntent("n2", "tapp2", "fa:16:3e:00:01:01", (), True, "compute:nova"),
    "p3": PortIntent("n2", "tapp3", "fa:16:3e:00:01:02", (), False, "compute:nova"),
    "p4": PortIntent("n1", "tapp4", "fa:16:3e:00:00:04", (), True, "compute:nova"),
})


def test_ports_are_found_by_iface_id_then_by_name_on_the_integration_bridge_only() -> None:
    observed = {
        "vm-renamed": seen("vm-renamed", iface_id="p1"),  # os-vif's iface-id wins over the name
        "tapp2": seen("tapp2"),
        "tapp3": seen("tapp3"),
        "tapp4": seen("tapp4", bridge="br-ex"),  # not on br-int: not plugged
        "tapx": seen("tapx", ofport=-1, iface_id="p9"),  # ofport -1: not there
    }
    assert plugged(observed, "br-int", INTENT) == {"p1": "vm-renamed", "p2": "tapp2", "p3": "tapp3"}
    assert plugged({"tapp2": seen("tapp2", ofport=None)}, "br-int", INTENT) == {}


def test_planner_input_holds_admin_down_and_held_ports_unbound_and_expands_peers() -> None:
    got = ovs_intent(INTENT, {"p1": "vm-renamed", "p2": "tapp2", "p3": "tapp3"}, hold={"p2"})
    assert got.networks == (OvsNetwork("n1", "vxlan", 1001, None), OvsNetwork("n2", "vlan", 100, "default"))
    assert got.ports == (
        OvsPort("p1", "n1", "fa:16:3e:00:00:01", "vm-renamed", bound=True),
        OvsPort("p2", "n2", "fa:16:3e:00:01:01", "tapp2", bound=False),  # held by the firewall
        OvsPort("p3", "n2", "fa:16:3e:00:01:02", "tapp3", bound=False),  # admin down
    )  # p4 is not plugged: not planned (a tag or flow naming a missing port would fail)
    assert got.peers == (OvsPeer("n1", "10.0.0.2", (
        ("fa:16:3e:00:00:02", "10.1.0.2"), ("fa:16:3e:00:00:02", "fd00::2"), ("fa:16:3e:00:00:03", None))),)
