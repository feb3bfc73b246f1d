"""HA routers: ``routers.ha`` (false for existing routers) and the role of each L3 binding,
``routerl3agentbindings.ha_state`` ('active' for existing bindings: one per router), with
the partial unique index that keeps at most one active binding per router.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ONE_ACTIVE = "uq_routerl3agentbindings_one_active"
ONE_ACTIVE_WHERE = "ha_state = 'active'"


def upgrade() -> None:
    with op.batch_alter_table("routers") as batch:
        batch.add_column(sa.Column("ha", sa.Boolean(), nullable=False, server_default="0"))
    with op.batch_alter_table("routerl3agentbindings") as batch:
        batch.add_column(sa.Column("ha_state", sa.String(length=16), nullable=False,
                                   server_default="active"))
    op.create_index(ONE_ACTIVE, "routerl3agentbindings", ["router_id"], unique=True,
                    sqlite_where=sa.text(ONE_ACTIVE_WHERE),
                    postgresql_where=sa.text(ONE_ACTIVE_WHERE))


def downgrade() -> None:
    op.drop_index(ONE_ACTIVE, table_name="routerl3agentbindings")
    with op.batch_alter_table("routerl3agentbindings") as batch:
        batch.drop_column("ha_state")
    with op.batch_alter_table("routers") as batch:
        batch.drop_column("ha")
