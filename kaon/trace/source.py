"""Read a :class:`~kaon.trace.world.World` from the database, in the caller's read transaction.

The intents are the stored ones (``host_intents``): what each host's agent
was last given, so the trace says what the data plane was told to do. The
labels come from a handful of SELECTs over ports, networks, subnets,
routers, agents and security group rules, whatever the size of the cloud.
"""

from __future__ import annotations

from collections import defaultdict

import netaddr
from sqlalchemy import Connection, Engine, select

from kaon.compiler.firewall_section import set_name
from kaon.db.agent_tables import agents
from kaon.db.core_tables import ip_allocations, network_rbacs, networks, ports, subnets
from kaon.db.engine import read_txn
from kaon.db.intent_tables import host_intents
from kaon.db.l3_tables import routers
from kaon.db.sg_tables import security_group_rules
from kaon.model.intent import FirewallRule, HostIntent, IntentError
from kaon.model.security_group import canonical_protocol, proto_number
from kaon.trace.engine import trace
from kaon.trace.model import Query, Trace
from kaon.trace.world import NetworkInfo, PortInfo, World


def trace_in(engine: Engine, query: Query) -> Trace:
    """Read the world and trace ``query`` through it (the CLI's and the API's entry point)."""
    with read_txn(engine) as conn:
        world = read_world(conn)
    return trace(world, query)


def read_world(conn: Connection) -> World:
    intents: dict[str, HostIntent] = {}
    for host, data in conn.execute(select(host_intents.c.host, host_intents.c.intent)):
        try:
            intents[host] = HostIntent.from_json(data)
        except IntentError:
            continue  # an intent of another schema: its host is traced as having nothing
    return World(intents, _ports(conn), _networks(conn),
                 {i: n for i, n in conn.execute(select(routers.c.id, routers.c.name))},
                 _vteps(conn), _rule_ids(conn))


def _ports(conn: Connection) -> dict[str, PortInfo]:
    ips: dict[str, list[str]] = defaultdict(list)
    for port_id, ip in conn.execute(select(ip_allocations.c.port_id, ip_allocations.c.ip_address)):
        ips[port_id].append(ip)
    return {r.id: PortInfo(r.id, r.name, r.network_id, r.mac_address, tuple(sorted(ips.get(r.id, ()))),
                           r.device_owner, r.device_id, r.binding_host_id, r.binding_vif_type, r.binding_failure)
            for r in conn.execute(select(ports.c.id, ports.c.name, ports.c.network_id, ports.c.mac_address,
                                         ports.c.device_owner, ports.c.device_id, ports.c.binding_host_id,
                                         ports.c.binding_vif_type, ports.c.binding_failure))}


def _networks(conn: Connection) -> dict[str, NetworkInfo]:
    external = set(conn.execute(select(network_rbacs.c.object_id)
                                .where(network_rbacs.c.action == "access_as_external")).scalars())
    by_net: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for net_id, cidr, gateway in conn.execute(select(subnets.c.network_id, subnets.c.cidr, subnets.c.gateway_ip)
                                              .order_by(subnets.c.created_at, subnets.c.id)):
        by_net[net_id].append((cidr, gateway))
    return {i: NetworkInfo(i, name, i in external, tuple(by_net.get(i, ())))
            for i, name in conn.execute(select(networks.c.id, networks.c.name))}


def _vteps(conn: Connection) -> dict[str, str]:
    out: dict[str, str] = {}
    for host, conf in conn.execute(select(agents.c.host, agents.c.configurations)):
        ip = (conf or {}).get("tunneling_ip")
        if ip:
            out[host] = ip
    return out


def _rule_ids(conn: Connection) -> dict[tuple[str, FirewallRule], tuple[str, ...]]:
    """Each group's rules keyed as kaon.compiler.firewall_section compiles them, with the same
    normalisation as kaon.core.agents.snapshot (protocol number, prefix as its network)."""
    R = security_group_rules
    out: dict[tuple[str, FirewallRule], list[str]] = defaultdict(list)
    for r in conn.execute(select(R).where(R.c.remote_address_group_id.is_(None)).order_by(R.c.id)):
        prefix = None if r.remote_ip_prefix is None else str(netaddr.IPNetwork(r.remote_ip_prefix).cidr)
        rule = FirewallRule(r.direction, r.ethertype, proto_number(canonical_protocol(r.protocol, r.ethertype)),
                            r.port_range_min, r.port_range_max, prefix,
                            set_name(r.remote_group_id, r.ethertype) if r.remote_group_id else None)
        out[(r.security_group_id, rule)].append(r.id)
    return {k: tuple(v) for k, v in out.items()}
