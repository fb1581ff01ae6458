"""Neutron's policy defaults (secure RBAC), one table keyed by Neutron's rule
names: ``create_port:binding:host_id``, ``get_network:provider:segmentation_id``,
``update_port:mac_address`` ... The check strings are oslo.policy's language
and say what ``neutron/conf/policies/*.py`` say today (2024.1 and later:
admin, project member/reader, network owner, ``service`` role). A
``policy.yaml`` overrides any of them by name (:mod:`kaon.core.access.policy`).

Attribute rules (``<action>_<resource>:<attribute>``) are checked only for
attributes a request sets to something other than their default (on update:
every attribute it names); ``get_<resource>:<attribute>`` rules hide an
attribute from whoever fails them. Rules for sub-attributes of a list of
objects (``create_port:fixed_ips:ip_address``) are checked when any entry
carries that key.
"""

from __future__ import annotations

# Building blocks, as neutron/conf/policies/base.py names them.
ADMIN = "rule:admin_only"
SERVICE = "rule:service_api"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
ADMIN_OR_SERVICE = f"({ADMIN}) or ({SERVICE})"
ADMIN_OR_PROJECT_MEMBER = f"({ADMIN}) or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"({ADMIN}) or ({PROJECT_READER})"
NET_OWNER_MEMBER = "role:member and rule:network_owner"
NET_OWNER_READER = "role:reader and rule:network_owner"
ADMIN_OR_NET_OWNER_MEMBER = f"({ADMIN}) or ({NET_OWNER_MEMBER})"
SG_OWNER_MEMBER = "role:member and rule:sg_owner"
SG_OWNER_READER = "role:reader and rule:sg_owner"


def _or(*checks: str) -> str:
    return " or ".join(f"({c})" for c in checks)


# Neutron's admin, network owner or service check for port fields that touch
# the network's address space.
_NET_PRIVILEGED = _or(ADMIN, NET_OWNER_MEMBER, SERVICE)

BASE: tuple[tuple[str, str], ...] = (
    ("context_is_admin", "role:admin"),
    ("service_api", "role:service"),
    ("admin_only", "rule:context_is_admin"),
    ("regular_user", ""),
    ("owner", "tenant_id:%(tenant_id)s"),
    ("admin_or_owner", "rule:context_is_admin or rule:owner"),
    ("network_owner", "tenant_id:%(network:tenant_id)s"),
    ("admin_or_network_owner", "rule:context_is_admin or tenant_id:%(network:tenant_id)s"),
    ("sg_owner", "tenant_id:%(security_group:tenant_id)s"),
    ("shared", "field:networks:shared=True"),
    ("external", "field:networks:router:external=True"),
    ("network_device", "field:port:device_owner=~^network:"),
    ("shared_subnetpools", "field:subnetpools:shared=True"),
    ("shared_address_scopes", "field:address_scopes:shared=True"),
    ("default", "rule:admin_or_owner"),
)


def _crud(resource: str, get: str = ADMIN_OR_PROJECT_READER, write: str = ADMIN_OR_PROJECT_MEMBER,
          create: str | None = None, delete: str | None = None) -> tuple[tuple[str, str], ...]:
    return (
        (f"create_{resource}", create or write),
        (f"get_{resource}", get),
        (f"update_{resource}", write),
        (f"delete_{resource}", delete or write),
    )


NETWORK = (
    *_crud("network", get=_or(ADMIN_OR_PROJECT_READER, "rule:shared", "rule:external", SERVICE)),
    ("create_network:shared", ADMIN),
    ("create_network:router:external", ADMIN),
    ("create_network:is_default", ADMIN),
    ("create_network:segments", ADMIN),
    ("create_network:provider:network_type", ADMIN),
    ("create_network:provider:physical_network", ADMIN),
    ("create_network:provider:segmentation_id", ADMIN),
    ("get_network:router:external", "rule:regular_user"),
    ("get_network:segments", ADMIN),
    ("get_network:provider:network_type", ADMIN),
    ("get_network:provider:physical_network", ADMIN),
    ("get_network:provider:segmentation_id", ADMIN),
    ("update_network:shared", ADMIN),
    ("update_network:router:external", ADMIN),
    ("update_network:is_default", ADMIN),
    ("update_network:segments", ADMIN),
    ("update_network:provider:network_type", ADMIN),
    ("update_network:provider:physical_network", ADMIN),
    ("update_network:provider:segmentation_id", ADMIN),
)

SUBNET = (
    *_crud("subnet", get=_or(ADMIN_OR_PROJECT_READER, "rule:shared", SERVICE),
           write=_or(ADMIN_OR_NET_OWNER_MEMBER, SERVICE),
           create=_or(ADMIN_OR_NET_OWNER_MEMBER, SERVICE)),
    ("create_subnet:segment_id", ADMIN),
    ("create_subnet:service_types", ADMIN),
    ("get_subnet:segment_id", ADMIN),
    ("update_subnet:segment_id", ADMIN),
    ("update_subnet:service_types", ADMIN),
)

PORT = (
    ("create_port", _or(ADMIN_OR_PROJECT_MEMBER, SERVICE)),
    ("create_port:device_owner", _or("not rule:network_device", ADMIN, NET_OWNER_MEMBER, SERVICE)),
    ("create_port:mac_address", _NET_PRIVILEGED),
    ("create_port:fixed_ips", _or(ADMIN, NET_OWNER_MEMBER, SERVICE, "rule:shared")),
    ("create_port:fixed_ips:ip_address", _NET_PRIVILEGED),
    ("create_port:fixed_ips:subnet_id", _or(ADMIN, NET_OWNER_MEMBER, SERVICE, "rule:shared")),
    ("create_port:port_security_enabled", _NET_PRIVILEGED),
    ("create_port:binding:host_id", ADMIN_OR_SERVICE),
    ("create_port:binding:profile", ADMIN_OR_SERVICE),
    ("create_port:binding:vnic_type", _or(ADMIN_OR_PROJECT_MEMBER, SERVICE)),
    ("create_port:allowed_address_pairs", _NET_PRIVILEGED),
    ("create_port:allowed_address_pairs:mac_address", _NET_PRIVILEGED),
    ("create_port:allowed_address_pairs:ip_address", _NET_PRIVILEGED),
    ("get_port", _or(ADMIN_OR_PROJECT_READER, NET_OWNER_READER, SERVICE)),
    ("get_port:binding:vif_type", ADMIN_OR_SERVICE),
    ("get_port:binding:vif_details", ADMIN_OR_SERVICE),
    ("get_port:binding:host_id", ADMIN_OR_SERVICE),
    ("get_port:binding:profile", ADMIN_OR_SERVICE),
    # kaon's own read-only attribute (why binding failed): as binding:vif_type.
    ("get_port:binding:failure_reason", ADMIN_OR_SERVICE),
    ("update_port", _or(ADMIN_OR_PROJECT_MEMBER, SERVICE)),
    ("update_port:device_owner", _or("not rule:network_device", ADMIN, NET_OWNER_MEMBER, SERVICE)),
    ("update_port:mac_address", ADMIN_OR_SERVICE),
    ("update_port:fixed_ips", _NET_PRIVILEGED),
    ("update_port:fixed_ips:ip_address", _NET_PRIVILEGED),
    ("update_port:fixed_ips:subnet_id", _NET_PRIVILEGED),
    ("update_port:port_security_enabled", _NET_PRIVILEGED),
    ("update_port:binding:host_id", ADMIN_OR_SERVICE),
    ("update_port:binding:profile", ADMIN_OR_SERVICE),
    ("update_port:binding:vnic_type", _or(ADMIN_OR_PROJECT_MEMBER, SERVICE)),
    ("update_port:allowed_address_pairs", _NET_PRIVILEGED),
    ("update_port:allowed_address_pairs:mac_address", _NET_PRIVILEGED),
    ("update_port:allowed_address_pairs:ip_address", _NET_PRIVILEGED),
    ("delete_port", _or(ADMIN_OR_PROJECT_MEMBER, NET_OWNER_MEMBER, SERVICE)),
)

ROUTER = (
    *_crud("router"),
    ("create_router:external_gateway_info", ADMIN_OR_PROJECT_MEMBER),
    ("create_router:external_gateway_info:network_id", ADMIN_OR_PROJECT_MEMBER),
    ("create_router:external_gateway_info:enable_snat", ADMIN),
    ("create_router:external_gateway_info:external_fixed_ips", ADMIN),
    ("update_router:external_gateway_info", ADMIN_OR_PROJECT_MEMBER),
    ("update_router:external_gateway_info:network_id", ADMIN_OR_PROJECT_MEMBER),
    ("update_router:external_gateway_info:enable_snat", ADMIN),
    ("update_router:external_gateway_info:external_fixed_ips", ADMIN),
    # l3-ha: admin only to set and to read, as Neutron's.
    ("create_router:ha", ADMIN),
    ("get_router:ha", ADMIN),
    ("update_router:ha", ADMIN),
    ("add_router_interface", ADMIN_OR_PROJECT_MEMBER),
    ("remove_router_interface", ADMIN_OR_PROJECT_MEMBER),
    ("add_extraroutes", ADMIN_OR_PROJECT_MEMBER),
    ("remove_extraroutes", ADMIN_OR_PROJECT_MEMBER),
)

FLOATINGIP = (
    *_crud("floatingip"),
    # 2025.1: the project manager may pick its address too.
    ("create_floatingip:floating_ip_address", _or(ADMIN, "role:manager and project_id:%(project_id)s")),
)

SECURITY_GROUP = (
    *_crud("security_group"),
    ("create_security_group_rule", _or(ADMIN, SG_OWNER_MEMBER)),
    ("get_security_group_rule", _or(ADMIN_OR_PROJECT_READER, SG_OWNER_READER)),
    # kaon lets a rule's description change; Neutron has no update: as delete.
    ("update_security_group_rule", _or(ADMIN_OR_PROJECT_MEMBER, SG_OWNER_MEMBER)),
    ("delete_security_group_rule", _or(ADMIN_OR_PROJECT_MEMBER, SG_OWNER_MEMBER)),
    ("create_default_security_group_rule", ADMIN),
    ("get_default_security_group_rule", "rule:regular_user"),
    ("delete_default_security_group_rule", ADMIN),
)

RBAC = (
    *_crud("rbac_policy"),
    ("create_rbac_policy:target_tenant", _or(ADMIN, "not field:rbac_policy:target_tenant=*")),
    ("update_rbac_policy:target_tenant", _or(ADMIN, "not field:rbac_policy:target_tenant=*")),
)

POOLS = (
    *_crud("subnetpool", get=_or(ADMIN_OR_PROJECT_READER, "rule:shared_subnetpools")),
    ("create_subnetpool:shared", ADMIN),
    ("create_subnetpool:is_default", ADMIN),
    ("update_subnetpool:is_default", ADMIN),
    ("add_prefixes", ADMIN_OR_PROJECT_MEMBER),
    ("remove_prefixes", ADMIN_OR_PROJECT_MEMBER),
    ("onboard_network_subnets", ADMIN_OR_PROJECT_MEMBER),
    *_crud("address_scope", get=_or(ADMIN_OR_PROJECT_READER, "rule:shared_address_scopes")),
    ("create_address_scope:shared", ADMIN),
    ("update_address_scope:shared", ADMIN),
)

OPERATOR = (
    ("get_quota", ADMIN_OR_PROJECT_READER),
    ("update_quota", ADMIN),
    ("delete_quota", ADMIN),
    ("get_agent", ADMIN),
    ("update_agent", ADMIN),
    ("delete_agent", ADMIN),
    ("create_dhcp-network", ADMIN),
    ("get_dhcp-networks", ADMIN),
    ("delete_dhcp-network", ADMIN),
    ("create_l3-router", ADMIN),
    ("get_l3-routers", ADMIN),
    ("delete_l3-router", ADMIN),
    ("get_dhcp-agents", ADMIN),
    ("get_l3-agents", ADMIN),
    ("get_availability_zone", "rule:regular_user"),
    ("get_network_ip_availability", ADMIN),
    # kaon's own: the compiler's per-host generations (docs/design/agents.md).
    ("get_host_intents", ADMIN),
    ("get_doctor", ADMIN),
    ("get_trace", ADMIN),  # kaon trace (kaon/trace): every host's intent, every port
)

DEFAULTS: tuple[tuple[str, str], ...] = (
    *BASE, *NETWORK, *SUBNET, *PORT, *ROUTER, *FLOATINGIP, *SECURITY_GROUP, *RBAC, *POOLS, *OPERATOR,
)
