"""The controller's fence: remove every ROUTER_ACTIVE flow from one switch over OpenFlow.

One flow mod deletes by cookie kind alone (``cookie=0x08../0xff..``, every table), then a
barrier; the caller's callback runs when the switch answered the barrier, i.e. once the switch
no longer answers for any router (rule (a) of docs/ha.md, "Detection and fencing"). Used by
the gateway-health monitor when a gateway's external link is down or its agent's lease lapsed
while the switch is still reachable.

The programmer's view of the switch's table is kept true: the deleted entries leave
``installed`` at once (messages on one connection are applied in order, so anything the
programmer sends afterwards is applied after the delete), or the table is read again when a
read was in progress.

While a switch is fenced (``Programmer.fenced``), its desired table leaves out every
ROUTER_ACTIVE flow, so no sync puts them back before the registry has moved the routers;
the monitor lifts the fence (:meth:`SwitchFence.lift`) once the gateway is healthy again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ryu_sched import compat
from ryu_sched.programmer import messages
from ryu_sched.shared.vocabulary import COOKIE_KIND_MASK, ROUTER_ACTIVE_COOKIE

if TYPE_CHECKING:
    from ryu_sched.programmer.programmer import Programmer

LOG = logging.getLogger(__name__)

ofp = compat.ofproto_v1_3
parser = compat.ofproto_v1_3_parser

OnFenced = Callable[[], None]


def delete_router_active(datapath: Any) -> Any:
    """Delete every flow whose cookie kind is ROUTER_ACTIVE, in every table."""
    return parser.OFPFlowMod(datapath, cookie=ROUTER_ACTIVE_COOKIE,
                             cookie_mask=COOKIE_KIND_MASK, table_id=ofp.OFPTT_ALL,
                             command=ofp.OFPFC_DELETE, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=parser.OFPMatch())


def is_router_active(cookie: int) -> bool:
    return cookie & COOKIE_KIND_MASK == ROUTER_ACTIVE_COOKIE


class SwitchFence:
    def __init__(self, programmer: Programmer) -> None:
        self.programmer = programmer
        #: (dpid, barrier xid) -> callback once the barrier is answered
        self._pending: dict[tuple[int, int], OnFenced] = {}
        self.fences = 0

    def fence_switch(self, dpid: int, on_done: OnFenced) -> bool:
        """Send the delete and a barrier to ``dpid``; ``on_done()`` when the barrier is
        answered. False (nothing sent) when the switch is not connected or this controller
        may not program it (not leading, not MASTER)."""
        state = self.programmer.switches.get(dpid)
        if state is None or not self.programmer.may_program(state):
            return False
        datapath = state.datapath
        datapath.send_msg(delete_router_active(datapath))
        barrier = messages.barrier(datapath)
        datapath.send_msg(barrier)
        self._pending[(dpid, int(barrier.xid))] = on_done
        self.fences += 1
        self.programmer.set_fenced(dpid, True)   # no sync puts them back until lifted
        if state.installed is not None:
            _forget_active(state)
        else:
            self.programmer._read_again(state)   # a read in progress may predate the delete
        LOG.warning("switch %016x: removing every ROUTER_ACTIVE flow (fence)", dpid)
        return True

    def lift(self, dpid: int) -> None:
        """The gateway is healthy again: its switch may have active flows (of the routers
        the registry still has active there; none it moved away) at the next sync."""
        if dpid in self.programmer.fenced:
            LOG.info("switch %016x: fence lifted", dpid)
            self.programmer.set_fenced(dpid, False)

    def agent_fenced(self, dpid: int) -> bool:
        """The switch's agent deleted every ROUTER_ACTIVE flow itself (its lease had lapsed,
        or it just started). What it deleted is known exactly, so the table is not read
        again (a read would keep the switch from being programmed meanwhile, e.g. when it
        is about to become a router's active gateway): the programmer forgets those flows
        and the next sync puts back what the registry says the switch should have. A read in
        progress may predate the delete: that one is started again."""
        state = self.programmer.switches.get(dpid)
        if state is None or not self.programmer.may_program(state):
            return False
        if state.installed is None:
            LOG.info("switch %016x: its agent fenced it; reading its flows again", dpid)
            self.programmer._read_again(state)
            return True
        forgotten = _forget_active(state)
        state.diff_all = True
        self.programmer.mark_dirty(dpid)
        LOG.info("switch %016x: its agent fenced it (%d active flows gone); syncing it",
                 dpid, forgotten)
        return True

    def barrier_reply(self, datapath: Any, xid: int) -> None:
        on_done = self._pending.pop((int(datapath.id), xid), None)
        if on_done is not None:
            LOG.info("switch %016x: ROUTER_ACTIVE flows removed (barrier answered)",
                     datapath.id)
            on_done()

    def switch_disconnected(self, dpid: int) -> None:
        """Fences in flight to a switch that disconnected will never be answered."""
        for key in [k for k in self._pending if k[0] == dpid]:
            del self._pending[key]

    @property
    def pending(self) -> int:
        return len(self._pending)


def _forget_active(state: Any) -> int:
    """Drop every ROUTER_ACTIVE entry from the programmer's view of ``state``'s table (the
    switch no longer has them); how many."""
    forgotten = [k for k, entry in state.installed.items() if is_router_active(entry.cookie)]
    for key in forgotten:
        del state.installed[key]
    state.in_sync_with = None
    return len(forgotten)
