"""The one place that imports the OpenFlow framework.

os-ken (OpenStack's maintained fork) and Ryu 4.34 expose the same API under different
package names. Whichever manager is running has already imported its own package, so we
prefer the one present in ``sys.modules``; otherwise os-ken, then Ryu.
Nothing else in ryu-sched imports ``os_ken`` or ``ryu`` directly.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def _framework_name() -> str:
    for name in ("os_ken", "ryu"):
        if f"{name}.base.app_manager" in sys.modules:
            return name
    for name in ("os_ken", "ryu"):
        try:
            importlib.import_module(f"{name}.base")
        except ImportError:
            continue
        return name
    raise ImportError("neither os-ken nor ryu is installed")


FRAMEWORK = _framework_name()


def _load(module: str) -> ModuleType:
    return importlib.import_module(f"{FRAMEWORK}.{module}")


app_manager = _load("base.app_manager")
handler = _load("controller.handler")
ofp_event = _load("controller.ofp_event")
ofproto_v1_3 = _load("ofproto.ofproto_v1_3")
ofproto_v1_3_parser = _load("ofproto.ofproto_v1_3_parser")
nicira_ext = _load("ofproto.nicira_ext")
hub = _load("lib.hub")
packet = _load("lib.packet.packet")
ethernet = _load("lib.packet.ethernet")
arp = _load("lib.packet.arp")
vlan = _load("lib.packet.vlan")
ether_types = _load("lib.packet.ether_types")
cfg_module = _load("cfg")

App = getattr(app_manager, "OSKenApp", None) or app_manager.RyuApp
set_ev_cls = handler.set_ev_cls
CONFIG_DISPATCHER = handler.CONFIG_DISPATCHER
MAIN_DISPATCHER = handler.MAIN_DISPATCHER
DEAD_DISPATCHER = handler.DEAD_DISPATCHER
CONF = cfg_module.CONF

__all__ = [
    "CONF",
    "CONFIG_DISPATCHER",
    "DEAD_DISPATCHER",
    "FRAMEWORK",
    "MAIN_DISPATCHER",
    "App",
    "arp",
    "ether_types",
    "ethernet",
    "hub",
    "nicira_ext",
    "ofp_event",
    "ofproto_v1_3",
    "ofproto_v1_3_parser",
    "packet",
    "set_ev_cls",
    "vlan",
]
