"""kaon's one exception tree and its table to HTTP.

Every error a client can see is a :class:`KaonError`. The class name is the
Neutron ``type`` in the ``{"NeutronError": {type, message, detail}}`` body;
the base class decides the status code::

    KaonError (500)
    ├── BadRequest (400) ── InvalidInput, Invalid* ...
    ├── NotAuthorized (403) ── PolicyNotAuthorized
    ├── NotFound (404) ── NetworkNotFound, SubnetNotFound, PortNotFound ...
    ├── Conflict (409) ── InUse (NetworkInUse, IpAddressInUse ...), OverQuota ...
    ├── PreconditionFailed (412) ── RevisionNumberConstraintFailed
    └── ServiceUnavailable (503) ── NoNetworkAvailable

Raise these from anywhere below the API; :func:`status_of` and
:func:`body_of` turn them into the response. Messages follow Neutron's
wording because clients and people grep for them.
"""

from __future__ import annotations


class KaonError(Exception):
    status = 500
    message = "An unknown exception occurred."

    def __init__(self, message: str | None = None, **kwargs: object) -> None:
        text = message if message is not None else self.message
        if kwargs:
            text = text.format(**kwargs)
        super().__init__(text)
        self.msg = text

    @property
    def type(self) -> str:
        return type(self).__name__


class BadRequest(KaonError):
    status = 400
    message = "Bad {resource} request: {msg}."


class InvalidInput(BadRequest):
    message = "Invalid input for operation: {error_message}."


class NotAuthorized(KaonError):
    status = 403
    message = "Not authorized."


class PolicyNotAuthorized(NotAuthorized):
    message = "({action}) is disallowed by policy"


class NotFound(KaonError):
    status = 404
    message = "An unknown exception occurred."


class Conflict(KaonError):
    status = 409
    message = "A conflict occurred."


class InUse(Conflict):
    message = "The resource is in use."


class PreconditionFailed(KaonError):
    status = 412
    message = "Precondition failed."


class ServiceUnavailable(KaonError):
    status = 503
    message = "The service is unavailable."


class NotImplementedError_(KaonError):
    status = 501
    message = "Not implemented."


def status_of(exc: KaonError) -> int:
    return exc.status


def body_of(exc: KaonError) -> dict[str, dict[str, str]]:
    return {"NeutronError": {"type": exc.type, "message": exc.msg, "detail": ""}}


def define(name: str, base: type[KaonError], message: str) -> type[KaonError]:
    """Make a named error class; the name becomes the Neutron ``type``."""
    return type(name, (base,), {"message": message})


# Resource-specific errors, with Neutron's type names and messages.
NetworkNotFound = define("NetworkNotFound", NotFound, "Network {net_id} could not be found.")
SubnetNotFound = define("SubnetNotFound", NotFound, "Subnet {subnet_id} could not be found.")
PortNotFound = define("PortNotFound", NotFound, "Port {port_id} could not be found.")
SubnetPoolNotFound = define(
    "SubnetPoolNotFound", NotFound, "Subnet pool {subnetpool_id} could not be found."
)
TagNotFound = define("TagNotFound", NotFound, "Tag {tag} could not be found.")
ExtensionNotFound = define("ExtensionNotFound", NotFound, "Extension with alias {alias} does not exist")
ResourceNotFound = define("ResourceNotFound", NotFound, "The resource could not be found.")

NetworkInUse = define(
    "NetworkInUse",
    InUse,
    "Unable to complete operation on network {net_id}. There are one or more ports still in use on the network.",
)
SubnetInUse = define(
    "SubnetInUse",
    InUse,
    "Unable to complete operation on subnet {subnet_id}: One or more ports have an IP allocation from this subnet.",
)
IpAddressInUse = define(
    "IpAddressInUse",
    InUse,
    "Unable to complete operation for network {net_id}. The IP address {ip_address} is in use.",
)
MacAddressInUse = define(
    "MacAddressInUse",
    InUse,
    "Unable to complete operation for network {net_id}. The mac address {mac} is in use.",
)
IpAddressGenerationFailure = define(
    "IpAddressGenerationFailure", Conflict, "No more IP addresses available on network {net_id}."
)
OverQuota = define("OverQuota", Conflict, "Quota exceeded for resources: {overs}.")
RevisionNumberConstraintFailed = define(
    "RevisionNumberConstraintFailed",
    PreconditionFailed,
    "Constrained to {expected}, but current revision is {current}",
)
NoNetworkAvailable = define(
    "NoNetworkAvailable",
    ServiceUnavailable,
    "Unable to create the network. No tenant network is available for allocation.",
)
