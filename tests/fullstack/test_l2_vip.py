"""A VIP (allowed address pairs, as keepalived uses them) on a two-host Linux bridge lab.

With l2population each host's VXLAN device answers ARP itself and drops what
it has no entry for, so a VIP held by a port on h2 is reachable from h1 only
if h1 has an entry for it (kaon.compiler.l2_section). Moving the VIP to
another port — the pairs of both ports updated, the address moved inside the
VMs — moves h1's entry, and the ping follows.

keepalived's way — the VIP on both ports' pairs, held by one VM at a time —
leaves no port to answer for it: the network's VXLAN devices stop answering
ARP and flood it (``flood_arp``), and a failover is the new holder's
gratuitous ARP, which now crosses to h1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fullstack.stack import Stack, stack, wait_for

pytestmark = pytest.mark.needs_root

VIP = "10.73.0.200"


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with stack(tmp_path_factory.mktemp("vip"), hosts=2) as s:
        yield s


def pairs(s: Stack, port_id: str, *ips: str) -> None:
    s.api("PUT", f"/v2.0/ports/{port_id}",
          {"port": {"allowed_address_pairs": [{"ip_address": ip} for ip in ips]}})


def vip_entry(s: Stack, vni: int) -> str:
    """h1's ARP responder entry for the VIP: the MAC its VXLAN device answers with, or ''."""
    out = s.host("h1", "ip", "neigh", "show", VIP, "dev", f"vxlan-{vni}")
    return out.split(" lladdr ")[1].split()[0] if " lladdr " in out else ""


def test_a_vip_on_another_host_answers_and_follows_its_port(two: Stack) -> None:
    net = two.network("vip", "10.73.0.0/24", enable_dhcp=False)
    vni = int(net["provider:segmentation_id"])
    two.vm("client", "h1", net["id"], ip_address="10.73.0.11")
    first = two.vm("first", "h2", net["id"], ip_address="10.73.0.12")
    second = two.vm("second", "h2", net["id"], ip_address="10.73.0.13")

    pairs(two, first["port_id"], VIP)
    two.lab.exec("first", ["ip", "addr", "add", f"{VIP}/24", "dev", "eth0"], check=True)
    two.wait_converged()
    assert vip_entry(two, vni) == first["mac"]
    assert wait_for("client -> VIP on first", lambda: two.ping("client", VIP), timeout=15)

    # The VIP moves to the other port: pairs first (as an operator does), then the address.
    pairs(two, first["port_id"])
    pairs(two, second["port_id"], VIP)
    two.lab.exec("first", ["ip", "addr", "del", f"{VIP}/24", "dev", "eth0"], check=True)
    two.lab.exec("second", ["ip", "addr", "add", f"{VIP}/24", "dev", "eth0"], check=True)
    two.wait_converged()
    assert vip_entry(two, vni) == second["mac"]
    # The client's cache still names first's MAC, and a gratuitous ARP from second would not
    # cross: the VXLAN device answers ARP and sends none over the tunnel. Its cache forgets the
    # entry when first stops answering (tens of seconds); forgetting it now asks at once.
    two.lab.exec("client", ["ip", "neigh", "flush", "dev", "eth0"], check=True)
    assert wait_for("client -> VIP on second", lambda: two.ping("client", VIP), timeout=15)
    mac = two.lab.exec("client", ["ip", "neigh", "show", VIP, "dev", "eth0"], capture=True, check=True).stdout
    assert second["mac"] in str(mac)


def answers_arp(s: Stack, vni: int) -> bool:
    return " proxy " in s.host("h1", "ip", "-d", "link", "show", f"vxlan-{vni}")


def test_a_vip_on_two_ports_fails_over_by_gratuitous_arp(two: Stack) -> None:
    net = two.network("keepalived", "10.74.0.0/24", enable_dhcp=False)
    vni = int(net["provider:segmentation_id"])
    vip = "10.74.0.200"
    two.vm("kclient", "h1", net["id"], ip_address="10.74.0.11")
    routers = [two.vm(name, "h2", net["id"], ip_address=ip) for name, ip in (("kr1", "10.74.0.12"),
                                                                            ("kr2", "10.74.0.13"))]
    two.wait_converged()
    assert answers_arp(two, vni)
    for router in routers:
        pairs(two, router["port_id"], vip)
    two.wait_converged()
    assert not answers_arp(two, vni) and two.host("h1", "ip", "neigh", "show", "dev", f"vxlan-{vni}").strip() == ""
    two.lab.exec("kr1", ["ip", "addr", "add", f"{vip}/24", "dev", "eth0"], check=True)
    assert wait_for("kclient -> VIP on kr1", lambda: two.ping("kclient", vip), timeout=15)

    # Failover as keepalived does it: the address moves, the new master announces it.
    two.lab.exec("kr1", ["ip", "addr", "del", f"{vip}/24", "dev", "eth0"], check=True)
    two.lab.exec("kr2", ["ip", "addr", "add", f"{vip}/24", "dev", "eth0"], check=True)

    def announced() -> bool:
        two.lab.exec("kr2", ["arping", "-U", "-c", "1", "-I", "eth0", vip])
        cache = two.lab.exec("kclient", ["ip", "neigh", "show", vip, "dev", "eth0"], capture=True).stdout
        return routers[1]["mac"] in str(cache)

    assert wait_for("kclient learns kr2's MAC for the VIP", announced, timeout=15, interval=0.5)
    assert wait_for("kclient -> VIP on kr2", lambda: two.ping("kclient", vip), timeout=15)
