"""``/v2.0/extensions``: exactly the API extensions kaon implements.

Clients (tempest, Horizon, the CLI) switch features on these aliases, so an
alias is listed here only when its behaviour is implemented and tested.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kaon import errors
from kaon.api.responses import json_response

UPDATED = "2026-11-21T00:00:00-00:00"

# alias -> (name, description)
EXTENSIONS: dict[str, tuple[str, str]] = {
    "allowed-address-pairs": ("Allowed Address Pairs", "Provides allowed address pairs"),
    "empty-string-filtering": ("Empty String Filtering Extension", "Allow filtering by attributes with empty string value"),
    "external-net": ("Neutron external network", "Adds external network attribute to network resource."),
    "extra_dhcp_opt": ("Neutron Extra DHCP options", "Extra options configuration for DHCP."),
    "filter-validation": ("Filter parameters validation", "Provides validation on filter parameters."),
    "ip-substring-filtering": ("IP address substring filtering", "Provides IP address substring filtering when listing ports"),
    "multi-provider": ("Multi Provider Network", "Expose mapping of virtual networks to multiple physical networks"),
    "net-mtu": ("Network MTU", "Provides MTU attribute for a network resource."),
    "net-mtu-writable": ("Network MTU (writable)", "Provides a writable MTU attribute for a network resource."),
    "network-ip-availability": ("Network IP Availability", "Provides IP availability data for each network and subnet."),
    "pagination": ("Pagination support", "Extension that indicates that pagination is enabled."),
    "port-security": ("Port Security", "Provides port security"),
    "project-id": ("project_id field enabled", "Extension that indicates that project_id field is enabled."),
    "provider": ("Provider Network", "Expose mapping of virtual networks to physical networks"),
    "quotas": ("Quota management support", "Expose functions for quotas management per project"),
    "quota_details": ("Quota details management support", "Expose functions for quotas usage statistics per project"),
    "revision-if-match": ("If-Match constraints based on revision_number",
                          "Extension indicating that If-Match based on revision_number is supported."),
    "sorting": ("Sorting support", "Extension that indicates that sorting is enabled."),
    "standard-attr-description": ("standard-attr-description", "Extension to add descriptions to standard attributes"),
    "standard-attr-revisions": ("Resource revision numbers", "This extension will display the revision number of neutron resources."),
    "standard-attr-tag": ("Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip",
                          "Enables to set tag on resources with standard attribute."),
    "tag": ("Tag support", "Enables to set tag on resources."),
    "standard-attr-timestamp": ("Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
}


def add(alias: str, name: str, description: str) -> None:
    """Modules that implement an extension register its alias at import time."""
    EXTENSIONS[alias] = (name, description)


def _entry(alias: str) -> dict[str, object]:
    name, description = EXTENSIONS[alias]
    return {"alias": alias, "name": name, "description": description, "updated": UPDATED, "links": []}


def list_extensions(request: Request) -> Response:
    return json_response({"extensions": [_entry(a) for a in sorted(EXTENSIONS)]})


def show_extension(request: Request) -> Response:
    alias = request.path_params["alias"]
    if alias not in EXTENSIONS:
        raise errors.ExtensionNotFound(alias=alias)
    return json_response({"extension": _entry(alias)})


def routes() -> list[Route]:
    return [Route("/v2.0/extensions", list_extensions), Route("/v2.0/extensions/{alias}", show_extension)]
