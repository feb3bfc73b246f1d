"""The persistent model (SQLAlchemy 2.x typed ORM).

Resources carry a UUID ``id`` (the API identity) and, where the data plane needs a small
integer (OpenFlow metadata for networks, conntrack zone for routers), an integer ``key``.
ORM objects never leave the service layer: the flows layer receives plain dataclasses.

Size: over 400 lines on purpose: the whole persistent model in one place, so that the
migrations (db/migrations) and a reader can see every table and relationship at once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class StandardAttrMixin:
    """Neutron's standard attributes beyond timestamps and description.

    ``revision_number`` starts at 1 and is bumped once by every transaction that changes the
    row or one of its collections (``ryu_sched/db/revisions.py``). Tags live in one table per
    resource, ``<Class>Tag`` (``<singular>_tags``), deleted with the resource.
    """

    # Last in the table, where the migration that introduced it added it.
    revision_number: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1",
                                                 sort_order=100)

    @declared_attr
    def tag_rows(cls) -> Mapped[list[Any]]:
        return relationship(f"{cls.__name__}Tag", cascade="all, delete-orphan",
                            passive_deletes=True, order_by=f"{cls.__name__}Tag.tag")


class Network(StandardAttrMixin, TimestampMixin, Base):
    __tablename__ = "networks"
    __table_args__ = (UniqueConstraint("physical_network", "segmentation_id"),)

    key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    router_external: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    network_type: Mapped[str] = mapped_column(String(16), default="vlan")
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    availability_zone_hints: Mapped[list[Any]] = mapped_column(default=list)
    # Default of its ports' port_security_enabled (Neutron's port-security extension).
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The default external network (Neutron's auto-allocated-topology ``is_default``).
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0",
                                             sort_order=101)

    subnets: Mapped[list[Subnet]] = relationship(
        back_populates="network", cascade="all, delete-orphan", passive_deletes=True)


class Subnet(StandardAttrMixin, TimestampMixin, Base):
    __tablename__ = "subnets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")
    ip_version: Mapped[int] = mapped_column(Integer, default=4)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    allocation_pools: Mapped[list[Any]] = mapped_column(default=list)
    dns_nameservers: Mapped[list[Any]] = mapped_column(default=list)
    host_routes: Mapped[list[Any]] = mapped_column(default=list)

    network: Mapped[Network] = relationship(back_populates="subnets")


class Port(StandardAttrMixin, TimestampMixin, Base):
    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("network_id", "mac_address"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_owner: Mapped[str] = mapped_column(String(255), default="", index=True)
    device_id: Mapped[str] = mapped_column(String(255), default="", index=True)
    binding_host_id: Mapped[str] = mapped_column(String(255), default="")
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where the controller saw the port's tap interface (datapath id), if anywhere.
    bound_dpid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    fixed_ips: Mapped[list[IPAllocation]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin",
        order_by="IPAllocation.ip_address")
    security_group_bindings: Mapped[list[SecurityGroupPortBinding]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin",
        order_by="SecurityGroupPortBinding.security_group_id")
    allowed_address_pairs: Mapped[list[AllowedAddressPair]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin",
        order_by="AllowedAddressPair.position")

    @property
    def security_group_ids(self) -> list[str]:
        return [b.security_group_id for b in self.security_group_bindings]


class IPAllocation(Base):
    """One fixed IP of a port. The unique constraint makes double allocation impossible."""

    __tablename__ = "ipallocations"
    __table_args__ = (UniqueConstraint("subnet_id", "ip_address"),)

    port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    subnet_id: Mapped[str] = mapped_column(
        ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True)
    network_id: Mapped[str] = mapped_column(String(36), index=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)


class SecurityGroup(TimestampMixin, Base):
    """A set of rules that allow traffic to and from the ports bound to it."""

    __tablename__ = "securitygroups"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")

    rules: Mapped[list[SecurityGroupRule]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin",
        foreign_keys="SecurityGroupRule.security_group_id",
        order_by="(SecurityGroupRule.created_at, SecurityGroupRule.id)")


class SecurityGroupRule(TimestampMixin, Base):
    """One rule: ``protocol`` as the API was given it (a lower-case name or a decimal
    number, None for any); ``remote_ip_prefix`` in canonical CIDR form."""

    __tablename__ = "securitygrouprules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("securitygroups.id", ondelete="CASCADE"), index=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        ForeignKey("securitygroups.id", ondelete="CASCADE"), nullable=True, index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(16), default="IPv4")
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(String(1024), default="")


class DefaultSecurityGroup(Base):
    """The ``default`` group of each project; the primary key makes a second one
    impossible, however many requests race to create it."""

    __tablename__ = "default_security_groups"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("securitygroups.id", ondelete="CASCADE"), unique=True)


class SecurityGroupPortBinding(Base):
    """A port in a group. A group with ports cannot be deleted (no cascade from groups)."""

    __tablename__ = "securitygroupportbindings"

    port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ForeignKey("securitygroups.id"), primary_key=True, index=True)


class AllowedAddressPair(Base):
    """An address (or CIDR) a port may send from besides its fixed IPs, with a MAC."""

    __tablename__ = "allowedaddresspairs"

    port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    mac_address: Mapped[str] = mapped_column(String(32), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The order the API was given the pairs in, which it answers with.
    position: Mapped[int] = mapped_column(Integer, default=0)


class Router(StandardAttrMixin, TimestampMixin, Base):
    __tablename__ = "routers"

    key: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(1024), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(
        ForeignKey("ports.id", ondelete="SET NULL"), nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone_hints: Mapped[list[Any]] = mapped_column(default=list)
    # Neutron's l3-ha ``ha``: hosted by up to max_l3_agents_per_router agents, one active.
    ha: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0",
                                     sort_order=101)

    route_rows: Mapped[list[RouterRoute]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin",
        order_by="(RouterRoute.destination, RouterRoute.nexthop)")


class RouterPort(Base):
    """A port owned by a router (interface or gateway)."""

    __tablename__ = "routerports"

    router_id: Mapped[str] = mapped_column(
        ForeignKey("routers.id", ondelete="CASCADE"), index=True)
    port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    port_type: Mapped[str] = mapped_column(String(255))


class FloatingIP(StandardAttrMixin, TimestampMixin, Base):
    __tablename__ = "floatingips"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    description: Mapped[str] = mapped_column(String(1024), default="")
    floating_network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"))
    floating_port_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), unique=True)
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    fixed_port_id: Mapped[str | None] = mapped_column(
        ForeignKey("ports.id", ondelete="SET NULL"), nullable=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(
        ForeignKey("routers.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("agent_type", "host"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    agent_type: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255), default="")
    topic: Mapped[str] = mapped_column(String(255), default="")
    host: Mapped[str] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(1024), default="")
    configurations: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    heartbeat_timestamp: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class NetworkDhcpAgentBinding(Base):
    """Network hosted by a DHCP agent. ``binding_index`` is unique per network, so two racing
    schedulers cannot both place the n-th copy of a network."""

    __tablename__ = "networkdhcpagentbindings"
    __table_args__ = (UniqueConstraint("network_id", "binding_index"),)

    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True)
    dhcp_agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True)
    binding_index: Mapped[int] = mapped_column(Integer, default=1)


#: The partial index that keeps at most one active binding per router (SQLite, PostgreSQL).
ONE_ACTIVE_WHERE = "ha_state = 'active'"


class RouterL3AgentBinding(Base):
    """Router hosted by an L3 agent: one binding (``binding_index`` 1), or for an HA router
    up to ``max_l3_agents_per_router`` on distinct agents, of which at most one is
    ``active`` (the database refuses a second: ``uq_routerl3agentbindings_one_active``)."""

    __tablename__ = "routerl3agentbindings"
    __table_args__ = (
        UniqueConstraint("router_id", "binding_index"),
        Index("uq_routerl3agentbindings_one_active", "router_id", unique=True,
              sqlite_where=text(ONE_ACTIVE_WHERE), postgresql_where=text(ONE_ACTIVE_WHERE)),
    )

    router_id: Mapped[str] = mapped_column(
        ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    l3_agent_id: Mapped[str] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True, index=True)
    binding_index: Mapped[int] = mapped_column(Integer, default=1)
    # HaState: "active" | "standby" (a router without ha: its one binding, active).
    ha_state: Mapped[str] = mapped_column(String(16), default="active",
                                          server_default="active")


class LearnedNeighbor(Base):
    """An upstream gateway's MAC learnt by ARP (the programmer asks, the gateway answers). Kept
    so that a restarted controller computes SNAT/floating-IP flows at once instead of dropping
    that traffic until ARP answers again."""

    __tablename__ = "learned_neighbors"

    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    mac_address: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


# --- tags (standard attributes) -----------------------------------------------------------

class NetworkTag(Base):
    __tablename__ = "network_tags"

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


class SubnetTag(Base):
    __tablename__ = "subnet_tags"

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


class PortTag(Base):
    __tablename__ = "port_tags"

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


class RouterTag(Base):
    __tablename__ = "router_tags"

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


class FloatingIPTag(Base):
    __tablename__ = "floatingip_tags"

    resource_id: Mapped[str] = mapped_column(
        ForeignKey("floatingips.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(60), primary_key=True, index=True)


class Quota(Base):
    """A project's own limit for one resource (``network``, ``port``...); without a row the
    configured default applies. -1: unlimited."""

    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class NetworkRBAC(Base):
    """An RBAC policy on a network: ``action`` (``access_as_shared`` / ``access_as_external``)
    granted by ``project_id`` (the policy's owner) to ``target_project`` (a project or ``*``).
    ``networks.shared`` / ``router_external`` are kept as what these rows say: a wildcard
    shared policy exists / any external policy exists."""

    __tablename__ = "networkrbacs"
    __table_args__ = (UniqueConstraint("action", "object_id", "target_project"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    object_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="CASCADE"), index=True)
    target_project: Mapped[str] = mapped_column(String(255), index=True)
    action: Mapped[str] = mapped_column(String(255))


class RouterRoute(Base):
    """An extra route of a router (Neutron's ``routes``): packets for ``destination`` go to
    the port that holds ``nexthop`` on one of the router's subnets."""

    __tablename__ = "routerroutes"

    router_id: Mapped[str] = mapped_column(
        ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    destination: Mapped[str] = mapped_column(String(64), primary_key=True)
    nexthop: Mapped[str] = mapped_column(String(64), primary_key=True)
