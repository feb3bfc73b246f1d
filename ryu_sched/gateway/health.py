"""The health of one gateway (an L3 agent and its switch) as a pure state machine.

Inputs, each with the (monotonic) time it was observed: the switch's OpenFlow connection
(``of_connected`` / ``of_disconnected``), the controller's echo requests to it answered or
missed (``echo_reply`` / ``echo_miss``), the external port's link (``ext_link``), the agent's
lease connection (``agent_conn_closed``; a grant proves it open), a lease granted
(``lease_granted``), the barrier after the controller's own removal of the switch's
ROUTER_ACTIVE flows (``fence_acked``), and the passing of time (``tick``). Each returns the
actions to take: :attr:`ActionKind.FENCE` (remove the switch's active-only flows over OpenFlow,
then a barrier) or :attr:`ActionKind.FAIL_OVER` (``registry.gateway_failed``).

States (docs/ha.md, "Detection and fencing"):

- ``HEALTHY``: control channel up (connected, echo answered) and lease held.
- ``CONTROL_LOST``: the control channel is lost (disconnected, or ``echo_misses`` echoes in a
  row unanswered) but the agent's lease may still be held: the gateway may still forward and
  answer, so nothing moves.
- ``EXT_DOWN``: the switch reports its external link down: the controller removes its active
  flows over OpenFlow; once the barrier after that is answered, the gateway is SILENT.
- ``LEASE_LAPSED``: the switch is reachable but its agent's lease lapsed (the agent died or
  froze and cannot be trusted to fence itself): the controller removes the active flows;
  barrier answered -> SILENT.
- ``SILENT``: known silent, safe to promote another gateway (FAIL_OVER, once per entry), when
  (a) the controller removed its active flows and the barrier came back; (b) the lease surely
  lapsed (``fence_timeout + fence_margin`` after the last grant) while the control channel is
  lost and the agent was not seen to die (it fenced itself); or (c) both the OpenFlow and the
  agent's connection were closed by the peer (the processes died).

A SILENT gateway whose control channel and lease come back (external link not down) is
HEALTHY again, with no action: it stays standby (no preemption is the registry's rule).
Until this controller has granted the gateway a lease (it just started or was elected, or
the agent holds no lease: an older or simulated agent), the lease rules do not apply: such a
gateway is failed over by (a) or (c) only, otherwise by the registry's heartbeat timeout.
"""

from __future__ import annotations

import dataclasses
import enum


class GatewayState(enum.StrEnum):
    HEALTHY = "healthy"
    CONTROL_LOST = "control_lost"
    EXT_DOWN = "ext_down"
    LEASE_LAPSED = "lease_lapsed"
    SILENT = "silent"


#: States in which the controller removes the gateway's active flows itself.
FENCING = frozenset({GatewayState.EXT_DOWN, GatewayState.LEASE_LAPSED})


class ActionKind(enum.StrEnum):
    FENCE = "fence"            # remove the switch's ROUTER_ACTIVE flows over OpenFlow + barrier
    FAIL_OVER = "fail_over"    # registry.gateway_failed(agent_id, reason)


class Reason(enum.StrEnum):
    """Why a gateway is known silent (rules a, b, c)."""

    EXT_LINK_FENCED = "external link down; active flows removed over OpenFlow"
    LEASE_FENCED = "lease lapsed; active flows removed over OpenFlow"
    LEASE_LAPSED = "control channel lost and lease lapsed: the agent fenced itself"
    PROCESSES_DIED = "OpenFlow and agent connections closed by the peer"


@dataclasses.dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class HealthConfig:
    fence_timeout: float = 0.4
    fence_margin: float = 0.15
    echo_misses: int = 3
    #: a FENCE not acknowledged within this is asked for again (while still fencing)
    fence_retry: float = 0.5


class GatewayHealth:
    def __init__(self, config: HealthConfig, at: float) -> None:
        self.config = config
        self.since = at
        self.state = GatewayState.HEALTHY
        self.changed_at = at
        self.of_connected = False
        self.of_closed_by_peer = False
        self.misses = 0
        self.ext_link_up: bool | None = None
        self.agent_conn_open = False
        self.agent_closed_by_peer = False
        self.granted_at: float | None = None
        self.fence_asked_at: float | None = None
        self.fence_done = False
        self.reason = ""
        self.failovers = 0
        self.state = self._judge(at)

    # --- facts ---------------------------------------------------------------------------

    def control_ok(self) -> bool:
        return self.of_connected and self.misses < self.config.echo_misses

    def lease_held(self, now: float) -> bool:
        """Held, or unknown (no grant seen: the lease rules do not apply)."""
        if self.granted_at is None:
            return True
        return now <= self.granted_at + self.config.fence_timeout

    def lease_surely_lapsed(self, now: float) -> bool:
        if self.granted_at is None:
            return False
        return now > self.granted_at + self.config.fence_timeout + self.config.fence_margin

    def processes_died(self) -> bool:
        return (not self.of_connected and self.of_closed_by_peer
                and not self.agent_conn_open and self.agent_closed_by_peer)

    # --- inputs --------------------------------------------------------------------------

    def of_connected_at(self, at: float) -> list[Action]:
        self.of_connected, self.of_closed_by_peer, self.misses = True, False, 0
        return self._step(at)

    def of_disconnected(self, at: float) -> list[Action]:
        # A close while the echoes were answered is the peer's (a cut link closes nothing).
        self.of_closed_by_peer = self.of_connected and self.misses == 0
        self.of_connected = False
        return self._step(at)

    def echo_reply(self, at: float) -> list[Action]:
        self.misses = 0
        return self._step(at)

    def echo_miss(self, at: float) -> list[Action]:
        self.misses += 1
        return self._step(at)

    def ext_link(self, up: bool, at: float) -> list[Action]:
        self.ext_link_up = up
        return self._step(at)

    def lease_granted(self, at: float) -> list[Action]:
        self.granted_at = at if self.granted_at is None else max(self.granted_at, at)
        self.agent_conn_open, self.agent_closed_by_peer = True, False
        return self._step(at)

    def agent_conn_closed(self, at: float) -> list[Action]:
        # A live agent renews its lease: a close while it holds one is the agent's own.
        self.agent_closed_by_peer = self.agent_conn_open and self.lease_held(at)
        self.agent_conn_open = False
        return self._step(at)

    def fence_acked(self, at: float) -> list[Action]:
        if self.state in FENCING and self.fence_asked_at is not None:
            self.fence_done = True
        return self._step(at)

    def tick(self, now: float) -> list[Action]:
        return self._step(now)

    # --- judgement -----------------------------------------------------------------------

    def _judge(self, now: float) -> GatewayState:
        if self.state is GatewayState.SILENT:
            back = (self.control_ok() and self.granted_at is not None
                    and self.lease_held(now) and self.ext_link_up is not False)
            return GatewayState.HEALTHY if back else GatewayState.SILENT
        if self.processes_died():
            self.reason = Reason.PROCESSES_DIED
            return GatewayState.SILENT
        if self.control_ok():
            if self.ext_link_up is False:
                wanted = GatewayState.EXT_DOWN
                self.reason = Reason.EXT_LINK_FENCED
            elif not self.lease_held(now):
                wanted = GatewayState.LEASE_LAPSED
                self.reason = Reason.LEASE_FENCED
            else:
                return GatewayState.HEALTHY
            if self.state is wanted and self.fence_done:
                return GatewayState.SILENT
            return wanted
        if self.lease_surely_lapsed(now) and not self.agent_closed_by_peer:
            self.reason = Reason.LEASE_LAPSED
            return GatewayState.SILENT
        return GatewayState.CONTROL_LOST

    def _step(self, now: float) -> list[Action]:
        before = self.state
        after = self._judge(now)
        actions: list[Action] = []
        if after is not before:
            self.state, self.changed_at = after, now
            self.fence_asked_at, self.fence_done = None, False
            if after is GatewayState.SILENT:
                self.failovers += 1
                actions.append(Action(ActionKind.FAIL_OVER, str(self.reason)))
        if after in FENCING and not self.fence_done and (
                self.fence_asked_at is None
                or now - self.fence_asked_at >= self.config.fence_retry):
            self.fence_asked_at = now
            actions.append(Action(ActionKind.FENCE, str(self.reason)))
        return actions

    def view(self) -> dict[str, object]:
        """For logs and the operator page."""
        return {"state": self.state.value, "since": self.changed_at,
                "of_connected": self.of_connected, "echo_misses": self.misses,
                "ext_link_up": self.ext_link_up, "agent_conn_open": self.agent_conn_open,
                "lease_granted_at": self.granted_at, "failovers": self.failovers,
                "reason": self.reason if self.state is GatewayState.SILENT else ""}
