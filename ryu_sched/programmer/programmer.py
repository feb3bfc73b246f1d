"""Keeps every connected switch at its desired flow table.

On connect the programmer reads the switch's port descriptions and its flow table (flow stats),
then sends only the difference between what ``flows.pipeline`` wants and what is installed:
as one atomic bundle (the ONF bundle extension; Open vSwitch implements it) when it is more
than one flow mod, then a barrier. A controller restart or a switch reconnect therefore changes
nothing that was right, and no switch ever runs a half-applied change. Model changes (events
on the bus) and port statuses wake one worker green thread, which coalesces them and re-diffs
the switches they concern, oldest first, yielding to the hub between switches and between
chunks of messages.

Work is proportional to the change, not to the cloud: an event updates the model in memory
from the rows it names (``engine.py``), a port status re-locates the ports whose taps changed,
only the switches the change concerns are visited, on each only the partitions of its
desired table it touches are recomputed (``desired.py``) and only their keys diffed. A full
read and a full recompute remain the reference: at start, on the 30 s safety-net round,
after errors, for the kinds of event the engine does not handle, and per switch when it
connects.

It also resolves each hosted router's upstream gateway MAC by ARP (packet-out on the external
port; the reply comes back as a packet-in) and announces a moved router's external and
floating IPs with gratuitous ARPs from its new switch.

Only the leader programs (``services.leadership``). With several controllers it claims the
MASTER role on every switch with ``generation_id`` = its lease epoch, and programs a switch
once the switch confirmed (``roles.py``); when elected it reads every switch's ports and
flows again (the previous leader changed them) and sends only the difference. The others
claim SLAVE and neither read nor write. On demotion it stops at once, even in the middle of
a sync (:class:`NotLeading`), and claims SLAVE. Alone on its database it leads from the
start and claims nothing.

Size: about 1,000 lines, the largest module: it is the programmer's event loop (switch
connect and table reads in turns, events absorbed, syncs, port statuses, OpenFlow roles,
ARP). The pure parts already live beside it (diff.py, canonical.py, desired.py, engine.py,
send.py, wire.py, snapshot.py, switch.py); the next split is port statuses and ARP.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from collections.abc import Iterable
from typing import Any

from ryu_sched import compat
from ryu_sched.events import Event, PortLocated
from ryu_sched.flows import model as fm
from ryu_sched.flows.context import SwitchView
from ryu_sched.leadership import FencedOut
from ryu_sched.programmer import diff, messages, packets
from ryu_sched.programmer.desired import Change, SwitchTable
from ryu_sched.programmer.engine import ModelState, Touched, affected_switches, difference
from ryu_sched.programmer.gcpause import GcPause
from ryu_sched.programmer.neighbors import NeighborTable
from ryu_sched.programmer.roles import Role
from ryu_sched.programmer.send import Carried, Sent, send_changes
from ryu_sched.programmer.snapshot import Model, Recorded, assemble, locations, read_model
from ryu_sched.programmer.switch import SwitchState
from ryu_sched.resources.port_status import PortLocation, PortStatus, record_port_locations
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import TAP_PREFIX

LOG = logging.getLogger(__name__)

ofp = compat.ofproto_v1_3

#: Ports implemented by the router's flows whose status follows the router's switch.
_ROUTER_PORTS = frozenset({fm.OWNER_ROUTER_INTERFACE, fm.OWNER_ROUTER_GATEWAY})

ARP_RETRY_SECONDS = 2.0
#: How long the worker waits after a wake-up for a burst of API writes to coalesce; not after
#: a switch's table was read (a switch connecting has nothing to wait for).
COALESCE_SECONDS = 0.02
#: The wake-up of a switch whose flow table has just been read.
_TABLE_READ = "table read"
RESYNC_SECONDS = 30.0
#: Delays before each round of gratuitous ARPs after a router appears on a switch.
GARP_REPEATS = (0.0, 0.5, 1.5)
#: Reads of the model in a row that changes may overtake before one is used anyway.
MODEL_READ_ATTEMPTS = 5
#: Flow-stats entries read into the installed table between two yields to the hub.
READ_CHUNK = 1000
#: Switches whose flow tables are read at the same time (others wait their turn).
MAX_CONCURRENT_READS = 4
READ_TIMEOUT_SECONDS = 30.0
#: The programmer yields to the hub once it has worked this long since its last yield (at
#: its yield points: between switches, between chunks). Each yield lets every green thread
#: that is ready run first: under a burst of API writes that is a step of every request in
#: flight, so yielding after each small incremental sync stretched one round over a few
#: switches to seconds (bench/burst.py).
YIELD_AFTER_SECONDS = 0.02
#: Errors that mean "this switch does not know the bundle extension".
NO_BUNDLES = {(ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_EXPERIMENTER),
              (ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_EXP_TYPE)}


@dataclasses.dataclass
class SyncStats:
    """Counters for logs and benchmarks."""

    syncs: int = 0
    flow_mods: int = 0
    role_requests: int = 0
    roles_refused: int = 0
    syncs_abandoned: int = 0
    bundles: int = 0
    model_reads: int = 0
    desired_computed: int = 0
    last_sync_seconds: float = 0.0
    last_desired: int = 0


def _yield() -> None:
    compat.hub.sleep(0)


class NotLeading(Exception):
    """Raised between two steps of a sync when this controller stopped leading."""


class Programmer:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.leadership = services.leadership
        # Several controllers: claim OpenFlow roles (alone on the database: none).
        self.claims_roles = bool(self.leadership.contended)
        self.switches: dict[int, SwitchState] = {}
        self.neighbors = NeighborTable(services.db)
        self.stats = SyncStats()
        #: dirty switches in the order they became dirty (dict: ordered, no duplicates)
        self._dirty: dict[int, None] = {}
        # A queue, not an Event: wake-ups must never be lost, whoever sends them.
        self._wake: Any = compat.hub.Queue()
        self._running = False
        self._threads: list[Any] = []
        self._router_hosts: dict[str, int | None] = {}
        self._arp_asked: set[tuple[int, str]] = set()
        self._last_snapshot: fm.Snapshot | None = None
        # The model in memory, kept current by the events (engine.py); None: read it all
        # again before the next round.
        self._model: ModelState | None = None
        # Counts model_changed(): a read of the model that a change overtook (reading
        # yields to the hub on PostgreSQL, and the change's event may arrive meanwhile)
        # is read again, instead of being kept as current.
        self._model_changes = 0
        #: model events not applied to the model yet (the worker applies them)
        self._events: list[Event] = []
        #: the model in memory before a full read, which is compared with it
        self._previous: ModelState | None = None
        #: port locations as of the last round, the switches they were found on, and the
        #: ports whose recorded location changed since
        self._locations: dict[str, int] = {}
        self._located_on: frozenset[int] = frozenset()
        self._recorded_since: set[str] = set()
        #: the last round must look at every port's status (None) or these
        self._status_candidates: set[str] | None = None
        #: what changed for each switch since its last sync
        self._changes: dict[int, Change] = {}
        #: port id -> (the switch whose flows it waits for, the status to record then)
        self._waiting: dict[str, tuple[int, PortLocation]] = {}
        #: per dpid, survives reconnects of the switch
        self._tables: dict[int, SwitchTable] = {}
        #: dpid -> (its ports, the flows layer's description of the switch with them)
        self._described_as: dict[int, tuple[dict[str, int], fm.Switch]] = {}
        self.pause = _yield  # tests that drive the programmer without a hub replace it
        #: when the programmer last yielded to the hub (see ``YIELD_AFTER_SECONDS``)
        self._worked_since = 0.0
        #: flow-table reads in progress, and switches waiting for their turn (oldest first)
        self._reads: dict[tuple[str, int, float], float] = {}  # -> when it was requested
        self._read_queue: dict[tuple[str, int, float], SwitchState] = {}
        self.gc = GcPause()
        #: switches fenced by the gateway-health monitor: no ROUTER_ACTIVE flow goes there
        #: until it is lifted (the gateway healthy again), even while the registry has not
        #: moved the routers yet
        self.fenced: set[int] = set()

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self.neighbors.load()
        # Read before the first switch connects: after a restart, its resync needs the model.
        self._current_model()
        # The framework, the ORM and the model are a large, long-lived object graph: without
        # this, the full garbage collections that reading a big flow table triggers re-scan
        # all of it (they doubled the cost of parsing flow stats).
        gc.collect()
        gc.freeze()
        self.services.bus.subscribe(self._on_model_event)
        self.leadership.watch(on_elected=self._elected, on_demoted=self._demoted,
                              on_term=self._term_seen)
        self._running = True
        self._threads = [compat.hub.spawn(self._worker), compat.hub.spawn(self._arp_loop)]

    def stop(self) -> None:
        self.gc.expire(0)
        self._running = False
        self._wake.put(None)
        for thread in self._threads:
            compat.hub.kill(thread)
        self._threads = []

    # --- framework events (called by the app shim) ------------------------------------

    def switch_connected(self, datapath: Any) -> None:
        state = SwitchState(datapath=datapath)
        self.switches[int(datapath.id)] = state
        if not self.claims_roles:
            LOG.info("switch %016x connected; reading its ports and flows", datapath.id)
            datapath.send_msg(messages.port_desc_request(datapath))
        elif self.leadership.is_leader and self.leadership.epoch is not None:
            LOG.info("switch %016x connected; claiming MASTER (generation %d), reading its "
                     "ports and flows", datapath.id, self.leadership.epoch)
            self._claim_master(state, self.leadership.epoch)
        else:
            LOG.info("switch %016x connected; claiming SLAVE", datapath.id)
            self._claim_slave(state, self.leadership.known_epoch)

    # --- OpenFlow roles (several controllers) -----------------------------------------

    @property
    def leading(self) -> bool:
        return bool(self.leadership.is_leader)

    def may_program(self, state: SwitchState) -> bool:
        """Leading, and (several controllers) confirmed MASTER at our epoch."""
        if not self.leadership.is_leader:
            return False
        return not self.claims_roles or state.role.is_master(self.leadership.epoch)

    def summary(self) -> dict[str, int]:
        """Counters for the API's stats: switches connected, those this controller may
        program (confirmed MASTER; alone on its database: all), flow mods sent, role
        requests made and refused, syncs abandoned on losing the lead."""
        return {"switches": len(self.switches),
                "programmed_switches": sum(1 for s in list(self.switches.values())
                                           if self.may_program(s)),
                "flow_mods": self.stats.flow_mods, "role_requests": self.stats.role_requests,
                "roles_refused": self.stats.roles_refused,
                "syncs_abandoned": self.stats.syncs_abandoned}

    def _request_role(self, state: SwitchState, role: Role, generation: int) -> None:
        msg = messages.role_request(state.datapath, role.wire, generation)
        state.datapath.send_msg(msg)
        state.role.asked(role, generation, getattr(msg, "xid", None))
        self.stats.role_requests += 1

    def _claim_master(self, state: SwitchState, epoch: int) -> None:
        """MASTER, then read the switch again: the requests are handled in order, so the
        table read is the one no other controller can change any more."""
        self._request_role(state, Role.MASTER, epoch)
        self._read_finished(state)         # (a read in progress gives up its turn)
        state.restart_read()
        state.inflight.clear()
        state.port_buffer = {}
        state.datapath.send_msg(messages.port_desc_request(state.datapath))

    def _claim_slave(self, state: SwitchState, generation: int) -> None:
        self._request_role(state, Role.SLAVE, generation)

    def _elected(self, epoch: int) -> None:
        """Leader from now on (the elector's green thread): claim every switch."""
        if self.claims_roles:
            LOG.info("leading at epoch %d: claiming MASTER on %d switches", epoch,
                     len(self.switches))
            for state in list(self.switches.values()):
                self._claim_master(state, epoch)
        self.model_changed()      # the model as followers saw it may be behind

    def _demoted(self) -> None:
        """No longer the leader: stop at once (a sync in progress stops at its next step)
        and claim SLAVE everywhere."""
        self._dirty.clear()
        if not self.claims_roles:
            return
        LOG.warning("no longer leading: programming stopped, claiming SLAVE on %d switches",
                    len(self.switches))
        for state in list(self.switches.values()):
            self._claim_slave(state, self.leadership.known_epoch)

    def _term_seen(self, epoch: int) -> None:
        """A newer term exists: a follower's SLAVE requests may have been refused as stale
        (or carry an older generation): ask again with it."""
        if not self.claims_roles or self.leadership.is_leader:
            return
        for state in list(self.switches.values()):
            if not state.role.is_slave_at_least(epoch):
                self._claim_slave(state, epoch)

    def role_reply(self, datapath: Any, role: int, generation_id: int, xid: int) -> None:
        state = self._state(datapath)
        if state is None:
            return
        granted = Role.of_wire(role)
        if not state.role.answered(granted, xid):
            return
        if granted is Role.MASTER:
            LOG.info("switch %016x: MASTER at generation %d", state.dpid, generation_id)
            if self.may_program(state):
                self.mark_all_dirty(first=state.dpid)
        else:
            LOG.info("switch %016x: %s at generation %d", state.dpid, granted.value,
                     generation_id)

    def _role_refused(self, state: SwitchState, msg: Any) -> None:
        self.stats.roles_refused += 1
        state.role.refuse()
        stale = msg.code == compat.ROLE_STALE
        LOG.warning("switch %016x refused %s at generation %d (%s)", state.dpid,
                    state.role.wanted.value, state.role.generation,
                    "a newer generation exists: another controller leads" if stale
                    else f"code {msg.code}")

    def switch_disconnected(self, datapath: Any) -> None:
        state = self.switches.get(int(datapath.id or 0))
        if state is not None and state.datapath is datapath:
            LOG.info("switch %016x disconnected", datapath.id)
            self._read_finished(state)
            del self.switches[int(datapath.id)]
            self._dirty.pop(state.dpid, None)
            self._changes.pop(state.dpid, None)
            self._status_candidates = None   # its routers' ports, its ports' locations
            self._wake.put(None)

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
        state.refresh_all = True
        self._request_read(state)

    def flow_stats_reply(self, datapath: Any, body: Iterable[Any], more: bool) -> None:
        state = self._state(datapath)
        if state is None or state.read_done:
            return
        state.stats_buffer.extend(entry.data for entry in body)  # compat.RawFlowStats
        if more:
            return
        # Read into the installed table by the worker (in chunks), not here in the
        # connection's receive loop.
        state.read_done = True
        self._read_finished(state)
        LOG.info("switch %016x has %d flows installed (read %.3fs after connect)", state.dpid,
                 len(state.stats_buffer), time.perf_counter() - state.connected_at)
        # a new switch changes where ports live (the next round finds out which, and the
        # switches they concern), and the statuses of its routers' ports
        self._status_candidates = None
        self.mark_dirty(state.dpid)
        self._wake.put(_TABLE_READ)

    def port_status(self, datapath: Any, reason: int, port: Any) -> None:
        state = self._state(datapath)
        if state is None or port.port_no >= ofp.OFPP_MAX:
            return
        name = _name(port.name)
        before = state.ports.get(name)
        if reason == ofp.OFPPR_DELETE:
            state.ports.pop(name, None)
        else:
            state.ports[name] = int(port.port_no)
        if state.ports.get(name) == before:
            return
        if name.startswith(TAP_PREFIX):
            # a tap: the next round finds the ports whose location this changes, and the
            # switches they concern
            state.taps_changed.add(name)
        else:
            state.refresh_all = True   # an uplink or the external port: all of this switch
        self.mark_dirty(state.dpid)

    def packet_in(self, datapath: Any, data: bytes) -> None:
        if not self.leading:
            return        # (a slave gets none; an EQUAL connection would)
        parsed = packets.parse_arp(data)
        self.services.metrics.packet_in("other" if parsed is None else "arp")
        if parsed is None:
            return
        opcode, src_mac, src_ip, _dst_mac, _dst_ip = parsed
        if opcode != 2 or src_ip not in self._wanted_upstreams():
            return
        if self.neighbors.learn(src_ip, src_mac):
            LOG.info("upstream gateway %s is at %s", src_ip, src_mac)
            self.model_changed()

    def barrier_reply(self, datapath: Any, xid: int) -> None:
        state = self._state(datapath)
        if state is not None:
            state.acknowledged(xid)
            if state.first_barrier is not None and xid == state.first_barrier:
                state.first_barrier = None
                LOG.info("switch %016x: its table is in place (barrier answered) %.3fs after "
                         "connect", state.dpid, time.perf_counter() - state.connected_at)
            if not state.inflight and any(dpid == state.dpid
                                          for dpid, _ in self._waiting.values()):
                self._wake.put(None)   # ports waiting for these flows can be ACTIVE now

    def error(self, datapath: Any, msg: Any) -> None:
        """An error from the switch. For a flow mod (plain or added to a bundle: Open vSwitch
        checks a message when it is added, leaves a rejected one out and commits the rest)
        that flow is not installed and a later sync tries again. For a bundle's open or
        commit, nothing of the bundle was applied: the flow table is read again and the next
        change goes out as plain flow mods, so that a culprit fails alone."""
        state = self._state(datapath)
        if state is not None and msg.type == compat.ROLE_REQUEST_FAILED:
            if msg.xid == state.role.xid:      # (not an older request's)
                self._role_refused(state, msg)
            return
        sent = state.inflight.get(msg.xid) if state is not None else None
        if state is None or sent is None:
            LOG.error("switch %016x reported error type=%s code=%s (xid %s)", datapath.id,
                      msg.type, msg.code, msg.xid)
            return
        what = _describe(sent)
        if sent.bundle_id is not None and sent.bundle_id in state.failed_bundles:
            LOG.info("switch %016x: %s also failed (type=%s code=%s)", state.dpid, what,
                     msg.type, msg.code)
            return
        if sent.carried in (Carried.BUNDLE_OPEN, Carried.BUNDLE_COMMIT):
            assert sent.bundle_id is not None
            state.failed_bundles.add(sent.bundle_id)
            if sent.carried is Carried.BUNDLE_OPEN and (msg.type, msg.code) in NO_BUNDLES:
                LOG.warning("switch %016x does not support bundles: plain flow mods from now "
                            "on (changes are no longer atomic)", state.dpid)
                state.bundles = False
            else:
                LOG.error("switch %016x rejected %s, nothing of it applied (type=%s code=%s); "
                          "reading its flows again", state.dpid, what, msg.type, msg.code)
                state.plain_next = True
            self._read_again(state)
            return
        LOG.error("switch %016x rejected %s (type=%s code=%s)", state.dpid, what, msg.type,
                  msg.code)
        if sent.mod is not None and state.installed is not None:
            if isinstance(sent.mod, diff.DeleteFlow):  # still there: delete it next time
                state.installed[sent.mod.key] = diff.Installed(-1, (), sent.mod.match)
            else:  # not installed after all: a later sync tries again
                state.installed.pop(sent.mod.key, None)
            state.diff_all = True
            state.in_sync_with = None
            self.mark_dirty(state.dpid)

    # --- scheduling of work ------------------------------------------------------------

    def _on_model_event(self, event: Event) -> None:
        """A change of the model: the worker applies it to the model in memory (reading the
        rows it names) and syncs the switches it concerns."""
        if isinstance(event, PortLocated):
            return  # written by this programmer from what the switches told it
        self._events.append(event)
        self._model_changes += 1
        if self._wake.qsize() == 0:
            self._wake.put(None)

    def model_changed(self) -> None:
        """Read the whole model again before the next round (at start, on the safety-net
        round, after an error, for what events do not say), recompute what differs from the
        model in memory, and compare every switch's whole table with its desired one."""
        if self._model is not None:
            self._previous = self._model
        self._model = None
        self._model_changes += 1
        for state in list(self.switches.values()):
            state.diff_all = True
        self.mark_all_dirty()

    def mark_dirty(self, dpid: int) -> None:
        """``dpid`` needs a look at the next round."""
        if dpid in self.switches:
            self._dirty.setdefault(dpid, None)
        if self._wake.qsize() == 0:
            self._wake.put(None)

    def mark_all_dirty(self, first: int | None = None) -> None:
        """Every switch needs a look (cheap for those whose inputs did not change);
        ``first``, when not queued yet, is queued before the others."""
        if first is not None and first in self.switches:
            self._dirty.setdefault(first, None)
        for dpid in self.switches:
            self._dirty.setdefault(dpid, None)
        if self._wake.qsize() == 0:
            self._wake.put(None)

    def _state(self, datapath: Any) -> SwitchState | None:
        state = self.switches.get(int(datapath.id))
        return state if state is not None and state.datapath is datapath else None

    def _read_again(self, state: SwitchState) -> None:
        state.restart_read()
        state.inflight.clear()
        # what was sent is in doubt: ports waiting for it wait for the next sync instead
        self._waiting = {p: w for p, w in self._waiting.items() if w[0] != state.dpid}
        self._request_read(state)

    def _request_read(self, state: SwitchState) -> None:
        """Read the switch's flow table when a slot is free. The framework parses a whole
        flow-stats reply in one go without yielding: with many switches reading at once, the
        API and everything else would wait for all of them."""
        if state.reading in self._reads:
            return
        self._read_queue[state.reading] = state
        self._admit_reads()

    def _admit_reads(self) -> None:
        while self._read_queue and len(self._reads) < MAX_CONCURRENT_READS:
            key, state = next(iter(self._read_queue.items()))
            del self._read_queue[key]
            if self.switches.get(state.dpid) is not state:
                continue  # gone meanwhile
            self._reads[key] = time.monotonic()
            self.gc.hold(key)
            state.datapath.send_msg(messages.flow_stats_request(state.datapath))

    def _read_finished(self, state: SwitchState) -> None:
        self._read_queue.pop(state.reading, None)
        if self._reads.pop(state.reading, None) is not None:
            self.gc.release(state.reading)
        self._admit_reads()

    def _expire_reads(self) -> None:
        """A switch that does not answer its flow-stats request in time gives up its slot
        (it is asked again after the switches waiting)."""
        now = time.monotonic()
        for key, since in list(self._reads.items()):
            state = self.switches.get(key[1])
            if now - since < READ_TIMEOUT_SECONDS:
                continue
            del self._reads[key]
            self.gc.release(key)
            if state is not None and state.reading == key and not state.read_done:
                LOG.warning("switch %016x did not send its flow table in %.0fs; asking again",
                            state.dpid, READ_TIMEOUT_SECONDS)
                state.stats_buffer = []
                self._read_queue[key] = state
        self._admit_reads()

    def _worker(self) -> None:
        while self._running:
            woke = None
            try:
                woke = self._wake.get(timeout=RESYNC_SECONDS)
            except compat.hub.QueueEmpty:
                # periodic safety net: read the model again and re-diff everything
                self.model_changed()
            if not self._running:
                return
            self._expire_reads()
            self.gc.expire()
            queued = [self._wake.get() for _ in range(self._wake.qsize())]
            if _TABLE_READ not in (woke, *queued):
                compat.hub.sleep(COALESCE_SECONDS)  # let a burst of API writes coalesce
            self._worked_since = time.perf_counter()
            while self._wake.qsize():
                self._wake.get()
            try:
                self.record_acknowledged()
                self.sync_dirty()
            except Exception:
                LOG.exception("flow sync failed; retrying on the next change")
                compat.hub.sleep(1.0)
                # the desired tables may be half updated: computed again, in full
                self._tables.clear()
                for state in list(self.switches.values()):
                    state.diff_all = state.refresh_all = True
                self.model_changed()
                self._previous = None     # and everything recomputed

    def sync_dirty(self) -> None:
        """One round: apply the model events received, find the switches they (and port
        moves) concern, re-diff the switches dirty now, oldest first. Switches that become
        dirty meanwhile wait for the next round."""
        if not self.leading:
            self._dirty.clear()
            # not kept current while following: a new leader reads it all
            self._events.clear()
            self._model = self._previous = None
            return
        try:
            with self.gc.held("sync"):
                self._absorb()
                dirty = [d for d in self._dirty if d in self.switches
                         and self.switches[d].ready and self.may_program(self.switches[d])]
                for dpid in dirty:
                    del self._dirty[dpid]
                if not dirty:
                    return
                snapshot = self.snapshot()
                self._last_snapshot = snapshot
                model = self._model
                candidates, self._status_candidates = self._status_candidates, set()
                for dpid in dirty:
                    state = self.switches.get(dpid)
                    if state is not None and state.ready and self.may_program(state):
                        self.sync_switch(state, snapshot)
                        self._pause()
                # Port statuses once the flows are out (looking at every port after a switch
                # connected is not what its flows should wait for), as of the model the flows
                # came from; a full read meanwhile: the next round looks at every port.
                if self._model is model:
                    self._record_port_statuses(self._port_changes(snapshot, candidates),
                                               candidates)
                else:
                    self._status_candidates = None
                self._announce_moves(snapshot)
        except NotLeading:
            self.stats.syncs_abandoned += 1
            LOG.warning("sync abandoned: this controller no longer leads")
            for state in list(self.switches.values()):
                state.diff_all = True

    def _absorb(self) -> None:
        """Bring the model up to date (the events' rows, or a full read), compare the port
        locations with the last round's, and mark dirty the switches that concern, each with
        what changed for it."""
        touched = Touched()
        events, self._events = self._events, []
        if self._model is not None and events:
            with self.services.db.session() as session:
                for event in events:
                    result = self._model.apply(session, event, self.neighbors.macs)
                    if result is None:        # a kind of change read in full
                        LOG.debug("%s: reading the whole model", type(event).__name__)
                        self._previous, self._model = self._model, None
                        break
                    touched.merge(result)
        if self._model is None:
            self._current_model()
            self._status_candidates = None
            previous, self._previous = self._previous, None
            if previous is None:
                touched.everything = True
            else:       # what the full read found different
                touched.merge(difference(previous, self._model))
            if touched.everything:
                for state in self.switches.values():
                    state.refresh_all = True
                self._dirty.update((d, None) for d in self.switches)
        assert self._model is not None
        tap_to_port = self._model.tap_to_port
        retapped = {tap_to_port[name] for s in self.switches.values()
                    for name in s.taps_changed if name in tap_to_port}
        for state in self.switches.values():
            state.taps_changed.clear()
        before, moved = self._relocate(touched, retapped)
        if touched.everything or not (touched or moved or retapped):
            return
        after = self._locations
        touched.ports |= moved | retapped
        if self._status_candidates is not None:
            # ports whose status may change: the touched ones, the touched routers' ports
            self._status_candidates |= touched.ports
            for router_id in touched.routers:
                router = self._model.routers.get(router_id)
                if router is not None:
                    self._status_candidates.update(i.port_id for i in router.interfaces)
                    if router.gateway is not None:
                        self._status_candidates.add(router.gateway.port_id)
        concerned = affected_switches(self._model, touched, [before, after], self.switches)
        concerned |= {before[p] for p in moved if p in before}
        concerned |= {self._locations_of(p, before, after) for p in retapped} - {None}
        change = Change(ports=set(touched.ports), networks=set(touched.networks),
                        routers=set(touched.routers), groups=set(touched.groups))
        for dpid in concerned:
            if dpid not in self.switches:
                continue
            mine = self._changes.setdefault(dpid, Change())
            mine.ports |= change.ports
            mine.networks |= change.networks
            mine.routers |= change.routers
            mine.groups |= change.groups
            self._dirty.setdefault(dpid, None)

    def _relocate(self, touched: Touched, retapped: set[str],
                  ) -> tuple[dict[str, int], set[str]]:
        """Update the port locations: in full after a full read or when the switches read
        changed, else for the ports that may have moved. Returns where the moved ports
        were (those that were somewhere) and the ports that moved."""
        assert self._model is not None
        ready = {dpid: s.ports for dpid, s in self.switches.items() if s.ready}
        if touched.everything or frozenset(ready) != self._located_on:
            self._located_on = frozenset(ready)
            previous, self._locations = self._locations, locations(self._model.model(), ready)
            moved = {p for p in previous.keys() | self._locations.keys()
                     if previous.get(p) != self._locations.get(p)}
            return {p: previous[p] for p in moved if p in previous}, moved
        candidates = touched.ports | retapped | self._recorded_since
        self._recorded_since = set()
        before: dict[str, int] = {}
        moved = set()
        for port_id in candidates:
            now = self._locate(port_id, ready)
            was = self._locations.get(port_id)
            if now == was:
                continue
            moved.add(port_id)
            if was is not None:
                before[port_id] = was
            if now is None:
                del self._locations[port_id]
            else:
                self._locations[port_id] = now
        return before, moved

    def _locate(self, port_id: str, ready: dict[int, dict[str, int]]) -> int | None:
        """Where one port is, as :func:`snapshot.locations` decides it."""
        assert self._model is not None
        if port_id not in self._model.ports:
            return None
        tap = fm.tap_name(port_id)
        if self._model.tap_to_port.get(tap) == port_id:
            seen = [dpid for dpid, names in ready.items() if tap in names]
            if seen:
                return max(seen)
        recorded = self._model.recorded.get(port_id)
        if recorded is not None and recorded.dpid is not None and recorded.dpid not in ready:
            return recorded.dpid
        return None

    @staticmethod
    def _locations_of(port_id: str, *where: dict[str, int]) -> int | None:
        for locations_ in where:
            if port_id in locations_:
                return locations_[port_id]
        return None

    def _pause(self) -> None:
        """Yield to the hub when the work since the last yield took ``YIELD_AFTER_SECONDS``;
        then stop the sync if we stopped leading meanwhile."""
        now = time.perf_counter()
        if now - self._worked_since >= YIELD_AFTER_SECONDS:
            self.pause()
            self._worked_since = time.perf_counter()
        if not self.leading:
            raise NotLeading

    def _current_model(self) -> Model:
        """The model, read in full when there is none."""
        attempts = 0
        while self._model is None:
            changes = self._model_changes
            pending = len(self._events)
            with self.services.db.session() as session:
                model = read_model(session, self.neighbors.macs)
            attempts += 1
            if self._model_changes != changes:
                if attempts < MODEL_READ_ATTEMPTS:
                    continue              # a change came in while we read: read again
                # changes keep coming: use this read, and read again for the next round
                compat.hub.spawn(self.model_changed)
            # events received before the read are in it; those received during it are
            # applied to it (applying an event reads its rows again: no harm if they are)
            del self._events[:pending]
            self._model = ModelState(model)
            self.stats.model_reads += 1
            self.pause()
        return self._model.model()

    def snapshot(self) -> fm.Snapshot:
        """The snapshot of the current model with the switches read so far."""
        model = self._current_model()
        ready = {dpid: s for dpid, s in self.switches.items() if s.ready}
        if frozenset(ready) != self._located_on or any(
                s.taps_changed for s in self.switches.values()):
            return assemble(model, {dpid: dict(s.ports) for dpid, s in ready.items()},
                            self.services.settings.bridge_mappings)
        # the locations the last round found (not copied: they change only between rounds),
        # and each switch as described for the last snapshot unless its ports changed
        return fm.Snapshot(
            networks=model.networks, subnets=model.subnets, ports=model.ports,
            routers=model.routers, floating_ips=model.floating_ips,
            security_groups=model.security_groups,
            switches=tuple(self._described(ready[dpid], model) for dpid in sorted(ready)),
            port_locations=fm.FrozenMap.over(self._locations))

    def _described(self, state: SwitchState, model: Model) -> fm.Switch:
        """The switch as the flows layer sees it (reused while its ports stay the same)."""
        external = model.external_ports.get(state.dpid)
        known = self._described_as.get(state.dpid)
        if known is not None and known[0] == state.ports and known[1].external_port == external:
            return known[1]
        switch = fm.Switch(dpid=state.dpid, ports=dict(state.ports),
                           uplinks=dict(self.services.settings.bridge_mappings),
                           external_port=external)
        self._described_as[state.dpid] = (dict(state.ports), switch)
        return switch

    def desired_table(self, dpid: int, snapshot: fm.Snapshot) -> SwitchTable:
        """The desired flows of ``dpid`` for ``snapshot`` (taken by :meth:`snapshot`),
        every partition recomputed: the reference."""
        table = self._tables.setdefault(dpid, SwitchTable())
        table.refresh(self._view(snapshot, dpid), None)
        return table

    def _view(self, snapshot: fm.Snapshot, dpid: int) -> SwitchView:
        """The switch's view; a fenced switch sees the routers active on it as on standby
        there (its table then has no ROUTER_ACTIVE flow: a fenced active is a standby)."""
        if dpid in self.fenced:
            snapshot = fenced_snapshot(snapshot, dpid)
        return SwitchView(snapshot, dpid)

    def set_fenced(self, dpid: int, fenced: bool) -> None:
        """Fence ``dpid`` (no sync gives it a ROUTER_ACTIVE flow) or lift its fence; its
        table is then recomputed and diffed in full."""
        if (dpid in self.fenced) == fenced:
            return
        if fenced:
            self.fenced.add(dpid)
        else:
            self.fenced.discard(dpid)
        state = self.switches.get(dpid)
        if state is not None:
            state.refresh_all = state.diff_all = True
            state.in_sync_with = None
        self.mark_dirty(dpid)

    def sync_switch(self, state: SwitchState, snapshot: fm.Snapshot) -> int:
        """Bring one switch to its desired table; returns the flow mods sent. Only the
        partitions of its desired table that changed are recomputed, and only their keys
        compared with the installed table, unless the switch needs it all."""
        started = time.perf_counter()
        if state.installed is None:
            state.installed = self._read_installed(state)
        read = time.perf_counter()
        change = self._changes.pop(state.dpid, None) or Change()
        table = self._tables.get(state.dpid)
        if table is None:
            table = self._tables[state.dpid] = SwitchTable()
            state.refresh_all = True
        if table.refresh(self._view(snapshot, state.dpid),
                         None if state.refresh_all else change):
            self.stats.desired_computed += 1
        state.refresh_all = False
        self._pause()
        computed = time.perf_counter()
        keys = table.take_changed()
        if state.diff_all:
            changes = diff.diff(state.installed, table.wanted)
        elif keys:
            changes = diff.diff_keys(state.installed, table.wanted, keys)
        else:
            state.in_sync_with = table
            return 0
        diffed = time.perf_counter()
        sent, bundles = self._send(state, changes)
        LOG.debug("switch %016x: table read %.3fs, flows computed %.3fs, diff %.3fs, "
                  "sent %.3fs", state.dpid,
                  read - started, computed - read, diffed - computed,
                  time.perf_counter() - diffed)
        changes.apply_to(state.installed)
        state.diff_all = False
        state.in_sync_with = table
        self.stats.syncs += 1
        self.stats.last_desired = len(table)
        self.stats.last_sync_seconds = time.perf_counter() - started
        self.services.metrics.synced_switch(self.stats.last_sync_seconds)
        first, state.synced = not state.synced, True
        since = time.perf_counter() - state.connected_at
        if sent:
            LOG.info("switch %016x: %d flow-mods%s (%d desired) in %.3fs, %.3fs after connect",
                     state.dpid, sent, f" in {bundles} bundle(s)" if bundles else "",
                     len(table), self.stats.last_sync_seconds, since)
        elif first:
            LOG.info("switch %016x: in sync, nothing sent (%d desired) in %.3fs, "
                     "%.3fs after connect", state.dpid, len(table),
                     self.stats.last_sync_seconds, since)
        return sent

    def _read_installed(self, state: SwitchState) -> dict:
        """The installed table from the flow-stats entries read, in chunks."""
        entries, state.stats_buffer = state.stats_buffer, []
        installed: dict = {}
        for start in range(0, len(entries), READ_CHUNK):
            installed.update(diff.installed_of(entries[start:start + READ_CHUNK]))
            if start + READ_CHUNK < len(entries):
                self._pause()
        if len(installed) < len(entries):
            LOG.warning("switch %016x: %d of its %d flow-stats entries could not be decoded "
                        "(or repeat a flow)", state.dpid, len(entries) - len(installed),
                        len(entries))
        return installed

    def _send(self, state: SwitchState, changes: diff.FlowChanges) -> tuple[int, int]:
        """Send ``changes``: (flow mods, bundles) sent."""
        if not len(changes):
            return 0, 0
        bundled = state.bundles and not state.plain_next
        state.plain_next = False
        sent = send_changes(state.datapath, changes,
                            state.next_bundle_id if bundled else None, self._pause)
        state.inflight.update(sent)  # until the barrier reply after them
        if not state.synced:  # the first flow mods of this connection: log when in place
            state.first_barrier = next(
                (xid for xid, s in sent.items() if s.carried is Carried.BARRIER), None)
        bundles = sum(1 for s in sent.values() if s.carried is Carried.BUNDLE_COMMIT)
        self.stats.flow_mods += len(changes)
        self.stats.bundles += bundles
        self.services.metrics.sent_flow_mods(state.dpid, len(changes))
        return len(changes), bundles

    # --- port locations -----------------------------------------------------------------

    def _port_changes(self, snapshot: fm.Snapshot, candidates: set[str] | None = None,
                      ) -> list[tuple[PortLocation, int | None]]:
        """Each port whose location or status differs from what the database has, with the
        switch whose flows must be acknowledged before it is recorded (None: at once).

        - A port with a tap (a VM's, a DHCP port): where its tap is seen (or was last seen,
          on a switch not connected now); ACTIVE when it is up and there, once that switch
          has its flows; DOWN otherwise. A DHCP port never seen on any switch is left to its
          agent's report (``update_dhcp_port``).
        - A router interface or gateway port: ACTIVE once the switch of the router's L3 agent
          has the router's flows, DOWN while the router is hosted nowhere (or is down); kept
          as it is while that switch is not connected.
        - A floating IP port: no status of its own.

        ``candidates``: only these ports can have changed (None: any)."""
        assert self._model is not None
        state = self._model
        hosts = {r.id: r.host_dpid for r in snapshot.routers}
        changes: list[tuple[PortLocation, int | None]] = []
        ports: Iterable[fm.Port] = snapshot.ports if candidates is None else [
            state.ports[p] for p in candidates if p in state.ports]
        for port in ports:
            recorded = state.recorded.get(port.id)
            wait: int | None = None
            if port.device_owner in _ROUTER_PORTS:
                host = hosts.get(port.device_id)
                if host is None:
                    want = PortLocation(port.id, None, PortStatus.DOWN)
                elif host in self.switches and self.switches[host].ready:
                    want, wait = PortLocation(port.id, None, PortStatus.ACTIVE), host
                else:
                    continue
            elif port.router_owned:
                continue
            else:
                dpid = snapshot.port_locations.get(port.id)
                if dpid is None and port.device_owner == fm.OWNER_DHCP and (
                        recorded is None or recorded.dpid is None):
                    continue
                want = PortLocation(port.id, dpid, PortStatus.of(dpid, port.admin_state_up))
                if want.status is PortStatus.ACTIVE and dpid in self.switches:
                    wait = dpid
            if recorded is None or (recorded.dpid, recorded.status) != (want.dpid, want.status):
                changes.append((want, wait))
        return changes

    def _record_port_statuses(self, changes: list[tuple[PortLocation, int | None]],
                              candidates: set[str] | None = None) -> None:
        """Record what waits for nothing now; the rest once its switch has acknowledged its
        flows (:meth:`record_acknowledged`). Recomputed every round for the ``candidates``
        (None: every port): what waits from an earlier round and is no longer a change is
        dropped."""
        waiting = {c.port_id: (wait, c) for c, wait in changes if wait is not None}
        if candidates is None:
            self._waiting = waiting
        else:
            for port_id in candidates:
                self._waiting.pop(port_id, None)
            self._waiting.update(waiting)
        self._record([c for c, wait in changes if wait is None])
        self.record_acknowledged()

    def record_acknowledged(self) -> None:
        """Record the statuses whose switch has acknowledged every flow sent to it."""
        done: list[PortLocation] = []
        for port_id, (dpid, change) in list(self._waiting.items()):
            state = self.switches.get(dpid)
            if state is None or not state.ready:
                del self._waiting[port_id]   # gone: the next round decides again
            elif not state.inflight:
                del self._waiting[port_id]
                done.append(change)
        self._record(done)

    def _record(self, changes: list[PortLocation]) -> None:
        """Write ``changes`` through the service layer (one PortLocated event each), as the
        leader: through its fence."""
        if not changes or not self.leading:
            return
        try:
            record_port_locations(self.services, changes)
        except FencedOut as exc:
            LOG.warning("port statuses not recorded, no longer the leader: %s", exc)
            return
        # a model read later has these; the one in hand is told directly
        if self._model is not None:
            self._model.record({c.port_id: Recorded(c.dpid, str(c.status)) for c in changes})
            self._recorded_since.update(c.port_id for c in changes)

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
        if snapshot is None or not self.leading:
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
        if self.may_program(state):
            state.datapath.send_msg(messages.packet_out(state.datapath, ofport, data))


def fenced_snapshot(snapshot: fm.Snapshot, dpid: int) -> fm.Snapshot:
    """``snapshot`` with every router active on ``dpid`` on standby there instead."""
    routers = tuple(
        dataclasses.replace(r, host_dpid=None, standby_dpids=tuple(sorted({*r.standby_dpids,
                                                                          dpid})))
        if r.host_dpid == dpid else r for r in snapshot.routers)
    return dataclasses.replace(snapshot, routers=routers)


def _describe(sent: Sent) -> str:
    """One line about what an xid carried, for the log."""
    where = f"bundle {sent.bundle_id} " if sent.bundle_id is not None else ""
    if isinstance(sent.mod, diff.AddFlow):
        return f"{where}{sent.carried.value}: add {sent.mod.spec.to_ofctl()}"
    if isinstance(sent.mod, diff.DeleteFlow):
        return (f"{where}{sent.carried.value}: delete table={sent.mod.table} "
                f"priority={sent.mod.priority} {sent.mod.match}")
    return f"{where}{sent.carried.value}"


def _name(raw: bytes | str) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace").rstrip("\x00")
    return str(raw)
