"""RBAC policies on networks (``networkrbacs``).

Existing shared networks get the wildcard ``access_as_shared`` policy and existing external
networks the wildcard ``access_as_external`` policy that ``shared`` / ``router:external``
stand for from now on, owned by the network's project.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    rbacs = op.create_table(
        "networkrbacs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("target_project", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["object_id"], ["networks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("action", "object_id", "target_project"),
    )
    op.create_index(op.f("ix_networkrbacs_object_id"), "networkrbacs", ["object_id"])
    op.create_index(op.f("ix_networkrbacs_project_id"), "networkrbacs", ["project_id"])
    op.create_index(op.f("ix_networkrbacs_target_project"), "networkrbacs",
                    ["target_project"])
    networks = sa.table("networks", sa.column("id", sa.String), sa.column("project_id",
                        sa.String), sa.column("shared", sa.Boolean),
                        sa.column("router_external", sa.Boolean))
    rows = []
    for net_id, project_id, shared, external in op.get_bind().execute(
            sa.select(networks.c.id, networks.c.project_id, networks.c.shared,
                      networks.c.router_external)):
        for flag, action in ((shared, "access_as_shared"), (external, "access_as_external")):
            if flag:
                rows.append({"id": str(uuid.uuid4()), "project_id": project_id or "",
                             "object_id": net_id, "target_project": "*", "action": action})
    if rows:
        op.bulk_insert(rbacs, rows)


def downgrade() -> None:
    op.drop_table("networkrbacs")
