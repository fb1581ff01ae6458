"""dnsmasq's files and command line for one network (kaon.agent.dhcp_plan)."""

from __future__ import annotations

from kaon.agent import dhcp_plan
from kaon.model.intent import DhcpNetwork
from kaon.model.typed_json import decode

FILES = {name: f"/s/{name}" for name in ("host", "addn_hosts", "opts", "leases", "pid", "log")}


def network(isolated: bool = False, routes: list[dict[str, str]] | None = None) -> DhcpNetwork:
    return decode(DhcpNetwork, {
        "port": {"port_id": "p", "device": "ns-p", "tap": "tapp", "mac": "fa:16:3e:00:00:02",
                 "cidrs": ["10.0.0.2/24"], "mtu": 1450, "ips": {"s1": "10.0.0.2"}},
        "subnets": [{"id": "s1", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.1",
                     "dns_nameservers": ["10.0.0.53"], "host_routes": routes or [], "enable_dhcp": True,
                     "isolated": isolated}],
        "hosts": [{"port_id": "vm", "mac": "fa:16:3e:00:00:05", "ip": "10.0.0.5", "subnet_id": "s1",
                   "hostname": "host-10-0-0-5", "extra_dhcp_opts": [{"opt_name": "domain-search",
                                                                   "opt_value": "example.org"}]}],
        "mtu": 1450, "isolated_metadata": isolated, "lease_duration": 600, "dns_servers": ["192.0.2.53"],
    })


def test_files() -> None:
    net = network()
    assert dhcp_plan.host_file(net) == "fa:16:3e:00:00:05,set:port-vm,host-10-0-0-5.openstacklocal,10.0.0.5\n"
    assert dhcp_plan.addn_hosts_file(net) == "10.0.0.5\thost-10-0-0-5.openstacklocal host-10-0-0-5\n"
    assert dhcp_plan.opts_file(net) == ("tag:subnet-s1,option:router,10.0.0.1\n"
                                        "tag:subnet-s1,option:dns-server,10.0.0.53\n"
                                        "tag:port-vm,option:domain-search,example.org\n")
    assert dhcp_plan.ns_cidrs(net) == {"10.0.0.2/24"}


def test_classless_routes_with_isolated_metadata_and_host_routes() -> None:
    net = network(isolated=True, routes=[{"destination": "10.9.0.0/16", "nexthop": "10.0.0.254"}])
    flat = "10.9.0.0/16,10.0.0.254,169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1"
    opts = dhcp_plan.opts_file(net)
    assert f"tag:subnet-s1,option:classless-static-route,{flat}\n" in opts
    assert f"tag:subnet-s1,249,{flat}\n" in opts
    assert dhcp_plan.ns_cidrs(net) == {"10.0.0.2/24", "169.254.169.254/32"}


def test_command_line() -> None:
    args = dhcp_plan.command(network(), FILES, user="root")
    assert args[0] == "--user=root"
    for arg in ("--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file=/s/pid", "--interface=ns-p",
                "--bind-interfaces", "--dhcp-authoritative", "--dhcp-optsfile=/s/opts",
                "--dhcp-range=set:subnet-s1,10.0.0.0,static,255.255.255.0,600s",
                "--dhcp-option-force=option:mtu,1450", "--server=192.0.2.53"):
        assert arg in args, arg


def v6_network(mode: str | None, prefix: str = "2001:db8:1::/64") -> DhcpNetwork:
    """A dual-stack network: an IPv4 subnet and one IPv6 subnet in ``mode``."""
    v6 = {"id": "s6", "cidr": prefix, "ip_version": 6, "gateway_ip": "2001:db8:1::1",
          "dns_nameservers": ["2001:db8::53"], "host_routes": [], "enable_dhcp": True, "isolated": False}
    if mode:
        v6["ipv6_address_mode"] = mode
    raw = {
        "port": {"port_id": "p", "device": "ns-p", "tap": "tapp", "mac": "fa:16:3e:00:00:02",
                 "cidrs": ["10.0.0.2/24", "2001:db8:1::2/64"], "mtu": 1450,
                 "ips": {"s1": "10.0.0.2", "s6": "2001:db8:1::2"}},
        "subnets": [{"id": "s1", "cidr": "10.0.0.0/24", "ip_version": 4, "gateway_ip": "10.0.0.1",
                     "dns_nameservers": [], "host_routes": [], "enable_dhcp": True, "isolated": False}, v6],
        "hosts": [{"port_id": "vm", "mac": "fa:16:3e:00:00:05", "ip": "10.0.0.5", "subnet_id": "s1",
                   "hostname": "host-10-0-0-5"},
                  {"port_id": "vm", "mac": "fa:16:3e:00:00:05", "ip": "2001:db8:1::5", "subnet_id": "s6",
                   "hostname": "host-2001-db8-1--5",
                   "extra_dhcp_opts": [{"opt_name": "ntp-server", "opt_value": "[2001:db8::123]",
                                        "ip_version": 6}]}],
        "mtu": 1450, "isolated_metadata": False, "lease_duration": 600, "dns_servers": [],
    }
    return decode(DhcpNetwork, raw)


def test_dhcpv6_stateful_leases_the_fixed_ip_to_the_mac() -> None:
    net = v6_network("dhcpv6-stateful")
    assert dhcp_plan.host_file(net) == (
        "fa:16:3e:00:00:05,host-10-0-0-5.openstacklocal,10.0.0.5\n"
        "fa:16:3e:00:00:05,set:port-vm,host-2001-db8-1--5.openstacklocal,[2001:db8:1::5]\n")
    args = dhcp_plan.command(net, FILES)
    assert "--dhcp-range=set:subnet-s6,2001:db8:1::,static,64,600s" in args
    assert "--dhcp-range=set:subnet-s1,10.0.0.0,static,255.255.255.0,600s" in args
    assert f"--dhcp-lease-max={2 ** 24}" in args  # not 2^64
    opts = dhcp_plan.opts_file(net)
    assert "tag:subnet-s6,option6:dns-server,[2001:db8::53]\n" in opts
    assert "tag:subnet-s6,option6:domain-search,openstacklocal\n" in opts
    assert "tag:port-vm,option6:ntp-server,[2001:db8::123]\n" in opts
    assert "option:router,2001" not in opts  # IPv6 has no DHCP router option: that is the RA's


def test_no_modes_set_is_stateful_as_in_neutron() -> None:
    assert "[2001:db8:1::5]" in dhcp_plan.host_file(v6_network(None))


def test_dhcpv6_stateless_answers_information_requests_only() -> None:
    net = v6_network("dhcpv6-stateless")
    hosts = dhcp_plan.host_file(net)
    assert "2001:db8:1::5" not in hosts  # no address to lease
    assert "fa:16:3e:00:00:05,set:port-vm\n" in hosts  # but its options' tag
    assert "--dhcp-range=set:subnet-s6,2001:db8:1::,static,64,600s" in dhcp_plan.command(net, FILES)
    assert "tag:subnet-s6,option6:dns-server,[2001:db8::53]\n" in dhcp_plan.opts_file(net)


def test_slaac_is_not_served_by_dnsmasq() -> None:
    net = v6_network("slaac")
    assert "2001:db8" not in dhcp_plan.host_file(net)
    assert not any("subnet-s6" in a for a in dhcp_plan.command(net, FILES))
    assert "subnet-s6" not in dhcp_plan.opts_file(net)


def test_a_prefix_longer_than_64_is_left_out() -> None:
    net = v6_network("dhcpv6-stateful", prefix="2001:db8:1::/80")
    assert not any("subnet-s6" in a for a in dhcp_plan.command(net, FILES))
    assert "2001:db8:1::5" not in dhcp_plan.host_file(net)
