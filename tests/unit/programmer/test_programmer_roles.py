"""OpenFlow roles on a real Open vSwitch: two programmers (two controllers on one database)
on one bridge, each with its own OpenFlow connection; leadership is driven by hand.

The leader is granted MASTER at its epoch and programs; the follower is SLAVE and sends
nothing; a MASTER request with an older generation id is refused as stale; a new leader
becomes MASTER (the switch turns the old master into a slave), reads the table again and
sends nothing when nothing changed; the deposed leader's flow mods are refused by the
switch even while it still believes it leads.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from ryu_sched.programmer.programmer import Programmer
from ryu_sched.programmer.roles import Role
from ryu_sched.services import Services
from tests.unit.programmer.ofchannel import BundleAdd, OpenFlowChannel, ofp, parser
from tests.unit.programmer.programmer_testbed import SWITCH1, make_services, seed
from tests.unit.programmer.test_programmer_real_ovs import (  # noqa: F401 (the fixture)
    Sandbox,
    channel_to,
    installed_forms,
    sandbox,
)


class HandDrivenLeadership:
    """A controller's leadership among several, elected and demoted by the test."""

    contended = True

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.known_epoch = 0
        self._elected: list[Callable[[int], None]] = []
        self._demoted: list[Callable[[], None]] = []

    @property
    def is_leader(self) -> bool:
        return self.epoch is not None

    def fence(self, session: Any) -> None:
        return None

    def watch(self, on_elected: Any = None, on_demoted: Any = None, on_term: Any = None
              ) -> None:
        if on_elected:
            self._elected.append(on_elected)
        if on_demoted:
            self._demoted.append(on_demoted)

    def elect(self, epoch: int) -> None:
        self.epoch = self.known_epoch = epoch
        for callback in self._elected:
            callback(epoch)

    def demote(self) -> None:
        self.epoch = None
        for callback in self._demoted:
            callback()


def controller(services: Services) -> tuple[Programmer, HandDrivenLeadership]:
    leadership = HandDrivenLeadership()
    prog = Programmer(dataclasses.replace(services, leadership=leadership))
    prog.neighbors.load()
    prog.pause = lambda: None
    prog.services.leadership.watch(on_elected=prog._elected, on_demoted=prog._demoted)
    return prog, leadership


def pump(channel: OpenFlowChannel, prog: Programmer, done: Callable[[], bool],
         timeout: float = 10.0) -> None:
    """Hand what the switch sends to ``prog``, as the app shim does, until ``done()``."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the switch did not answer in time")
        msg = channel.receive()
        if isinstance(msg, parser.OFPEchoRequest):
            channel.send_msg(parser.OFPEchoReply(channel, data=msg.data))
        elif isinstance(msg, parser.OFPRoleReply):
            prog.role_reply(channel, msg.role, msg.generation_id, msg.xid)
        elif isinstance(msg, parser.OFPErrorMsg):
            channel.errors.append(msg)
            prog.error(channel, msg)
        elif isinstance(msg, parser.OFPPortDescStatsReply):
            prog.port_desc_reply(channel, msg.body, bool(msg.flags & ofp.OFPMPF_REPLY_MORE))
        elif isinstance(msg, parser.OFPFlowStatsReply):
            prog.flow_stats_reply(channel, msg.body, bool(msg.flags & ofp.OFPMPF_REPLY_MORE))
        elif isinstance(msg, parser.OFPBarrierReply):
            prog.barrier_reply(channel, msg.xid)


def role_settled(prog: Programmer, channel: OpenFlowChannel) -> Callable[[], bool]:
    def settled() -> bool:
        role = prog.switches[channel.id].role
        return role.confirmed is role.wanted or role.refused
    return settled


def flow_mods(channel: OpenFlowChannel, since: int = 0) -> list[Any]:
    return [m for m in channel.sent[since:] if isinstance(m, parser.OFPFlowMod | BundleAdd)]


def sync(prog: Programmer, channel: OpenFlowChannel) -> int:
    """One sync round; waits for the barrier after it, if anything was sent."""
    before = len(channel.sent)
    prog.sync_dirty()
    barriers = [m.xid for m in channel.sent[before:] if isinstance(m, parser.OFPBarrierRequest)]
    if barriers:
        pump(channel, prog, lambda: not prog.switches[channel.id].inflight)
    return len(flow_mods(channel, before))


@pytest.fixture
def pair() -> Iterator[tuple[Programmer, HandDrivenLeadership, Programmer,
                             HandDrivenLeadership, dict[str, int]]]:
    services = make_services()
    cloud = seed(services.db)
    a, lead_a = controller(services)
    b, lead_b = controller(services)
    yield a, lead_a, b, lead_b, cloud.ports_of[SWITCH1]


def test_roles_follow_the_lease_and_a_deposed_master_cannot_program(
        sandbox: Sandbox, pair: Any) -> None:  # noqa: F811
    a, lead_a, b, lead_b, ports = pair
    with sandbox.bridge(SWITCH1, ports) as mgmt, channel_to(mgmt, SWITCH1) as ch_a, \
            channel_to(mgmt, SWITCH1) as ch_b:
        # A leads at epoch 5: MASTER, reads the switch, fills it
        lead_a.elect(5)
        a.switch_connected(ch_a)
        pump(ch_a, a, lambda: a.switches[SWITCH1].ready and role_settled(a, ch_a)())
        assert a.switches[SWITCH1].role.is_master(5)
        assert sync(a, ch_a) > 20 and ch_a.errors == []
        table = installed_forms(ch_a.flow_stats())
        # B follows: SLAVE at the epoch it knows; it neither reads nor writes
        lead_b.known_epoch = 5
        b.switch_connected(ch_b)
        pump(ch_b, b, role_settled(b, ch_b))
        assert b.switches[SWITCH1].role.confirmed is Role.SLAVE
        assert not b.switches[SWITCH1].ready
        b.mark_all_dirty()
        assert sync(b, ch_b) == 0
        # a MASTER request with an older generation id is refused as stale
        b._claim_master(b.switches[SWITCH1], 4)
        pump(ch_b, b, role_settled(b, ch_b))
        assert b.switches[SWITCH1].role.refused and b.stats.roles_refused == 1
        assert [(e.type, e.code) for e in ch_b.errors] == [
            (ofp.OFPET_ROLE_REQUEST_FAILED, ofp.OFPRRFC_STALE)]
        # B is elected at epoch 6 (A froze and still believes it leads): B becomes MASTER,
        # reads the table again and finds nothing to change
        lead_b.elect(6)
        pump(ch_b, b, lambda: b.switches[SWITCH1].ready and role_settled(b, ch_b)())
        assert b.switches[SWITCH1].role.is_master(6)
        assert sync(b, ch_b) == 0
        assert installed_forms(ch_b.flow_stats()) == table
        # A, deposed without knowing, tries to change the table: the switch refuses
        with a.services.db.session() as session:     # a change A would program
            session.execute(text("UPDATE networks SET segmentation_id = 101 "
                                 "WHERE segmentation_id = 100"))
        a.model_changed()
        assert a.may_program(a.switches[SWITCH1])       # it believes it is master
        assert sync_refused(a, ch_a)
        assert installed_forms(ch_b.flow_stats()) == table
        # once A learns it lost the lease it stops and asks for SLAVE
        lead_a.known_epoch = 6
        lead_a.demote()
        pump(ch_a, a, role_settled(a, ch_a))
        assert a.switches[SWITCH1].role.confirmed is Role.SLAVE
        assert not a.may_program(a.switches[SWITCH1])


def sync_refused(prog: Programmer, channel: OpenFlowChannel) -> bool:
    """Sync; True when the switch refused what was sent as coming from a slave."""
    before = len(channel.sent)
    prog.sync_dirty()
    assert flow_mods(channel, before)
    errors = len(channel.errors)
    pump(channel, prog, lambda: len(channel.errors) > errors)
    return any((e.type, e.code) == (ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE)
               for e in channel.errors[errors:])


def test_a_change_that_overtakes_a_model_read_is_not_lost(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL reading the model yields to the hub; an event of a change committed
    meanwhile (a router bound by the leader's registry) must not be overwritten by the
    read that started before it: the model is read again."""
    from ryu_sched.programmer import programmer as programmer_module

    services = make_services()
    seed(services.db)
    prog = Programmer(services)
    prog.pause = lambda: None
    reads: list[int] = []
    real = programmer_module.read_model

    def read_overtaken_once(session: Any, macs: Any) -> Any:
        model = real(session, macs)
        reads.append(1)
        if len(reads) == 1:
            prog.model_changed()       # the event arrives while the first read runs
        return model

    monkeypatch.setattr(programmer_module, "read_model", read_overtaken_once)
    prog._current_model()
    assert len(reads) == 2 and prog._model is not None
    prog._current_model()              # nothing new: no read
    assert len(reads) == 2
