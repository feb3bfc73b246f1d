"""Who is asking: the project, whether it is admin, and its roles there.

The three roles are Keystone's defaults (``keystone-manage bootstrap`` creates them, admin
implying member implying reader) and Neutron's default policy is written for them:

- ``admin``: everything, every project;
- ``member``: reads its own project's resources (and shared and external networks), and
  creates, changes and deletes its own project's resources;
- ``reader``: reads what a member reads, changes nothing.

:mod:`ryu_sched.resources.policy` holds the rules that go beyond "own project or admin".
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    READER = "reader"


@dataclasses.dataclass(frozen=True)
class Context:
    project_id: str
    is_admin: bool
    # Lower-case role names. The default is a project member's (what the token file's and
    # the tests' plain ``Context(project, False)`` mean); Keystone identities give theirs.
    roles: tuple[str, ...] = (Role.MEMBER, Role.READER)

    @classmethod
    def from_roles(cls, project_id: str, roles: Iterable[str]) -> Context:
        """A context for ``roles`` on ``project_id`` (names compared case-insensitively, as
        oslo.policy's ``role:`` check does)."""
        names = tuple(dict.fromkeys(role.strip().lower() for role in roles if role.strip()))
        return cls(project_id=project_id, is_admin=Role.ADMIN in names, roles=names)

    @property
    def may_write(self) -> bool:
        """Admin or member: may create, change and delete (its own project's) resources."""
        return self.is_admin or Role.MEMBER in self.roles

    @property
    def may_read(self) -> bool:
        """Admin, member or reader: may read its own project's resources."""
        return self.may_write or Role.READER in self.roles

    def can_see(self, project_id: str | None) -> bool:
        return self.is_admin or project_id == self.project_id


def admin_context(project_id: str = "admin") -> Context:
    """For callers without an HTTP request (agent RPC, the app itself)."""
    return Context(project_id=project_id, is_admin=True,
                   roles=(Role.ADMIN, Role.MEMBER, Role.READER))
