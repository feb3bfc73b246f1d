"""The one place that imports the OpenFlow framework.

os-ken (OpenStack's maintained fork) and Ryu 4.34 expose the same API under different
package names (and the app base class is ``OSKenApp`` in one, ``RyuApp`` in the other).
Which one:

1. the one whose manager is running: ``osken-manager``/``ryu-manager`` (and
   ``ryu-sched-controller``, which runs one of them) import their own package before they
   load ``ryu_sched.app``, so it is already in ``sys.modules``;
2. otherwise (tests, tools) ``RYU_SCHED_FRAMEWORK=ryu|os_ken`` if set;
3. otherwise os-ken, then Ryu, whichever is installed.

Nothing else in ryu-sched imports ``os_ken`` or ``ryu`` directly.
"""

from __future__ import annotations

import importlib
import struct
import sys
from types import ModuleType

from ryu_sched.launcher import prepare, select_framework

APP_CLASS = {"os_ken": "OSKenApp", "ryu": "RyuApp"}


FRAMEWORK = select_framework(sys.modules)
# Ryu 4.34's app_manager imports ryu.app.wsgi, which needs eventlet's ALREADY_HANDLED:
# the launcher's fix (a no-op when it already ran), for imports outside the launcher.
prepare(FRAMEWORK)


def _load(module: str) -> ModuleType:
    return importlib.import_module(f"{FRAMEWORK}.{module}")


app_manager = _load("base.app_manager")
handler = _load("controller.handler")
ofp_event = _load("controller.ofp_event")
ofproto_v1_3 = _load("ofproto.ofproto_v1_3")
ofproto_v1_3_parser = _load("ofproto.ofproto_v1_3_parser")
ofproto_parser = _load("ofproto.ofproto_parser")  # msg(): parse any message from its bytes
nicira_ext = _load("ofproto.nicira_ext")
hub = _load("lib.hub")
packet = _load("lib.packet.packet")
ethernet = _load("lib.packet.ethernet")
arp = _load("lib.packet.arp")
vlan = _load("lib.packet.vlan")
ether_types = _load("lib.packet.ether_types")
cfg_module = _load("cfg")

App = getattr(app_manager, APP_CLASS[FRAMEWORK])
set_ev_cls = handler.set_ev_cls
CONFIG_DISPATCHER = handler.CONFIG_DISPATCHER
MAIN_DISPATCHER = handler.MAIN_DISPATCHER
DEAD_DISPATCHER = handler.DEAD_DISPATCHER
CONF = cfg_module.CONF
# The ONF bundle extension for OpenFlow 1.3 (Open vSwitch implements it): atomic changes.
ONFBundleCtrlMsg = ofproto_v1_3_parser.ONFBundleCtrlMsg
ONFBundleAddMsg = ofproto_v1_3_parser.ONFBundleAddMsg
EventBarrierReply = ofp_event.EventOFPBarrierReply
# OpenFlow roles: with several controllers the leader is MASTER, the others SLAVE; the
# generation id (the lease's epoch) makes a switch refuse a stale master.
OFPRoleRequest = ofproto_v1_3_parser.OFPRoleRequest
EventRoleReply = ofp_event.EventOFPRoleReply
ROLE_MASTER = ofproto_v1_3.OFPCR_ROLE_MASTER
ROLE_SLAVE = ofproto_v1_3.OFPCR_ROLE_SLAVE
ROLE_EQUAL = ofproto_v1_3.OFPCR_ROLE_EQUAL
ROLE_REQUEST_FAILED = ofproto_v1_3.OFPET_ROLE_REQUEST_FAILED
ROLE_STALE = ofproto_v1_3.OFPRRFC_STALE
# Echo requests to gateway switches (the gateway-health monitor) and their replies.
OFPEchoRequest = ofproto_v1_3_parser.OFPEchoRequest
EventEchoReply = ofp_event.EventOFPEchoReply
HANDSHAKE_DISPATCHER = handler.HANDSHAKE_DISPATCHER


class RawFlowStats:
    """One flow-stats entry left as the switch sent it: reading a whole flow table back
    (every reconnect, every controller restart) with the framework's parser cost about 40 us
    an entry; ``ryu_sched.programmer.readback`` decodes these bytes straight into the forms
    the programmer compares, at a fraction of that."""

    __slots__ = ("data", "length")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    @classmethod
    def parser(cls, buf: bytes, offset: int) -> RawFlowStats:
        (length,) = struct.unpack_from("!H", buf, offset)
        if length < 8:  # a broken entry: take the rest of the reply, never loop forever
            length = len(buf) - offset
        return cls(bytes(buf[offset:offset + length]))


def _read_flow_stats_raw() -> None:
    """Flow-stats replies (OFPMP_FLOW) carry :class:`RawFlowStats` entries in this process,
    for the programmer and for the tools and tests that read tables the way it does. The
    reply class, its event and everything else about the message stay the framework's."""
    ofproto_v1_3_parser.OFPFlowStatsReply.cls_stats_body_cls = RawFlowStats


_read_flow_stats_raw()

__all__ = [
    "APP_CLASS",
    "CONF",
    "CONFIG_DISPATCHER",
    "DEAD_DISPATCHER",
    "FRAMEWORK",
    "HANDSHAKE_DISPATCHER",
    "MAIN_DISPATCHER",
    "ROLE_EQUAL",
    "ROLE_MASTER",
    "ROLE_REQUEST_FAILED",
    "ROLE_SLAVE",
    "ROLE_STALE",
    "App",
    "EventBarrierReply",
    "EventEchoReply",
    "EventRoleReply",
    "OFPEchoRequest",
    "OFPRoleRequest",
    "ONFBundleAddMsg",
    "ONFBundleCtrlMsg",
    "RawFlowStats",
    "arp",
    "ether_types",
    "ethernet",
    "hub",
    "nicira_ext",
    "ofp_event",
    "ofproto_parser",
    "ofproto_v1_3",
    "ofproto_v1_3_parser",
    "packet",
    "set_ev_cls",
    "vlan",
]
