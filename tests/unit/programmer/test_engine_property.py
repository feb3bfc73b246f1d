"""Incremental == full: random sequences of model changes, made through the real service layer
on an in-memory SQLite database, applied to the engine's in-memory model one event at a time
(recomputing only the switches :func:`affected_switches` names); after every change the
model and every switch's desired flows must equal a full recompute from a fresh read."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ryu_sched import errors
from ryu_sched.db import models as db
from ryu_sched.events import BindingChanged, Event, PortLocated
from ryu_sched.flows import model as fm
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.programmer.diff import wanted_of
from ryu_sched.programmer.engine import ModelState, Touched, affected_switches, full_state
from ryu_sched.programmer.programmer import Programmer
from ryu_sched.programmer.snapshot import Model, assemble, locations
from ryu_sched.resources import admin_context, floatingips, networks, ports, routers, subnets
from ryu_sched.shared.vocabulary import HostedKind
from tests.unit.programmer.programmer_testbed import (
    FakeDatapath,
    acknowledge,
    connect,
    make_services,
    ofp,
    parser,
)

SWITCHES = (1, 2, 3)
NEIGHBORS: dict[str, str] = {}

op = st.one_of(
    st.tuples(st.just("port"), st.integers(0, 2), st.sampled_from((None, *SWITCHES))),
    st.tuples(st.just("move"), st.integers(0, 20), st.sampled_from((None, *SWITCHES))),
    st.tuples(st.just("admin"), st.integers(0, 20)),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("iface"), st.integers(0, 1)),
    st.tuples(st.just("rm_iface"), st.integers(0, 1)),
    st.tuples(st.just("gateway"), st.booleans()),
    st.tuples(st.just("fip"), st.integers(0, 20)),
    st.tuples(st.just("unfip"), st.integers(0, 5)),
    st.tuples(st.just("bind"), st.integers(0, 1)),
)
ops = st.lists(op, min_size=1, max_size=12)


@dataclasses.dataclass
class World:
    services: Any
    ctx: Any
    nets: list[str]
    subnets: list[str]
    ext: str
    router: str
    agents: list[str]
    ports: list[str] = dataclasses.field(default_factory=list)
    fips: list[str] = dataclasses.field(default_factory=list)
    taps: dict[int, dict[str, int]] = dataclasses.field(default_factory=dict)


def build() -> World:
    services = make_services()
    ctx = admin_context("tenant-a")
    nets, subs = [], []
    for i in range(3):
        net = networks.create_network(services, ctx, {"name": f"n{i}"})
        sub = subnets.create_subnet(services, ctx, {
            "network_id": net["id"], "cidr": f"10.{i}.0.0/24", "ip_version": 4})
        nets.append(net["id"])
        subs.append(sub["id"])
    ext = networks.create_network(services, ctx, {
        "name": "public", "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "physnet1"})
    subnets.create_subnet(services, ctx, {"network_id": ext["id"], "cidr": "203.0.113.0/24",
                                          "ip_version": 4})
    router = routers.create_router(services, ctx, {"name": "r1"})
    agents = []
    with services.db.session() as session:
        for dpid in (1, 2):
            agent = db.Agent(agent_type="L3 agent", host=f"gw{dpid}", configurations={
                "datapath_id": f"{dpid:016x}", "external_port": "ext0"})
            session.add(agent)
            session.flush()
            agents.append(agent.id)
        session.add(db.RouterL3AgentBinding(router_id=router["id"], l3_agent_id=agents[0]))
    return World(services, ctx, nets, subs, ext["id"], router["id"], agents,
                 taps={d: {"uplink": 1, "ext0": 2} for d in SWITCHES})


def pick(seq: list[str], i: int) -> str | None:
    return seq[i % len(seq)] if seq else None


def apply_op(w: World, op: tuple) -> None:
    kind = op[0]
    s, ctx = w.services, w.ctx
    if kind == "port":
        port = ports.create_port(s, ctx, {"network_id": w.nets[op[1]]})
        w.ports.append(port["id"])
        if op[2] is not None:
            w.taps[op[2]][fm.tap_name(port["id"])] = 10 + len(w.ports)
    elif kind == "move" and (port_id := pick(w.ports, op[1])):
        ofport = None
        for taps in w.taps.values():
            ofport = taps.pop(fm.tap_name(port_id), None) or ofport
        if op[2] is not None:
            w.taps[op[2]][fm.tap_name(port_id)] = ofport or 99
    elif kind == "admin" and (port_id := pick(w.ports, op[1])):
        current = ports.get_port(s, ctx, port_id)
        ports.update_port(s, ctx, port_id, {"admin_state_up": not current["admin_state_up"]})
    elif kind == "delete" and (port_id := pick(w.ports, op[1])):
        ports.delete_port(s, ctx, port_id)
        w.ports.remove(port_id)
        for taps in w.taps.values():
            taps.pop(fm.tap_name(port_id), None)
    elif kind == "iface":
        routers.add_router_interface(s, ctx, w.router, {"subnet_id": w.subnets[op[1]]})
    elif kind == "rm_iface":
        routers.remove_router_interface(s, ctx, w.router, {"subnet_id": w.subnets[op[1]]})
    elif kind == "gateway":
        info = {"network_id": w.ext} if op[1] else {}
        routers.update_router(s, ctx, w.router, {"external_gateway_info": info})
    elif kind == "fip" and (port_id := pick(w.ports, op[1])):
        fip = floatingips.create_floatingip(s, ctx, {"floating_network_id": w.ext,
                                                     "port_id": port_id})
        w.fips.append(fip["id"])
    elif kind == "unfip" and (fip_id := pick(w.fips, op[1])):
        floatingips.update_floatingip(s, ctx, fip_id, {"port_id": None})
    elif kind == "bind":
        agent = w.agents[op[1]]
        with s.db.session() as session:
            row = session.query(db.RouterL3AgentBinding).filter_by(router_id=w.router).one()
            row.l3_agent_id = agent
        # as the registry publishes it after its transaction
        s.bus.publish(BindingChanged(kind=HostedKind.ROUTER, object_id=w.router,
                                     agent_id=agent, host="gw", bound=True))


def flows_of(model: Model, taps: dict[int, dict[str, int]]) -> dict[int, list]:
    snapshot = assemble(model, taps, {"physnet1": "uplink"})
    return {dpid: desired_flows(snapshot, dpid) for dpid in taps}


def canonical(model: Model) -> tuple:
    def by_id(items: Any) -> tuple:
        return tuple(sorted(items, key=lambda x: x.id))
    return (by_id(model.networks), by_id(model.subnets), by_id(model.ports),
            by_id(model.routers), by_id(model.floating_ips), model.security_groups,
            dict(model.external_ports), dict(model.recorded), dict(model.tap_to_port))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ops)
def test_incremental_equals_full_recompute(sequence: list[tuple]) -> None:
    w = build()
    seen: list[Event] = []
    w.services.bus.subscribe(seen.append)
    with w.services.db.session() as session:
        state = full_state(session, NEIGHBORS)
    flows = flows_of(state.model(), w.taps)
    for op in sequence:
        seen.clear()
        taps_before = {d: dict(t) for d, t in w.taps.items()}
        before = locations(state.model(), taps_before)
        try:
            apply_op(w, op)
        except errors.NeutronError:
            pass
        touched = Touched()
        with w.services.db.session() as session:
            for event in seen:
                if isinstance(event, PortLocated):
                    continue
                result = state.apply(session, event, NEIGHBORS)
                if result is None:       # not handled incrementally: the reference read
                    state = full_state(session, NEIGHBORS)
                    touched.everything = True
                else:
                    touched.merge(result)
        model: Model = state.model()
        after = locations(model, w.taps)
        moved = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
        touched.ports |= moved
        redo = affected_switches(state, touched, [before, after], SWITCHES)
        redo |= {d for d in SWITCHES if taps_before[d] != w.taps[d]}
        snapshot = assemble(model, w.taps, {"physnet1": "uplink"})
        for dpid in redo:
            flows[dpid] = desired_flows(snapshot, dpid)
        with w.services.db.session() as session:
            fresh = full_state(session, NEIGHBORS).model()
        assert canonical(model) == canonical(fresh), op
        reference = flows_of(fresh, w.taps)
        for dpid in SWITCHES:
            assert sorted(map(str, flows[dpid])) == sorted(map(str, reference[dpid])), (
                op, dpid, redo)


def test_only_the_switches_of_the_touched_network_are_recomputed() -> None:
    w = build()
    apply_op(w, ("port", 0, 1))
    apply_op(w, ("port", 1, 2))
    with w.services.db.session() as session:
        state: ModelState = full_state(session, NEIGHBORS)
    model = state.model()
    where = locations(model, w.taps)
    touched = Touched(ports={w.ports[0]})
    assert affected_switches(state, touched, [where], SWITCHES) == {1}


def installed_forms(programmer: Programmer, dpid: int) -> dict:
    installed = programmer.switches[dpid].installed or {}
    return {key: (flow.cookie, flow.body) for key, flow in installed.items()}


def desired_forms(specs: list) -> dict:
    return {key: (want.spec.cookie, want.body) for key, want in wanted_of(specs).items()}


def tell_port_statuses(programmer: Programmer, datapaths: dict[int, FakeDatapath],
                       before: dict[int, dict[str, int]],
                       after: dict[int, dict[str, int]]) -> None:
    """What each switch reports when taps come, go or change their ofport."""
    for dpid, datapath in datapaths.items():
        for name in before[dpid].keys() - after[dpid].keys():
            programmer.port_status(datapath, ofp.OFPPR_DELETE, parser.OFPPort(
                before[dpid][name], "02:00:00:00:00:01", name.encode(), 0, 0, 0, 0, 0, 0, 0, 0))
        for name, ofport in after[dpid].items():
            if before[dpid].get(name) != ofport:
                programmer.port_status(datapath, ofp.OFPPR_ADD, parser.OFPPort(
                    ofport, "02:00:00:00:00:01", name.encode(), 0, 0, 0, 0, 0, 0, 0, 0))


#: ...and changes made behind the programmer's back (no event), which the safety net's full
#: read (``model_changed``) finds by comparing it with the model in memory
programmer_ops = st.lists(st.one_of(op, st.tuples(st.just("silent"), st.integers(0, 20))),
                          min_size=1, max_size=12)


def silently(w: World, op: tuple) -> bool:
    """A port's admin state flipped in the database directly: no event."""
    if op[0] != "silent" or not w.ports:
        return False
    with w.services.db.session() as session:
        row = session.get(db.Port, pick(w.ports, op[1]))
        row.admin_state_up = not row.admin_state_up
    return True


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programmer_ops)
def test_the_programmer_keeps_every_switch_equal_to_a_full_recompute(
        sequence: list[tuple]) -> None:
    """The programmer itself, driven by the events of random changes and by the switches'
    port statuses (and, for changes without events, by the safety net's full read): after
    each round, every switch's table (what it was sent) and its partitioned desired table
    equal a full recompute from a fresh read of the database."""
    w = build()
    programmer = Programmer(w.services)
    programmer.neighbors.load()
    programmer.pause = lambda: None
    programmer.model_changed()
    w.services.bus.subscribe(programmer._on_model_event)  # as start() does
    datapaths = {dpid: FakeDatapath(dpid) for dpid in SWITCHES}
    for dpid, datapath in datapaths.items():
        connect(programmer, datapath, w.taps[dpid], installed=[])
    for op in sequence:
        taps_before = {d: dict(t) for d, t in w.taps.items()}
        if silently(w, op):
            programmer.model_changed()       # the safety net
        else:
            try:
                apply_op(w, op)
            except errors.NeutronError:
                pass
        tell_port_statuses(programmer, datapaths, taps_before, w.taps)
        programmer.sync_dirty()
        for datapath in datapaths.values():
            acknowledge(programmer, datapath)
        programmer.sync_dirty()
        with w.services.db.session() as session:
            fresh = full_state(session, NEIGHBORS).model()
        reference = flows_of(fresh, w.taps)
        for dpid in SWITCHES:
            expected = desired_forms(reference[dpid])
            table = programmer._tables[dpid]
            assert desired_forms(table.specs) == expected, (op, dpid)
            assert installed_forms(programmer, dpid) == expected, (op, dpid)
    # read in full: at start, once more when the first port made its tenant's default
    # security group (security group changes are read in full), and by the safety net
    assert programmer.stats.model_reads <= 2 + sum(op[0] == "silent" for op in sequence)
