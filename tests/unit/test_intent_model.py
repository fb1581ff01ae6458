"""The typed host intent (kaon.model.intent): its JSON form, read back with checks that name the place."""

from __future__ import annotations

from typing import Any

import pytest

from kaon.model.intent import (
    SCHEMA_VERSION,
    FirewallIntent,
    FirewallPort,
    HostIntent,
    IntentError,
    IntentVersionError,
    NetworkIntent,
    PortIntent,
)


def raw() -> dict[str, Any]:
    return {"version": SCHEMA_VERSION, "host": "h1",
            "networks": {"n1": {"bridge": "brqn1", "network_type": "vlan", "segmentation_id": 100,
                                "physical_network": "physnet1", "mtu": 1500, "peers": {}}},
            "ports": {"p1": {"network_id": "n1", "device": "tapp1", "mac": "fa:16:3e:00:00:01", "ips": ["10.0.0.5"],
                             "admin_state_up": True, "device_owner": "compute:nova"}}}


def test_an_idle_host_has_the_smallest_intent() -> None:
    assert HostIntent("h3").to_json() == {"version": SCHEMA_VERSION, "host": "h3", "networks": {}, "ports": {}}


def test_round_trip_leaves_absent_sections_absent() -> None:
    intent = HostIntent.from_json(raw())
    assert intent.ports["p1"] == PortIntent("n1", "tapp1", "fa:16:3e:00:00:01", ("10.0.0.5",), True, "compute:nova")
    assert intent.networks["n1"] == NetworkIntent("brqn1", "vlan", 100, "physnet1", 1500)
    assert intent.to_json() == raw() and intent.firewall is None and intent.routers == {}


def test_a_port_without_port_security_has_three_fields() -> None:
    fw = FirewallIntent({"p1": FirewallPort("tapp1", "fa:16:3e:00:00:01", False)}, {}, {})
    out = HostIntent("h1", firewall=fw).to_json()
    assert out["firewall"]["ports"]["p1"] == {"device": "tapp1", "mac": "fa:16:3e:00:00:01", "port_security": False}


def test_another_schema_version_is_refused_with_a_clear_error() -> None:
    with pytest.raises(IntentVersionError, match="schema version 2; this agent reads version 1"):
        HostIntent.from_json({**raw(), "version": 2})
    with pytest.raises(IntentVersionError, match="schema version None"):
        HostIntent.from_json({"host": "h1"})


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["ports"]["p1"].update(ips=["10.0.0.5", 7]), r"intent\.ports\.p1\.ips\[1\]: expected str, got int"),
    (lambda r: r["ports"]["p1"].update(admin_state_up=1), r"intent\.ports\.p1\.admin_state_up: expected bool"),
    (lambda r: r["networks"]["n1"].pop("mtu"), r"intent\.networks\.n1: missing field mtu"),
    (lambda r: r["networks"]["n1"].update(vni=5), r"intent\.networks\.n1: unknown field\(s\) vni"),
    (lambda r: r.update(ports=[]), r"intent\.ports: expected an object, got list"),
])
def test_a_misshapen_intent_says_where(change: Any, message: str) -> None:
    bad = raw()
    change(bad)
    with pytest.raises(IntentError, match=message):
        HostIntent.from_json(bad)
