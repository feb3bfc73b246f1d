"""The gateway health state machine, through the failure timelines of issue 12: when is a
gateway known silent (and failed over), when must the controller fence it over OpenFlow
first, and when must nothing move."""

from __future__ import annotations

import pytest

from ryu_sched.gateway.health import (
    Action,
    ActionKind,
    GatewayHealth,
    GatewayState,
    HealthConfig,
    Reason,
)

CONFIG = HealthConfig(fence_timeout=0.4, fence_margin=0.15, echo_misses=3, fence_retry=0.5)
FENCE = Action(ActionKind.FENCE, Reason.EXT_LINK_FENCED)


def failover(reason: str) -> list[Action]:
    return [Action(ActionKind.FAIL_OVER, reason)]


class Timeline:
    """A healthy gateway at t=0: switch connected, echo answered, agent renewing every
    0.1 s, external link up. Helpers drive time forward in 0.1 s echo/keepalive rounds."""

    def __init__(self) -> None:
        self.t = 0.0
        self.gw = GatewayHealth(CONFIG, at=0.0)
        self.actions: list[tuple[float, Action]] = []
        self.record(self.gw.of_connected_at(0.0))
        self.record(self.gw.ext_link(True, 0.0))
        self.record(self.gw.lease_granted(0.0))
        self.agent_renews = True
        self.echo_answered = True
        self.switch_reachable = True

    def record(self, actions: list[Action]) -> list[Action]:
        self.actions.extend((self.t, a) for a in actions)
        return actions

    def run(self, until: float) -> None:
        """Rounds every 0.1 s: echo answered or missed, keepalive granted or not."""
        while self.t + 0.1 <= until + 1e-9:
            self.t = round(self.t + 0.1, 6)
            if self.switch_reachable and self.gw.of_connected:
                self.record(self.gw.echo_reply(self.t) if self.echo_answered
                            else self.gw.echo_miss(self.t))
            if self.agent_renews:
                self.record(self.gw.lease_granted(self.t))
            self.record(self.gw.tick(self.t))

    def kinds(self) -> list[tuple[float, ActionKind]]:
        return [(t, a.kind) for t, a in self.actions]

    @property
    def state(self) -> GatewayState:
        return self.gw.state


def test_a_healthy_gateway_stays_healthy() -> None:
    tl = Timeline()
    tl.run(5.0)
    assert tl.state is GatewayState.HEALTHY and tl.actions == []


def test_management_link_cut_fails_over_once_the_agent_surely_fenced_itself() -> None:
    """Echoes unanswered, keepalives unanswered (the same link): control lost at once,
    silent only after last grant + fence_timeout + fence_margin."""
    tl = Timeline()
    tl.run(1.0)                                  # last grant at 1.0
    tl.echo_answered = False
    tl.agent_renews = False
    tl.run(1.3)                                  # three misses
    assert tl.state is GatewayState.CONTROL_LOST and tl.actions == []
    tl.run(1.5)
    assert tl.state is GatewayState.CONTROL_LOST  # 1.5 <= 1.0 + 0.4 + 0.15
    tl.run(1.6)
    assert tl.state is GatewayState.SILENT
    assert tl.actions == [(1.6, failover(Reason.LEASE_LAPSED)[0])]
    tl.run(3.0)
    assert len(tl.actions) == 1                  # once per failure


def test_host_vanishes_or_freezes_nothing_closes_same_as_a_cut() -> None:
    tl = Timeline()
    tl.run(0.5)
    tl.switch_reachable = False                  # echoes go unanswered: no reply, no miss
    tl.agent_renews = False
    for t in (0.6, 0.7, 0.8):
        tl.t = t
        tl.record(tl.gw.echo_miss(t))
    assert tl.state is GatewayState.CONTROL_LOST
    tl.record(tl.gw.tick(1.06))
    assert tl.state is GatewayState.SILENT
    assert tl.kinds() == [(0.8, ActionKind.FAIL_OVER)]


def test_vswitchd_and_agent_killed_both_connections_closed_fail_over_at_once() -> None:
    tl = Timeline()
    tl.run(0.5)
    tl.record(tl.gw.of_disconnected(0.52))       # closed while echoes were answered
    assert tl.state is GatewayState.CONTROL_LOST and tl.actions == []
    tl.t = 0.53
    tl.record(tl.gw.agent_conn_closed(0.53))     # closed while the lease was held
    assert tl.state is GatewayState.SILENT
    assert tl.actions == [(0.53, failover(Reason.PROCESSES_DIED)[0])]


def test_external_link_cut_is_fenced_over_openflow_then_failed_over() -> None:
    tl = Timeline()
    tl.run(0.5)
    tl.t = 0.55
    assert tl.record(tl.gw.ext_link(False, 0.55)) == [FENCE]
    assert tl.state is GatewayState.EXT_DOWN
    tl.run(0.7)                                  # still renewing: no second fence yet
    assert tl.kinds() == [(0.55, ActionKind.FENCE)]
    tl.t = 0.72
    assert tl.record(tl.gw.fence_acked(0.72)) == failover(Reason.EXT_LINK_FENCED)
    assert tl.state is GatewayState.SILENT
    tl.run(2.0)
    assert len(tl.actions) == 2                  # stays silent while the link is down
    tl.record(tl.gw.ext_link(True, 2.05))
    assert tl.state is GatewayState.HEALTHY and len(tl.actions) == 2


def test_an_unacknowledged_fence_is_asked_again() -> None:
    tl = Timeline()
    tl.record(tl.gw.ext_link(False, 0.0))
    tl.run(1.0)
    assert [t for t, k in tl.kinds() if k is ActionKind.FENCE] == [0.0, 0.5, 1.0]
    assert tl.state is GatewayState.EXT_DOWN


def test_a_fence_ack_outside_fencing_means_nothing() -> None:
    tl = Timeline()
    tl.run(0.3)
    assert tl.gw.fence_acked(0.3) == [] and tl.state is GatewayState.HEALTHY


def test_only_the_agent_killed_switch_reachable_fenced_over_openflow() -> None:
    """The switch still forwards with its active flows; the agent cannot fence it: the
    controller does, once the lease lapsed."""
    tl = Timeline()
    tl.run(0.5)                                  # last grant at 0.5
    tl.agent_renews = False
    tl.record(tl.gw.agent_conn_closed(0.5))
    assert tl.state is GatewayState.HEALTHY      # lease held until 0.9
    tl.run(1.0)
    assert tl.kinds() == [(1.0, ActionKind.FENCE)]
    assert tl.state is GatewayState.LEASE_LAPSED
    tl.run(2.0)                                  # no barrier back: asked again, no failover
    assert [k for _, k in tl.kinds()] == [ActionKind.FENCE] * 3
    assert tl.record(tl.gw.fence_acked(2.0)) == failover(Reason.LEASE_FENCED)


def test_agent_frozen_switch_reachable_is_fenced_too() -> None:
    tl = Timeline()
    tl.run(0.5)
    tl.agent_renews = False                      # nothing closes
    tl.run(1.0)
    assert tl.state is GatewayState.LEASE_LAPSED
    assert tl.kinds() == [(1.0, ActionKind.FENCE)]


def test_only_the_openflow_connection_lost_while_the_lease_is_held_no_failover() -> None:
    """The switch's control channel is gone, but the agent keeps renewing over its own
    connection: the gateway still forwards, nothing moves."""
    tl = Timeline()
    tl.run(0.5)
    tl.echo_answered = False
    tl.run(1.0)
    tl.record(tl.gw.of_disconnected(1.05))       # after misses: not the peer's close
    tl.switch_reachable = False
    tl.run(10.0)
    assert tl.state is GatewayState.CONTROL_LOST and tl.actions == []
    assert not tl.gw.of_closed_by_peer


def test_vswitchd_restart_alone_no_failover() -> None:
    tl = Timeline()
    tl.run(0.5)
    tl.record(tl.gw.of_disconnected(0.55))
    tl.run(1.5)
    assert tl.state is GatewayState.CONTROL_LOST and tl.actions == []
    tl.record(tl.gw.of_connected_at(1.55))
    assert tl.state is GatewayState.HEALTHY


def test_agent_dead_and_control_channel_lost_is_not_judged_silent() -> None:
    """The agent died (cannot fence itself) and the switch is unreachable but its
    connection did not close: it may still forward; no rule says it is silent."""
    tl = Timeline()
    tl.run(0.5)
    tl.agent_renews = False
    tl.record(tl.gw.agent_conn_closed(0.5))
    tl.echo_answered = False
    tl.run(5.0)
    assert tl.state is GatewayState.CONTROL_LOST and tl.actions == []


def test_a_gateway_back_after_failure_is_healthy_with_no_action_then_fails_again() -> None:
    tl = Timeline()
    tl.run(0.5)
    tl.echo_answered = False
    tl.agent_renews = False
    tl.run(1.5)
    assert tl.state is GatewayState.SILENT
    tl.echo_answered = True
    tl.run(2.0)                                  # switch answers, but no lease: still silent
    assert tl.state is GatewayState.SILENT
    tl.agent_renews = True
    tl.run(2.5)
    assert tl.state is GatewayState.HEALTHY
    assert [k for _, k in tl.kinds()] == [ActionKind.FAIL_OVER]   # no action on return
    tl.echo_answered = False
    tl.agent_renews = False
    tl.run(4.0)
    assert [k for _, k in tl.kinds()] == [ActionKind.FAIL_OVER] * 2
    assert tl.gw.failovers == 2


def test_without_any_grant_seen_the_lease_rules_do_not_apply() -> None:
    """Just elected, or an agent that holds no lease (older, simulated): no failover by the
    lease, whether the switch is reachable or not; the heartbeat timeout remains."""
    gw = GatewayHealth(CONFIG, at=100.0)
    assert gw.state is GatewayState.CONTROL_LOST
    assert gw.tick(1000.0) == []
    gw.of_connected_at(1000.0)
    assert gw.state is GatewayState.HEALTHY
    assert gw.tick(2000.0) == []
    gw.of_disconnected(2000.0)
    assert gw.tick(3000.0) == [] and gw.state is GatewayState.CONTROL_LOST


def test_without_any_grant_the_external_link_still_counts() -> None:
    gw = GatewayHealth(CONFIG, at=0.0)
    gw.of_connected_at(0.0)
    assert gw.ext_link(False, 0.1) == [FENCE]
    assert gw.fence_acked(0.2) == failover(Reason.EXT_LINK_FENCED)
    gw.ext_link(True, 0.3)
    assert gw.state is GatewayState.SILENT         # back only with a lease
    gw.lease_granted(0.4)
    assert gw.state is GatewayState.HEALTHY


@pytest.mark.parametrize("misses", [1, 2])
def test_fewer_misses_than_the_limit_keep_control(misses: int) -> None:
    tl = Timeline()
    for i in range(misses):
        tl.gw.echo_miss(0.01 * (i + 1))
    assert tl.state is GatewayState.HEALTHY
    tl.gw.echo_miss(0.05)
    assert tl.state is (GatewayState.CONTROL_LOST if misses == 2 else GatewayState.HEALTHY)


def test_view_names_the_state_and_why() -> None:
    tl = Timeline()
    tl.record(tl.gw.of_disconnected(0.1))
    tl.record(tl.gw.agent_conn_closed(0.1))
    view = tl.gw.view()
    assert view["state"] == "silent" and view["reason"] == Reason.PROCESSES_DIED
