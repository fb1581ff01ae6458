"""What dnsmasq gets for one network (pure): its files and its command line.

From one network of ``intent["dhcp"]`` (kaon.compiler.dhcp_section), in
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

What changes in files is a SIGHUP (leases kept); what changes the command
line (a subnet's range, the MTU, the interface) is a restart.
"""

from __future__ import annotations

from typing import Any

import netaddr

DOMAIN = "openstacklocal"
METADATA_IP = "169.254.169.254"
DHCP_DRIVER = "neutron.agent.linux.dhcp.Dnsmasq"


def ns_cidrs(net: dict[str, Any]) -> set[str]:
    """The addresses of the DHCP port's ``ns-`` device (metadata's when isolated)."""
    cidrs = set(net["port"]["cidrs"])
    if net.get("isolated_metadata"):
        cidrs.add(f"{METADATA_IP}/32")
    return cidrs


def host_file(net: dict[str, Any]) -> str:
    lines = []
    for h in net["hosts"]:
        if h["ip"].count(":"):
            continue  # IPv4 only for now
        tag = f"set:port-{h['port_id']}," if h.get("extra_dhcp_opts") else ""
        lines.append(f"{h['mac']},{tag}{h['hostname']}.{DOMAIN},{h['ip']}")
    return "".join(line + "\n" for line in lines)


def addn_hosts_file(net: dict[str, Any]) -> str:
    return "".join(f"{h['ip']}\t{h['hostname']}.{DOMAIN} {h['hostname']}\n" for h in net["hosts"])


def _routes(subnet: dict[str, Any], port_ip: str | None) -> list[tuple[str, str]]:
    routes = [(r["destination"], r["nexthop"]) for r in subnet.get("host_routes") or []]
    if subnet.get("isolated") and port_ip:
        routes.append((f"{METADATA_IP}/32", port_ip))
    if subnet.get("gateway_ip") and not any(d == "0.0.0.0/0" for d, _ in routes):
        routes.append(("0.0.0.0/0", subnet["gateway_ip"]))
    return routes


def opts_file(net: dict[str, Any]) -> str:
    lines = []
    port_ips = net["port"].get("ips") or {}
    for s in net["subnets"]:
        if s["ip_version"] != 4 or not s["enable_dhcp"]:
            continue
        tag = f"tag:subnet-{s['id']}"
        if s.get("gateway_ip"):
            lines.append(f"{tag},option:router,{s['gateway_ip']}")
        else:
            lines.append(f"{tag},option:router")  # no gateway: tell clients there is none
        if s.get("dns_nameservers"):
            lines.append(f"{tag},option:dns-server,{','.join(s['dns_nameservers'])}")
        routes = _routes(s, port_ips.get(s["id"]))
        if len(routes) > 1 or (routes and routes[0][0] != "0.0.0.0/0"):
            flat = ",".join(f"{d},{n}" for d, n in routes)
            lines.append(f"{tag},option:classless-static-route,{flat}")
            lines.append(f"{tag},249,{flat}")
    for h in net["hosts"]:
        for opt in h.get("extra_dhcp_opts") or []:
            if int(opt.get("ip_version", 4)) != 4:
                continue
            name = str(opt["opt_name"])
            key = name if name.isdigit() or name.startswith("option:") else f"option:{name}"
            lines.append(f"tag:port-{h['port_id']},{key},{opt['opt_value']}")
    return "".join(line + "\n" for line in dict.fromkeys(lines))


def command(net: dict[str, Any], files: dict[str, str], user: str | None = None) -> list[str]:
    """dnsmasq's arguments (without the binary); ``files``: name -> path; ``user`` to run as."""
    args = [*([f"--user={user}"] if user else []), "--no-hosts", "--no-resolv", "--conf-file=/dev/null", "--except-interface=lo",
            f"--pid-file={files['pid']}", f"--dhcp-hostsfile={files['host']}",
            f"--addn-hosts={files['addn_hosts']}", f"--dhcp-optsfile={files['opts']}",
            f"--dhcp-leasefile={files['leases']}", f"--log-facility={files['log']}",
            f"--interface={net['port']['device']}", "--bind-interfaces", "--dhcp-authoritative",
            f"--domain={DOMAIN}"]
    size = 0
    for s in net["subnets"]:
        if s["ip_version"] != 4 or not s["enable_dhcp"]:
            continue
        cidr = netaddr.IPNetwork(s["cidr"])
        size += cidr.size
        args.append(f"--dhcp-range=set:subnet-{s['id']},{cidr.network},static,{cidr.netmask},"
                    f"{int(net['lease_duration'])}s")
    args.append(f"--dhcp-lease-max={max(size, 16)}")
    args.append(f"--dhcp-option-force=option:mtu,{int(net['mtu'])}")
    args.extend(f"--server={server}" for server in net.get("dns_servers") or [])
    return args
