"""How the pipeline uses the 64-bit OpenFlow metadata register.

::

    bits 23..0   network key   set by CLASSIFY (and rewritten by ROUTING / POST_NAT to the
                               destination network); every later table matches it under
                               NETWORK_MASK, so two networks never share a flow.
    bits 47..32  router key    set by L3_ENTRY when a packet is addressed to a router
                               interface MAC; ROUTING matches it under ROUTER_MASK.
    bit  63      routed        set with the destination network after routing, so that
                               L2_FORWARD may hairpin a routed packet back out of the uplink
                               it came in on (never a switched one).
"""

from __future__ import annotations

NETWORK_MASK = (1 << 24) - 1
ROUTER_SHIFT = 32
ROUTER_MASK = ((1 << 16) - 1) << ROUTER_SHIFT
ROUTED_FLAG = 1 << 63


def network_value(key: int) -> int:
    return key & NETWORK_MASK


def router_value(key: int) -> int:
    return (key << ROUTER_SHIFT) & ROUTER_MASK
