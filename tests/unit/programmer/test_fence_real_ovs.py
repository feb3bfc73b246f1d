"""The controller's fence on a real Open vSwitch: one delete by cookie kind removes every
ROUTER_ACTIVE flow (all tables) and nothing else, and the callback runs when the barrier
after it is answered. Needs root and OVS (a failure under CI=true without them)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from ryu_sched.programmer import diff
from ryu_sched.programmer.fence import SwitchFence, is_router_active
from ryu_sched.programmer.programmer import Programmer
from ryu_sched.shared.vocabulary import ROUTER_ACTIVE_COOKIE, ROUTER_ACTIVE_COOKIE_MATCH
from tests.support import ovs_sandbox
from tests.unit.programmer.ofchannel import OpenFlowChannel, parser
from tests.unit.programmer.programmer_testbed import SWITCH1, make_services, seed
from tests.unit.programmer.test_programmer_real_ovs import Sandbox, channel_to, connect


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with ovs_sandbox.running(Sandbox, "fence-ovs-") as box:
        yield box


@contextlib.contextmanager
def programmed_switch(sandbox: Sandbox) -> Iterator[tuple[Programmer, SwitchFence,
                                                           OpenFlowChannel]]:
    """A programmer and its fence, and a real bridge it has just programmed (SWITCH1)."""
    services = make_services()
    cloud = seed(services.db)
    prog = Programmer(services)
    prog.neighbors.load()
    prog.pause = lambda: None
    fence = SwitchFence(prog)
    with sandbox.bridge(SWITCH1, cloud.ports_of[SWITCH1]) as mgmt, \
            channel_to(mgmt, SWITCH1) as channel:
        connect(prog, channel)
        yield prog, fence, channel


def test_the_fence_removes_only_router_active_flows_then_calls_back(sandbox: Sandbox) -> None:
    with programmed_switch(sandbox) as (prog, fence, channel):
        programmed = channel.flow_stats()
        assert len(programmed) > 20
        # The pipeline's own active-only flows of the router active on this switch...
        pipeline_active = sum(is_router_active(e.cookie) for e in programmed)
        assert pipeline_active > 0
        # ...and two more, in tables the pipeline does not use that way.
        active = [ROUTER_ACTIVE_COOKIE | 0x1234, ROUTER_ACTIVE_COOKIE | 0xABCDEF]
        for table, cookie in ((0, active[0]), (5, active[1])):
            sandbox.ofctl("br-prog", "add-flow",
                          f"table={table},priority=900,cookie={cookie:#x},arp,actions=drop")
        assert sum(is_router_active(e.cookie) for e in channel.flow_stats()) == (
            pipeline_active + 2)
        # the programmer's view as if it had read (or sent) one of them
        state = prog.switches[SWITCH1]
        assert state.installed is not None
        fake_key = ("fake",)
        state.installed[fake_key] = diff.Installed(active[0], (), None)  # type: ignore[index]
        done: list[bool] = []

        assert fence.fence_switch(SWITCH1, lambda: done.append(True))
        assert fake_key not in state.installed and state.in_sync_with is None
        assert not any(is_router_active(e.cookie) for e in state.installed.values())
        barrier = channel.last_barrier()
        fence_channel_pump(channel, prog, fence, barrier)
        assert done == [True] and fence.pending == 0

        left = channel.flow_stats()
        assert not any(is_router_active(e.cookie) for e in left)
        assert sorted(e.cookie for e in left) == sorted(
            e.cookie for e in programmed if not is_router_active(e.cookie))
        assert channel.errors == []

    assert not fence.fence_switch(0xDEAD, lambda: None)      # not connected: nothing sent


def fence_channel_pump(channel: OpenFlowChannel, prog: Programmer, fence: SwitchFence,
                       barrier: int) -> None:
    """Hand replies to the programmer and the fence (as the app shim does) until ``barrier``
    is answered."""
    while True:
        msg = channel.receive()
        if isinstance(msg, parser.OFPErrorMsg):
            channel.errors.append(msg)
        elif isinstance(msg, parser.OFPBarrierReply):
            prog.barrier_reply(channel, msg.xid)
            fence.barrier_reply(channel, msg.xid)
            if msg.xid == barrier:
                return


def test_after_an_agent_fence_the_next_sync_restores_the_active_flows_without_a_read(
        sandbox: Sandbox) -> None:
    with programmed_switch(sandbox) as (prog, fence, channel):
        programmed = sorted(e.cookie for e in channel.flow_stats())
        active = [c for c in programmed if is_router_active(c)]
        assert active
        # the agent's fence, as it does it: on the bridge's own socket, by cookie kind
        sandbox.ofctl("br-prog", "del-flows", ROUTER_ACTIVE_COOKIE_MATCH)
        assert not any(is_router_active(e.cookie) for e in channel.flow_stats())
        reads = sum(isinstance(m, parser.OFPFlowStatsRequest) for m in channel.sent)
        assert fence.agent_fenced(SWITCH1)
        sent_before = len(channel.sent)
        prog.sync_dirty()
        channel.pump(prog, until_barrier=channel.last_barrier())
        assert sum(isinstance(m, parser.OFPFlowStatsRequest) for m in channel.sent) == reads
        assert len(channel.sent) > sent_before
        assert sorted(e.cookie for e in channel.flow_stats()) == programmed
        assert channel.errors == []
