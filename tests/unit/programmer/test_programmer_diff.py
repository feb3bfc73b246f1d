"""The programmer sends only the difference between desired and installed flows, a change of
more than one flow mod as one atomic bundle, then a barrier.

A fake datapath records the messages; installed flows are reported back as real os-ken
``OFPFlowStats`` parsed from the serialised flow-mods the programmer sent earlier.
"""

from __future__ import annotations

from typing import Any

import pytest

from ryu_sched import compat
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.programmer import canonical
from ryu_sched.programmer.programmer import Programmer
from tests.unit.programmer.programmer_testbed import (
    SWITCH1,
    Cloud,
    FakeDatapath,
    connect,
    flow_stats,
    make_services,
    ofp,
    parser,
    port_desc,
    seed,
    stats_form,
)


@pytest.fixture
def env() -> tuple[Programmer, Cloud]:
    services = make_services()
    cloud = seed(services.db)
    programmer = Programmer(services)
    programmer.neighbors.load()
    return programmer, cloud


def first_install(programmer: Programmer, cloud: Cloud) -> list[Any]:
    """Connect switch 1 with an empty table; return the flow-mods it was sent."""
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    return datapath.flow_mods()


def key(mod: Any) -> canonical.FlowKey:
    return stats_form(flow_stats(mod))[0]


def test_connect_reads_ports_then_flows_before_programming(env: tuple[Programmer, Cloud]
                                                           ) -> None:
    programmer, cloud = env
    datapath = FakeDatapath(SWITCH1)
    programmer.switch_connected(datapath)
    assert [type(m) for m in datapath.sent] == [parser.OFPPortDescStatsRequest]
    programmer.port_desc_reply(datapath, [], more=True)  # more parts to come: wait
    assert len(datapath.sent) == 1
    programmer.port_desc_reply(datapath, port_desc(cloud.ports_of[SWITCH1]), more=False)
    assert isinstance(datapath.sent[-1], parser.OFPFlowStatsRequest)
    assert datapath.sent[-1].table_id == ofp.OFPTT_ALL
    programmer.sync_dirty()  # flow table not read yet: nothing is programmed
    assert datapath.flow_mods() == []


def test_fresh_switch_gets_every_desired_flow_in_one_bundle_then_a_barrier(
        env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    desired = desired_flows(programmer.snapshot(), SWITCH1)
    mods = datapath.flow_mods()
    assert len(mods) == len(desired) > 20
    assert {m.command for m in mods} == {ofp.OFPFC_ADD}
    assert {key(m) for m in mods} == {canonical.spec_key(s) for s in desired}
    (bundle,) = datapath.bundles()
    assert bundle.committed and bundle.mods == mods
    assert bundle.flags == ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED
    assert datapath.plain_flow_mods() == []
    commit = max(i for i, m in enumerate(datapath.sent) if isinstance(m, compat.ONFBundleCtrlMsg))
    barriers = [i for i, m in enumerate(datapath.sent) if isinstance(m, parser.OFPBarrierRequest)]
    assert barriers == [commit + 1]


def test_identical_installed_flows_get_no_flow_mod(env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    installed = [flow_stats(m) for m in first_install(programmer, cloud)]
    datapath = FakeDatapath(SWITCH1)  # the switch reconnects (or the controller restarted)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed)
    assert datapath.flow_mods() == []
    assert datapath.barriers() == []
    programmer.mark_all_dirty()
    programmer.sync_dirty()  # and again, e.g. after an unrelated model change
    assert datapath.flow_mods() == []


def test_only_missing_flows_are_added(env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    mods = first_install(programmer, cloud)
    kept, missing = mods[::2], mods[1::2]
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], [flow_stats(m) for m in kept])
    sent = datapath.flow_mods()
    assert {m.command for m in sent} == {ofp.OFPFC_ADD}
    assert sorted(key(m) for m in sent) == sorted(key(m) for m in missing)
    assert [b.mods for b in datapath.bundles()] == [sent]  # one atomic change
    assert len(datapath.barriers()) == 1


def test_changed_flow_is_readded_in_place(env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    mods = first_install(programmer, cloud)
    target = next(m for m in mods if m.table_id == 60 and m.priority == 100)
    stale = parser.OFPFlowMod(
        FakeDatapath(SWITCH1), cookie=target.cookie, table_id=target.table_id,
        command=ofp.OFPFC_ADD, priority=target.priority, match=target.match,
        instructions=[parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(99, 0)])])
    installed = [flow_stats(stale if m is target else m) for m in mods]
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed)
    sent = datapath.flow_mods()
    assert len(sent) == 1
    (readd,) = sent
    assert readd.command == ofp.OFPFC_ADD  # an add replaces the entry atomically
    assert key(readd) == key(target)
    assert stats_form(flow_stats(readd))[1] == stats_form(flow_stats(target))[1]
    assert datapath.bundles() == []  # a single flow mod is atomic by itself


def test_changed_cookie_alone_is_readded(env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    mods = first_install(programmer, cloud)
    target = mods[len(mods) // 2]
    installed = [flow_stats(m, cookie=m.cookie ^ 0xFF if m is target else None) for m in mods]
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed)
    assert [(key(m), m.cookie) for m in datapath.flow_mods()] == [(key(target), target.cookie)]


def test_unwanted_flow_is_deleted_strictly(env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    mods = first_install(programmer, cloud)
    unwanted = parser.OFPFlowMod(
        FakeDatapath(SWITCH1), cookie=0x0300000000000042, table_id=60, command=ofp.OFPFC_ADD,
        priority=100, match=parser.OFPMatch(metadata=(1, 0xFFFFFF),
                                            eth_dst="fa:16:3e:00:00:99"),
        instructions=[parser.OFPInstructionActions(
            ofp.OFPIT_APPLY_ACTIONS, [parser.OFPActionOutput(10, 0)])])
    installed = [flow_stats(m) for m in [*mods, unwanted]]
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed)
    (delete,) = datapath.flow_mods()
    assert delete.command == ofp.OFPFC_DELETE_STRICT
    assert (delete.table_id, delete.priority) == (60, 100)
    assert dict(delete.match.items()) == {"metadata": (1, 0xFFFFFF),
                                          "eth_dst": "fa:16:3e:00:00:99"}
    assert (delete.out_port, delete.out_group) == (ofp.OFPP_ANY, ofp.OFPG_ANY)
    assert len(datapath.barriers()) == 1


def test_a_port_that_goes_away_loses_its_flows(env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    first_install(programmer, cloud)
    datapath = programmer.switches[SWITCH1].datapath
    datapath.clear()
    tap = next(n for n in cloud.ports_of[SWITCH1] if n.startswith("tap"))
    port = parser.OFPPort(10, "02:00:00:00:00:0a", tap.encode(), 0, 0, 0, 0, 0, 0, 0, 0)
    programmer.port_status(datapath, ofp.OFPPR_DELETE, port)
    programmer.sync_dirty()
    removed = datapath.flow_mods()
    deleted = [m for m in removed if m.command == ofp.OFPFC_DELETE_STRICT]
    assert deleted and all(dict(m.match.items()).get("in_port") == 10 for m in deleted
                           if m.table_id in (0, 10))
    assert any(dict(m.match.items()).get("in_port") == 10 for m in deleted)
    # flows that merely mentioned the port (flooding) are re-added in place, not deleted
    assert {m.command for m in removed} <= {ofp.OFPFC_DELETE_STRICT, ofp.OFPFC_ADD}
    # deletes and re-adds are one atomic change: no moment with the port half gone
    assert [b.mods for b in datapath.bundles()] == [removed]
    # ...and back: exactly the same keys are programmed again, all as adds
    datapath.clear()
    programmer.port_status(datapath, ofp.OFPPR_ADD, port)
    programmer.sync_dirty()
    restored = datapath.flow_mods()
    assert {m.command for m in restored} == {ofp.OFPFC_ADD}
    assert [b.mods for b in datapath.bundles()] == [restored]
    assert sorted(key(m) for m in restored) == sorted(key(m) for m in removed)


def test_first_sync_after_connect_is_logged_even_when_nothing_changed(
        env: tuple[Programmer, Cloud], caplog: pytest.LogCaptureFixture) -> None:
    programmer, cloud = env
    installed = [flow_stats(m) for m in first_install(programmer, cloud)]
    caplog.set_level("INFO", logger="ryu_sched.programmer.programmer")
    connect(programmer, FakeDatapath(SWITCH1), cloud.ports_of[SWITCH1], installed)
    programmer.mark_all_dirty()
    programmer.sync_dirty()  # a later no-op sync stays quiet
    lines = [r.getMessage() for r in caplog.records if "desired" in r.getMessage()]
    assert lines == [f"switch {SWITCH1:016x}: in sync, nothing sent ({len(installed)} desired)"
                     " in " + lines[0].rsplit(" in ", 1)[1]]
    assert not any("flow-mods" in line for line in lines)  # what the e2e restart test checks
