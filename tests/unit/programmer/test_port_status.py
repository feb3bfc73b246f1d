"""Port locations and status go through the service layer, one PortLocated per changed port;
the programmer does not react to its own events."""

from __future__ import annotations

from flows.model import tap_name
from ryu_sched.db import models as db
from ryu_sched.events import Event, PortLocated
from ryu_sched.programmer.programmer import Programmer
from ryu_sched.resources.port_status import PortLocation, PortStatus, record_port_locations
from tests.unit.programmer.programmer_testbed import (
    SWITCH1,
    SWITCH2,
    FakeDatapath,
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
    # the local port's tap is on switch 1; the remote one stays where it was recorded
    assert {(e.port_id, e.dpid, e.status) for e in located} == {
        (cloud.local_port.id, SWITCH1, "ACTIVE"), (cloud.remote_port.id, SWITCH2, "ACTIVE")}
    assert len(located) == 2
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
