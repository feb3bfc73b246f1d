"""The thin sending step: flow changes onto a datapath, as one atomic bundle when there is
more than one, followed by a barrier. Returns what each xid carried, so that an error the
switch reports can be traced to the flow (or bundle) it concerns.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, NamedTuple

from ryu_sched.programmer import messages
from ryu_sched.programmer.diff import AddFlow, DeleteFlow, FlowChanges, FlowMod

#: Messages per bundle. Open vSwitch sets no limit of its own; a bigger change is committed
#: as several bundles (each atomic), in order.
MAX_BUNDLE = 100_000
#: Messages between two yields to the hub, so that other switches and the API get their turn.
YIELD_EVERY = 500


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


def flow_mod(datapath: Any, mod: FlowMod) -> Any:
    if isinstance(mod, AddFlow):
        return messages.flow_add(datapath, mod.spec)
    assert isinstance(mod, DeleteFlow)
    return messages.flow_delete(datapath, mod.table, mod.priority, mod.match)


def send_changes(datapath: Any, changes: FlowChanges, bundle_ids: Callable[[], int] | None,
                 pause: Callable[[], None] = lambda: None) -> dict[int, Sent]:
    """Send ``changes`` then a barrier. With ``bundle_ids`` (a source of fresh bundle ids)
    a change of more than one flow mod goes in bundles of up to :data:`MAX_BUNDLE`; without,
    as plain flow mods. ``pause`` is called every :data:`YIELD_EVERY` messages."""
    sent: dict[int, Sent] = {}
    mods = list(changes)
    count = 0

    def send(msg: Any, what: Sent) -> None:
        nonlocal count
        datapath.send_msg(msg)
        sent[msg.xid] = what
        count += 1
        if count % YIELD_EVERY == 0:
            pause()

    if bundle_ids is None or len(mods) < 2:
        for mod in mods:
            send(flow_mod(datapath, mod), Sent(Carried.FLOW_MOD, None, mod))
    else:
        for start in range(0, len(mods), MAX_BUNDLE):
            bundle_id = bundle_ids()
            send(messages.bundle_open(datapath, bundle_id), Sent(Carried.BUNDLE_OPEN, bundle_id))
            for mod in mods[start:start + MAX_BUNDLE]:
                send(messages.bundle_add(datapath, bundle_id, flow_mod(datapath, mod)),
                     Sent(Carried.BUNDLE_ADD, bundle_id, mod))
            send(messages.bundle_commit(datapath, bundle_id),
                 Sent(Carried.BUNDLE_COMMIT, bundle_id))
    if mods:
        send(messages.barrier(datapath), Sent(Carried.BARRIER))
    return sent
