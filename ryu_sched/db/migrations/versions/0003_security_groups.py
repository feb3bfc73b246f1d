"""Security groups, their rules, port bindings and allowed address pairs.

``securitygroups`` and ``securitygrouprules`` (a rule's ``remote_group_id`` is a group too:
deleting a group deletes the rules of other groups that name it, as in Neutron);
``default_security_groups`` (one ``default`` group per project: the primary key);
``securitygroupportbindings`` (no cascade from the group: a group in use cannot go);
``allowedaddresspairs``.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "securitygroups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_securitygroups_project_id"), "securitygroups", ["project_id"])
    op.create_table(
        "securitygrouprules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("security_group_id", sa.String(length=36), nullable=False),
        sa.Column("remote_group_id", sa.String(length=36), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("ethertype", sa.String(length=16), nullable=False),
        sa.Column("protocol", sa.String(length=40), nullable=True),
        sa.Column("port_range_min", sa.Integer(), nullable=True),
        sa.Column("port_range_max", sa.Integer(), nullable=True),
        sa.Column("remote_ip_prefix", sa.String(length=64), nullable=True),
        sa.Column("description", sa.String(length=1024), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["remote_group_id"], ["securitygroups.id"],
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["security_group_id"], ["securitygroups.id"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_securitygrouprules_project_id"), "securitygrouprules",
                    ["project_id"])
    op.create_index(op.f("ix_securitygrouprules_remote_group_id"), "securitygrouprules",
                    ["remote_group_id"])
    op.create_index(op.f("ix_securitygrouprules_security_group_id"), "securitygrouprules",
                    ["security_group_id"])
    op.create_table(
        "default_security_groups",
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("security_group_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["security_group_id"], ["securitygroups.id"],
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id"),
        sa.UniqueConstraint("security_group_id"),
    )
    op.create_table(
        "securitygroupportbindings",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("security_group_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["security_group_id"], ["securitygroups.id"]),
        sa.PrimaryKeyConstraint("port_id", "security_group_id"),
    )
    op.create_index(op.f("ix_securitygroupportbindings_security_group_id"),
                    "securitygroupportbindings", ["security_group_id"])
    op.create_table(
        "allowedaddresspairs",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("mac_address", sa.String(length=32), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("port_id", "mac_address", "ip_address"),
    )


def downgrade() -> None:
    op.drop_table("allowedaddresspairs")
    op.drop_table("securitygroupportbindings")
    op.drop_table("default_security_groups")
    op.drop_table("securitygrouprules")
    op.drop_table("securitygroups")
