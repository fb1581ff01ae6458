"""kaon.dataplane against the real kernel, inside throwaway namespaces (root).

Each test makes its own namespaces through the ``make_netns`` fixture (unique
prefix per run, removed by exact name at teardown) and never touches the root
namespace's interfaces.  "No-op" checks are strict: a repeated call must not
raise, must leave ``links()`` equal, and must not make the kernel emit a
single link event.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from kaon.dataplane import DataplaneError, LinkNotFound, NamespaceNotFound, NetlinkError, netns
from kaon.dataplane.features import probe_features
from kaon.dataplane.linux_l2 import LinuxL2
from tests.fixtures import require
from tests.fixtures.netns import NetnsPool

pytestmark = pytest.mark.needs_root

FLOOD = "00:00:00:00:00:00"


@pytest.fixture
def ns(make_netns: NetnsPool) -> str:
    require(os.geteuid() == 0, "needs root: creates network namespaces")
    return make_netns("l2")


@pytest.fixture
def l2(ns: str) -> Iterator[LinuxL2]:
    with LinuxL2(ns) as obj:
        yield obj


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


class Events:
    """Collects watch() callbacks; wait_for() polls until a condition holds."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def __call__(self, event: str, name: str) -> None:
        with self._lock:
            self.seen.append((event, name))

    def wait_for(self, cond: Callable[[list[tuple[str, str]]], bool], timeout: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if cond(list(self.seen)):
                    return True
            time.sleep(0.01)
        return False


def assert_noop(l2: LinuxL2, call: Callable[[], object]) -> None:
    """``call()`` must not raise, change links(), or cause a single link event."""
    before = l2.links()
    events = Events()
    stop = l2.watch(events)
    try:
        call()
        # A marker change we make ourselves: once its event arrives, any event
        # caused by call() (sent earlier on the same socket) has arrived too.
        l2.ensure_bridge("zzmark")
        assert events.wait_for(lambda seen: ("add", "zzmark") in seen)
    finally:
        stop()
        l2.delete_link("zzmark")
    first_marker = events.seen.index(("add", "zzmark"))
    assert events.seen[:first_marker] == [], "a repeated call changed the kernel"
    assert l2.links() == before


# ------------------------------------------------------------------ namespaces
def test_netns_create_exists_list_delete(netns_prefix: str) -> None:
    require(os.geteuid() == 0, "needs root: creates network namespaces")
    name = f"{netns_prefix}nsapi"
    try:
        assert not netns.exists(name)
        netns.create(name)
        netns.create(name)  # idempotent
        assert netns.exists(name)
        assert name in netns.list_names(netns_prefix)
        assert "lo" in ip("-n", name, "-br", "link")  # iproute2 sees it too
        inside = netns.run_in(name, lambda: os.stat("/proc/thread-self/ns/net").st_ino)
        assert inside == os.stat(netns.path(name)).st_ino
        assert os.stat("/proc/thread-self/ns/net").st_ino != inside  # the caller never moved
    finally:
        netns.delete(name)
    assert not netns.exists(name)
    assert name not in netns.list_names(netns_prefix)
    netns.delete(name)  # missing_ok
    with pytest.raises(NamespaceNotFound):
        netns.delete(name, missing_ok=False)
    with pytest.raises(NamespaceNotFound):
        netns.run_in(name, lambda: None)
    with pytest.raises(NamespaceNotFound):
        LinuxL2(name)


def test_run_in_propagates_exceptions(ns: str) -> None:
    def boom() -> None:
        raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        netns.run_in(ns, boom)


# ------------------------------------------------------------------ links
def _nf_call(ns: str, bridge: str) -> tuple[int, int]:
    import json

    data = json.loads(ip("-n", ns, "-d", "-j", "link", "show", bridge))[0]["linkinfo"]["info_data"]
    return data["nf_call_iptables"], data["nf_call_ip6tables"]


def test_bridge_netfilter_switches(ns: str, l2: LinuxL2) -> None:
    l2.ensure_bridge("brqnf", netfilter=True)  # made with them on
    assert _nf_call(ns, "brqnf") == (1, 1)
    l2.set_bridge_netfilter("brqnf", False)
    assert _nf_call(ns, "brqnf") == (0, 0)
    l2.ensure_bridge("brqnf", netfilter=True)  # an existing bridge converges
    assert _nf_call(ns, "brqnf") == (1, 1)
    l2.ensure_bridge("brqplain")
    assert _nf_call(ns, "brqplain") == (0, 0)
    with pytest.raises(LinkNotFound):
        l2.set_bridge_netfilter("brqnone", True)


def test_bridge(l2: LinuxL2) -> None:
    l2.ensure_bridge("brqtest", mtu=1450, alias="kaon:l2")
    link = l2.links()["brqtest"]
    assert (link.kind, link.up, link.mtu, link.alias, link.master) == ("bridge", True, 1450, "kaon:l2", None)
    assert l2.link("brqtest") == link
    assert_noop(l2, lambda: l2.ensure_bridge("brqtest", mtu=1450, alias="kaon:l2"))
    assert_noop(l2, lambda: l2.ensure_bridge("brqtest"))  # None = leave as is

    l2.set_up("brqtest", False)
    l2.ensure_bridge("brqtest", mtu=1400, alias="other")  # converges an existing bridge
    link = l2.links()["brqtest"]
    assert (link.up, link.mtu, link.alias) == (True, 1400, "other")

    l2.delete_link("brqtest")
    assert "brqtest" not in l2.links()
    assert l2.link("brqtest") is None
    l2.delete_link("brqtest")  # missing_ok
    with pytest.raises(LinkNotFound):
        l2.delete_link("brqtest", missing_ok=False)


def test_ensure_refuses_a_name_of_another_kind(l2: LinuxL2) -> None:
    l2.ensure_veth("notabr", "notabrp")
    with pytest.raises(DataplaneError, match="not a bridge"):
        l2.ensure_bridge("notabr")
    assert l2.links()["notabr"].kind == "veth"


def test_veth_with_peer_in_another_namespace(l2: LinuxL2, make_netns: NetnsPool) -> None:
    other = make_netns("peer")
    l2.ensure_veth("tapx", "eth0", other, mtu=1450)
    link = l2.links()["tapx"]
    assert (link.kind, link.up, link.mtu) == ("veth", True, 1450)
    with LinuxL2(other) as there:
        peer = there.links()["eth0"]
        assert (peer.kind, peer.mtu, peer.up) == ("veth", 1450, False)
    assert "eth0" not in l2.links()
    assert_noop(l2, lambda: l2.ensure_veth("tapx", "eth0", other, mtu=1450))
    l2.delete_link("tapx")
    with LinuxL2(other) as there:
        assert "eth0" not in there.links()  # a veth pair dies together
    with pytest.raises(NamespaceNotFound):
        l2.ensure_veth("tapy", "eth0", f"{other}-missing")


def test_kernel_errors_carry_the_kernels_words(l2: LinuxL2) -> None:
    l2.ensure_bridge("brk")
    with pytest.raises(NetlinkError) as err:
        l2.set_mtu("brk", 70000)  # above the bridge's maximum
    assert err.value.errno == errno.EINVAL
    assert "mtu" in err.value.detail  # the extended ack: "mtu greater than device maximum"
    assert "brk" in str(err.value) and err.value.detail in str(err.value)


def test_one_object_many_threads(l2: LinuxL2) -> None:
    l2.ensure_bridge("brt")
    errors: list[BaseException] = []

    def plug(t: int) -> None:
        try:
            for i in range(25):
                l2.ensure_veth(f"t{t}x{i}", f"p{t}x{i}", up=False)
                l2.set_master(f"t{t}x{i}", "brt")
                l2.set_up(f"t{t}x{i}")
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=plug, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    links = l2.links()
    plugged = [x for x in links.values() if x.name.startswith("t") and x.master == "brt" and x.up]
    assert len(plugged) == 100


def test_set_master_up_mtu(l2: LinuxL2) -> None:
    l2.ensure_bridge("brm")
    l2.ensure_veth("tapm", "tapmp", up=False)
    assert l2.links()["tapm"].up is False

    l2.set_master("tapm", "brm")
    l2.set_up("tapm")
    l2.set_mtu("tapm", 1400)
    link = l2.links()["tapm"]
    assert (link.master, link.up, link.mtu) == ("brm", True, 1400)
    assert l2.link("tapm") == link  # single-link read resolves the master too
    assert_noop(l2, lambda: (l2.set_master("tapm", "brm"), l2.set_up("tapm"), l2.set_mtu("tapm", 1400)))

    l2.set_master("tapm", None)
    l2.set_up("tapm", False)
    link = l2.links()["tapm"]
    assert (link.master, link.up) == (None, False)
    assert_noop(l2, lambda: (l2.set_master("tapm", None), l2.set_up("tapm", False)))

    with pytest.raises(LinkNotFound):
        l2.set_master("nosuchdev", "brm")
    with pytest.raises(LinkNotFound):
        l2.set_master("tapm", "nosuchbr")
    with pytest.raises(LinkNotFound):
        l2.set_up("nosuchdev")
    with pytest.raises(LinkNotFound):
        l2.set_mtu("nosuchdev", 1400)


def test_vxlan_create_read_noop_recreate(l2: LinuxL2) -> None:
    l2.ensure_veth("eth0", "eth0p")
    ip("-n", l2.netns or "", "addr", "add", "10.99.0.1/24", "dev", "eth0")
    l2.ensure_vxlan("vxlan-1001", 1001, "10.99.0.1", "eth0", mtu=1450, alias="kaon:l2")
    link = l2.links()["vxlan-1001"]
    assert (link.kind, link.vxlan_id, link.vxlan_local, link.vxlan_group) == (
        "vxlan",
        1001,
        "10.99.0.1",
        None,
    )
    assert (link.up, link.mtu, link.alias) == (True, 1450, "kaon:l2")
    details = ip("-d", "-n", l2.netns or "", "link", "show", "vxlan-1001")
    assert "dstport 4789" in details and "nolearning" in details and "proxy" in details
    assert link.vxlan_proxy is True
    assert_noop(
        l2, lambda: l2.ensure_vxlan("vxlan-1001", 1001, "10.99.0.1", "eth0", mtu=1450, alias="kaon:l2")
    )

    l2.ensure_vxlan("vxlan-1001", 1002, "10.99.0.1", "eth0", alias="kaon:l2")  # new VNI: recreated
    again = l2.links()["vxlan-1001"]
    assert again.vxlan_id == 1002 and again.index != link.index and again.up and again.alias == "kaon:l2"

    l2.ensure_vxlan("vxlan-1001", 1002, "10.99.0.1", "eth0", group="239.1.1.2")  # new group: recreated
    assert l2.links()["vxlan-1001"].vxlan_group == "239.1.1.2"

    l2.ensure_vxlan("vxlan-1001", 1002, "10.99.0.1", None, learning=True)  # no underlay dev, learning
    assert "nolearning" not in ip("-d", "-n", l2.netns or "", "link", "show", "vxlan-1001")

    l2.ensure_vxlan("vxlan-1001", 1002, "10.99.0.1", None, learning=True, proxy=False)  # ARP floods: recreated
    assert l2.links()["vxlan-1001"].vxlan_proxy is False
    assert " proxy " not in ip("-d", "-n", l2.netns or "", "link", "show", "vxlan-1001")

    with pytest.raises(LinkNotFound):
        l2.ensure_vxlan("vxlan-9", 9, "10.99.0.1", "nosuchdev")
    l2.delete_link("vxlan-1001")
    l2.delete_link("vxlan-1001")
    assert "vxlan-1001" not in l2.links()


# ------------------------------------------------------------------ FDB and neighbours
@pytest.fixture
def vxlan(l2: LinuxL2) -> str:
    l2.ensure_bridge("brqf")
    l2.ensure_vxlan("vxlan-7", 7, "10.99.1.1", None)
    l2.set_master("vxlan-7", "brqf")
    return "vxlan-7"


def test_fdb(l2: LinuxL2, vxlan: str) -> None:
    assert l2.fdb(vxlan) == set()
    l2.fdb_add(vxlan, FLOOD, "10.99.1.2")
    l2.fdb_add(vxlan, FLOOD, "10.99.1.3")  # appended, not replaced
    l2.fdb_add(vxlan, "fa:16:3e:00:00:04", "10.99.1.2")
    want = {(FLOOD, "10.99.1.2"), (FLOOD, "10.99.1.3"), ("fa:16:3e:00:00:04", "10.99.1.2")}
    assert l2.fdb(vxlan) == want
    shown = subprocess.run(
        ["bridge", "-n", l2.netns or "", "fdb", "show", "dev", vxlan], capture_output=True, text=True
    ).stdout
    assert f"{FLOOD} dst 10.99.1.3 self permanent" in shown

    l2.fdb_add(vxlan, FLOOD, "10.99.1.3")  # again: no duplicate, no error
    l2.fdb_add(vxlan, "fa:16:3e:00:00:04", "10.99.1.2")
    assert l2.fdb(vxlan) == want

    l2.fdb_add(vxlan, "fa:16:3e:00:00:04", "10.99.1.3")  # a unicast MAC that moved host
    assert ("fa:16:3e:00:00:04", "10.99.1.3") in l2.fdb(vxlan)
    assert ("fa:16:3e:00:00:04", "10.99.1.2") not in l2.fdb(vxlan)

    l2.fdb_del(vxlan, FLOOD, "10.99.1.2")
    assert l2.fdb(vxlan) == {(FLOOD, "10.99.1.3"), ("fa:16:3e:00:00:04", "10.99.1.3")}
    l2.fdb_del(vxlan, FLOOD, "10.99.1.2")  # missing: no error
    with pytest.raises(LinkNotFound):
        l2.fdb("nosuchdev")


def test_neighbours(l2: LinuxL2, vxlan: str) -> None:
    assert l2.neighbours(vxlan) == set()
    l2.neigh_replace(vxlan, "192.168.7.5", "fa:16:3e:00:00:05")
    l2.neigh_replace(vxlan, "192.168.7.6", "FA:16:3E:00:00:06")
    want = {("192.168.7.5", "fa:16:3e:00:00:05"), ("192.168.7.6", "fa:16:3e:00:00:06")}
    assert l2.neighbours(vxlan) == want
    assert "PERMANENT" in ip("-n", l2.netns or "", "neigh", "show", "dev", vxlan)
    l2.neigh_replace(vxlan, "192.168.7.5", "fa:16:3e:00:00:05")  # again
    assert l2.neighbours(vxlan) == want

    l2.neigh_del(vxlan, "192.168.7.5", "fa:16:3e:00:00:99")  # another port's MAC: kept
    assert l2.neighbours(vxlan) == want
    l2.neigh_del(vxlan, "192.168.7.5", "fa:16:3e:00:00:05")
    assert l2.neighbours(vxlan) == {("192.168.7.6", "fa:16:3e:00:00:06")}
    l2.neigh_del(vxlan, "192.168.7.5", "fa:16:3e:00:00:05")  # missing: no error


# ------------------------------------------------------------------ events
def test_watch_in_named_namespace(l2: LinuxL2) -> None:
    events = Events()
    stop = l2.watch(events)
    try:
        l2.ensure_bridge("brw")
        l2.ensure_veth("vethw", "vethwp")
        assert events.wait_for(lambda s: ("add", "vethw") in s and ("add", "brw") in s)
        l2.set_master("vethw", "brw")
        l2.set_master("vethw", None)  # the bridge-port DELLINK must not read as "del"
        ip("-n", l2.netns or "", "link", "set", "vethwp", "name", "vethwq")
        assert events.wait_for(lambda s: ("add", "vethwq") in s)
        assert ("del", "vethwp") in events.seen  # the old name of a renamed device
        assert ("del", "vethw") not in events.seen
        l2.delete_link("vethw")
        assert events.wait_for(lambda s: ("del", "vethw") in s and ("del", "vethwq") in s)
    finally:
        stop()
    stop()  # idempotent
    count = len(events.seen)
    l2.ensure_bridge("brw2")
    time.sleep(0.1)
    assert len(events.seen) == count  # stopped means stopped
    assert threading.current_thread() is threading.main_thread()


def test_watch_callback_errors_do_not_stop_it(l2: LinuxL2) -> None:
    events = Events()

    def flaky(event: str, name: str) -> None:
        events(event, name)
        raise RuntimeError("callback bug")

    stop = l2.watch(flaky)
    try:
        l2.ensure_bridge("bre1")
        l2.ensure_bridge("bre2")
        assert events.wait_for(lambda s: ("add", "bre2") in s)
    finally:
        stop()


# ------------------------------------------------------------------ features
VLAN_DETAIL = (
    "802.1Q VLAN devices are not supported by this kernel (ip link add ... type vlan: Unknown device type)"
)


def _vlan_supported() -> bool:
    return os.path.isdir("/proc/net/vlan") or os.path.isdir("/sys/module/8021q")


def test_probe_features_in_named_namespace(l2: LinuxL2) -> None:
    before = set(l2.links())
    features = probe_features(l2.netns)
    assert features["bridge"] is True and features["vxlan"] is True and features["veth"] is True
    if _vlan_supported():
        assert features["vlan"] is True
    else:
        assert features["vlan"] is False
        assert features["vlan_detail"] == VLAN_DETAIL
    assert set(l2.links()) == before  # the throwaway devices are gone


def test_probe_features_in_throwaway_namespace() -> None:
    require(os.geteuid() == 0, "needs root: creates network namespaces")
    features = probe_features(None)
    assert features["vxlan"] is True
    assert netns.list_names(f"kaon-probe-{os.getpid()}-") == []


# ------------------------------------------------------------------ two hosts, one VXLAN
def _host(make_netns: NetnsPool, underlay: LinuxL2, n: int) -> tuple[str, LinuxL2]:
    host = make_netns(f"h{n}")
    underlay.ensure_veth(f"ul-h{n}", "eth0", host)
    underlay.set_master(f"ul-h{n}", "br-ul")
    l2 = LinuxL2(host)
    l2.set_up("lo")
    l2.set_up("eth0")
    ip("-n", host, "addr", "add", f"10.99.20.{n}/24", "dev", "eth0")
    l2.ensure_bridge("brq-net1", alias="kaon:l2")
    l2.ensure_vxlan("vxlan-1001", 1001, f"10.99.20.{n}", "eth0", alias="kaon:l2")
    l2.set_master("vxlan-1001", "brq-net1")
    return host, l2


def _vm(make_netns: NetnsPool, l2: LinuxL2, n: int) -> str:
    vm = make_netns(f"vm{n}")
    l2.ensure_veth(f"tap-vm{n}", "eth0", vm, mtu=1450)
    l2.set_master(f"tap-vm{n}", "brq-net1")
    ip("-n", vm, "link", "set", "eth0", "address", f"fa:16:3e:00:01:0{n}", "up")
    ip("-n", vm, "addr", "add", f"192.168.101.{n}/24", "dev", "eth0")
    return vm


def test_two_hosts_ping_across_vxlan(make_netns: NetnsPool) -> None:
    """dataplane.md section 1 (l2population with ARP answered locally), built through LinuxL2."""
    require(os.geteuid() == 0, "needs root: creates network namespaces")
    with LinuxL2(make_netns("ul")) as underlay:
        underlay.ensure_bridge("br-ul")
        (h1, l2a), (h2, l2b) = _host(make_netns, underlay, 1), _host(make_netns, underlay, 2)
    try:
        vm1, _vm2 = _vm(make_netns, l2a, 1), _vm(make_netns, l2b, 2)
        for here, peer_vtep, peer in ((l2a, "10.99.20.2", 2), (l2b, "10.99.20.1", 1)):
            here.fdb_add("vxlan-1001", FLOOD, peer_vtep)
            here.fdb_add("vxlan-1001", f"fa:16:3e:00:01:0{peer}", peer_vtep)
            here.neigh_replace("vxlan-1001", f"192.168.101.{peer}", f"fa:16:3e:00:01:0{peer}")
        ok = any(
            subprocess.run(
                ["ip", "netns", "exec", vm1, "ping", "-c1", "-W1", "192.168.101.2"], capture_output=True
            ).returncode
            == 0
            for _ in range(3)
        )
        assert ok, f"no ping across VXLAN; h1 fdb: {l2a.fdb('vxlan-1001')}, h2 fdb: {l2b.fdb('vxlan-1001')}"
        assert l2a.links()["tap-vm1"].master == "brq-net1"
        assert {h1, h2} <= set(netns.list_names())
    finally:
        l2a.close()
        l2b.close()
