"""The agent resource (extensions ``agent``, ``availability_zone``) and the
``availability_zone`` listing resource.

Agents are registered by their own state reports, never by POST; an admin may
only change ``admin_state_up`` and ``description``. Every attribute is
admin-only: the service shows nothing to anybody else (an empty list, 404 on
an item), as Neutron's policy does.
"""

from __future__ import annotations

from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource

AGENT = Resource(
    "agent",
    "agents",
    (
        Attr("id", convert=v.uuid_str),
        Attr("agent_type"),
        Attr("binary"),
        Attr("topic"),
        Attr("host"),
        Attr("admin_state_up", put=True, convert=v.boolean, filter_convert=v.boolean),
        Attr("created_at", filter=False),
        Attr("started_at", filter=False),
        Attr("heartbeat_timestamp", filter=False),
        Attr("alive", filter_convert=v.boolean, sort=False),
        Attr("configurations", filter=False, sort=False),
        Attr("description", put=True, convert=v.string_or_none(255)),
        Attr("availability_zone"),
        Attr("resources_synced", filter_convert=v.boolean, sort=False),
    ),
)

AVAILABILITY_ZONE = Resource(
    "availability_zone",
    "availability_zones",
    (
        Attr("name"),
        Attr("resource"),
        Attr("state"),
    ),
)
