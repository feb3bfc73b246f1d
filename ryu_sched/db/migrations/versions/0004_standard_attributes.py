"""Standard attributes: revision numbers and tags.

``revision_number`` on networks, subnets, ports, routers and floating IPs (existing rows
start at 1, as new ones do); one tag table per resource, ``<singular>_tags``, whose rows go
with their resource.

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: (tag table, resource table)
TAGGED = (("network_tags", "networks"), ("subnet_tags", "subnets"), ("port_tags", "ports"),
          ("router_tags", "routers"), ("floatingip_tags", "floatingips"))


def upgrade() -> None:
    for _tags, table in TAGGED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("revision_number", sa.BigInteger(), nullable=False,
                                       server_default="1"))
    for tags, table in TAGGED:
        op.create_table(
            tags,
            sa.Column("resource_id", sa.String(length=36), nullable=False),
            sa.Column("tag", sa.String(length=60), nullable=False),
            sa.ForeignKeyConstraint(["resource_id"], [f"{table}.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("resource_id", "tag"),
        )
        op.create_index(op.f(f"ix_{tags}_tag"), tags, ["tag"])


def downgrade() -> None:
    for tags, table in reversed(TAGGED):
        op.drop_index(op.f(f"ix_{tags}_tag"), table_name=tags)
        op.drop_table(tags)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("revision_number")
