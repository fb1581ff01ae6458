"""The service layer: one transaction per request, no HTTP.

A folder per concept, so a newcomer finds "routers" or "security groups" in
one place:

* ``l2/``        networks, subnets, IPAM, ports (the port pipeline, rows, rendering)
* ``l3/``        routers, router interfaces, floating IPs, L3 port hosts
* ``security/``  security groups, rules, the default group
* ``access/``    the policy table and its enforcement, RBAC policies
* ``agents/``    agents, scheduling, DHCP ports, the snapshot, compiled intents, diagnostics
* ``pools/``     subnet pools, prefix allocation, address scopes

Left at the top are the pieces every concept uses: the request context, list
queries and paging, standard attributes, tags and quotas.
"""
