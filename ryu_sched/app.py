"""The Ryu/os-ken application: a thin shim from framework events to ryu-sched components.

Launch with ``osken-manager ryu_sched.app --config-file etc/ryu_sched.conf`` (or
``ryu-sched-controller``, which also works with Ryu 4.34). The app owns the database, spawns
the Neutron API server and the agent registry (RPC endpoint, monitor) as green threads, and
hands OpenFlow events to the programmer.
"""

from __future__ import annotations

import logging
from typing import Any

from ryu_sched import compat
from ryu_sched.api import build_app
from ryu_sched.api.server import ApiServer
from ryu_sched.config import register_opts, settings_from_conf
from ryu_sched.db import Database
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
        self.services = Services(settings=settings, db=Database(settings.connection))
        self.api_server: ApiServer | None = None
        self.rpc_server: RpcServer | None = None
        # The app serves the agent endpoint itself (limits, TLS from the settings); the
        # registry provides its dispatcher and hears about closed connections.
        self.registry = RegistryComponent(self.services, DhcpPorts(self.services),
                                          serve_rpc=False)
        self.services.registry = self.registry
        self.programmer = Programmer(self.services)
        self.services.programmer = self.programmer

    def start(self) -> Any:
        super().start()
        self.services.db.create_schema()
        settings = self.services.settings
        self.api_server = ApiServer(build_app(self.services), settings.api_host,
                                    settings.api_port)
        self.api_server.start()
        self.registry.start()
        self.rpc_server = RpcServer.from_settings(
            settings, self.registry.dispatcher, on_close=self.registry.registry.connection_closed)
        self.rpc_server.start()
        self.programmer.start()
        LOG.info("ryu-sched started (framework %s, database %s)", compat.FRAMEWORK,
                 self.services.db.engine.url.render_as_string(hide_password=True))
        # The manager runs until its apps' threads end; ours ends when the app stops.
        self._stopped = compat.hub.Event()
        return compat.hub.spawn(self._stopped.wait)

    def stop(self) -> None:
        if getattr(self, "_stopped", None) is not None:
            self._stopped.set()
        self.programmer.stop()
        if self.rpc_server is not None:
            self.rpc_server.stop()
            self.rpc_server = None
        self.registry.stop()
        if self.api_server is not None:
            self.api_server.stop()
        self.services.db.dispose()
        super().stop()

    # --- OpenFlow events: handed to the programmer -------------------------------------

    @compat.set_ev_cls(compat.ofp_event.EventOFPSwitchFeatures, compat.CONFIG_DISPATCHER)
    def _switch_features(self, ev: Any) -> None:
        self.programmer.switch_connected(ev.msg.datapath)

    @compat.set_ev_cls(compat.ofp_event.EventOFPStateChange, compat.DEAD_DISPATCHER)
    def _switch_gone(self, ev: Any) -> None:
        if ev.datapath.id is not None:
            self.programmer.switch_disconnected(ev.datapath)

    @compat.set_ev_cls(compat.ofp_event.EventOFPPortDescStatsReply, compat.MAIN_DISPATCHER)
    def _port_desc(self, ev: Any) -> None:
        msg = ev.msg
        self.programmer.port_desc_reply(msg.datapath, msg.body,
                                        bool(msg.flags & compat.ofproto_v1_3.OFPMPF_REPLY_MORE))

    @compat.set_ev_cls(compat.ofp_event.EventOFPFlowStatsReply, compat.MAIN_DISPATCHER)
    def _flow_stats(self, ev: Any) -> None:
        msg = ev.msg
        self.programmer.flow_stats_reply(msg.datapath, msg.body,
                                         bool(msg.flags & compat.ofproto_v1_3.OFPMPF_REPLY_MORE))

    @compat.set_ev_cls(compat.ofp_event.EventOFPPortStatus, compat.MAIN_DISPATCHER)
    def _port_status(self, ev: Any) -> None:
        msg = ev.msg
        self.programmer.port_status(msg.datapath, msg.reason, msg.desc)

    @compat.set_ev_cls(compat.ofp_event.EventOFPPacketIn, compat.MAIN_DISPATCHER)
    def _packet_in(self, ev: Any) -> None:
        self.programmer.packet_in(ev.msg.datapath, ev.msg.data)

    @compat.set_ev_cls(compat.EventBarrierReply, compat.MAIN_DISPATCHER)
    def _barrier(self, ev: Any) -> None:
        self.programmer.barrier_reply(ev.msg.datapath, ev.msg.xid)

    @compat.set_ev_cls(compat.ofp_event.EventOFPErrorMsg,
                       [compat.CONFIG_DISPATCHER, compat.MAIN_DISPATCHER])
    def _error(self, ev: Any) -> None:
        self.programmer.error(ev.msg.datapath, ev.msg)
