"""The rbac_policy resource (rbac-policies, rbac-security-groups).

A policy grants ``target_tenant`` (a project, or ``*`` for everybody)
``action`` on one object. Which actions an object type allows, and who may
grant them, is the service's business (:mod:`kaon.core.access.rbac`).
"""

from __future__ import annotations

from typing import Any

from kaon import errors
from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource, project_attrs

SHARED = "access_as_shared"
EXTERNAL = "access_as_external"
WILDCARD = "*"

# object type -> the actions it allows (Neutron's order in its messages)
ACTIONS: dict[str, tuple[str, ...]] = {
    "network": (EXTERNAL, SHARED),
    "security_group": (SHARED,),
}

RbacPolicyNotFound = errors.define("RbacPolicyNotFound", errors.NotFound,
                                   "RBAC policy of type {object_type} with ID {id} not found")
RbacPolicyInUse = errors.define(
    "RbacPolicyInUse", errors.Conflict,
    "RBAC policy on object {object_id} cannot be removed because other objects depend on it.\n"
    "Details: {details}")
DuplicateRbacPolicy = errors.define("DuplicateRbacPolicy", errors.Conflict,
                                    "An RBAC policy already exists with those values.")
InvalidActionForType = errors.define(
    "InvalidActionForType", errors.InvalidInput,
    "Invalid action '{action}' for object type '{object_type}'. Valid actions: {valid_actions}")


def object_type(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in ACTIONS:
        return value.strip().lower()
    raise errors.InvalidInput(error_message=f"'{value}' is not a valid RBAC object type")


RBAC_POLICY = Resource(
    "rbac_policy",
    "rbac_policies",
    (
        Attr("id", convert=v.uuid_str),
        *project_attrs(),
        Attr("object_type", post=True, required=True, convert=object_type),
        Attr("object_id", post=True, required=True, convert=v.uuid_str),
        Attr("action", post=True, required=True, convert=v.string(255)),
        Attr("target_tenant", post=True, put=True, required=True, convert=v.string(255)),
    ),
)
