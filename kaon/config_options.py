"""The options Neutron's services read, per file and section, and which of them kaon uses.

A declared table, not a guess: :mod:`kaon.config_check` reports against it
each option kaon reads but does not use (with the reason), each option
Neutron does not have, and each option written in a section or file where
Neutron would not read it. ``USED`` marks an option kaon acts on; any other
value is the reason kaon reads past it. Sources: Neutron's ``neutron/conf``
option modules and the install guide's files (seed 003), as summarised in
/work/shared/reference/neutron.md.
"""

from __future__ import annotations

from collections.abc import Mapping

USED = ""

NEUTRON_CONF = "neutron.conf"
ML2_CONF = "ml2_conf.ini"
LINUXBRIDGE = "linuxbridge_agent.ini"
OPENVSWITCH = "openvswitch_agent.ini"
DHCP_AGENT = "dhcp_agent.ini"
L3_AGENT = "l3_agent.ini"
METADATA_AGENT = "metadata_agent.ini"
# Options only kaon has; valid in whichever file carries them (kaon up's kaon.conf, a lab host's ini).
KAON = "kaon"

_NO_NOVA = "kaon has no Nova notifier (ports become ACTIVE without telling Nova)"
_ML2_ONLY = "kaon is ML2 with its own service plugins built in"
_OSLO_LOG = "kaon logs to standard error (oslo.log options are not read)"
_NO_RPC_TUNING = "kaon's bus has its own timeouts"
_NO_LOCKS = "kaon takes no external file locks"
_HA = "kaon has no HA or DVR routers"

_LOGGING = {o: _OSLO_LOG for o in ("debug", "verbose", "log_dir", "log_file", "use_syslog", "use_stderr",
                                    "log_config_append", "syslog_log_facility", "use_journal")}

_DEFAULT_SERVER: dict[str, str] = {
    **{o: USED for o in (
        "bind_host", "bind_port", "state_path", "auth_strategy", "api_workers", "base_mac",
        "mac_generation_retries", "allow_overlapping_ips", "max_dns_nameservers", "max_subnet_host_routes",
        "max_allowed_address_pair", "global_physnet_mtu", "pagination_max_limit", "filter_validation",
        "agent_down_time", "dhcp_agents_per_network", "network_auto_schedule", "router_auto_schedule",
        "allow_automatic_dhcp_failover", "default_availability_zones", "transport_url", "host", "dns_domain",
        "ipv6_pd_enabled", "enable_snat_by_default", "allow_bulk", "dhcp_lease_duration",
        "dnsmasq_dns_servers", "enable_isolated_metadata", "force_metadata",
        # HTTP limits (docs/design/limits.md): Neutron's names where it has them.
        "client_socket_timeout", "max_header_line")},
    "core_plugin": _ML2_ONLY,
    "service_plugins": _ML2_ONLY,
    "notify_nova_on_port_status_changes": _NO_NOVA,
    "notify_nova_on_port_data_changes": _NO_NOVA,
    "send_events_interval": _NO_NOVA,
    "rpc_workers": "kaon's server answers agents from one bus listener",
    "rpc_state_report_workers": "kaon's server answers agents from one bus listener",
    "rpc_response_timeout": _NO_RPC_TUNING,
    "control_exchange": _NO_RPC_TUNING,
    "api_paste_config": "kaon's API is not a paste pipeline",
    "router_distributed": _HA,
    "l3_ha": _HA,
    "max_l3_agents_per_router": _HA,
    "network_scheduler_driver": "kaon schedules networks to the least loaded DHCP agent",
    "router_scheduler_driver": "kaon schedules routers to the least loaded L3 agent",
    "allow_pagination": "kaon always paginates",
    "allow_sorting": "kaon always sorts",
    "my_ip": "kaon binds to bind_host",
    "vlan_transparent": "kaon has no VLAN-transparent networks",
    **_LOGGING,
}

_AGENT_COMMON: dict[str, str] = {
    "report_interval": USED,
    "availability_zone": USED,
    "root_helper": "kaon's agent runs as root, without a root helper",
    "root_helper_daemon": "kaon's agent runs as root, without a root helper",
    "use_helper_for_ns_read": "kaon's agent runs as root, without a root helper",
    "log_agent_heartbeats": _OSLO_LOG,
}

_SECURITYGROUP: dict[str, str] = {
    "enable_security_group": USED,
    "firewall_driver": USED,
    "enable_ipset": "kaon's nftables sets play ipset's part",
}

TABLE: Mapping[str, Mapping[str, Mapping[str, str]]] = {
    NEUTRON_CONF: {
        "DEFAULT": _DEFAULT_SERVER,
        "database": {"connection": USED, "max_pool_size": "the pool is sized by kaon",
                     "max_overflow": "the pool is sized by kaon", "connection_recycle_time": "the pool is sized by kaon"},
        "keystone_authtoken": {"*": USED},  # handed to the Keystone adapter whole (auth_strategy = keystone)
        "nova": {"*": _NO_NOVA},
        "oslo_concurrency": {"lock_path": _NO_LOCKS},
        "oslo_messaging_rabbit": {"*": "kaon's RabbitMQ bus reads only [DEFAULT] transport_url"},
        "oslo_messaging_notifications": {"*": "kaon sends no notifications"},
        "oslo_policy": {"*": "kaon's policy is built in"},
        "oslo_middleware": {"max_request_body_size": USED},
        "token": {"expiration": USED},
        "security_compliance": {"lockout_failure_attempts": USED, "lockout_duration": USED},
        "agent": _AGENT_COMMON,
        "quotas": {"*": USED},
    },
    ML2_CONF: {
        "ml2": {**{o: USED for o in ("type_drivers", "tenant_network_types", "project_network_types",
                                     "mechanism_drivers", "extension_drivers", "path_mtu",
                                     "physical_network_mtus", "external_network_type", "overlay_ip_version")}},
        "ml2_type_flat": {"flat_networks": USED},
        "ml2_type_vlan": {"network_vlan_ranges": USED},
        "ml2_type_vxlan": {"vni_ranges": USED, "vxlan_group": USED},
        "ml2_type_gre": {"tunnel_id_ranges": USED},
        "ml2_type_geneve": {"vni_ranges": USED, "max_header_size": USED},
        "securitygroup": _SECURITYGROUP,
    },
    LINUXBRIDGE: {
        "linux_bridge": {"physical_interface_mappings": USED, "bridge_mappings": USED},
        "vxlan": {"enable_vxlan": USED, "local_ip": USED, "l2_population": USED, "vxlan_group": USED,
                  "ttl": "kaon's VXLAN devices use the kernel's default TTL",
                  "tos": "kaon's VXLAN devices use the kernel's default TOS",
                  "arp_responder": "with l2_population kaon's VXLAN devices answer ARP, and flood it on a "
                                   "network with allowed address pairs they cannot answer for"},
        "agent": {**_AGENT_COMMON, "polling_interval": "kaon's agent is told of changes; it does not poll",
                  "extensions": "kaon's agent has no L2 extensions (QoS ...)"},
        "securitygroup": _SECURITYGROUP,
    },
    OPENVSWITCH: {
        "ovs": {**{o: USED for o in ("bridge_mappings", "integration_bridge", "tunnel_bridge", "local_ip",
                                     "datapath_type", "ovsdb_connection")},
                "of_interface": "kaon programs flows with ovs-ofctl bundles (docs/design/ovs.md)",
                "of_inactivity_probe": "kaon keeps no OpenFlow controller connection (ovs-ofctl per change)",
                "int_peer_patch_port": "kaon names the patch ports patch-tun/patch-int, Neutron's defaults",
                "tun_peer_patch_port": "kaon names the patch ports patch-tun/patch-int, Neutron's defaults"},
        "agent": {**_AGENT_COMMON, **{o: USED for o in ("tunnel_types", "l2_population", "arp_responder",
                                                         "vxlan_udp_port")},
                  "enable_distributed_routing": _HA,
                  "polling_interval": "kaon's agent is told of changes and watches OVSDB; it does not poll",
                  "extensions": "kaon's agent has no L2 extensions (QoS ...)"},
        "securitygroup": _SECURITYGROUP,
    },
    DHCP_AGENT: {
        "DEFAULT": {"interface_driver": USED,
                    "dhcp_driver": "kaon's DHCP role always runs dnsmasq",
                    "enable_isolated_metadata": USED, "force_metadata": USED, "enable_metadata_network": USED,
                    "dnsmasq_dns_servers": USED, "dhcp_lease_duration": USED,
                    "dnsmasq_config_file": "kaon writes dnsmasq's whole configuration",
                    "resync_interval": USED, "num_sync_threads": "kaon's agent applies one plan at a time",
                    **_LOGGING},
        "agent": _AGENT_COMMON,
    },
    L3_AGENT: {
        "DEFAULT": {"interface_driver": USED,
                    "external_network_bridge": "deprecated in Neutron; kaon plugs the gateway port like any other",
                    "agent_mode": _HA, "ha_confs_path": _HA, "ha_vrrp_auth_password": _HA,
                    "handle_internal_only_routers": "kaon's L3 role serves every router scheduled to it",
                    **_LOGGING},
        "agent": {**_AGENT_COMMON, "extensions": "kaon's L3 role has no extensions"},
    },
    METADATA_AGENT: {
        "DEFAULT": {"nova_metadata_host": USED, "nova_metadata_port": USED, "metadata_proxy_shared_secret": USED,
                    "nova_metadata_protocol": "kaon's proxy speaks http to the metadata service",
                    "metadata_workers": "kaon runs one proxy process per router and per isolated network",
                    "metadata_proxy_socket": "kaon's proxies forward to the metadata service themselves", **_LOGGING},
        "agent": {**_AGENT_COMMON, "nova_metadata_host": USED, "nova_metadata_port": USED,
                  "metadata_proxy_shared_secret": USED},
    },
    KAON: {
        "DEFAULT": {"public_url": USED, "request_head_timeout": USED, "max_connections_per_client": USED},
        "agent": {"namespace": USED, "namespace_prefix": USED, "roles": USED, "resync_interval": USED,
                  "host": USED},
        # kaon's metadata service (no Nova): Nova's own option name for the secret.
        "neutron": {"metadata_proxy_shared_secret": USED, "*": "a nova.conf section; kaon reads only "
                    "metadata_proxy_shared_secret from it"},
        "metadata": {"serve": USED},
        "securitygroup": {"netfilter_all_bridges": USED},
    },
}

# Neutron's file names (plugin.ini is the install guide's link to ml2_conf.ini).
FILE_KINDS: Mapping[str, str] = {
    "neutron.conf": NEUTRON_CONF, "ml2_conf.ini": ML2_CONF, "plugin.ini": ML2_CONF,
    "linuxbridge_agent.ini": LINUXBRIDGE, "openvswitch_agent.ini": OPENVSWITCH,
    "ovs_neutron_plugin.ini": OPENVSWITCH, "dhcp_agent.ini": DHCP_AGENT, "l3_agent.ini": L3_AGENT,
    "metadata_agent.ini": METADATA_AGENT,
}


# Names Quantum-era files use (seeds 002 and 004) -> (section, option, file) of today's Neutron.
RENAMED: Mapping[str, tuple[str, str, str]] = {
    "tenant_network_type": ("ml2", "tenant_network_types", ML2_CONF),
}


def places(option: str) -> list[tuple[str, str]]:
    """Every (file, section) where Neutron (or kaon) reads ``option`` by name."""
    return [(kind, section) for kind, sections in TABLE.items()
            for section, options in sections.items() if option in options]
