"""What dnsmasq gets for one network (pure): its files and its command line.

From one network of the intent's ``dhcp`` (a kaon.model.intent.DhcpNetwork), in
Neutron's formats (neutron/agent/linux/dhcp.py), so an operator who knows
those files recognises them:

* ``host`` (``--dhcp-hostsfile``): ``<mac>,<hostname>.<domain>,<ip>``, with
  ``set:port-<id>`` when the port has extra DHCP options;
* ``addn_hosts``: ``<ip>\\t<fqdn> <hostname>`` for DNS;
* ``opts`` (``--dhcp-optsfile``): per subnet (tag ``subnet-<id>``) the router,
  DNS servers and classless static routes (option 121, and 249 for old
  Windows clients) — host routes, the isolated-metadata route via the DHCP
  port's address, and the default route, which clients that take option 121
  no longer read from option 3; per port its extra options.

IPv6 subnets, as Neutron's driver serves them (router advertisements are
not dnsmasq's: the router's radvd sends them, kaon.agent.l3_plan):

* ``dhcpv6-stateful`` (or neither mode set): a ``static`` range over the
  prefix, and per port ``<mac>,<hostname>.<domain>,[<v6>]``: dnsmasq leases
  exactly the port's fixed IP to the MAC asking;
* ``dhcpv6-stateless``: the same range, which only answers
  Information-Requests (DNS, domain search); hosts listed only to tag
  their extra options;
* ``slaac``: nothing (the address comes from the RA's prefix);
* prefixes longer than /64 are left out, as Neutron does.

What changes in files is a SIGHUP (leases kept); what changes the command
line (a subnet's range, the MTU, the interface) is a restart.
"""

from __future__ import annotations

import netaddr

from kaon.model.intent import DhcpNetwork, DhcpSubnet

DOMAIN = "openstacklocal"
METADATA_IP = "169.254.169.254"
DHCP_DRIVER = "neutron.agent.linux.dhcp.Dnsmasq"
LEASE_MAX = 2 ** 24  # Neutron's dnsmasq_lease_max: a /64 would otherwise ask for 2^64
STATEFUL, STATELESS, SLAAC = "dhcpv6-stateful", "dhcpv6-stateless", "slaac"


def v6_mode(subnet: DhcpSubnet) -> str | None:
    """How dnsmasq serves an IPv6 subnet: "stateful", "stateless" or None (not at all)."""
    if not subnet.enable_dhcp or netaddr.IPNetwork(subnet.cidr).prefixlen > 64:
        return None
    mode = subnet.ipv6_address_mode
    if mode == STATELESS:
        return "stateless"
    # Neither mode set: Neutron keeps its old behaviour, a stateful range.
    return "stateful" if mode in (STATEFUL, None) else None


def ns_cidrs(net: DhcpNetwork) -> set[str]:
    """The addresses of the DHCP port's ``ns-`` device (metadata's when isolated)."""
    cidrs = set(net.port.cidrs)
    if net.isolated_metadata:
        cidrs.add(f"{METADATA_IP}/32")
    return cidrs


def host_file(net: DhcpNetwork) -> str:
    v6 = {sub.id: v6_mode(sub) for sub in net.subnets if sub.ip_version == 6}
    lines = []
    for h in net.hosts:
        tag = f"set:port-{h.port_id}," if h.extra_dhcp_opts else ""
        if h.subnet_id not in v6:
            lines.append(f"{h.mac},{tag}{h.hostname}.{DOMAIN},{h.ip}")
        elif v6[h.subnet_id] == "stateful":
            lines.append(f"{h.mac},{tag}{h.hostname}.{DOMAIN},[{h.ip}]")
        elif v6[h.subnet_id] == "stateless" and tag:
            lines.append(f"{h.mac},{tag[:-1]}")  # no address to give: only the tag for its options
    return "".join(line + "\n" for line in dict.fromkeys(lines))


def addn_hosts_file(net: DhcpNetwork) -> str:
    return "".join(f"{h.ip}\t{h.hostname}.{DOMAIN} {h.hostname}\n" for h in net.hosts)


def _routes(subnet: DhcpSubnet, port_ip: str | None) -> list[tuple[str, str]]:
    routes = [(r.destination, r.nexthop) for r in subnet.host_routes]
    if subnet.isolated and port_ip:
        routes.append((f"{METADATA_IP}/32", port_ip))
    if subnet.gateway_ip and not any(d == "0.0.0.0/0" for d, _ in routes):
        routes.append(("0.0.0.0/0", subnet.gateway_ip))
    return routes


def opts_file(net: DhcpNetwork) -> str:
    lines = []
    port_ips = net.port.ips
    for s in net.subnets:
        if s.ip_version != 4 or not s.enable_dhcp:
            continue
        tag = f"tag:subnet-{s.id}"
        if s.gateway_ip:
            lines.append(f"{tag},option:router,{s.gateway_ip}")
        else:
            lines.append(f"{tag},option:router")  # no gateway: tell clients there is none
        if s.dns_nameservers:
            lines.append(f"{tag},option:dns-server,{','.join(s.dns_nameservers)}")
        routes = _routes(s, port_ips.get(s.id))
        if len(routes) > 1 or (routes and routes[0][0] != "0.0.0.0/0"):
            flat = ",".join(f"{d},{n}" for d, n in routes)
            lines.append(f"{tag},option:classless-static-route,{flat}")
            lines.append(f"{tag},249,{flat}")
    lines += _v6_opts(net)
    for h in net.hosts:
        for opt in h.extra_dhcp_opts:
            name = opt.opt_name
            prefix = "option:" if opt.ip_version == 4 else "option6:"
            key = name if name.isdigit() or name.startswith(prefix) else f"{prefix}{name}"
            lines.append(f"tag:port-{h.port_id},{key},{opt.opt_value}")
    return "".join(line + "\n" for line in dict.fromkeys(lines))


def _v6_opts(net: DhcpNetwork) -> list[str]:
    """DNS servers and domain search for the IPv6 subnets dnsmasq answers on."""
    lines = []
    for s in net.subnets:
        if s.ip_version != 6 or v6_mode(s) is None:
            continue
        tag = f"tag:subnet-{s.id}"
        if s.dns_nameservers:
            lines.append(f"{tag},option6:dns-server,{','.join(f'[{d}]' for d in s.dns_nameservers)}")
        lines.append(f"{tag},option6:domain-search,{DOMAIN}")
    return lines


def command(net: DhcpNetwork, files: dict[str, str], user: str | None = None) -> list[str]:
    """dnsmasq's arguments (without the binary); ``files``: name -> path; ``user`` to run as."""
    args = [*([f"--user={user}"] if user else []), "--no-hosts", "--no-resolv", "--conf-file=/dev/null", "--except-interface=lo",
            f"--pid-file={files['pid']}", f"--dhcp-hostsfile={files['host']}",
            f"--addn-hosts={files['addn_hosts']}", f"--dhcp-optsfile={files['opts']}",
            f"--dhcp-leasefile={files['leases']}", f"--log-facility={files['log']}",
            f"--interface={net.port.device}", "--bind-interfaces", "--dhcp-authoritative",
            f"--domain={DOMAIN}"]
    size = 0
    for s in net.subnets:
        cidr = netaddr.IPNetwork(s.cidr)
        if s.ip_version == 4 and s.enable_dhcp:
            mask = str(cidr.netmask)
        elif s.ip_version == 6 and v6_mode(s) is not None:
            mask = str(cidr.prefixlen)
        else:
            continue
        size += cidr.size
        args.append(f"--dhcp-range=set:subnet-{s.id},{cidr.network},static,{mask},{net.lease_duration}s")
    args.append(f"--dhcp-lease-max={min(max(size, 16), LEASE_MAX)}")
    args.append(f"--dhcp-option-force=option:mtu,{net.mtu}")
    args.extend(f"--server={server}" for server in net.dns_servers)
    return args
