"""One descriptor per hosted kind: networks on DHCP agents, routers on L3 agents.

Everything that differs between the two lives here (binding table, agent type, number of
copies, auto-scheduling, Neutron errors, notification names, what scheduling needs to know
about an object), so that the rest of the registry takes a :class:`KindSpec` and never
branches on the kind.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.config import Settings
from ryu_sched.db import models
from ryu_sched.shared.vocabulary import AgentType, HostedKind

_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class ObjectFacts:
    """What scheduling needs to know about one network or router."""

    hints: tuple[str, ...] = ()
    needs_external_port: bool = False
    # An HA router: several agents, one binding active, the others standby.
    ha: bool = False


# (session, ids or None for all, schedulable only) -> (object id, facts)
FactsQuery = Callable[[Session, Sequence[str] | None, bool], Iterable[tuple[str, ObjectFacts]]]


def _network_facts(session: Session, ids: Sequence[str] | None,
                   schedulable: bool) -> Iterable[tuple[str, ObjectFacts]]:
    """Networks; schedulable ones are those with a DHCP-enabled subnet."""
    net, sub = models.Network, models.Subnet
    query = select(net.id, net.availability_zone_hints)
    if schedulable:
        query = query.where(select(sub.id).where(sub.network_id == net.id,
                                                 sub.enable_dhcp.is_(True)).exists())
    if ids is not None:
        query = query.where(net.id.in_(ids))
    for obj_id, hints in session.execute(query):
        yield obj_id, ObjectFacts(tuple(hints or ()), False)


def _router_facts(session: Session, ids: Sequence[str] | None,
                  schedulable: bool) -> Iterable[tuple[str, ObjectFacts]]:
    """Routers, all schedulable; one with a gateway needs an agent with an external port."""
    rtr = models.Router
    query = select(rtr.id, rtr.availability_zone_hints, rtr.gw_port_id, rtr.ha)
    if ids is not None:
        query = query.where(rtr.id.in_(ids))
    for obj_id, hints, gw, ha in session.execute(query):
        yield obj_id, ObjectFacts(tuple(hints or ()), gw is not None, bool(ha))


@dataclasses.dataclass(frozen=True)
class KindSpec:
    kind: HostedKind
    binding_model: Any                     # the ORM class of the binding table
    object_column: str
    agent_column: str
    object_model: Any                      # models.Network / models.Router
    object_not_found: Callable[[str], errors.NeutronError]
    hosted_error: type[errors.NeutronError]
    not_hosted_error: type[errors.NeutronError]
    invalid_agent_error: type[errors.NeutronError]
    # At most one agent, even by hand (a router without ha); otherwise a manual bind may
    # exceed copies.
    exclusive: Callable[[ObjectFacts], bool]
    # How many agents an object is scheduled to.
    copies: Callable[[Settings, ObjectFacts], int]
    # Its bindings have a role (``ha_state``: one active, the others standby): routers.
    has_roles: bool
    auto_schedule: Callable[[Settings], bool]
    driver_name: Callable[[Settings], str]
    facts_query: FactsQuery
    # BindingChanged carries the agent's datapath_id (the programmer places routers by it).
    carries_datapath: bool
    # The agent holds a port per object (a DHCP port) that goes when the binding goes.
    releases_port_on_unbind: bool

    @property
    def agent_type(self) -> AgentType:
        return self.kind.agent_type

    @property
    def table(self) -> Table:
        return self.binding_model.__table__  # type: ignore[no-any-return]

    @property
    def id_key(self) -> str:
        """The key of the object's id in API bodies and notifications: ``network_id``."""
        return f"{self.kind.value}_id"

    @property
    def plural(self) -> str:
        return f"{self.kind.value}s"

    # notifications to the hosting agents (docs/protocol.md)
    @property
    def bound_method(self) -> str:
        return f"{self.kind.value}_bound"

    @property
    def unbound_method(self) -> str:
        return f"{self.kind.value}_unbound"

    @property
    def deleted_method(self) -> str:
        return f"{self.kind.value}_deleted"

    @property
    def updated_method(self) -> str:
        return f"{self.kind.value}_updated"

    def payload(self, obj_id: str, **extra: Any) -> dict[str, Any]:
        return {self.id_key: obj_id, **extra}

    # errors
    def hosted(self, obj_id: str, agent_id: str) -> errors.NeutronError:
        return self.hosted_error(**{self.id_key: obj_id, "agent_id": agent_id})

    def not_hosted(self, obj_id: str, agent_id: str) -> errors.NeutronError:
        return self.not_hosted_error(**{self.id_key: obj_id, "agent_id": agent_id})

    def invalid_agent(self, agent_id: str, why: str = "") -> errors.NeutronError:
        error = self.invalid_agent_error(id=agent_id)
        if why:
            error = self.invalid_agent_error(f"{error.message[:-1]}: {why}.", id=agent_id)
        return error

    def facts(self, session: Session, ids: Iterable[str] | None,
              schedulable: bool = True) -> dict[str, ObjectFacts]:
        """Facts of the listed objects (all with ``ids=None``); with ``schedulable``, only
        of those that should have agents (networks: a DHCP-enabled subnet)."""
        if ids is None:
            return dict(self.facts_query(session, None, schedulable))
        id_list = list(ids)
        result: dict[str, ObjectFacts] = {}
        for start in range(0, len(id_list), _CHUNK):
            result.update(self.facts_query(session, id_list[start:start + _CHUNK], schedulable))
        return result

    def object_exists(self, session: Session, obj_id: str) -> bool:
        model = self.object_model
        return session.scalar(select(model.id).where(model.id == obj_id)) is not None


NETWORKS = KindSpec(
    kind=HostedKind.NETWORK,
    binding_model=models.NetworkDhcpAgentBinding,
    object_column="network_id", agent_column="dhcp_agent_id",
    object_model=models.Network, object_not_found=errors.NetworkNotFound,
    hosted_error=errors.NetworkHostedByDHCPAgent,
    not_hosted_error=errors.NetworkNotHostedByDhcpAgent,
    invalid_agent_error=errors.InvalidDHCPAgent,
    exclusive=lambda facts: False,
    copies=lambda s, facts: s.dhcp_agents_per_network,
    has_roles=False,
    auto_schedule=lambda s: s.network_auto_schedule,
    driver_name=lambda s: s.network_scheduler_driver,
    facts_query=_network_facts,
    carries_datapath=False,
    releases_port_on_unbind=True,
)

ROUTERS = KindSpec(
    kind=HostedKind.ROUTER,
    binding_model=models.RouterL3AgentBinding,
    object_column="router_id", agent_column="l3_agent_id",
    object_model=models.Router, object_not_found=errors.RouterNotFound,
    hosted_error=errors.RouterHostedByL3Agent,
    not_hosted_error=errors.RouterNotHostedByL3Agent,
    invalid_agent_error=errors.InvalidL3Agent,
    exclusive=lambda facts: not facts.ha,
    copies=lambda s, facts: s.max_l3_agents_per_router if facts.ha else 1,
    has_roles=True,
    auto_schedule=lambda s: s.router_auto_schedule,
    driver_name=lambda s: s.router_scheduler_driver,
    facts_query=_router_facts,
    carries_datapath=True,
    releases_port_on_unbind=False,
)

SPECS: dict[HostedKind, KindSpec] = {spec.kind: spec for spec in (NETWORKS, ROUTERS)}


def spec_of(kind: HostedKind | str) -> KindSpec:
    return SPECS[HostedKind(kind)]


def spec_of_agent_type(agent_type: str) -> KindSpec:
    return SPECS[HostedKind.of_agent_type(agent_type)]
