"""Cookies name the object that owns a flow, so the controller can diff per owner.

Encoding (64 bits)::

    bits 63..56  kind   (CookieKind: base pipeline, network, port, router, floating IP, switch,
                        security group, router active)
    bits 55..0   ident  the low 56 bits of the owner's UUID (its last 7 bytes: random in a v4
                        UUID). An id that is not a UUID is hashed (SHA-256, first 7 bytes), a
                        dpid is used as it is (masked to 56 bits). The base pipeline uses 0,
                        and so do the firewall flows that no single group owns.

``cookie_for(CookieKind.ROUTER, router.id)`` gives the cookie of the flows a router owns on
its switches (but its active-only flows, below), so e.g. a router's flows can be found (or
deleted with ``cookie=<c>/0xffffffffffffffff``) when it moves. ``KIND_MASK`` selects all
flows of one kind.

``CookieKind.ROUTER_ACTIVE`` (ident: the router) marks the flows a router has only on the
switch where it is *active* (``Router.host_dpid``): those by which the switch answers for the
router (ARP, pings) or admits traffic for its MACs into its tables. Every other flow of the
router (kind ROUTER or FLOATING_IP) is unreachable without them, so a switch that has none of
them never answers ARP for, nor emits, any of the router's addresses or MACs. Deleting them
all by kind (``cookie=0x0800000000000000/0xff00000000000000``: the shared vocabulary's
``ROUTER_ACTIVE_COOKIE_MATCH``, which must name this kind) is how a gateway fences itself,
without the controller; see docs/pipeline.md, "Active and standby routers".
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from enum import IntEnum

IDENT_BITS = 56
IDENT_MASK = (1 << IDENT_BITS) - 1
KIND_MASK = 0xFF << IDENT_BITS


class CookieKind(IntEnum):
    BASE = 0x01  # table-miss drops and pass-through flows, the same on every switch
    NETWORK = 0x02  # per-network classification of uplinks and flooding
    PORT = 0x03  # per-port classification, anti-spoofing, unicast delivery
    ROUTER = 0x04  # a router's flows on its switches (active and standby) but the active-only
    #               ones, and its MACs' L2 entries elsewhere
    FLOATING_IP = 0x05  # POST_NAT and SNAT out of one floating IP (ARP, DNAT: ROUTER_ACTIVE)
    SWITCH = 0x06  # reserved for flows that depend only on the switch's own configuration
    SECURITY_GROUP = 0x07  # a group's conjunctive rule matches; ident 0: the shared firewall
    ROUTER_ACTIVE = 0x08  # a router's answers and admission, only where it is active


@functools.lru_cache(maxsize=1 << 16)
def ident_of(owner_id: str | int) -> int:
    """The low 56 bits of an owner id (UUID string, other string, or int such as a dpid).
    Cached: the pipeline asks for the same owners' cookies many times per switch."""
    if isinstance(owner_id, int):
        return owner_id & IDENT_MASK
    if owner_id == "":
        return 0
    try:
        return uuid.UUID(owner_id).int & IDENT_MASK
    except ValueError:
        digest = hashlib.sha256(owner_id.encode()).digest()
        return int.from_bytes(digest[:7], "big")


def cookie_for(kind: CookieKind, owner_id: str | int = "") -> int:
    """The cookie of the flows that ``owner_id`` (of ``kind``) owns."""
    return (int(kind) << IDENT_BITS) | ident_of(owner_id)


def kind_of(cookie: int) -> CookieKind:
    return CookieKind(cookie >> IDENT_BITS)


BASE_COOKIE = cookie_for(CookieKind.BASE)
