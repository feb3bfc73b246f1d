"""OpenFlow 1.3 messages built with the framework's parser (os-ken / Ryu): strict deletes,
the ONF bundle messages (the OpenFlow 1.3 bundle extension, which Open vSwitch implements)
that wrap a change so that the switch applies it atomically, barriers, stats requests and
packet-outs. Flow adds go out as bytes from :mod:`ryu_sched.programmer.wire`; :func:`flow_add`
is the framework's version of the same message, which those bytes are tested against.
"""

from __future__ import annotations

import functools
import socket
from typing import Any

from ryu_sched import compat
from ryu_sched.flows.spec import (
    FIELDS,
    IPV4,
    MAC,
    Conjunction,
    Ct,
    DecNwTtl,
    FlowSpec,
    GotoTable,
    Match,
    MoveField,
    Output,
    PopVlan,
    PushVlan,
    SetField,
    WriteMetadata,
)

ofp = compat.ofproto_v1_3
parser = compat.ofproto_v1_3_parser

NX_NAT_F_SRC = 1 << 0
NX_NAT_F_DST = 1 << 1
#: A bundle that is atomic (all or nothing) and ordered (applied in the order added).
BUNDLE_FLAGS = ofp.ONF_BF_ATOMIC | ofp.ONF_BF_ORDERED


def _action(action: Any) -> Any:
    if isinstance(action, Output):
        if action.port == "IN_PORT":
            return parser.OFPActionOutput(ofp.OFPP_IN_PORT, 0)
        if action.port == "CONTROLLER":
            return parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)
        return parser.OFPActionOutput(int(action.port), 0)
    if isinstance(action, SetField):
        return parser.OFPActionSetField(**{action.field: action.value})
    if isinstance(action, PushVlan):
        return parser.OFPActionPushVlan(action.ethertype)
    if isinstance(action, PopVlan):
        return parser.OFPActionPopVlan()
    if isinstance(action, DecNwTtl):
        return parser.OFPActionDecNwTtl()
    if isinstance(action, MoveField):
        return parser.NXActionRegMove(src_field=action.src, dst_field=action.dst,
                                      n_bits=action.n_bits)
    if isinstance(action, Conjunction):
        # OVS numbers a conjunction's clauses from 0 on the wire (1 in ovs-ofctl and here).
        return parser.NXActionConjunction(clause=action.clause - 1,
                                          n_clauses=action.n_clauses, id_=action.id)
    if isinstance(action, Ct):
        nested: list[Any] = []
        if action.mark is not None:
            nested.append(parser.OFPActionSetField(ct_mark=action.mark))
        if action.nat is not None:
            flags = {"src": NX_NAT_F_SRC, "dst": NX_NAT_F_DST, None: 0}[action.nat.kind]
            if action.nat.ip is not None:
                nested.append(parser.NXActionNAT(
                    flags, range_ipv4_min=action.nat.ip, range_ipv4_max=action.nat.ip))
            else:
                nested.append(parser.NXActionNAT(flags))
        return parser.NXActionCT(
            flags=compat.nicira_ext.NX_CT_F_COMMIT if action.commit else 0,
            zone_src="", zone_ofs_nbits=action.zone,
            recirc_table=(compat.nicira_ext.NX_CT_RECIRC_NONE if action.table is None
                          else int(action.table)),
            alg=0, actions=nested)
    raise TypeError(f"unsupported action {action!r}")


@functools.cache
def _oxm_number(name: str) -> int:
    return int(ofp.oxm_from_user_header(name))


def _masked(name: str, value: Any, mask: Any) -> tuple[Any, Any]:
    """``(value & mask, mask)`` in the framework's spelling, as the switch stores it."""
    kind = FIELDS[name][0]
    if kind == MAC:
        bits = int(value.replace(":", ""), 16) & int(mask.replace(":", ""), 16)
        text = f"{bits:012x}"
        return ":".join(text[i:i + 2] for i in range(0, 12, 2)), mask
    if kind == IPV4:
        bits = (int.from_bytes(socket.inet_aton(value), "big")
                & int.from_bytes(socket.inet_aton(mask), "big"))
        return socket.inet_ntoa(bits.to_bytes(4, "big")), mask
    return int(value) & int(mask), mask


def match_of(match: Match) -> Any:
    """The framework's match for ``match``. Built from its fields in OXM order directly: the
    keyword constructor converts every value to bytes and back (most of the cost of a flow
    mod), while a spec's values are already in the framework's spelling."""
    fields = []
    for name, value in match.items():
        if isinstance(value, tuple):
            value = _masked(name, *value)
        fields.append((name, value))
    fields.sort(key=lambda item: _oxm_number(item[0]))
    return parser.OFPMatch(_ordered_fields=fields)


def instructions_of(spec: FlowSpec) -> list[Any]:
    apply = [_action(a) for a in spec.actions if not isinstance(a, WriteMetadata | GotoTable)]
    result: list[Any] = []
    if apply:
        result.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, apply))
    for action in spec.actions:
        if isinstance(action, WriteMetadata):
            result.append(parser.OFPInstructionWriteMetadata(action.value, action.mask))
    for action in spec.actions:
        if isinstance(action, GotoTable):
            result.append(parser.OFPInstructionGotoTable(int(action.table)))
    return result


def flow_add(datapath: Any, spec: FlowSpec) -> Any:
    """Add ``spec``; an entry with the same table, priority and match is replaced (cookie
    included, which a modify would keep)."""
    return parser.OFPFlowMod(
        datapath, cookie=spec.cookie, table_id=spec.table, command=ofp.OFPFC_ADD,
        priority=spec.priority, match=match_of(spec.match),
        instructions=instructions_of(spec), flags=0)


def flow_delete(datapath: Any, table: int, priority: int, match: Any) -> Any:
    """Strict delete of one entry; ``match`` is a spec's :class:`Match` or the framework's
    match as the switch reported it."""
    if isinstance(match, Match):
        match = match_of(match)
    return parser.OFPFlowMod(
        datapath, table_id=table, command=ofp.OFPFC_DELETE_STRICT, priority=priority,
        match=match, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)


def bundle_open(datapath: Any, bundle_id: int) -> Any:
    return compat.ONFBundleCtrlMsg(datapath, bundle_id, ofp.ONF_BCT_OPEN_REQUEST,
                                   BUNDLE_FLAGS, [])


def bundle_add(datapath: Any, bundle_id: int, message: Any) -> Any:
    return compat.ONFBundleAddMsg(datapath, bundle_id, BUNDLE_FLAGS, message, [])


def bundle_commit(datapath: Any, bundle_id: int) -> Any:
    return compat.ONFBundleCtrlMsg(datapath, bundle_id, ofp.ONF_BCT_COMMIT_REQUEST,
                                   BUNDLE_FLAGS, [])


def barrier(datapath: Any) -> Any:
    return parser.OFPBarrierRequest(datapath)


def port_desc_request(datapath: Any) -> Any:
    return parser.OFPPortDescStatsRequest(datapath, 0)


def flow_stats_request(datapath: Any) -> Any:
    """Every flow of every table."""
    return parser.OFPFlowStatsRequest(datapath, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                      0, 0, parser.OFPMatch())


def role_request(datapath: Any, role: int, generation_id: int) -> Any:
    """``OFPRoleRequest``: ``role`` (compat.ROLE_MASTER or ROLE_SLAVE) with the generation id
    (the lease's epoch) that lets the switch refuse a stale master."""
    return compat.OFPRoleRequest(datapath, role, generation_id & 0xFFFFFFFFFFFFFFFF)


def packet_out(datapath: Any, ofport: int, data: bytes) -> Any:
    return parser.OFPPacketOut(datapath=datapath, buffer_id=ofp.OFP_NO_BUFFER,
                               in_port=ofp.OFPP_CONTROLLER,
                               actions=[parser.OFPActionOutput(ofport, 0)], data=data)
