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


def send_changes(datapath: Any, changes: FlowChanges, bundle_ids: Callable[[], int] | None,
                 pause: Callable[[], None] = lambda: None) -> dict[int, Sent]:
    """Send ``changes`` then a barrier. With ``bundle_ids`` (a source of fresh bundle ids)
    a change of more than one flow mod goes in bundles of up to :data:`MAX_BUNDLE`; without,
    as plain flow mods. Messages go out in chunks of up to :data:`CHUNK_BYTES` through the
    datapath's ``send``; ``pause`` is called after each chunk."""
    sent: dict[int, Sent] = {}
    out = bytearray()

    def flush() -> None:
        if out:
            datapath.send(bytes(out))
            out.clear()
            pause()

    def framework(msg: Any, what: Sent) -> None:
        """A message the framework builds (rare ones: bundle control, barrier)."""
        datapath.set_xid(msg)
        msg.serialize()
        append(msg.xid, bytes(msg.buf), what)

    def append(xid: int, data: bytes, what: Sent) -> None:
        sent[xid] = what
        out.extend(data)
        if len(out) >= CHUNK_BYTES:
            flush()

    def flow(mod: FlowMod, bundle_id: int | None) -> None:
        what = Sent(Carried.BUNDLE_ADD if bundle_id is not None else Carried.FLOW_MOD,
                    bundle_id, mod)
        if isinstance(mod, AddFlow):
            xid = _next_xid(datapath)
            if bundle_id is None:
                append(xid, wire.flow_add(xid, mod.spec), what)
            else:
                append(xid, wire.bundled_flow_add(xid, bundle_id, messages.BUNDLE_FLAGS,
                                                  mod.spec), what)
            return
        else:
            assert isinstance(mod, DeleteFlow)
            xid = _next_xid(datapath)
            data = wire.flow_delete(xid, mod.table, mod.priority, mod.match)
        if bundle_id is not None:
            data = wire.bundle_add(xid, bundle_id, messages.BUNDLE_FLAGS, data)
        append(xid, data, what)

    mods = list(changes)
    if bundle_ids is None or len(mods) < 2:
        for mod in mods:
            flow(mod, None)
    else:
        for start in range(0, len(mods), MAX_BUNDLE):
            bundle_id = bundle_ids()
            framework(messages.bundle_open(datapath, bundle_id),
                      Sent(Carried.BUNDLE_OPEN, bundle_id))
            for mod in mods[start:start + MAX_BUNDLE]:
                flow(mod, bundle_id)
            framework(messages.bundle_commit(datapath, bundle_id),
                      Sent(Carried.BUNDLE_COMMIT, bundle_id))
    if mods:
        framework(messages.barrier(datapath), Sent(Carried.BARRIER))
    flush()
    return sent
