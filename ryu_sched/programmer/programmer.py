"""Keeps every connected switch at its desired flow table.

On connect the programmer reads the switch's port descriptions and its flow table (flow stats),
then sends only the difference between what ``flows.pipeline`` wants and what is installed,
followed by a barrier. A controller restart or a switch reconnect therefore changes nothing
that was right. Model changes (events on the bus) mark switches dirty; one worker green
thread coalesces them, builds one snapshot and re-diffs the dirty switches.

It also resolves each hosted router's upstream gateway MAC by ARP (packet-out on the external
port; the reply comes back as a packet-in) and announces a moved router's external and
floating IPs with gratuitous ARPs from its new switch.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from flows import model as fm
from flows.pipeline import desired_flows
from flows.spec import FlowSpec
from ryu_sched import compat
from ryu_sched.db import models as db
from ryu_sched.events import Event, PortLocated
from ryu_sched.programmer import messages, packets
from ryu_sched.programmer.neighbors import NeighborTable
from ryu_sched.programmer.snapshot import build_snapshot
from ryu_sched.services import Services

LOG = logging.getLogger(__name__)

ofp = compat.ofproto_v1_3
parser = compat.ofproto_v1_3_parser

ARP_RETRY_SECONDS = 2.0
RESYNC_SECONDS = 30.0
#: Delays before each round of gratuitous ARPs after a router appears on a switch.
GARP_REPEATS = (0.0, 0.5, 1.5)


@dataclasses.dataclass
class InstalledFlow:
    cookie: int
    body: str
    match: Any  # the switch's own OFPMatch, reused for strict deletes


@dataclasses.dataclass
class SwitchState:
    datapath: Any
    ports: dict[str, int] = dataclasses.field(default_factory=dict)
    installed: dict[messages.FlowKey, InstalledFlow] | None = None
    port_buffer: dict[str, int] = dataclasses.field(default_factory=dict)
    stats_buffer: list[Any] = dataclasses.field(default_factory=list)
    connected_at: float = dataclasses.field(default_factory=time.monotonic)
    synced: bool = False  # the first sync since this connection was logged

    @property
    def dpid(self) -> int:
        return int(self.datapath.id)

    @property
    def ready(self) -> bool:
        return self.installed is not None


@dataclasses.dataclass
class SyncStats:
    """Counters for logs and benchmarks."""

    syncs: int = 0
    flow_mods: int = 0
    last_sync_seconds: float = 0.0
    last_desired: int = 0


class Programmer:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.switches: dict[int, SwitchState] = {}
        self.neighbors = NeighborTable(services.db)
        self.stats = SyncStats()
        self._dirty: set[int] = set()
        # A queue, not an Event: wake-ups must never be lost, whoever sends them.
        self._wake: Any = compat.hub.Queue()
        self._running = False
        self._threads: list[Any] = []
        self._router_hosts: dict[str, int | None] = {}
        self._arp_asked: set[tuple[int, str]] = set()
        self._last_snapshot: fm.Snapshot | None = None
        self._port_status: dict[str, tuple[int | None, str]] = {}
        # Canonical forms of each switch's last desired flows: computing one costs a
        # serialise/parse round trip (~0.25 ms), which dominated every re-diff of a big table.
        # A spec is frozen, so its canonical form never changes; a switch's entry keeps exactly
        # its current desired specs (and survives a reconnect of the switch).
        self._canonical: dict[int, dict[FlowSpec, tuple[messages.FlowKey, str]]] = {}

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.neighbors.load()
        self.services.bus.subscribe(self._on_model_event)
        self._running = True
        self._threads = [compat.hub.spawn(self._worker), compat.hub.spawn(self._arp_loop)]

    def stop(self) -> None:
        self._running = False
        self._wake.put(None)
        for thread in self._threads:
            compat.hub.kill(thread)
        self._threads = []

    # --- framework events (called by the app shim) ------------------------------------

    def switch_connected(self, datapath: Any) -> None:
        LOG.info("switch %016x connected; reading its ports and flows", datapath.id)
        self.switches[int(datapath.id)] = SwitchState(datapath=datapath)
        datapath.send_msg(parser.OFPPortDescStatsRequest(datapath, 0))

    def switch_disconnected(self, datapath: Any) -> None:
        state = self.switches.get(int(datapath.id or 0))
        if state is not None and state.datapath is datapath:
            LOG.info("switch %016x disconnected", datapath.id)
            del self.switches[int(datapath.id)]
            self.mark_all_dirty()

    def port_desc_reply(self, datapath: Any, body: Iterable[Any], more: bool) -> None:
        state = self._state(datapath)
        if state is None:
            return
        for port in body:
            if port.port_no < ofp.OFPP_MAX:
                state.port_buffer[_name(port.name)] = int(port.port_no)
        if more:
            return
        state.ports, state.port_buffer = state.port_buffer, {}
        datapath.send_msg(parser.OFPFlowStatsRequest(
            datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0, parser.OFPMatch()))

    def flow_stats_reply(self, datapath: Any, body: Iterable[Any], more: bool) -> None:
        state = self._state(datapath)
        if state is None:
            return
        state.stats_buffer.extend(body)
        if more:
            return
        installed: dict[messages.FlowKey, InstalledFlow] = {}
        for stats in state.stats_buffer:
            installed[messages.key_of_stats(stats)] = InstalledFlow(
                cookie=int(stats.cookie), body=messages.body_of_stats(stats), match=stats.match)
        state.stats_buffer = []
        state.installed = installed
        LOG.info("switch %016x has %d flows installed", state.dpid, len(installed))
        # a new switch changes where ports live for every other switch, too
        self.mark_all_dirty()

    def port_status(self, datapath: Any, reason: int, port: Any) -> None:
        state = self._state(datapath)
        if state is None or port.port_no >= ofp.OFPP_MAX:
            return
        name = _name(port.name)
        if reason == ofp.OFPPR_DELETE:
            state.ports.pop(name, None)
        else:
            state.ports[name] = int(port.port_no)
        self.mark_all_dirty()

    def packet_in(self, datapath: Any, data: bytes) -> None:
        parsed = packets.parse_arp(data)
        if parsed is None:
            return
        opcode, src_mac, src_ip, _dst_mac, _dst_ip = parsed
        if opcode != 2 or src_ip not in self._wanted_upstreams():
            return
        if self.neighbors.learn(src_ip, src_mac):
            LOG.info("upstream gateway %s is at %s", src_ip, src_mac)
            self.mark_all_dirty()

    def error(self, datapath: Any, msg: Any) -> None:
        LOG.error("switch %016x reported error type=%s code=%s", datapath.id, msg.type,
                  msg.code)

    # --- scheduling of work ------------------------------------------------------------

    def _on_model_event(self, event: Event) -> None:
        if isinstance(event, PortLocated):
            return  # written by this programmer from what the switches told it
        self.mark_all_dirty()

    def mark_all_dirty(self) -> None:
        self._dirty.update(self.switches)
        if self._wake.qsize() == 0:
            self._wake.put(None)

    def _state(self, datapath: Any) -> SwitchState | None:
        state = self.switches.get(int(datapath.id))
        return state if state is not None and state.datapath is datapath else None

    def _worker(self) -> None:
        while self._running:
            try:
                self._wake.get(timeout=RESYNC_SECONDS)
            except compat.hub.QueueEmpty:
                # periodic safety net: re-diff everything now and then
                self._dirty.update(self.switches)
            if not self._running:
                return
            compat.hub.sleep(0.02)  # let a burst of API writes coalesce into one sync
            while self._wake.qsize():
                self._wake.get()
            try:
                self.sync_dirty()
            except Exception:
                LOG.exception("flow sync failed; retrying on the next change")
                compat.hub.sleep(1.0)
                self.mark_all_dirty()

    def sync_dirty(self) -> None:
        dirty = [d for d in self._dirty if d in self.switches and self.switches[d].ready]
        self._dirty -= set(dirty)
        if not dirty:
            return
        snapshot = self.snapshot()
        self._last_snapshot = snapshot
        self._record_port_locations(snapshot)
        for dpid in sorted(dirty):
            state = self.switches.get(dpid)
            if state is not None and state.ready:
                self.sync_switch(state, snapshot)
        self._announce_moves(snapshot)

    def snapshot(self) -> fm.Snapshot:
        ports = {dpid: dict(s.ports) for dpid, s in self.switches.items() if s.ready}
        with self.services.db.session() as session:
            return build_snapshot(session, ports, self.services.settings.bridge_mappings,
                                  self.neighbors.macs)

    def sync_switch(self, state: SwitchState, snapshot: fm.Snapshot) -> int:
        """Send the difference between desired and installed flows; returns flow-mods sent."""
        started = time.perf_counter()
        desired = desired_flows(snapshot, state.dpid)
        sent = self.apply_diff(state, desired)
        self.stats.syncs += 1
        self.stats.last_desired = len(desired)
        self.stats.last_sync_seconds = time.perf_counter() - started
        first, state.synced = not state.synced, True
        if sent:
            LOG.info("switch %016x: %d flow-mods (%d desired) in %.3fs", state.dpid, sent,
                     len(desired), self.stats.last_sync_seconds)
        elif first:
            LOG.info("switch %016x: in sync, nothing sent (%d desired) in %.3fs", state.dpid,
                     len(desired), self.stats.last_sync_seconds)
        return sent

    def apply_diff(self, state: SwitchState, desired: list[FlowSpec]) -> int:
        assert state.installed is not None
        datapath = state.datapath
        wanted: dict[messages.FlowKey, tuple[FlowSpec, str]] = {}
        known = self._canonical.get(state.dpid, {})
        canonical: dict[FlowSpec, tuple[messages.FlowKey, str]] = {}
        for spec in desired:
            form = known.get(spec)
            if form is None:
                form = messages.canonical(spec)
            canonical[spec] = form
            key, body = form
            wanted[key] = (spec, body)
        self._canonical[state.dpid] = canonical
        msgs = []
        for key, flow in list(state.installed.items()):
            if key not in wanted:
                msgs.append(messages.flow_delete(datapath, key[0], key[1], flow.match))
                del state.installed[key]
        for key, (spec, body) in wanted.items():
            current = state.installed.get(key)
            if current is None:
                msgs.append(messages.flow_add(datapath, spec))
            elif current.body != body or current.cookie != spec.cookie:
                LOG.debug("flow %s changed: %s -> %s", key, current.body, body)
                # OpenFlow 1.3 modify does not update cookies: re-add in place, which
                # replaces the entry atomically (same table, priority and match).
                msgs.append(messages.flow_add(datapath, spec))
            else:
                continue
            state.installed[key] = InstalledFlow(cookie=spec.cookie, body=body,
                                                 match=messages.match_of(spec))
        for msg in msgs:
            datapath.send_msg(msg)
        if msgs:
            datapath.send_msg(parser.OFPBarrierRequest(datapath))
        self.stats.flow_mods += len(msgs)
        return len(msgs)

    # --- port locations -----------------------------------------------------------------

    def _record_port_locations(self, snapshot: fm.Snapshot) -> None:
        """Persist where each port's tap was seen (and its status) when that changed."""
        changes: dict[str, tuple[int | None, str]] = {}
        for port in snapshot.ports:
            if port.router_owned:
                continue
            dpid = snapshot.port_locations.get(port.id)
            status = "ACTIVE" if dpid is not None and port.admin_state_up else "DOWN"
            if self._port_status.get(port.id) != (dpid, status):
                changes[port.id] = (dpid, status)
        if not changes:
            return
        with self.services.db.session() as session:
            rows = session.scalars(select(db.Port).where(db.Port.id.in_(changes))).all()
            for row in rows:
                dpid, status = changes[row.id]
                if row.bound_dpid != dpid or row.status != status:
                    row.bound_dpid = dpid
                    row.status = status
        self._port_status.update(changes)

    # --- ARP for upstream gateways, gratuitous ARP after moves ---------------------------

    def _wanted_upstreams(self) -> set[str]:
        return {ip for _dpid, ip in self._arp_asked}

    def _arp_loop(self) -> None:
        while self._running:
            try:
                self.resolve_upstreams()
            except Exception:
                LOG.exception("upstream ARP resolution failed")
            compat.hub.sleep(ARP_RETRY_SECONDS)

    def resolve_upstreams(self) -> None:
        """ARP for each hosted router's upstream gateway: until it answers, every round; once
        known, one refresh per (switch, gateway) after start. Works on the snapshot of the
        last sync (a learnt MAC triggers a sync), so it never reads the database itself."""
        snapshot = self._last_snapshot
        if snapshot is None:
            return
        for router in snapshot.routers:
            gw = router.gateway
            if gw is None or not gw.upstream_ip or router.host_dpid is None:
                continue
            key = (router.host_dpid, gw.upstream_ip)
            if gw.upstream_mac is not None and key in self._arp_asked:
                continue
            state = self.switches.get(router.host_dpid)
            switch = snapshot.switch(router.host_dpid)
            if state is None or switch is None:
                continue
            ofport = switch.ofport(switch.external_port)
            if ofport is None:
                continue
            self._arp_asked.add(key)
            self._packet_out(state, ofport, packets.arp_request(gw.mac, gw.ip, gw.upstream_ip))

    def _announce_moves(self, snapshot: fm.Snapshot) -> None:
        networks = {n.id: n for n in snapshot.networks}
        fips_by_router: dict[str, list[fm.FloatingIP]] = {}
        for fip in snapshot.floating_ips:
            fips_by_router.setdefault(fip.router_id, []).append(fip)
        for router in snapshot.routers:
            previous = self._router_hosts.get(router.id, "unknown")
            if previous == router.host_dpid:
                continue
            state = self.switches.get(router.host_dpid or -1)
            switch = snapshot.switch(router.host_dpid or -1)
            if router.host_dpid is not None and (state is None or switch is None
                                                 or not state.ready):
                continue  # announced once its new switch is connected and programmed
            self._router_hosts[router.id] = router.host_dpid
            if state is None or switch is None:
                continue
            LOG.info("router %s now on switch %016x (was %s): announcing it", router.id,
                     state.dpid, previous)
            announcements: list[tuple[int, bytes]] = []
            # Inside: the fabric must learn that the interface MACs now live here.
            for iface in router.interfaces:
                network = networks.get(iface.network_id)
                if network is None or network.physical_network is None:
                    continue
                uplink = switch.ofport(switch.uplinks.get(network.physical_network))
                if uplink is not None:
                    vlan_id = network.segmentation_id if network.network_type == "vlan" else None
                    announcements.append(
                        (uplink, packets.gratuitous_arp(iface.mac, iface.ip, vlan_id)))
            # Outside: the upstream segment learns the gateway and floating IPs' new port.
            gw = router.gateway
            ofport = switch.ofport(switch.external_port)
            if gw is not None and ofport is not None:
                announcements.append((ofport, packets.gratuitous_arp(gw.mac, gw.ip)))
                for fip in fips_by_router.get(router.id, []):
                    announcements.append(
                        (ofport, packets.gratuitous_arp(gw.mac, fip.floating_ip)))
            # A lost announcement would leave the fabric forwarding to the old switch until
            # its MAC table ages out (minutes): repeat them, as routers do after a failover.
            compat.hub.spawn(self._announce, state, announcements)

    def _announce(self, state: SwitchState, announcements: list[tuple[int, bytes]]) -> None:
        for delay in GARP_REPEATS:
            compat.hub.sleep(delay)
            if self.switches.get(state.dpid) is not state:
                return  # the switch went away mid-announcement
            for ofport, data in announcements:
                self._packet_out(state, ofport, data)

    def _packet_out(self, state: SwitchState, ofport: int, data: bytes) -> None:
        datapath = state.datapath
        datapath.send_msg(parser.OFPPacketOut(
            datapath=datapath, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
            actions=[parser.OFPActionOutput(ofport, 0)], data=data))


def _name(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace").rstrip("\x00")
    return str(raw)
