"""Cluster events table.

Events relayed between controllers whose wire form is too large for a PostgreSQL NOTIFY
payload: the notification carries the row id (ryu_sched/cluster/event_log.py).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cluster_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cluster_events_created_at", "cluster_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_cluster_events_created_at", table_name="cluster_events")
    op.drop_table("cluster_events")
