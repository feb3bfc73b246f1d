"""Who is asking: the project and whether it is admin."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Context:
    project_id: str
    is_admin: bool
    roles: tuple[str, ...] = ()

    def can_see(self, project_id: str | None) -> bool:
        return self.is_admin or project_id == self.project_id


def admin_context(project_id: str = "admin") -> Context:
    """For callers without an HTTP request (agent RPC, the app itself)."""
    return Context(project_id=project_id, is_admin=True, roles=("admin",))
