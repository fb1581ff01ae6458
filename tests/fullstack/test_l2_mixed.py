"""A mixed cloud: one Linux bridge host and one Open vSwitch host on one VXLAN network.

Neutron supports ML2 with both mechanism drivers and l2population: each host's agent learns the
other's VTEP from the server and the VMs reach each other over VXLAN, kernel VXLAN device on one
side, OVS's userspace tunnel port on the other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("mixed"), hosts=2,
               mechanism={"h1": "linuxbridge", "h2": "openvswitch"}) as s:
        yield s


def test_linuxbridge_and_ovs_hosts_ping_over_one_vxlan_network(mixed: Stack) -> None:
    types = {a["host"]: a["agent_type"] for a in mixed.agents()}
    assert types == {"h1": "Linux bridge agent", "h2": "Open vSwitch agent"}
    net = mixed.network("mixed", "10.72.0.0/24", enable_dhcp=False)
    lb = mixed.vm("lb", "h1", net["id"], ip_address="10.72.0.11")
    ovs = mixed.vm("ovs", "h2", net["id"], ip_address="10.72.0.12")
    assert (mixed.port(lb["port_id"])["binding:vif_type"], mixed.port(ovs["port_id"])["binding:vif_type"]) == \
        ("bridge", "ovs")
    assert wait_for("lb -> ovs", lambda: mixed.ping("lb", "10.72.0.12"), timeout=15)
    assert wait_for("ovs -> lb", lambda: mixed.ping("ovs", "10.72.0.11"), timeout=15)
    # l2population on the Linux bridge side: a flood entry towards the OVS host's VTEP.
    vni = net["provider:segmentation_id"]
    assert mixed.flood_entries("h1", vni) == {mixed.lab.state()["hosts"]["h2"]["local_ip"]}  # type: ignore[index]
