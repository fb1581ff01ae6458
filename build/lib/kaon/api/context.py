"""Who is asking: the request context every service call receives."""

from __future__ import annotations

from dataclasses import dataclass, field


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
        return "admin" in self.roles

    @property
    def is_service(self) -> bool:
        return "service" in self.roles

    @property
    def can_write(self) -> bool:
        """Readers may only read; member (or manager/admin/service) may write."""
        return bool(self.roles & {"member", "manager", "admin", "service"})

    @classmethod
    def admin(cls, project_id: str = "admin") -> Context:
        return cls(user_id="kaon", project_id=project_id, roles=frozenset({"admin", "member", "reader"}))
