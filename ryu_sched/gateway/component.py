"""The gateway-health component: wires :class:`~ryu_sched.gateway.monitor.GatewayMonitor` to
the running controller. The app hands it the OpenFlow events it needs (switch connected and
gone, echo replies, port descriptions and statuses); it sends echo requests through the
programmer's datapaths, fences through :class:`~ryu_sched.programmer.fence.SwitchFence`, hears
lease grants from the agent endpoint (``GatewayLeases``) and calls
``Registry.gateway_failed``. One green thread ticks every ``gateway_echo_interval``; it acts on
the leader only.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Iterable, Iterator
from typing import Any

from ryu_sched import compat
from ryu_sched.gateway.health import HealthConfig
from ryu_sched.gateway.monitor import Gateway, GatewayMonitor
from ryu_sched.programmer.fence import SwitchFence
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import AgentType

LOG = logging.getLogger(__name__)

ofp = compat.ofproto_v1_3


def health_config(settings: Any) -> HealthConfig:
    return HealthConfig(fence_timeout=settings.fence_timeout,
                        fence_margin=settings.fence_margin,
                        echo_misses=settings.gateway_echo_misses,
                        fence_retry=max(settings.fence_timeout, 0.1))


def gateways_of(agents: Iterable[Any]) -> Iterator[Gateway]:
    """Every L3 agent that reported its switch (``datapath_id``)."""
    for rec in agents:
        dpid = rec.datapath_id
        if rec.agent_type != AgentType.L3 or not dpid:
            continue
        try:
            number = int(dpid, 16)
        except ValueError:
            continue
        yield Gateway(rec.id, number, str(rec.configurations.get("external_port") or ""))


class GatewayComponent:
    def __init__(self, services: Services, registry: Any, programmer: Any) -> None:
        """``registry``: the RegistryComponent (its ``registry`` and ``agent_rpc.leases``);
        ``programmer``: the Programmer (its switches, and the fence built on it)."""
        self.settings = services.settings
        self.leadership = services.leadership
        self.registry = registry
        self.programmer = programmer
        self.fence = SwitchFence(programmer)
        self.monitor = GatewayMonitor(
            health_config(self.settings),
            lambda: gateways_of(self.registry.registry.agents),
            self.registry.registry, self.fence, self._send_echo,
            lambda: bool(self.leadership.is_leader), drop_channel=self._drop_channel)
        self._thread: Any = None

    @property
    def enabled(self) -> bool:
        return bool(self.settings.allow_automatic_failover)

    def start(self) -> None:
        if not self.enabled:
            LOG.info("gateway health: off (allow_automatic_failover is false)")
            return
        self.registry.agent_rpc.leases.listeners.append(self.monitor)
        self._thread = compat.hub.spawn(self._loop)
        LOG.info("gateway health: echo every %.2fs (%d misses: control lost), lease "
                 "%.2fs + margin %.2fs", self.settings.gateway_echo_interval,
                 self.settings.gateway_echo_misses, self.settings.fence_timeout,
                 self.settings.fence_margin)

    def stop(self) -> None:
        if self._thread is not None:
            compat.hub.kill(self._thread)
            self._thread = None
        listeners = self.registry.agent_rpc.leases.listeners
        if self.monitor in listeners:
            listeners.remove(self.monitor)

    def _loop(self) -> None:
        interval = self.settings.gateway_echo_interval
        while True:
            compat.hub.sleep(interval)
            try:
                self.monitor.tick()
            except Exception:
                LOG.exception("gateway health tick failed")

    def _send_echo(self, dpid: int, payload: bytes) -> bool:
        state = self.programmer.switches.get(dpid)
        if state is None:
            return False
        datapath = state.datapath
        datapath.send_msg(compat.OFPEchoRequest(datapath, data=payload))
        return True

    def _drop_channel(self, dpid: int) -> None:
        """Close the switch's OpenFlow connection at once (RST, nothing left to
        retransmit); the switch connects again when it can."""
        state = self.programmer.switches.get(dpid)
        if state is None:
            return
        datapath = state.datapath
        sock = getattr(datapath, "socket", None)
        try:
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            datapath.close()
            if sock is not None:
                sock.close()
        except OSError as exc:
            LOG.info("switch %016x: closing its connection: %s", dpid, exc)

    # --- OpenFlow events (from the app shim) --------------------------------------------

    def switch_connected(self, datapath: Any) -> None:
        self.monitor.switch_connected(int(datapath.id))

    def switch_disconnected(self, datapath: Any) -> None:
        dpid = int(datapath.id)
        state = self.programmer.switches.get(dpid)
        if state is not None and state.datapath is not datapath:
            return       # an old connection of a switch that is connected again
        self.fence.switch_disconnected(dpid)
        self.monitor.switch_disconnected(dpid)

    def echo_reply(self, datapath: Any, data: bytes | None) -> None:
        self.monitor.echo_reply(int(datapath.id), data)

    def port_desc(self, datapath: Any, ports: Iterable[Any]) -> None:
        for port in ports:
            if port.port_no < ofp.OFPP_MAX:
                self.monitor.port_state(int(datapath.id), _name(port.name),
                                        not port.state & ofp.OFPPS_LINK_DOWN)

    def port_status(self, datapath: Any, reason: int, port: Any) -> None:
        if port.port_no >= ofp.OFPP_MAX:
            return
        up = reason != ofp.OFPPR_DELETE and not port.state & ofp.OFPPS_LINK_DOWN
        self.monitor.port_state(int(datapath.id), _name(port.name), bool(up))

    def barrier_reply(self, datapath: Any, xid: int) -> None:
        self.fence.barrier_reply(datapath, xid)

    def view(self) -> dict[str, dict[str, object]]:
        return {agent_id: t.health.view() for agent_id, t in self.monitor.tracked.items()}


def _name(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
