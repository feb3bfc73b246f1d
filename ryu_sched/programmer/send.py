"""The thin sending step: flow changes onto a datapath, as one atomic bundle when there is
more than one, followed by a barrier. Returns what each xid carried, so that an error the
switch reports can be traced to the flow (or bundle) it concerns.

Flow adds and deletes are encoded by :mod:`ryu_sched.programmer.wire` (the framework's
serialiser, byte for byte, at a fifth of the cost); the rest by the framework. Everything
takes its xid from the datapath's own counter and goes out through ``Datapath.send`` in
chunks.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

from ryu_sched.programmer import messages, wire
from ryu_sched.programmer.diff import AddFlow, DeleteFlow, FlowChanges, FlowMod

#: Messages per bundle. Open vSwitch sets no limit of its own; a bigger change is committed
#: as several bundles (each atomic), in order.
MAX_BUNDLE = 100_000
#: Bytes handed to the datapath at once (then a yield to the hub, so that other switches and
#: the API get their turn).
CHUNK_BYTES = 64 * 1024


class Carried(enum.Enum):
    FLOW_MOD = "flow-mod"
    BUNDLE_OPEN = "bundle open"
    BUNDLE_ADD = "bundle add"
    BUNDLE_COMMIT = "bundle commit"
    BARRIER = "barrier"


class Sent(NamedTuple):
    """What one xid carried: its kind, the bundle it belongs to, the flow mod inside."""

    carried: Carried
    bundle_id: int | None = None
    mod: FlowMod | None = None


class _Xid:
    """Takes the xid the datapath hands out (its own counter, shared with its messages)."""

    xid = 0

    def set_xid(self, xid: int) -> None:
        self.xid = xid


def _next_xid(datapath: Any) -> int:
    slot = _Xid()
    datapath.set_xid(slot)
    return slot.xid


class _Writer:
    """Messages for one datapath, buffered and handed to its ``send`` in chunks of up to
    :data:`CHUNK_BYTES` (``pause`` after each); what each xid carried is kept in ``sent``."""

    def __init__(self, datapath: Any, pause: Callable[[], None]) -> None:
        self.datapath = datapath
        self.pause = pause
        self.sent: dict[int, Sent] = {}
        self.out = bytearray()

    def flush(self) -> None:
        if self.out:
            self.datapath.send(bytes(self.out))
            self.out.clear()
            self.pause()

    def framework(self, msg: Any, what: Sent) -> None:
        """A message the framework builds (rare ones: bundle control, barrier)."""
        self.datapath.set_xid(msg)
        msg.serialize()
        self.append(msg.xid, bytes(msg.buf), what)

    def append(self, xid: int, data: bytes, what: Sent) -> None:
        self.sent[xid] = what
        self.out.extend(data)
        if len(self.out) >= CHUNK_BYTES:
            self.flush()

    def flow(self, mod: FlowMod, bundle_id: int | None) -> None:
        what = Sent(Carried.BUNDLE_ADD if bundle_id is not None else Carried.FLOW_MOD,
                    bundle_id, mod)
        xid = _next_xid(self.datapath)
        if isinstance(mod, AddFlow):
            if bundle_id is None:
                self.append(xid, wire.flow_add(xid, mod.spec), what)
            else:
                self.append(xid, wire.bundled_flow_add(xid, bundle_id, messages.BUNDLE_FLAGS,
                                                       mod.spec), what)
            return
        assert isinstance(mod, DeleteFlow)
        data = wire.flow_delete(xid, mod.table, mod.priority, mod.match)
        if bundle_id is not None:
            data = wire.bundle_add(xid, bundle_id, messages.BUNDLE_FLAGS, data)
        self.append(xid, data, what)

    def open_bundle(self, bundle_id: int) -> None:
        self.framework(messages.bundle_open(self.datapath, bundle_id),
                       Sent(Carried.BUNDLE_OPEN, bundle_id))

    def commit_bundle(self, bundle_id: int) -> None:
        self.framework(messages.bundle_commit(self.datapath, bundle_id),
                       Sent(Carried.BUNDLE_COMMIT, bundle_id))

    def barrier(self) -> None:
        self.framework(messages.barrier(self.datapath), Sent(Carried.BARRIER))


def send_changes(datapath: Any, changes: FlowChanges, bundle_ids: Callable[[], int] | None,
                 pause: Callable[[], None] = lambda: None) -> dict[int, Sent]:
    """Send ``changes`` then a barrier. With ``bundle_ids`` (a source of fresh bundle ids)
    a change of more than one flow mod goes in bundles of up to :data:`MAX_BUNDLE`; without,
    as plain flow mods. Messages go out in chunks of up to :data:`CHUNK_BYTES` through the
    datapath's ``send``; ``pause`` is called after each chunk."""
    writer = _Writer(datapath, pause)
    mods = list(changes)
    if bundle_ids is None or len(mods) < 2:
        for mod in mods:
            writer.flow(mod, None)
    else:
        for start in range(0, len(mods), MAX_BUNDLE):
            bundle_id = bundle_ids()
            writer.open_bundle(bundle_id)
            for mod in mods[start:start + MAX_BUNDLE]:
                writer.flow(mod, bundle_id)
            writer.commit_bundle(bundle_id)
    if mods:
        writer.barrier()
    writer.flush()
    return writer.sent
