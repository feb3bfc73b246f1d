"""Every multi-flow change of a switch is one atomic bundle; errors the switch reports lead to
a re-read of its table (a failed bundle), a retry later (a rejected flow), or plain flow mods
(a switch without the bundle extension).

The fake datapath records messages; real-OVS behaviour is in test_programmer_real_ovs.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from ryu_sched import compat
from ryu_sched.db import models as db
from ryu_sched.flows.model import tap_name
from ryu_sched.programmer.programmer import Programmer
from tests.unit.programmer.ofchannel import BundleAdd
from tests.unit.programmer.programmer_testbed import (
    SWITCH1,
    Cloud,
    FakeDatapath,
    connect,
    flow_stats,
    make_services,
    ofp,
    parser,
    seed,
    stats_form,
)


@pytest.fixture
def env() -> tuple[Programmer, Cloud]:
    services = make_services()
    cloud = seed(services.db)
    programmer = Programmer(services)
    programmer.neighbors.load()
    programmer.pause = lambda: None
    return programmer, cloud


def one_bundle(datapath: FakeDatapath) -> list[Any]:
    """The flow mods of the one committed bundle sent, checked to be all that was sent,
    followed by a barrier."""
    (bundle,) = datapath.bundles()
    assert bundle.committed
    assert bundle.flags == ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED
    assert datapath.plain_flow_mods() == []
    assert isinstance(datapath.sent[-1], parser.OFPBarrierRequest)
    return bundle.mods


def error(datapath: FakeDatapath, xid: int, type_: int, code: int) -> Any:
    msg = parser.OFPErrorMsg(datapath, type_=type_, code=code, data=b"")
    msg.xid = xid
    return msg


def xid_of(datapath: FakeDatapath, kind: type, **attrs: Any) -> int:
    return next(m.xid for m in datapath.sent if isinstance(m, kind)
                and all(getattr(m, k) == v for k, v in attrs.items()))


def test_each_multi_flow_change_of_a_switch_is_one_bundle(env: tuple[Programmer, Cloud]
                                                         ) -> None:
    programmer, cloud = env
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    assert len(one_bundle(datapath)) > 20  # a fresh switch: its whole table

    # a new port on the network appears on the switch: classification, anti-spoofing, L2
    with programmer.services.db.session() as session:
        row = db.Port(network_id=cloud.net.id, mac_address="fa:16:3e:00:00:21",
                      device_owner="compute:nova")
        session.add(row)
    programmer.model_changed()
    datapath.clear()
    tap = parser.OFPPort(11, "02:00:00:00:00:0b", tap_name(row.id).encode(), 0, 0, 0, 0, 0,
                         0, 0, 0)
    programmer.port_status(datapath, ofp.OFPPR_ADD, tap)
    programmer.sync_dirty()
    added = one_bundle(datapath)
    assert len(added) > 1 and {m.command for m in added} == {ofp.OFPFC_ADD}

    # and goes away again: deletes and re-adds in one bundle
    datapath.clear()
    programmer.port_status(datapath, ofp.OFPPR_DELETE, tap)
    programmer.sync_dirty()
    removed = one_bundle(datapath)
    assert ofp.OFPFC_DELETE_STRICT in {m.command for m in removed}

    # bundle ids are not reused on a connection
    datapath.clear()
    programmer.port_status(datapath, ofp.OFPPR_ADD, tap)
    programmer.sync_dirty()
    assert one_bundle(datapath)
    ids = [m.bundle_id for m in datapath.sent if isinstance(m, compat.ONFBundleCtrlMsg)]
    assert ids == [4, 4]


def test_a_failed_commit_rereads_the_table_and_sends_the_next_change_plain(
        env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    wanted = one_bundle(datapath)
    commit = xid_of(datapath, compat.ONFBundleCtrlMsg, type=ofp.ONF_BCT_COMMIT_REQUEST)
    datapath.clear()
    programmer.error(datapath, error(datapath, commit, ofp.OFPET_EXPERIMENTER, 0))
    # nothing of the bundle was applied: the table is read again before anything is sent
    assert [type(m) for m in datapath.sent] == [parser.OFPFlowStatsRequest]
    assert not programmer.switches[SWITCH1].ready
    programmer.sync_dirty()
    assert datapath.flow_mods() == []
    half = wanted[: len(wanted) // 2]  # say the switch has half of them from before
    programmer.flow_stats_reply(datapath, [flow_stats(m) for m in half], more=False)
    programmer.sync_dirty()
    plain = datapath.plain_flow_mods()
    assert len(plain) == len(wanted) - len(half) and datapath.bundles() == []
    # ...and once that went through, changes are bundled again
    datapath.clear()
    programmer.port_status(datapath, ofp.OFPPR_DELETE,
                           parser.OFPPort(10, "02:00:00:00:00:0a",
                                          tap_name(cloud.local_port.id).encode(),
                                          0, 0, 0, 0, 0, 0, 0, 0))
    programmer.sync_dirty()
    assert one_bundle(datapath)


def test_a_flow_rejected_inside_a_bundle_is_tried_again_on_the_next_sync(
        env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    adds = [m for m in datapath.sent if isinstance(m, BundleAdd)]
    victim = adds[3]
    programmer.error(datapath, error(datapath, victim.xid, ofp.OFPET_BAD_ACTION,
                                     ofp.OFPBAC_BAD_OUT_PORT))
    datapath.clear()
    programmer.mark_all_dirty()
    programmer.sync_dirty()
    retried = [stats_form(flow_stats(m)) for m in datapath.plain_flow_mods()]
    assert retried == [stats_form(flow_stats(victim.message))]  # it alone


def test_a_switch_without_bundles_gets_plain_flow_mods(env: tuple[Programmer, Cloud]) -> None:
    programmer, cloud = env
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    wanted = one_bundle(datapath)
    opened = xid_of(datapath, compat.ONFBundleCtrlMsg, type=ofp.ONF_BCT_OPEN_REQUEST)
    datapath.clear()
    programmer.error(datapath, error(datapath, opened, ofp.OFPET_BAD_REQUEST,
                                     ofp.OFPBRC_BAD_EXPERIMENTER))
    programmer.flow_stats_reply(datapath, [], more=False)
    programmer.sync_dirty()
    assert len(datapath.plain_flow_mods()) == len(wanted) and datapath.bundles() == []
    datapath.clear()
    programmer.port_status(datapath, ofp.OFPPR_DELETE,
                           parser.OFPPort(10, "02:00:00:00:00:0a",
                                          tap_name(cloud.local_port.id).encode(),
                                          0, 0, 0, 0, 0, 0, 0, 0))
    programmer.sync_dirty()
    assert len(datapath.plain_flow_mods()) > 1 and datapath.bundles() == []


def test_a_barrier_reply_settles_what_was_sent_before_it(env: tuple[Programmer, Cloud]
                                                        ) -> None:
    programmer, cloud = env
    datapath = FakeDatapath(SWITCH1)
    connect(programmer, datapath, cloud.ports_of[SWITCH1], installed=[])
    state = programmer.switches[SWITCH1]
    assert len(state.inflight) == len(datapath.sent) - 2  # all but the two read requests
    programmer.barrier_reply(datapath, datapath.barriers()[-1].xid)
    assert state.inflight == {}
