"""OXM and NXM field numbering (OpenFlow 1.3.5, Open vSwitch's Nicira extensions): shared by
the encoder of flow mods (:mod:`ryu_sched.programmer.wire`) and the decoder of flow stats
(:mod:`ryu_sched.programmer.readback`). Protocol numbers, no framework."""

from __future__ import annotations

OXM_CLASS_BASIC = 0x8000
NXM_CLASS_OF = 0x0000  # NXM_OF_*: the older Nicira numbering of basic fields
NXM_CLASS_NX = 0x0001

#: field -> (OXM class, field number): the framework's (and Open vSwitch's) numbering
OXM_FIELDS: dict[str, tuple[int, int]] = {
    "in_port": (OXM_CLASS_BASIC, 0), "metadata": (OXM_CLASS_BASIC, 2),
    "eth_dst": (OXM_CLASS_BASIC, 3), "eth_src": (OXM_CLASS_BASIC, 4),
    "eth_type": (OXM_CLASS_BASIC, 5), "vlan_vid": (OXM_CLASS_BASIC, 6),
    "ip_proto": (OXM_CLASS_BASIC, 10), "ipv4_src": (OXM_CLASS_BASIC, 11),
    "ipv4_dst": (OXM_CLASS_BASIC, 12), "tcp_src": (OXM_CLASS_BASIC, 13),
    "tcp_dst": (OXM_CLASS_BASIC, 14), "udp_src": (OXM_CLASS_BASIC, 15),
    "udp_dst": (OXM_CLASS_BASIC, 16), "icmpv4_type": (OXM_CLASS_BASIC, 19),
    "icmpv4_code": (OXM_CLASS_BASIC, 20), "arp_op": (OXM_CLASS_BASIC, 21),
    "arp_spa": (OXM_CLASS_BASIC, 22), "arp_tpa": (OXM_CLASS_BASIC, 23),
    "arp_sha": (OXM_CLASS_BASIC, 24), "arp_tha": (OXM_CLASS_BASIC, 25),
    "conj_id": (NXM_CLASS_NX, 37), "ct_state": (NXM_CLASS_NX, 105),
    "ct_zone": (NXM_CLASS_NX, 106), "ct_mark": (NXM_CLASS_NX, 107),
}
