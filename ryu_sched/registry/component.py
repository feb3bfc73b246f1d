"""Registry component wiring: the RPC endpoint and the green threads that drive the registry.

- RPC readers call :meth:`Registry.report_state` and the other agent methods directly;
- the *flusher* writes batched heartbeats every ``heartbeat_flush_interval``;
- the *worker* applies bus events (:class:`~ryu_sched.registry.reactions.Reactions`),
  deletes the DHCP port of a network unbound from a DHCP agent (through the service layer's
  :class:`~ryu_sched.registry.agent_rpc.DhcpPorts`, handed in by the application), and
  reconciles when asked;
- the *monitor* has the worker run :meth:`Registry.monitor_tick` every
  ``effective_monitor_interval``, whether or not the flush before it succeeded.

Bus subscribers must be quick, so :meth:`_on_event` only queues the event for the worker.
"""

from __future__ import annotations

import logging
from typing import Any

import eventlet
import eventlet.queue

from ryu_sched.events import BindingChanged, Event, PortLocated
from ryu_sched.registry.agent_rpc import AgentRpc, DhcpPorts
from ryu_sched.registry.kinds import SPECS
from ryu_sched.registry.reactions import Reactions
from ryu_sched.registry.registry import Registry
from ryu_sched.rpc import Dispatcher, RpcServer, RpcStats
from ryu_sched.services import Services

LOG = logging.getLogger(__name__)

_RECONCILE = object()
_TICK = object()


class RegistryComponent:
    def __init__(self, services: Services, dhcp_ports: DhcpPorts,
                 serve_rpc: bool = True) -> None:
        self.services = services
        self.dhcp_ports = dhcp_ports
        self.settings = services.settings
        self.registry = Registry(services)
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
                                 self.dispatcher, on_close=self.registry.connection_closed)
            self.rpc.start()
        if not self._subscribed:
            self.services.bus.subscribe(self._on_event)
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

    def request_reconcile(self) -> None:
        self._queue.put(_RECONCILE)

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
                if item is _TICK:
                    self.monitor_tick()
                elif item is _RECONCILE:
                    if self.registry.reconcile_requested:
                        self.registry.reconcile()
                elif isinstance(item, BindingChanged):
                    self.dhcp_ports.release(self.registry, item.object_id, item.host)
                else:
                    self.reactions.handle(item)
            except Exception:
                LOG.exception("registry worker failed on %r", item)

    def monitor_tick(self) -> dict[str, int]:
        """Flush, then judge liveness and fail over, even if the flush failed."""
        self._flush()
        summary = self.registry.monitor_tick()
        if any(summary.values()):
            LOG.info("monitor: %s", summary)
        return summary

    def _flush(self) -> None:
        """Write batched heartbeats; a failure is logged, never propagated (liveness and
        failover work from memory and must go on)."""
        try:
            self.registry.flush()
        except Exception:
            LOG.exception("heartbeat flush failed")
