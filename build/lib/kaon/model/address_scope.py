"""The address_scope resource (address-scope, rbac-address-scope).

Unlike most resources it has no standard attributes in Neutron: no
description, tags, timestamps or revision number.
"""

from __future__ import annotations

from typing import Any

from kaon import errors
from kaon.model import validators as v
from kaon.model.attrs import Attr, Resource, project_attrs

AddressScopeNotFound = errors.define(
    "AddressScopeNotFound", errors.NotFound, "Address scope {address_scope_id} could not be found.")
AddressScopeInUse = errors.define(
    "AddressScopeInUse", errors.InUse,
    "Unable to complete operation on address scope {address_scope_id}. There are one or more subnet pools in "
    "use on the address scope.")
AddressScopeUpdateError = errors.define(
    "AddressScopeUpdateError", errors.BadRequest, "Unable to update address scope {address_scope_id} : {reason}.")


def ip_version(value: Any) -> int:
    return int(v.one_of(4, 6, "4", "6")(value))


ADDRESS_SCOPE = Resource(
    "address_scope",
    "address_scopes",
    (
        Attr("id", convert=v.uuid_str),
        Attr("name", post=True, put=True, default="", convert=v.string(255)),
        *project_attrs(),
        Attr("shared", post=True, put=True, default=False, convert=v.boolean, admin_post=True, admin_put=True,
             filter_convert=v.boolean, sort=False),
        Attr("ip_version", post=True, required=True, convert=ip_version, filter_convert=v.filter_int),
    ),
)
