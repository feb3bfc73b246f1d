"""Port locations and status go through the service layer, one PortLocated per changed port;
the programmer does not react to its own events."""

from __future__ import annotations

from sqlalchemy import delete, select

from ryu_sched.db import models as db
from ryu_sched.events import Event, PortLocated
from ryu_sched.flows.model import tap_name
from ryu_sched.programmer.programmer import Programmer
from ryu_sched.resources.port_status import PortLocation, PortStatus, record_port_locations
from tests.unit.programmer.programmer_testbed import (
    SWITCH1,
    SWITCH2,
    FakeDatapath,
    acknowledge,
    connect,
    make_services,
    ofp,
    parser,
    seed,
)


def test_only_ports_whose_row_changes_are_written_and_announced() -> None:
    services = make_services()
    cloud = seed(services.db)
    published: list[Event] = []
    services.bus.subscribe(published.append)
    events = record_port_locations(services, [
        PortLocation(cloud.local_port.id, SWITCH1, PortStatus.ACTIVE),
        PortLocation(cloud.remote_port.id, SWITCH2, PortStatus.DOWN),  # status differs only
        PortLocation("no-such-port", SWITCH1, PortStatus.ACTIVE),
    ])
    assert events == published == [
        PortLocated(cloud.local_port.id, cloud.net.id, "ACTIVE", SWITCH1)]
    assert record_port_locations(services, [
        PortLocation(cloud.local_port.id, SWITCH1, PortStatus.ACTIVE)]) == []
    with services.db.session() as session:
        row = session.get(db.Port, cloud.local_port.id)
        assert row is not None and (row.bound_dpid, row.status) == (SWITCH1, "ACTIVE")


def test_a_port_seen_nowhere_is_down_and_unbound() -> None:
    services = make_services()
    cloud = seed(services.db)
    (event,) = record_port_locations(services, [
        PortLocation(cloud.remote_port.id, None, PortStatus.DOWN)])
    assert (event.dpid, event.status) == (None, "DOWN")
    with services.db.session() as session:
        row = session.get(db.Port, cloud.remote_port.id)
        assert row is not None and (row.bound_dpid, row.status) == (None, "DOWN")


def test_status_follows_location_and_admin_state() -> None:
    assert PortStatus.of(SWITCH1, True) is PortStatus.ACTIVE
    assert PortStatus.of(SWITCH1, False) is PortStatus.DOWN
    assert PortStatus.of(None, True) is PortStatus.DOWN


def _statuses(services, *port_ids: str) -> dict[str, tuple[int | None, str]]:
    with services.db.session() as session:
        return {p: (row.bound_dpid, row.status) for p in port_ids
                if (row := session.get(db.Port, p)) is not None}


def _router_ports(services, router_id: str) -> list[str]:
    with services.db.session() as session:
        return sorted(p.id for p in session.scalars(
            select(db.Port).where(db.Port.device_id == router_id)))


def test_the_programmer_records_through_the_service_and_ignores_its_own_events() -> None:
    services = make_services()
    cloud = seed(services.db)
    programmer = Programmer(services)
    programmer.neighbors.load()
    programmer.pause = lambda: None
    services.bus.subscribe(programmer._on_model_event)  # as start() does
    located: list[PortLocated] = []
    services.bus.subscribe(lambda e: located.append(e) if isinstance(e, PortLocated) else None)
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    # The remote port stays where it was recorded (switch 2 is not connected): at once. The
    # local port and the router's ports wait until switch 1 has acknowledged its flows.
    assert {(e.port_id, e.dpid, e.status) for e in located} == {
        (cloud.remote_port.id, SWITCH2, "ACTIVE")}
    located.clear()
    acknowledge(programmer, datapath)
    router_ports = _router_ports(services, cloud.router.id)
    assert {(e.port_id, e.dpid, e.status) for e in located} == {
        (cloud.local_port.id, SWITCH1, "ACTIVE"),
        *((port_id, None, "ACTIVE") for port_id in router_ports)}
    assert programmer._dirty == {}  # its own events made no work
    reads = programmer.stats.model_reads
    located.clear()
    tap = tap_name(cloud.local_port.id)
    programmer.port_status(datapath, ofp.OFPPR_DELETE, parser.OFPPort(
        10, "02:00:00:00:00:0a", tap.encode(), 0, 0, 0, 0, 0, 0, 0, 0))
    programmer.sync_dirty()
    assert [(e.port_id, e.dpid, e.status) for e in located] == [
        (cloud.local_port.id, None, "DOWN")]
    assert programmer.stats.model_reads == reads  # a tap going away is no model change
    assert programmer._dirty == {}


def test_a_status_waits_for_the_barrier_after_the_flows_it_needs() -> None:
    services = make_services()
    cloud = seed(services.db)
    programmer = Programmer(services)
    programmer.neighbors.load()
    programmer.pause = lambda: None
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    programmer.record_acknowledged()
    assert _statuses(services, cloud.local_port.id)[cloud.local_port.id] == (None, "DOWN")
    # a barrier answered before the last one settles only what was sent before it
    *earlier, last = datapath.barriers()
    for barrier in earlier:
        programmer.barrier_reply(datapath, barrier.xid)
    programmer.record_acknowledged()
    assert _statuses(services, cloud.local_port.id)[cloud.local_port.id] == (None, "DOWN")
    programmer.barrier_reply(datapath, last.xid)
    programmer.record_acknowledged()
    assert _statuses(services, cloud.local_port.id)[cloud.local_port.id] == \
        (SWITCH1, "ACTIVE")


def test_router_ports_follow_the_routers_switch() -> None:
    services = make_services()
    cloud = seed(services.db)
    programmer = Programmer(services)
    programmer.neighbors.load()
    programmer.pause = lambda: None
    router_ports = _router_ports(services, cloud.router.id)
    # Not connected yet: nothing is decided for them.
    assert {s for _d, s in _statuses(services, *router_ports).values()} == {"DOWN"}
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    acknowledge(programmer, datapath)
    assert {s for _d, s in _statuses(services, *router_ports).values()} == {"ACTIVE"}
    # The router loses its agent: hosted nowhere, its ports are DOWN.
    with services.db.session() as session:
        session.execute(delete(db.RouterL3AgentBinding))
    programmer.model_changed()
    programmer.sync_dirty()
    acknowledge(programmer, datapath)
    assert {s for _d, s in _statuses(services, *router_ports).values()} == {"DOWN"}


def test_a_dhcp_port_never_seen_on_a_switch_keeps_what_its_agent_reported() -> None:
    services = make_services()
    cloud = seed(services.db)
    with services.db.session() as session:
        dhcp = db.Port(network_id=cloud.net.id, mac_address="fa:16:3e:00:00:d1",
                       device_owner="network:dhcp", status="ACTIVE")
        session.add(dhcp)
        session.flush()
        dhcp_id = dhcp.id
    programmer = Programmer(services)
    programmer.neighbors.load()
    programmer.pause = lambda: None
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    acknowledge(programmer, datapath)
    assert _statuses(services, dhcp_id)[dhcp_id] == (None, "ACTIVE")
