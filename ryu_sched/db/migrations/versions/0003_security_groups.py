"""Security groups, their rules, port bindings and allowed address pairs.

``securitygroups`` and ``securitygrouprules`` (a rule's ``remote_group_id`` is a group too:
deleting a group deletes the rules of other groups that name it, as in Neutron);
``default_security_groups`` (one ``default`` group per project: the primary key);
``securitygroupportbindings`` (no cascade from the group: a group in use cannot go);
``allowedaddresspairs``.

Ports that exist before this revision were never filtered. So that the upgrade does not
suddenly drop their traffic, each project's such ports (port security on, not ``network:*``)
join a group ``legacy-allow-all`` that allows everything in and out; operators tighten
them at leisure. Ports created afterwards get their project's ``default`` group.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import datetime as dt
import uuid

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


    _keep_existing_ports_open()


LEGACY_GROUP = "legacy-allow-all"
LEGACY_DESCRIPTION = ("Made by the upgrade to security groups: the ports that existed "
                      "before them stay unfiltered")


def _keep_existing_ports_open() -> None:
    bind = op.get_bind()
    ports = sa.table("ports", sa.column("id"), sa.column("project_id"),
                     sa.column("device_owner"), sa.column("port_security_enabled"))
    groups = sa.table("securitygroups", sa.column("id"), sa.column("project_id"),
                      sa.column("name"), sa.column("description"), sa.column("created_at"),
                      sa.column("updated_at"))
    rules = sa.table("securitygrouprules", sa.column("id"), sa.column("project_id"),
                     sa.column("security_group_id"), sa.column("direction"),
                     sa.column("ethertype"), sa.column("description"),
                     sa.column("created_at"), sa.column("updated_at"))
    bindings = sa.table("securitygroupportbindings", sa.column("port_id"),
                        sa.column("security_group_id"))
    rows = bind.execute(sa.select(ports.c.id, ports.c.project_id).where(
        ports.c.port_security_enabled.is_(True),
        sa.not_(ports.c.device_owner.startswith("network:")))).all()
    by_project: dict[str, list[str]] = {}
    for port_id, project_id in rows:
        by_project.setdefault(project_id, []).append(port_id)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for project_id, port_ids in sorted(by_project.items()):
        group_id = str(uuid.uuid4())
        bind.execute(groups.insert().values(
            id=group_id, project_id=project_id, name=LEGACY_GROUP,
            description=LEGACY_DESCRIPTION, created_at=now, updated_at=now))
        bind.execute(rules.insert(), [
            dict(id=str(uuid.uuid4()), project_id=project_id, security_group_id=group_id,
                 direction=direction, ethertype=ethertype, description="",
                 created_at=now, updated_at=now)
            for direction in ("ingress", "egress") for ethertype in ("IPv4", "IPv6")])
        bind.execute(bindings.insert(), [dict(port_id=port_id, security_group_id=group_id)
                                         for port_id in port_ids])


def downgrade() -> None:
    op.drop_table("allowedaddresspairs")
    op.drop_table("securitygroupportbindings")
    op.drop_table("default_security_groups")
    op.drop_table("securitygrouprules")
    op.drop_table("securitygroups")
