"""Registry component wiring: the RPC endpoint and the green threads that drive the registry.

- RPC readers call :meth:`Registry.report_state` and the other agent methods directly;
- the *flusher* writes batched heartbeats every ``heartbeat_flush_interval``;
- the *worker* applies bus events (:class:`~ryu_sched.registry.reactions.Reactions`),
  deletes the DHCP port of a network unbound from a DHCP agent (through the service layer's
  :class:`~ryu_sched.registry.agent_rpc.DhcpPorts`, handed in by the application), and
  reconciles when asked;
- the *monitor* has the worker run a tick every ``effective_monitor_interval``: flush,
  read the agents table (heartbeats other controllers received), and, on the leader only,
  :meth:`Registry.monitor_tick` (liveness, failover, scheduling), whether or not the flush
  before it succeeded.

Every controller serves the RPC endpoint. Leadership (``services.leadership``) decides who
runs the monitor's judgement, failover and scheduling: when this controller is elected the
worker first reads everything again (:meth:`Registry.take_over`); events relayed from other
controllers (the bus's remote events) make it read the bindings they changed
(:meth:`Registry.refresh_object`) and tell the agents connected here.

Bus subscribers must be quick, so :meth:`_on_event` only queues the event for the worker.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import eventlet
import eventlet.queue

from ryu_sched.events import BindingChanged, Event, PortLocated
from ryu_sched.leadership import FencedOut
from ryu_sched.registry.agent_rpc import AgentRpc, DhcpPorts
from ryu_sched.registry.kinds import SPECS
from ryu_sched.registry.reactions import Reactions
from ryu_sched.registry.registry import Registry
from ryu_sched.rpc import Dispatcher, RpcServer, RpcStats
from ryu_sched.services import Services

LOG = logging.getLogger(__name__)

_RECONCILE = object()
_TICK = object()
_ELECTED = object()
_RESYNC = object()


@dataclasses.dataclass(frozen=True)
class _Remote:
    """An event another controller committed."""

    event: Event


class RegistryComponent:
    def __init__(self, services: Services, dhcp_ports: DhcpPorts,
                 serve_rpc: bool = True) -> None:
        self.services = services
        self.dhcp_ports = dhcp_ports
        self.settings = services.settings
        self.registry = Registry(services)
        self.leadership = services.leadership
        self.reactions = Reactions(self.registry)
        self.stats = RpcStats()
        self.agent_rpc = AgentRpc(self.registry, dhcp_ports)
        self.dispatcher = Dispatcher(self.agent_rpc.methods(), self.stats)
        self.serve_rpc = serve_rpc
        self.rpc: RpcServer | None = None
        self._queue: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self._threads: list[Any] = []
        self._subscribed = False

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self.registry.started = self.registry.clock()
        self.registry.load()
        if self.serve_rpc:
            self.rpc = RpcServer(self.settings.rpc_host, self.settings.rpc_port,
                                 self.dispatcher, on_close=self.agent_rpc.connection_closed)
            self.rpc.start()
        if not self._subscribed:
            self.services.bus.subscribe(self._on_event, remote=False)
            self.services.bus.subscribe_remote(self._on_remote_event)
            self.leadership.watch(on_elected=self._on_elected, on_demoted=self._on_demoted)
            self._subscribed = True
        self._threads = [eventlet.spawn(self._flush_loop), eventlet.spawn(self._worker_loop),
                         eventlet.spawn(self._monitor_loop)]
        LOG.info("registry started: agent_down_time=%ss monitor every %.2fs, heartbeats "
                 "flushed every %.2fs, failover=%s, drivers network=%s router=%s",
                 self.settings.agent_down_time, self.settings.effective_monitor_interval,
                 self.settings.heartbeat_flush_interval, self.settings.allow_automatic_failover,
                 self.settings.network_scheduler_driver, self.settings.router_scheduler_driver)

    def stop(self) -> None:
        for thread in self._threads:
            thread.kill()
        self._threads = []
        if self.rpc is not None:
            self.rpc.stop()
            self.rpc = None
        self._flush()

    # --- green threads ------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, PortLocated):
            return
        if isinstance(event, BindingChanged) and (
                event.bound or not SPECS[event.kind].releases_port_on_unbind):
            return
        self._queue.put(event)

    def _on_remote_event(self, event: Event) -> None:
        if not isinstance(event, PortLocated):
            self._queue.put(_Remote(event))

    def _on_elected(self, epoch: int) -> None:
        LOG.info("registry: leading at epoch %d; reading agents and bindings again", epoch)
        self._queue.put(_ELECTED)

    def _on_demoted(self) -> None:
        LOG.warning("registry: no longer the leader; monitor, failover and scheduling stop")

    def request_reconcile(self) -> None:
        self._queue.put(_RECONCILE)

    def request_resync(self) -> None:
        """Read agents and bindings again (events from other controllers may be lost)."""
        self._queue.put(_RESYNC)

    def _flush_loop(self) -> None:
        interval = max(self.settings.heartbeat_flush_interval, 0.01)
        while True:
            eventlet.sleep(interval)
            self._flush()
            if self.registry.reconcile_requested:
                self._queue.put(_RECONCILE)

    def _monitor_loop(self) -> None:
        interval = self.settings.effective_monitor_interval
        while True:
            eventlet.sleep(interval)
            self._queue.put(_TICK)

    def _worker_loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                self._work(item)
            except FencedOut as exc:
                LOG.warning("registry: a leader's write was refused (%s): %r", exc, item)
            except Exception:
                LOG.exception("registry worker failed on %r", item)

    def _work(self, item: Any) -> None:
        registry = self.registry
        if item is _TICK:
            self.monitor_tick()
        elif item is _RECONCILE:
            if registry.leading and registry.reconcile_requested:
                registry.reconcile()
        elif item is _ELECTED:
            if registry.leading:
                registry.take_over()
        elif item is _RESYNC:
            registry.resync()
        elif isinstance(item, _Remote):
            self._remote(item.event)
        elif isinstance(item, BindingChanged):
            if registry.leading:
                self.dhcp_ports.release(registry, item.object_id, item.host)
        else:
            self.reactions.handle(item)

    def _remote(self, event: Event) -> None:
        """A change another controller committed: bindings are read again (and the agents
        connected here told); model changes get the same reactions as ours."""
        if isinstance(event, BindingChanged):
            self.registry.refresh_object(event.kind, event.object_id)
            if (self.registry.leading and not event.bound
                    and SPECS[event.kind].releases_port_on_unbind):
                self.dhcp_ports.release(self.registry, event.object_id, event.host)
        else:
            self.reactions.handle(event)

    def monitor_tick(self) -> dict[str, int]:
        """Flush, read what the other controllers wrote, then (the leader) judge liveness
        and fail over, even if the flush or the read failed."""
        self._flush()
        self._refresh()
        if not self.registry.leading:
            return {}
        summary = self.registry.monitor_tick()
        if any(summary.values()):
            LOG.info("monitor: %s", summary)
        return summary

    def _refresh(self) -> None:
        """Read the agents table (a failure is logged: liveness goes on from memory)."""
        if not self.leadership.contended:
            return
        try:
            self.registry.refresh_agents()
        except Exception:
            LOG.exception("reading the agents table failed")

    def _flush(self) -> None:
        """Write batched heartbeats; a failure is logged, never propagated (liveness and
        failover work from memory and must go on)."""
        try:
            self.registry.flush()
        except Exception:
            LOG.exception("heartbeat flush failed")
