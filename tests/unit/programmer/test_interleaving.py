"""Many switches at once: flow-table reads take turns (at most a few in flight, oldest first),
syncs run oldest-ready first with a yield to the hub between switches, and work already done
is not done again."""

from __future__ import annotations

import pytest

from ryu_sched.programmer import programmer as programmer_module
from ryu_sched.programmer.programmer import Programmer
from tests.unit.programmer.programmer_testbed import (
    SWITCH1,
    SWITCH2,
    Cloud,
    FakeDatapath,
    make_services,
    parser,
    port_desc,
    seed,
)

SWITCH3 = 3


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> tuple[Programmer, Cloud, list[str]]:
    monkeypatch.setattr(programmer_module, "MAX_CONCURRENT_READS", 2)  # 3 switches suffice
    # every yield point yields (in production only after YIELD_AFTER_SECONDS of work)
    monkeypatch.setattr(programmer_module, "YIELD_AFTER_SECONDS", 0.0)
    services = make_services()
    cloud = seed(services.db)
    cloud.ports_of[SWITCH3] = {"uplink": 1}
    programmer = Programmer(services)
    programmer.neighbors.load()
    events: list[str] = []
    programmer.pause = lambda: events.append("yield")
    return programmer, cloud, events


def stats_requested(datapath: FakeDatapath) -> bool:
    return any(isinstance(m, parser.OFPFlowStatsRequest) for m in datapath.sent)


def test_flow_tables_are_read_a_few_at_a_time_oldest_first(
        env: tuple[Programmer, Cloud, list[str]]) -> None:
    programmer, cloud, _ = env
    datapaths = {d: FakeDatapath(d) for d in (SWITCH1, SWITCH2, SWITCH3)}
    for dpid, datapath in datapaths.items():
        programmer.switch_connected(datapath)
        programmer.port_desc_reply(datapath, port_desc(cloud.ports_of[dpid]), more=False)
    assert [stats_requested(d) for d in datapaths.values()] == [True, True, False]
    programmer.flow_stats_reply(datapaths[SWITCH2], [], more=False)
    assert stats_requested(datapaths[SWITCH3])  # its turn now
    assert not programmer.gc.holding or programmer._reads  # held only while reading
    programmer.flow_stats_reply(datapaths[SWITCH1], [], more=False)
    programmer.flow_stats_reply(datapaths[SWITCH3], [], more=False)
    assert not programmer.gc.holding


def test_a_switch_that_leaves_while_waiting_gives_its_turn_away(
        env: tuple[Programmer, Cloud, list[str]]) -> None:
    programmer, cloud, _ = env
    datapaths = {d: FakeDatapath(d) for d in (SWITCH1, SWITCH2, SWITCH3)}
    for dpid, datapath in datapaths.items():
        programmer.switch_connected(datapath)
        programmer.port_desc_reply(datapath, port_desc(cloud.ports_of[dpid]), more=False)
    programmer.switch_disconnected(datapaths[SWITCH1])  # reading: its slot goes to switch 3
    assert stats_requested(datapaths[SWITCH3])


def test_a_read_that_never_ends_gives_up_its_slot(
        env: tuple[Programmer, Cloud, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    programmer, cloud, _ = env
    datapaths = {d: FakeDatapath(d) for d in (SWITCH1, SWITCH2, SWITCH3)}
    for dpid, datapath in datapaths.items():
        programmer.switch_connected(datapath)
        programmer.port_desc_reply(datapath, port_desc(cloud.ports_of[dpid]), more=False)
    monkeypatch.setattr(programmer_module, "READ_TIMEOUT_SECONDS", 0.0)
    programmer._expire_reads()
    # both silent reads gave up their slots: switch 3 (waiting) goes first, then they are
    # asked again in their order, as far as slots allow
    assert stats_requested(datapaths[SWITCH3])
    asked = {d: sum(isinstance(m, parser.OFPFlowStatsRequest) for m in dp.sent)
             for d, dp in datapaths.items()}
    assert asked == {SWITCH1: 2, SWITCH2: 1, SWITCH3: 1}


def test_switches_are_synced_in_the_order_they_became_ready_with_yields_between(
        env: tuple[Programmer, Cloud, list[str]]) -> None:
    programmer, cloud, events = env
    datapaths = {d: FakeDatapath(d) for d in (SWITCH2, SWITCH1)}  # switch 2 first
    for dpid, datapath in datapaths.items():
        programmer.switch_connected(datapath)
        programmer.port_desc_reply(datapath, port_desc(cloud.ports_of[dpid]), more=False)
        programmer.flow_stats_reply(datapath, [], more=False)
    synced: list[int] = []
    original = programmer.sync_switch

    def recording(state, snapshot):  # type: ignore[no-untyped-def]
        synced.append(state.dpid)
        events.append(f"sync {state.dpid}")
        return original(state, snapshot)

    programmer.sync_switch = recording  # type: ignore[method-assign]
    events.clear()
    programmer.sync_dirty()
    assert synced == [SWITCH2, SWITCH1]
    between = events[events.index(f"sync {SWITCH2}"):events.index(f"sync {SWITCH1}")]
    assert "yield" in between


def test_a_new_switch_does_not_make_the_others_recompute_or_resend(
        env: tuple[Programmer, Cloud, list[str]]) -> None:
    programmer, cloud, _ = env
    first = FakeDatapath(SWITCH1)
    programmer.switch_connected(first)
    programmer.port_desc_reply(first, port_desc(cloud.ports_of[SWITCH1]), more=False)
    programmer.flow_stats_reply(first, [], more=False)
    programmer.sync_dirty()
    computed, reads = programmer.stats.desired_computed, programmer.stats.model_reads
    first.clear()
    other = FakeDatapath(SWITCH3)  # no taps: nothing moves
    programmer.switch_connected(other)
    programmer.port_desc_reply(other, port_desc(cloud.ports_of[SWITCH3]), more=False)
    programmer.flow_stats_reply(other, [], more=False)
    programmer.sync_dirty()
    assert first.sent == []
    assert programmer.stats.desired_computed == computed + 1  # switch 3's only
    assert programmer.stats.model_reads == reads
