"""Typed events: what changed in the model, published after the transaction that made it commits.

Each kind of change is one frozen dataclass. Producers are the service layer (API writes), the
registry (bindings) and the programmer (where a port's tap was seen). Subscribers (the
registry, the programmer) run in the publisher's green thread and must be quick: mark work,
wake a worker.

Events are serialisable (:meth:`Event.to_wire` / :func:`from_wire`) so that they can travel
between controller processes: a wire form is a plain map ``{"event": <name>, <field>: <value>}``
of strings, numbers, booleans, None and lists, which msgpack and JSON both carry.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable
from typing import Any, ClassVar

from ryu_sched.shared.vocabulary import HostedKind

LOG = logging.getLogger(__name__)


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


FixedIp = tuple[str, str]  # (subnet_id, ip_address)

_EVENT_TYPES: dict[str, type[Event]] = {}


@dataclasses.dataclass(frozen=True)
class Event:
    """Base of all events. ``name`` is the wire name of the subclass."""

    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            if cls.name in _EVENT_TYPES:
                raise TypeError(f"duplicate event name {cls.name!r}")
            _EVENT_TYPES[cls.name] = cls

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"event": self.name}
        for field in dataclasses.fields(self):
            wire[field.name] = _plain(getattr(self, field.name))
        return wire


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    return value


def from_wire(wire: dict[str, Any]) -> Event:
    """The event a :meth:`Event.to_wire` map describes; ValueError if it describes none."""
    name = wire.get("event")
    cls = _EVENT_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown event {name!r}")
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        if field.name in wire:
            values[field.name] = _tuples(wire[field.name])
    try:
        event = cls(**values)
    except TypeError as exc:
        raise ValueError(f"bad {name} event: {exc}") from None
    return _with_enums(event)


def _with_enums(event: Event) -> Event:
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(event):
        value = getattr(event, field.name)
        if field.name == "action" and not isinstance(value, Action):
            changes[field.name] = Action(value)
        elif field.name == "kind" and not isinstance(value, HostedKind):
            changes[field.name] = HostedKind(value)
    return dataclasses.replace(event, **changes) if changes else event


# --- the model's resources ----------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class NetworkChanged(Event):
    name: ClassVar[str] = "network"
    action: Action
    network_id: str
    project_id: str = ""
    changed: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SubnetChanged(Event):
    name: ClassVar[str] = "subnet"
    action: Action
    subnet_id: str
    network_id: str
    enable_dhcp: bool = True
    changed: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class PortChanged(Event):
    name: ClassVar[str] = "port"
    action: Action
    port_id: str
    network_id: str
    device_owner: str = ""
    device_id: str = ""
    mac_address: str = ""
    fixed_ips: tuple[FixedIp, ...] = ()
    changed: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class PortLocated(Event):
    """The programmer saw (or lost) a port's tap: its status and switch were recorded."""

    name: ClassVar[str] = "port_located"
    port_id: str
    network_id: str
    status: str
    dpid: int | None = None


@dataclasses.dataclass(frozen=True)
class RouterChanged(Event):
    """A router was created, deleted, or its own attributes changed."""

    name: ClassVar[str] = "router"
    action: Action
    router_id: str
    project_id: str = ""
    changed: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class RouterGatewayChanged(Event):
    """A router's external gateway was set, changed or cleared (``network_id`` None)."""

    name: ClassVar[str] = "router_gateway"
    router_id: str
    network_id: str | None = None
    gw_port_id: str | None = None
    enable_snat: bool = True

    @property
    def is_set(self) -> bool:
        return self.network_id is not None


@dataclasses.dataclass(frozen=True)
class RouterInterfaceChanged(Event):
    name: ClassVar[str] = "router_interface"
    router_id: str
    added: bool
    port_id: str
    network_id: str
    subnet_ids: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FloatingIpChanged(Event):
    """A floating IP was created, (dis)associated or deleted. ``previous_router_id`` is the
    router that served it before this change (None if none, or the same router)."""

    name: ClassVar[str] = "floatingip"
    action: Action
    floatingip_id: str
    floating_ip_address: str = ""
    floating_network_id: str = ""
    port_id: str | None = None
    fixed_ip_address: str | None = None
    router_id: str | None = None
    previous_router_id: str | None = None

    @property
    def routers(self) -> tuple[str, ...]:
        """Every router whose flows or agent this change concerns."""
        return tuple(r for r in dict.fromkeys((self.router_id, self.previous_router_id)) if r)


@dataclasses.dataclass(frozen=True)
class SecurityGroupChanged(Event):
    """A security group was created, renamed or deleted (with its rules, and the rules of
    other groups that named it as their remote group)."""

    name: ClassVar[str] = "security_group"
    action: Action
    security_group_id: str
    project_id: str = ""
    changed: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class SecurityGroupRuleChanged(Event):
    """A rule was added to or removed from a group (or its description changed)."""

    name: ClassVar[str] = "security_group_rule"
    action: Action
    rule_id: str
    security_group_id: str
    remote_group_id: str | None = None
    direction: str = ""


# --- the registry -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class BindingChanged(Event):
    """A network was bound to (unbound from) a DHCP agent, or a router to an L3 agent, or
    the role of a router's binding changed (``bound`` true, ``ha_state`` the new role)."""

    name: ClassVar[str] = "binding"
    kind: HostedKind
    object_id: str
    agent_id: str
    host: str
    bound: bool
    datapath_id: str | None = None
    # Routers: the binding's role after the change, "active" | "standby" (HaState); None
    # when unbound, and for networks.
    ha_state: str | None = None


Subscriber = Callable[[Event], None]


class EventBus:
    """In-process fan-out of committed events.

    Events committed by this controller are *local* (:meth:`publish`); events relayed from
    another controller sharing the database are *remote* (:meth:`publish_remote`, see
    ``ryu_sched/cluster/relay.py``). A subscriber chooses what it hears: both (the default),
    local ones only (``remote=False``: e.g. the relay, which must not send back what it
    received), or remote ones only (:meth:`subscribe_remote`).
    """

    def __init__(self) -> None:
        self._local: list[Subscriber] = []
        self._remote: list[Subscriber] = []

    def subscribe(self, callback: Subscriber, *, remote: bool = True) -> None:
        self._local.append(callback)
        if remote:
            self._remote.append(callback)

    def subscribe_remote(self, callback: Subscriber) -> None:
        self._remote.append(callback)

    def publish(self, event: Event) -> None:
        """An event committed by this controller."""
        self._deliver(self._local, event)

    def publish_remote(self, event: Event) -> None:
        """An event another controller committed (relayed to this one)."""
        self._deliver(self._remote, event)

    @staticmethod
    def _deliver(subscribers: list[Subscriber], event: Event) -> None:
        for callback in list(subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must not fail the API call
                LOG.exception("event subscriber %r failed on %s", callback, event)
