"""The Ryu/os-ken application: a thin shim from framework events to ryu-sched components.

Launch with ``osken-manager ryu_sched.app --config-file etc/ryu_sched.conf`` (or
``ryu-sched-controller``, which also works with Ryu 4.34). The app owns the database, spawns
the Neutron API server (with the operator page at ``/dashboard/``), the Prometheus metrics
listener and the agent registry (RPC endpoint, monitor) as green threads, and hands OpenFlow
events to the programmer.

On PostgreSQL several controllers may share the database: each one serves the API and the
agent endpoint, one leader elected by the lease (``ryu_sched/leadership``) runs the
registry's monitor, failover and scheduling and programs the switches, and the event relay
(``ryu_sched/cluster``) carries every committed change to the others. On SQLite the
controller is alone on its database and always leads.
"""

from __future__ import annotations

import logging
from typing import Any

from ryu_sched import compat
from ryu_sched.api import build_app
from ryu_sched.api.server import ApiServer
from ryu_sched.cluster import EventRelay
from ryu_sched.config import register_opts, settings_from_conf
from ryu_sched.db import Database
from ryu_sched.gateway.component import GatewayComponent
from ryu_sched.leadership import (
    ElectedLeadership,
    LeaderElector,
    Leadership,
    Lease,
    SoleLeadership,
    default_holder_id,
)
from ryu_sched.observability.actions import ControllerActions
from ryu_sched.observability.metrics import Metrics
from ryu_sched.observability.server import MetricsServer
from ryu_sched.observability.web import OperatorApp
from ryu_sched.programmer.programmer import Programmer
from ryu_sched.registry.component import RegistryComponent
from ryu_sched.resources.agent_scheduler import DhcpPorts
from ryu_sched.rpc import RpcServer
from ryu_sched.services import Services

LOG = logging.getLogger(__name__)

register_opts(compat.CONF)


class RyuSchedApp(compat.App):  # type: ignore[misc,valid-type]
    OFP_VERSIONS = [compat.ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = settings_from_conf(compat.CONF)
        db = Database(settings.connection)
        holder = default_holder_id()
        leadership: Leadership = SoleLeadership(holder) if db.is_sqlite else \
            ElectedLeadership(LeaderElector(Lease(db), settings.leader_lease_time, holder))
        self.metrics = Metrics()
        self.services = Services(settings=settings, db=db, leadership=leadership,
                                 metrics=self.metrics)
        self.api_server: ApiServer | None = None
        self.metrics_server: MetricsServer | None = None
        self.rpc_server: RpcServer | None = None
        # The app serves the agent endpoint itself (limits, TLS from the settings); the
        # registry provides its dispatcher and hears about closed connections.
        self.registry = RegistryComponent(self.services, DhcpPorts(self.services),
                                          serve_rpc=False)
        self.services.registry = self.registry
        self.programmer = Programmer(self.services)
        self.services.programmer = self.programmer
        # Gateway health (HA routers): echo, leases, fence, fast failover; leader only.
        self.gateway = GatewayComponent(self.services, self.registry, self.programmer)
        self.relay: EventRelay | None = None if db.is_sqlite else EventRelay(
            db, self.services.bus, holder, on_gap=self._events_missed)

    def _events_missed(self) -> None:
        """The relay was not listening for a while: read everything again."""
        self.registry.request_resync()
        self.programmer.mark_all_dirty()

    def start(self) -> Any:
        super().start()
        self.services.db.create_schema()
        settings = self.services.settings
        if self.relay is not None:
            self.relay.start()
        self.registry.start()
        self.rpc_server = RpcServer.from_settings(
            settings, self.registry.dispatcher, on_close=self.registry.agent_rpc.connection_closed)
        self.rpc_server.start()
        self.programmer.start()
        self.gateway.start()
        # The API last: once it answers, the agent endpoint is up too.
        actions = ControllerActions(self.services)
        self.metrics.set_status_source(actions.status)
        api = build_app(self.services)
        self.api_server = ApiServer(OperatorApp(api, actions, self.metrics,
                                                api.auth.context_for),
                                    settings.api_host, settings.api_port)
        self.metrics_server = MetricsServer(self.metrics, settings.metrics_host,
                                            settings.metrics_port)
        self.api_server.start()
        self.metrics_server.start()
        self.services.leadership.start()
        LOG.info("ryu-sched started (framework %s, database %s)", compat.FRAMEWORK,
                 self.services.db.engine.url.render_as_string(hide_password=True))
        # The manager runs until its apps' threads end; ours ends when the app stops.
        self._stopped = compat.hub.Event()
        return compat.hub.spawn(self._stopped.wait)

    def stop(self) -> None:
        if getattr(self, "_stopped", None) is not None:
            self._stopped.set()
        # Step down first (and release the lease): another controller takes over at once.
        self.services.leadership.stop()
        if self.relay is not None:
            self.relay.stop()
        self.gateway.stop()
        self.programmer.stop()
        if self.rpc_server is not None:
            self.rpc_server.stop()
            self.rpc_server = None
        self.registry.stop()
        if self.api_server is not None:
            self.api_server.stop()
        if self.metrics_server is not None:
            self.metrics_server.stop()
        self.services.db.dispose()
        super().stop()

    # --- OpenFlow events: handed to the programmer -------------------------------------

    @compat.set_ev_cls(compat.ofp_event.EventOFPSwitchFeatures, compat.CONFIG_DISPATCHER)
    def _switch_features(self, ev: Any) -> None:
        self.programmer.switch_connected(ev.msg.datapath)
        self.gateway.switch_connected(ev.msg.datapath)

    @compat.set_ev_cls(compat.ofp_event.EventOFPStateChange, compat.DEAD_DISPATCHER)
    def _switch_gone(self, ev: Any) -> None:
        if ev.datapath.id is not None:
            self.gateway.switch_disconnected(ev.datapath)
            self.programmer.switch_disconnected(ev.datapath)

    @compat.set_ev_cls(compat.ofp_event.EventOFPPortDescStatsReply, compat.MAIN_DISPATCHER)
    def _port_desc(self, ev: Any) -> None:
        msg = ev.msg
        self.programmer.port_desc_reply(msg.datapath, msg.body,
                                        bool(msg.flags & compat.ofproto_v1_3.OFPMPF_REPLY_MORE))
        self.gateway.port_desc(msg.datapath, msg.body)

    @compat.set_ev_cls(compat.ofp_event.EventOFPFlowStatsReply, compat.MAIN_DISPATCHER)
    def _flow_stats(self, ev: Any) -> None:
        msg = ev.msg
        self.programmer.flow_stats_reply(msg.datapath, msg.body,
                                         bool(msg.flags & compat.ofproto_v1_3.OFPMPF_REPLY_MORE))

    @compat.set_ev_cls(compat.ofp_event.EventOFPPortStatus, compat.MAIN_DISPATCHER)
    def _port_status(self, ev: Any) -> None:
        msg = ev.msg
        self.programmer.port_status(msg.datapath, msg.reason, msg.desc)
        self.gateway.port_status(msg.datapath, msg.reason, msg.desc)

    @compat.set_ev_cls(compat.ofp_event.EventOFPPacketIn, compat.MAIN_DISPATCHER)
    def _packet_in(self, ev: Any) -> None:
        self.programmer.packet_in(ev.msg.datapath, ev.msg.data)

    @compat.set_ev_cls(compat.EventBarrierReply, compat.MAIN_DISPATCHER)
    def _barrier(self, ev: Any) -> None:
        self.programmer.barrier_reply(ev.msg.datapath, ev.msg.xid)
        self.gateway.barrier_reply(ev.msg.datapath, ev.msg.xid)

    @compat.set_ev_cls(compat.EventEchoReply, [compat.HANDSHAKE_DISPATCHER,
                                               compat.CONFIG_DISPATCHER, compat.MAIN_DISPATCHER])
    def _echo_reply(self, ev: Any) -> None:
        self.gateway.echo_reply(ev.msg.datapath, ev.msg.data)

    @compat.set_ev_cls(compat.EventRoleReply, [compat.CONFIG_DISPATCHER, compat.MAIN_DISPATCHER])
    def _role_reply(self, ev: Any) -> None:
        msg = ev.msg
        self.programmer.role_reply(msg.datapath, msg.role, msg.generation_id, msg.xid)

    @compat.set_ev_cls(compat.ofp_event.EventOFPErrorMsg,
                       [compat.CONFIG_DISPATCHER, compat.MAIN_DISPATCHER])
    def _error(self, ev: Any) -> None:
        self.programmer.error(ev.msg.datapath, ev.msg)
