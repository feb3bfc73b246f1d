"""The L3 agent's gateway lease and its fence (docs/ha.md, "Detection and fencing").

A gateway may answer for its routers (ARP for their addresses, traffic for their MACs) only
while the leading controller renews its lease. Two threads:

- the *keepalive* loop sends ``gateway_keepalive`` every ``fence_interval`` on a connection of
  its own (a large reply on the agent's main connection must not delay it); an answer renews
  the lease until the keepalive's SEND time + ``fence_timeout``. A controller that does not
  lead answers ``NotLeading``: the loop moves to the next of ``controller_hosts``.
- the *watchdog* sleeps until the lease runs out; then it deletes every ROUTER_ACTIVE flow
  from the local bridge through the bridge's local management socket (never over the
  management network, which may be the thing that failed), once per lapse. A failed delete
  (vswitchd restarting) is tried again every ``fence_interval`` while the lease stays lapsed.

An agent starts without a lease: its first act is a fence, so a gateway that comes back
never answers with flows a previous life left behind. The controller counts the lease from
when it answered, which is after the agent sent: the agent's lease always ends first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ryu_sched.shared.vocabulary import ROUTER_ACTIVE_COOKIE_MATCH, GatewayRpc

from .rpc_client import CallTimeout, Disconnected, RpcCallError, RpcClient

LOG = logging.getLogger(__name__)

Clock = Callable[[], float]

#: a watchdog that wakes this much later than it meant to was frozen (or starved)
FROZEN_AFTER = 0.25


class Lease:
    """When the lease ends, and how many times it was regained (thread-safe).

    Two ends: the *strict* one (the keepalive's send time + ``timeout``) applies once the
    controller has gone silent (a keepalive not answered, the agent frozen): that is what
    the leader counts on before it promotes a standby (rule (b)). While the controller
    answers clean refusals instead (its connection reset or refused: the process is gone or
    restarting; ``NotLeading``: a live controller that does not lead), nobody can be
    promoting a standby on this lease, so the lease lasts until the *lenient* end (send time
    + the ``hold`` the controller gave, below its agent_down_time): a controller restart or
    a leader election does not cut the routers' traffic."""

    def __init__(self, timeout: float, clock: Clock = time.monotonic) -> None:
        self.timeout = timeout
        self.clock = clock
        self._lock = threading.Lock()
        self.expires = float("-inf")
        self.lenient_expires = float("-inf")
        #: the controller went silent since the last renewal: the strict end applies
        self.silent = True
        #: lapsed -> held transitions so far (a fence is owed once per term that lapsed)
        self.term = 0

    def renew(self, sent_at: float, hold: float | None = None) -> bool:
        """A keepalive sent at ``sent_at`` was answered; True when that regained a lapsed
        lease."""
        with self._lock:
            now = self.clock()
            was_held = self._held(now)
            end = sent_at + self.timeout
            if end <= now:
                return False              # answered too late to count
            self.expires = max(self.expires, end)
            self.lenient_expires = max(self.lenient_expires,
                                       sent_at + max(hold or 0.0, self.timeout))
            self.silent = False
            if not was_held:
                self.term += 1
            return not was_held

    def went_silent(self) -> None:
        """A keepalive went unanswered (or the agent itself was frozen)."""
        with self._lock:
            self.silent = True

    def _held(self, now: float) -> bool:
        if now < self.expires:
            return True
        return not self.silent and now < self.lenient_expires

    def held(self, now: float | None = None) -> bool:
        with self._lock:
            return self._held(self.clock() if now is None else now)

    def remaining(self, now: float | None = None) -> float:
        now = self.clock() if now is None else now
        with self._lock:
            end = self.expires if self.silent else max(self.expires, self.lenient_expires)
        return end - now


class GatewayFence:
    """The keepalive loop and the watchdog of one L3 agent."""

    def __init__(self, host: str, client: RpcClient, fence: Callable[[], None],
                 interval: float, timeout: float, stopping: threading.Event,
                 clock: Clock = time.monotonic,
                 prepare: Callable[[], object] | None = None) -> None:
        self.host = host
        self.client = client
        self.fence = fence
        #: called while the lease is held: opens the fence's standing connection ahead of
        #: the moment it is needed
        self.prepare = prepare
        self.interval = interval
        self.lease = Lease(timeout, clock)
        self.clock = clock
        self.stopping = stopping
        self._fenced_term = -1          # the lease term whose lapse was fenced
        self.fences = 0                 # successful fences (tests, logs)
        self.failures = 0               # failed attempts of the current lapse
        self._last_refusal = ""

    # --- keepalives --------------------------------------------------------------------

    def keepalive_once(self) -> bool:
        """Send one keepalive and wait for its answer (at most a lease's length); True when
        it renewed the lease."""
        if not self.client.connected:
            return False
        sent = self.clock()
        reply: object = None
        try:
            # ``fences``: the controller re-reads this switch's flows when it grows (the
            # flows it deleted are not the controller's to guess)
            reply = self.client.call(GatewayRpc.KEEPALIVE, self.host, self.fences,
                                     timeout=self.lease.timeout / 2)
        except RpcCallError as exc:
            self._refused(exc)
            return False
        except CallTimeout:
            self.lease.went_silent()
            if not self.lease.held():
                # no answer for a whole lease: this controller is frozen or cut off
                LOG.warning("gateway lease: %s:%s does not answer keepalives; trying the "
                            "next controller", *self.client.address)
                self.client.drop()
            return False
        except Disconnected:
            return False
        hold = reply.get("hold") if isinstance(reply, dict) else None
        if self.lease.renew(sent, hold if isinstance(hold, int | float) else None):
            LOG.info("gateway lease held (from %s:%s)", *self.client.address)
        self._last_refusal = ""
        return True

    def _refused(self, exc: RpcCallError) -> None:
        if exc.error_type == GatewayRpc.NOT_LEADING:
            LOG.info("gateway lease: %s:%s does not lead; trying the next controller",
                     *self.client.address)
            self.client.drop()
            return
        message = f"{exc.error_type}: {exc}"
        if message != self._last_refusal:   # e.g. NotFound until the agent registered
            LOG.warning("gateway lease refused: %s", message)
            self._last_refusal = message

    def keepalive_loop(self) -> None:
        while not self.stopping.is_set():
            started = self.clock()
            try:
                self.keepalive_once()
            except Exception:
                LOG.exception("gateway keepalive failed")
            self.stopping.wait(max(0.0, started + self.interval - self.clock()))

    # --- the watchdog --------------------------------------------------------------------

    def check(self) -> float:
        """Fence if the lease lapsed and this lapse was not fenced yet; the seconds until
        the next check."""
        now = self.clock()
        if self.lease.held(now):
            if self.prepare is not None:
                self.prepare()
            # never more than an interval: a keepalive may go unanswered meanwhile, and
            # then the strict end (perhaps already past) applies
            return min(max(self.lease.remaining(now), 0.001), self.interval)
        term = self.lease.term
        if self._fenced_term != term:
            started = self.clock()
            try:
                self.fence()
            except Exception as exc:
                self.failures += 1
                if self.failures in (1, 10) or self.failures % 100 == 0:
                    LOG.error("gateway lease lapsed; fence FAILED %d times (%s); retrying "
                              "every %.2fs", self.failures, exc, self.interval)
                return self.interval
            self._fenced_term = term
            self.failures = 0
            self.fences += 1
            LOG.warning("gateway lease lapsed (%s): deleted every ROUTER_ACTIVE flow from the "
                        "bridge in %.3fs", "never held since start" if term == 0 else
                        f"{now - self.lease.expires:.3f}s ago", self.clock() - started)
        return self.interval

    def watchdog_loop(self) -> None:
        expected = self.clock()
        while not self.stopping.is_set():
            if self.clock() - expected > FROZEN_AFTER:
                # this process was frozen (or starved): whatever the controller decided
                # meanwhile, it heard nothing from us; count it as silence
                self.lease.went_silent()
            try:
                delay = self.check()
            except Exception:
                LOG.exception("gateway lease watchdog failed")
                delay = self.interval
            expected = self.clock() + delay
            self.stopping.wait(delay)

    def threads(self) -> list[threading.Thread]:
        return [threading.Thread(target=self.client.connect_forever, daemon=True,
                                 name="gateway-lease-rpc"),
                threading.Thread(target=self.keepalive_loop, daemon=True,
                                 name="gateway-keepalive"),
                threading.Thread(target=self.watchdog_loop, daemon=True,
                                 name="gateway-fence")]


def fence_command(ovs_del_flows: Callable[[str], None]) -> Callable[[], None]:
    """The fence: delete every flow whose cookie kind is ROUTER_ACTIVE."""
    return lambda: ovs_del_flows(ROUTER_ACTIVE_COOKIE_MATCH)
