"""The gateway-health monitor: feeds each gateway's state machine (:mod:`.health`) and carries
out what it decides. Framework-free: the switch side comes in as plain calls (connected,
disconnected, echo replies, port states), echo requests and the fence go out through the
callables and objects it is given, so that it can be driven by hand in tests.

Runs on the leader only: a controller that does not lead forgets every machine, and one
that starts leading begins with none (the lease rules apply to a gateway once this
controller granted it a lease).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from ryu_sched.gateway.echo import EchoProber, SendEcho
from ryu_sched.gateway.health import (
    Action,
    ActionKind,
    GatewayHealth,
    GatewayState,
    HealthConfig,
)

LOG = logging.getLogger(__name__)


class GatewayRegistry(Protocol):
    """The registry's fast-path entry point (``Registry.gateway_failed``)."""

    def gateway_failed(self, agent_id: str, reason: str) -> list[str]: ...


class SwitchFencer(Protocol):
    """Removes a switch's ROUTER_ACTIVE flows over OpenFlow (``programmer.fence``)."""

    def fence_switch(self, dpid: int, on_done: Callable[[], None]) -> bool: ...

    def agent_fenced(self, dpid: int) -> bool: ...

    def lift(self, dpid: int) -> None: ...


@dataclasses.dataclass(frozen=True)
class Gateway:
    """An L3 agent and its switch, as the registry knows them."""

    agent_id: str
    dpid: int
    external_port: str


@dataclasses.dataclass
class _Tracked:
    gateway: Gateway
    health: GatewayHealth


class GatewayMonitor:
    def __init__(self, config: HealthConfig, gateways: Callable[[], Iterable[Gateway]],
                 registry: GatewayRegistry, fencer: SwitchFencer, send_echo: SendEcho,
                 leading: Callable[[], bool], clock: Callable[[], float] = time.monotonic,
                 drop_channel: Callable[[int], None] | None = None) -> None:
        self.config = config
        self.gateways = gateways
        self.registry = registry
        self.fencer = fencer
        self.echo = EchoProber(send_echo)
        self.leading = leading
        self.clock = clock
        #: closes a switch's OpenFlow connection (see :meth:`tick`)
        self.drop_channel = drop_channel
        self.tracked: dict[str, _Tracked] = {}
        self.connected: set[int] = set()
        #: (dpid, port name) -> link up, from port descriptions and port statuses
        self.links: dict[tuple[int, str], bool] = {}
        #: the last failovers: (agent id, reason), for tests and the operator
        self.failed_over: collections.deque[tuple[str, str]] = collections.deque(maxlen=100)
        self._led = False

    # --- the switch side ---------------------------------------------------------------

    def switch_connected(self, dpid: int) -> None:
        self.connected.add(dpid)
        self._each(dpid, lambda h, now: h.of_connected_at(now))

    def switch_disconnected(self, dpid: int) -> None:
        self.connected.discard(dpid)
        self.echo.forget(dpid)
        for key in [k for k in self.links if k[0] == dpid]:
            del self.links[key]
        self._each(dpid, lambda h, now: h.of_disconnected(now))

    def echo_reply(self, dpid: int, data: bytes | None) -> None:
        if self.echo.reply(dpid, data):
            self._each(dpid, lambda h, now: h.echo_reply(now))

    def port_state(self, dpid: int, name: str, link_up: bool) -> None:
        """A port's link as the switch reports it (a deleted port: down)."""
        if self.links.get((dpid, name)) == link_up:
            return
        self.links[(dpid, name)] = link_up
        for tracked in list(self.tracked.values()):
            if tracked.gateway.dpid == dpid and tracked.gateway.external_port == name:
                self._run(tracked, tracked.health.ext_link(link_up, self.clock()))

    # --- the agent side (GatewayLeases listener) ---------------------------------------

    def lease_granted(self, agent_id: str, at: float) -> None:
        tracked = self.tracked.get(agent_id)
        if tracked is not None:
            self._run(tracked, tracked.health.lease_granted(at))

    def agent_fenced(self, agent_id: str) -> None:
        """The agent deleted its bridge's ROUTER_ACTIVE flows (its lease had lapsed, or it
        just started): the programmer forgets them and restores what the registry says
        that switch should have."""
        for gateway in self.gateways():
            if gateway.agent_id == agent_id:
                self.fencer.agent_fenced(gateway.dpid)

    def lease_connection_closed(self, agent_id: str, at: float) -> None:
        tracked = self.tracked.get(agent_id)
        if tracked is not None:
            self._run(tracked, tracked.health.agent_conn_closed(at))

    # --- every gateway_echo_interval ----------------------------------------------------

    def tick(self) -> None:
        if not self.leading():
            if self._led:
                LOG.info("gateway health: not leading; forgetting %d gateways",
                         len(self.tracked))
                self.tracked.clear()
                self.echo.outstanding.clear()
                self._led = False
            return
        self._led = True
        self._follow(list(self.gateways()))
        missed = self.echo.round(t.gateway.dpid for t in self.tracked.values()
                                 if t.gateway.dpid in self.connected)
        now = self.clock()
        for dpid in missed:
            self._each(dpid, lambda h, at: h.echo_miss(at))
            if self.drop_channel is not None and any(
                    t.gateway.dpid == dpid and t.health.misses == self.config.echo_misses
                    for t in self.tracked.values()):
                # Echoes (and anything else) sent meanwhile sit unacknowledged in the TCP
                # connection, whose retransmissions back off exponentially (0.2, 0.4, 0.8,
                # 1.6 s ...): when the switch comes back, what is sent to it waits for the
                # next retransmission, seconds perhaps. Close it: the switch reconnects on a
                # fresh connection as soon as it can reach the controller again.
                LOG.warning("switch %016x: control channel lost (%d echoes unanswered); "
                            "closing its connection", dpid, self.config.echo_misses)
                self.drop_channel(dpid)
        for tracked in list(self.tracked.values()):
            self._run(tracked, tracked.health.tick(now))
            if tracked.health.state is GatewayState.HEALTHY:
                self.fencer.lift(tracked.gateway.dpid)   # (nothing when not fenced)

    def _follow(self, gateways: list[Gateway]) -> None:
        """Start machines for new gateways (or ones whose switch or port changed), drop
        those the registry no longer knows."""
        now = self.clock()
        current = {g.agent_id: g for g in gateways}
        for agent_id in [a for a in self.tracked if a not in current]:
            del self.tracked[agent_id]
        for agent_id, gateway in current.items():
            tracked = self.tracked.get(agent_id)
            if tracked is not None and tracked.gateway == gateway:
                continue
            health = GatewayHealth(self.config, now)
            if gateway.dpid in self.connected:
                health.of_connected_at(now)
            link = self.links.get((gateway.dpid, gateway.external_port))
            if link is not None:
                health.ext_link(link, now)
            self.tracked[agent_id] = _Tracked(gateway, health)

    # --- carrying out ----------------------------------------------------------------------

    def _each(self, dpid: int, step: Callable[[GatewayHealth, float], list[Action]]) -> None:
        now = self.clock()
        for tracked in list(self.tracked.values()):
            if tracked.gateway.dpid == dpid:
                self._run(tracked, step(tracked.health, now))

    def _run(self, tracked: _Tracked, actions: list[Action]) -> None:
        if actions and not self.leading():
            return      # demoted meanwhile: the next tick forgets every machine
        for action in actions:
            if action.kind is ActionKind.FENCE:
                self._fence(tracked)
            elif action.kind is ActionKind.FAIL_OVER:
                self._fail_over(tracked, action.reason)

    def _fence(self, tracked: _Tracked) -> None:
        gateway = tracked.gateway
        health = tracked.health

        def done() -> None:
            if self.tracked.get(gateway.agent_id) is tracked:
                self._run(tracked, health.fence_acked(self.clock()))

        if not self.fencer.fence_switch(gateway.dpid, done):
            LOG.warning("gateway %s (switch %016x): cannot fence it now (%s); will retry",
                        gateway.agent_id, gateway.dpid, health.state.value)

    def _fail_over(self, tracked: _Tracked, reason: str) -> None:
        gateway = tracked.gateway
        LOG.warning("gateway %s (switch %016x) is silent: %s; failing over", gateway.agent_id,
                    gateway.dpid, reason)
        self.failed_over.append((gateway.agent_id, reason))
        failed = getattr(self.registry, "gateway_failed", None)
        if failed is None:
            LOG.error("the registry has no gateway_failed: gateway %s waits for the "
                      "heartbeat timeout", gateway.agent_id)
            return
        try:
            moved = failed(gateway.agent_id, reason)
        except Exception:
            LOG.exception("gateway_failed(%s) failed; the heartbeat timeout remains",
                          gateway.agent_id)
            return
        LOG.info("gateway %s failed over: %d routers moved", gateway.agent_id, len(moved))

    def states(self) -> dict[str, GatewayState]:
        return {agent_id: t.health.state for agent_id, t in self.tracked.items()}
