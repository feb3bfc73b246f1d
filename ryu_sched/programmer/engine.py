"""The model in memory, kept current by the typed events, and which switches a change concerns.

The full read (:func:`snapshot.read_model`) stays the reference: at start, on a safety-net
round, and for the kinds of change handled here by reading everything again (a network or
subnet deleted, security groups, anything unknown). Every other event re-reads only the rows
it names (one port with its addresses, one router with its ports, one floating IP) and says
what it touched (:class:`Touched`); :func:`affected_switches` turns that into the switches
whose desired flows may differ, so that the programmer recomputes and diffs only those.

Which switches a model object concerns (see flows/): a port, the switches with a port of its
network (its own flows where it is, L2 and ARP entries for it elsewhere) and the hosts of the
routers on that network (and on the networks those routers join); a router, its host and the
switches of its networks; a port under a security group, also the switches with ports whose
groups name that group as a remote group. tests/unit/programmer/test_engine_property.py checks
this against a full recompute for random sequences of changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched import events as ev
from ryu_sched.db import models as db
from ryu_sched.flows import model as fm
from ryu_sched.programmer.snapshot import (
    Model,
    Placement,
    Recorded,
    external_ports_of,
    floating_ip_of,
    network_of,
    placements,
    port_of,
    read_model,
    router_of,
    subnet_of,
)
from ryu_sched.shared.vocabulary import AgentType, HostedKind

_ROUTER_PORTS = frozenset({fm.OWNER_ROUTER_INTERFACE, fm.OWNER_ROUTER_GATEWAY})
_RouterEvent = ev.RouterChanged | ev.RouterGatewayChanged | ev.RouterInterfaceChanged


@dataclasses.dataclass
class Touched:
    """What one or more events changed. ``everything``: recompute every switch."""

    networks: set[str] = dataclasses.field(default_factory=set)
    routers: set[str] = dataclasses.field(default_factory=set)
    ports: set[str] = dataclasses.field(default_factory=set)
    #: security groups of the touched ports (before and after)
    groups: set[str] = dataclasses.field(default_factory=set)
    #: switches that hosted a touched router before the change
    dpids: set[int] = dataclasses.field(default_factory=set)
    everything: bool = False

    def merge(self, other: Touched) -> None:
        self.networks |= other.networks
        self.routers |= other.routers
        self.ports |= other.ports
        self.groups |= other.groups
        self.dpids |= other.dpids
        self.everything |= other.everything

    def __bool__(self) -> bool:
        return bool(self.everything or self.networks or self.routers or self.ports)


class ModelState:
    """The model as dictionaries by id, updated one row at a time."""

    def __init__(self, model: Model) -> None:
        self.networks = {n.id: n for n in model.networks}
        self.subnets = {s.id: s for s in model.subnets}
        self.ports = {p.id: p for p in model.ports}
        self.routers = {r.id: r for r in model.routers}
        self.fips = {f.id: f for f in model.floating_ips}
        self.security_groups = model.security_groups
        self.external_ports = dict(model.external_ports)
        self.recorded = dict(model.recorded)
        self.ports_by_network: dict[str, set[str]] = {}
        for port in model.ports:
            self.ports_by_network.setdefault(port.network_id, set()).add(port.id)
        self.tap_to_port = dict(model.tap_to_port)
        self._model: Model | None = model
        #: the parts of the last model() that no change touched since (reused as they are,
        #: so that the flows layer's index built on them is reused too)
        self._parts: dict[str, tuple] = {
            "networks": model.networks, "subnets": model.subnets, "ports": model.ports,
            "routers": model.routers, "floating_ips": model.floating_ips}
        self._names = {id(self.networks): "networks", id(self.subnets): "subnets",
                       id(self.ports): "ports", id(self.routers): "routers",
                       id(self.fips): "floating_ips"}

    def model(self) -> Model:
        if self._model is None:
            parts = self._parts
            for name, table in (("networks", self.networks), ("subnets", self.subnets),
                                ("ports", self.ports), ("routers", self.routers),
                                ("floating_ips", self.fips)):
                if name not in parts:
                    parts[name] = tuple(table.values())
            self._model = Model(
                networks=parts["networks"], subnets=parts["subnets"], ports=parts["ports"],
                routers=parts["routers"], floating_ips=parts["floating_ips"],
                security_groups=self.security_groups,
                external_ports=dict(self.external_ports), recorded=dict(self.recorded),
                tap_to_port=dict(self.tap_to_port))
        return self._model

    def record(self, changes: Mapping[str, Recorded]) -> None:
        self.recorded.update(changes)
        self._model = None

    def _changed(self, table: dict) -> None:
        self._parts.pop(self._names[id(table)], None)
        self._model = None

    # --- applying events -----------------------------------------------------------

    def apply(self, session: Session, event: ev.Event,
              neighbors: Mapping[str, str]) -> Touched | None:
        """Update from the rows ``event`` names; None: this kind needs a full read."""
        self._model = None
        if isinstance(event, ev.PortChanged):
            return self._port(session, event.port_id, neighbors)
        if isinstance(event, ev.NetworkChanged) and event.action is not ev.Action.DELETE:
            row = _by_id(session, db.Network, event.network_id)
            self._put(self.networks, event.network_id, None if row is None else network_of(row))
            touched = Touched(networks={event.network_id})
            self._routers_on_networks(session, touched, neighbors)
            return touched
        if isinstance(event, ev.SubnetChanged) and event.action is not ev.Action.DELETE:
            row = _by_id(session, db.Subnet, event.subnet_id)
            self._put(self.subnets, event.subnet_id, None if row is None else subnet_of(row))
            touched = Touched(networks={event.network_id})
            self._routers_on_networks(session, touched, neighbors)
            return touched
        if isinstance(event, ev.RouterChanged | ev.RouterGatewayChanged
                      | ev.RouterInterfaceChanged):
            return self._router_and_its_ports(session, event, neighbors)
        if isinstance(event, ev.FloatingIpChanged):
            return self._floating_ip(session, event, neighbors)
        if isinstance(event, ev.BindingChanged):
            if event.kind is not HostedKind.ROUTER:
                return Touched()     # a DHCP binding: its port comes as a PortChanged
            self.external_ports = external_ports_of(session.scalars(
                select(db.Agent).where(db.Agent.agent_type == AgentType.L3)).all())
            touched = Touched(routers={event.object_id})
            self._router(session, event.object_id, touched, neighbors)
            return touched
        return None

    def _put(self, table: dict, key: str, value: object) -> None:
        if table.get(key) == value:
            return
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value
        self._changed(table)

    def _port(self, session: Session, port_id: str, neighbors: Mapping[str, str],
              touched: Touched | None = None) -> Touched:
        touched = touched if touched is not None else Touched()
        old = self.ports.get(port_id)
        row = _by_id(session, db.Port, port_id)
        new = None if row is None else port_of(row)
        touched.ports.add(port_id)
        for port in (old, new):
            if port is None:
                continue
            touched.networks.add(port.network_id)
            touched.groups.update(port.security_group_ids or ())
            if port.device_owner in _ROUTER_PORTS and port.device_id:
                touched.routers.add(port.device_id)
        if old is not None:
            self.ports_by_network.get(old.network_id, set()).discard(port_id)
        if new != old:
            self._changed(self.ports)
        if new is None:
            self.ports.pop(port_id, None)
            self.recorded.pop(port_id, None)
            self.tap_to_port.pop(fm.tap_name(port_id), None)
        else:
            self.ports[port_id] = new
            self.ports_by_network.setdefault(new.network_id, set()).add(port_id)
            self.recorded[port_id] = Recorded(row.bound_dpid, row.status)
            self.tap_to_port[fm.tap_name(port_id)] = port_id
        for router_id in list(touched.routers):
            self._router(session, router_id, touched, neighbors)
        for fip_id in [f.id for f in self.fips.values() if f.port_id == port_id]:
            self._fip_row(session, fip_id, touched)
        return touched

    def _router(self, session: Session, router_id: str, touched: Touched,
                neighbors: Mapping[str, str]) -> None:
        old = self.routers.get(router_id)
        new = read_router(session, router_id, neighbors)
        self._put(self.routers, router_id, new)
        touched.routers.add(router_id)
        for router in (old, new):
            if router is not None:
                touched.dpids.update(router.placed_dpids)
        touched.networks.update(router_networks(old))
        touched.networks.update(router_networks(new))

    def _routers_on_networks(self, session: Session, touched: Touched,
                             neighbors: Mapping[str, str]) -> None:
        ids = [r.id for r in self.routers.values()
               if router_networks(r) & touched.networks]
        rows = session.scalars(select(db.RouterPort.router_id).join(
            db.Port, db.Port.id == db.RouterPort.port_id).where(
            db.Port.network_id.in_(touched.networks))).all()
        for router_id in dict.fromkeys([*ids, *rows]):
            self._router(session, router_id, touched, neighbors)

    def _router_and_its_ports(self, session: Session, event: _RouterEvent,
                              neighbors: Mapping[str, str]) -> Touched:
        router_id = event.router_id
        touched = Touched(routers={router_id})
        old = self.routers.get(router_id)
        port_ids = {p.id for p in self.ports.values() if p.device_id == router_id}
        port_ids.update(session.scalars(select(db.Port.id).where(
            db.Port.device_id == router_id)).all())
        if old is not None:
            port_ids.update(i.port_id for i in old.interfaces)
            if old.gateway is not None:
                port_ids.add(old.gateway.port_id)
        for name in ("port_id", "gw_port_id"):
            value = getattr(event, name, None)
            if value:
                port_ids.add(value)
        for port_id in sorted(port_ids):
            self._port(session, port_id, neighbors, touched)
        self._router(session, router_id, touched, neighbors)
        for fip in [f for f in self.fips.values() if f.router_id == router_id]:
            self._fip_row(session, fip.id, touched)
        for fip_id in session.scalars(select(db.FloatingIP.id).where(
                db.FloatingIP.router_id == router_id)).all():
            self._fip_row(session, fip_id, touched)
        return touched

    def _fip_row(self, session: Session, fip_id: str, touched: Touched) -> None:
        old = self.fips.get(fip_id)
        row = _by_id(session, db.FloatingIP, fip_id)
        new = None if row is None else floating_ip_of(row)
        self._put(self.fips, fip_id, new)
        for fip in (old, new):
            if fip is not None:
                touched.routers.add(fip.router_id)
                touched.networks.add(fip.floating_network_id)
                touched.ports.add(fip.port_id)
                port = self.ports.get(fip.port_id)
                if port is not None:
                    touched.networks.add(port.network_id)

    def _floating_ip(self, session: Session, event: ev.FloatingIpChanged,
                     neighbors: Mapping[str, str]) -> Touched:
        touched = Touched(routers=set(event.routers))
        self._fip_row(session, event.floatingip_id, touched)
        for port_id in session.scalars(select(db.Port.id).where(
                db.Port.device_id == event.floatingip_id)).all():
            self._port(session, port_id, neighbors, touched)
        for port_id in [p.id for p in self.ports.values()
                        if p.device_id == event.floatingip_id and p.id not in touched.ports]:
            self._port(session, port_id, neighbors, touched)
        for router_id in list(touched.routers):
            if router_id in self.routers:
                touched.networks.update(router_networks(self.routers[router_id]))
        return touched


def _by_id(session: Session, table: type[Any], row_id: str) -> Any:
    """The row with this ``id`` (not always the primary key: networks and routers are
    keyed by their integer ``key``), as the database has it now."""
    return session.scalars(select(table).where(table.id == row_id)
                           .execution_options(populate_existing=True)).first()


def read_router(session: Session, router_id: str,
                neighbors: Mapping[str, str]) -> fm.Router | None:
    """One router as :func:`snapshot.read_model` builds it, from its own rows only."""
    router = _by_id(session, db.Router, router_id)
    if router is None:
        return None
    router_ports = session.scalars(select(db.RouterPort).where(
        db.RouterPort.router_id == router_id)).all()
    ports = session.scalars(select(db.Port).where(
        db.Port.id.in_([rp.port_id for rp in router_ports]))).all()
    subnet_ids = {a.subnet_id for p in ports for a in p.fixed_ips}
    subnets = session.scalars(select(db.Subnet).where(db.Subnet.id.in_(subnet_ids))).all()
    bindings = session.scalars(select(db.RouterL3AgentBinding).where(
        db.RouterL3AgentBinding.router_id == router_id)
        .execution_options(populate_existing=True)).all()
    where = placements(bindings, lambda agent_id: _by_id(session, db.Agent, agent_id)).get(
        router_id, Placement())
    return router_of(router, router_ports, {p.id: p for p in ports},
                     {s.id: s for s in subnets}, where.host, neighbors, where.standbys)


def router_networks(router: fm.Router | None) -> set[str]:
    if router is None:
        return set()
    nets = {i.network_id for i in router.interfaces}
    if router.gateway is not None:
        nets.add(router.gateway.network_id)
    return nets


def affected_switches(state: ModelState, touched: Touched,
                      locations: Iterable[Mapping[str, int]],
                      switches: Iterable[int]) -> set[int]:
    """The switches whose desired flows ``touched`` may change: ``state`` is the model after
    the change (``touched`` holds what it was before), ``locations`` the port locations
    before and after."""
    switches = set(switches)
    if touched.everything:
        return switches
    locations = list(locations)
    routers = set(touched.routers)
    networks = set(touched.networks)
    for port_id in touched.ports:
        port = state.ports.get(port_id)
        if port is not None:
            networks.add(port.network_id)
    # one hop through routers: a router forwards between all of its networks
    for router in state.routers.values():
        if router.id in routers or router_networks(router) & networks:
            routers.add(router.id)
    for router_id in routers:
        networks |= router_networks(state.routers.get(router_id))
    result: set[int] = set(touched.dpids)
    for router_id in routers:
        router = state.routers.get(router_id)
        if router is not None:
            result.update(router.placed_dpids)
    port_ids: set[str] = set(touched.ports)
    for net in networks:
        port_ids |= state.ports_by_network.get(net, set())
    port_ids |= _remote_group_members(state, touched.groups)
    for where in locations:
        for port_id in port_ids:
            dpid = where.get(port_id)
            if dpid is not None:
                result.add(dpid)
    return result & switches


def _remote_group_members(state: ModelState, groups: set[str]) -> set[str]:
    """Ports whose groups have rules naming one of ``groups`` as their remote group."""
    if not groups:
        return set()
    referring = {g.id for g in state.security_groups
                 if any(r.remote_group_id in groups for r in g.rules)}
    if not referring:
        return set()
    return {p.id for p in state.ports.values()
            if p.security_group_ids and referring & set(p.security_group_ids)}


def full_state(session: Session, neighbors: Mapping[str, str]) -> ModelState:
    """The reference: everything read again."""
    return ModelState(read_model(session, neighbors))



def difference(old: ModelState, new: ModelState) -> Touched:
    """What differs between two states of the model (a full read against the model kept in
    memory): the safety net's audit costs a comparison, and a recompute only of what it
    finds. ``everything`` when security groups, L3 agents' external ports, or the set of
    networks or subnets differ."""
    touched = Touched()
    if (old.security_groups != new.security_groups
            or old.external_ports != new.external_ports
            or old.networks.keys() != new.networks.keys()
            or old.subnets.keys() != new.subnets.keys()):
        touched.everything = True
        return touched
    touched.networks.update(i for i, n in new.networks.items() if old.networks[i] != n)
    touched.networks.update(s.network_id for i, s in new.subnets.items()
                            if old.subnets[i] != s)
    for port_id in _differing(old.ports, new.ports):
        touched.ports.add(port_id)
        for port in (old.ports.get(port_id), new.ports.get(port_id)):
            if port is None:
                continue
            touched.networks.add(port.network_id)
            touched.groups.update(port.security_group_ids or ())
            if port.device_owner in _ROUTER_PORTS and port.device_id:
                touched.routers.add(port.device_id)
    touched.ports.update(_differing(old.recorded, new.recorded))
    for router_id in _differing(old.routers, new.routers) | touched.routers:
        touched.routers.add(router_id)
        for router in (old.routers.get(router_id), new.routers.get(router_id)):
            if router is not None:
                touched.dpids.update(router.placed_dpids)
            touched.networks.update(router_networks(router))
    for fip_id in _differing(old.fips, new.fips):
        for fip in (old.fips.get(fip_id), new.fips.get(fip_id)):
            if fip is not None:
                touched.routers.add(fip.router_id)
                touched.networks.add(fip.floating_network_id)
                touched.ports.add(fip.port_id)
                port = new.ports.get(fip.port_id) or old.ports.get(fip.port_id)
                if port is not None:
                    touched.networks.add(port.network_id)
    for router_id in list(touched.routers):
        for router in (old.routers.get(router_id), new.routers.get(router_id)):
            touched.networks.update(router_networks(router))
    return touched


def _differing(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    if old == new:
        return set()
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
