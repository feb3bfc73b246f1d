"""What the programmer knows of one connected switch."""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any

from ryu_sched.programmer.canonical import FlowKey
from ryu_sched.programmer.diff import Installed
from ryu_sched.programmer.roles import SwitchRole
from ryu_sched.programmer.send import Carried, Sent


@dataclasses.dataclass
class SwitchState:
    datapath: Any
    connected_at: float = dataclasses.field(default_factory=time.perf_counter)
    ports: dict[str, int] = dataclasses.field(default_factory=dict)
    #: the flow table as read back and changed since; None until it has been read
    installed: dict[FlowKey, Installed] | None = None
    #: compare every key of the desired table with ``installed`` at the next sync (a fresh
    #: read, an error); else only the keys whose desired flow changed since the last sync
    diff_all: bool = True
    #: the desired table (``desired.SwitchTable``) last brought in full to the switch; None
    #: until the first sync, and while an error leaves the switch behind
    in_sync_with: Any = None
    #: recompute every partition of the switch's desired table at the next sync (connected,
    #: its ports read again, its uplink or external port changed, a full model read)
    refresh_all: bool = True
    #: tap names whose ofport changed since the last sync
    taps_changed: set[str] = dataclasses.field(default_factory=set)
    port_buffer: dict[str, int] = dataclasses.field(default_factory=dict)
    #: flow-stats entries (their bytes) of the read in progress; complete (not yet diffed)
    #: when ``read_done``
    stats_buffer: list[bytes] = dataclasses.field(default_factory=list)
    read_done: bool = False
    synced: bool = False  # the first sync since this connection was logged
    #: the barrier after the first flow mods sent on this connection, until it is answered:
    #: its reply says the switch has its table in place (logged, with the time since connect)
    first_barrier: int | None = None
    #: the switch accepts ONF bundles (cleared when it rejects the bundle extension)
    bundles: bool = True
    #: the last bundle failed: send the next change as plain flow mods, to isolate the culprit
    plain_next: bool = False
    #: xid -> what it carried, until the barrier after it is answered
    inflight: dict[int, Sent] = dataclasses.field(default_factory=dict)
    #: bundles the switch rejected (their other errors are expected, not news)
    failed_bundles: set[int] = dataclasses.field(default_factory=set)
    _bundle_ids: Any = dataclasses.field(default_factory=lambda: itertools.count(1))
    #: our OpenFlow role on this connection (several controllers), asked and answered
    role: SwitchRole = dataclasses.field(default_factory=SwitchRole)

    @property
    def dpid(self) -> int:
        return int(self.datapath.id)

    @property
    def reading(self) -> tuple[str, int, float]:
        """Names this connection's flow-table read (e.g. as a holder of the GC pause)."""
        return ("read", self.dpid, self.connected_at)

    @property
    def ready(self) -> bool:
        """Ports and flow table read: the switch can be diffed."""
        return self.installed is not None or self.read_done

    def next_bundle_id(self) -> int:
        return int(next(self._bundle_ids)) & 0xFFFFFFFF

    def acknowledged(self, barrier_xid: int) -> None:
        """The switch answered the barrier ``barrier_xid``: everything before it is done."""
        for xid in [x for x in self.inflight if x <= barrier_xid]:
            del self.inflight[xid]

    def restart_read(self) -> None:
        """Forget the flow table: it is read again before the next diff."""
        self.installed = None
        self.diff_all = True
        self.in_sync_with = None
        self.stats_buffer = []
        self.read_done = False

    def bundle_xids(self, bundle_id: int) -> list[int]:
        return [xid for xid, sent in self.inflight.items() if sent.bundle_id == bundle_id
                and sent.carried is not Carried.BARRIER]
