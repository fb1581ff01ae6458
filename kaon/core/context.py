"""Who is asking: the request context every service call receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from kaon.core.access import policy


@dataclass(frozen=True)
class Context:
    user_id: str
    project_id: str
    roles: frozenset[str] = field(default_factory=frozenset)
    request_id: str = ""
    user_name: str = ""
    project_name: str = ""

    @property
    def is_admin(self) -> bool:
        """Neutron's ``context.is_admin``: the policy rule ``context_is_admin``
        (``role:admin`` unless policy.yaml says otherwise). It widens what the
        caller sees (every project's resources) and lets it act for others."""
        return policy.current().role_rule("context_is_admin", self.roles)

    @property
    def is_service(self) -> bool:
        """The policy rule ``service_api`` (``role:service``): another
        OpenStack service (Nova) acting on a project's behalf."""
        return policy.current().role_rule("service_api", self.roles)

    @classmethod
    def admin(cls, project_id: str = "admin") -> Context:
        return cls(user_id="kaon", project_id=project_id, roles=frozenset({"admin", "member", "reader"}))
