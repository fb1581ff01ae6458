"""Device and namespace names (kaon.model.names): Neutron's spellings, within Linux's limit."""

import pytest

from kaon.model import names

PORT = "3d2a325a-b0c1-4f6e-9a7b-0123456789ab"


def test_uuid_devices_keep_eleven_characters():
    assert names.tap(PORT) == "tap3d2a325a-b0"
    assert names.bridge(PORT) == "brq3d2a325a-b0"
    assert names.router_interface(PORT) == "qr-3d2a325a-b0"
    assert names.router_gateway(PORT) == "qg-3d2a325a-b0"
    assert names.dhcp_interface(PORT) == "ns-3d2a325a-b0"
    assert all(len(n) == 14 for n in (names.tap(PORT), names.bridge(PORT)))


def test_other_devices_and_namespaces():
    assert names.vxlan(16777215) == "vxlan-16777215"
    assert names.vlan("eth1", 100) == "eth1.100"
    assert names.dhcp_namespace(PORT) == f"qdhcp-{PORT}"
    assert names.router_namespace(PORT, "lab1-") == f"lab1-qrouter-{PORT}"


def test_ovs_veths_are_cut_with_a_hash_when_too_long():
    assert names.int_veth("br-ex") == "int-br-ex"
    assert names.phy_veth("br-ex") == "phy-br-ex"
    a, b = names.int_veth("br-provider-one"), names.int_veth("br-provider-two")
    assert len(a) == len(b) == names.DEVICE_NAME_MAX_LEN and a != b and a.startswith("int-br-p")


def test_a_prefix_too_long_for_the_limit_is_refused():
    with pytest.raises(ValueError, match="longer than 15"):
        names.device("toolongprefix", PORT)
