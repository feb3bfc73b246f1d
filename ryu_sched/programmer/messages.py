"""The one module that turns flow specs into OpenFlow 1.3 messages (os-ken / Ryu parser).

It also gives flows a canonical, comparable form (:func:`canonical`) that is the same for a
spec we are about to send and for the flow stats a switch reports, so that the programmer can
diff desired against installed flows without re-sending unchanged ones. Both sides go through
the framework's own serialiser and parser, so the comparison sees exactly the bytes on the wire.
"""

from __future__ import annotations

import json
from typing import Any

from flows.spec import (
    Ct,
    DecNwTtl,
    FlowSpec,
    GotoTable,
    MoveField,
    Output,
    PopVlan,
    PushVlan,
    SetField,
    WriteMetadata,
)
from ryu_sched import compat

ofp = compat.ofproto_v1_3
parser = compat.ofproto_v1_3_parser

NX_NAT_F_SRC = 1 << 0
NX_NAT_F_DST = 1 << 1
ALL_ONES = {32: 0xFFFFFFFF, 48: 0xFFFFFFFFFFFF, 64: (1 << 64) - 1}

FlowKey = tuple[int, int, str]


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
    if isinstance(action, Ct):
        nat_actions = []
        if action.nat is not None:
            flags = {"src": NX_NAT_F_SRC, "dst": NX_NAT_F_DST, None: 0}[action.nat.kind]
            if action.nat.ip is not None:
                nat_actions.append(parser.NXActionNAT(
                    flags, range_ipv4_min=action.nat.ip, range_ipv4_max=action.nat.ip))
            else:
                nat_actions.append(parser.NXActionNAT(flags))
        return parser.NXActionCT(
            flags=compat.nicira_ext.NX_CT_F_COMMIT if action.commit else 0,
            zone_src="", zone_ofs_nbits=action.zone,
            recirc_table=(compat.nicira_ext.NX_CT_RECIRC_NONE if action.table is None
                          else int(action.table)),
            alg=0, actions=nat_actions)
    raise TypeError(f"unsupported action {action!r}")


def match_of(spec: FlowSpec) -> Any:
    return parser.OFPMatch(**dict(spec.match.items()))


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
    return parser.OFPFlowMod(
        datapath, cookie=spec.cookie, table_id=spec.table, command=ofp.OFPFC_ADD,
        priority=spec.priority, match=match_of(spec), instructions=instructions_of(spec),
        flags=0)


def flow_modify(datapath: Any, spec: FlowSpec) -> Any:
    return parser.OFPFlowMod(
        datapath, cookie=spec.cookie, table_id=spec.table, command=ofp.OFPFC_MODIFY_STRICT,
        priority=spec.priority, match=match_of(spec), instructions=instructions_of(spec),
        flags=ofp.OFPFF_RESET_COUNTS)


def flow_delete(datapath: Any, table: int, priority: int, match: Any) -> Any:
    return parser.OFPFlowMod(
        datapath, table_id=table, command=ofp.OFPFC_DELETE_STRICT, priority=priority,
        match=match, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY)


def _roundtrip_match(match: Any) -> Any:
    buf = bytearray()
    match.serialize(buf, 0)
    return parser.OFPMatch.parser(bytes(buf), 0)


def _canonical_match(match: Any) -> str:
    fields = []
    for name, value in match.items():
        if isinstance(value, tuple) and len(value) == 2:
            val, mask = value
            if isinstance(mask, str) and mask in ("ff:ff:ff:ff:ff:ff", "255.255.255.255"):
                value = val
            elif isinstance(mask, int) and mask in ALL_ONES.values():
                value = val
        fields.append((name, value if not isinstance(value, tuple) else list(value)))
    fields.sort(key=lambda item: item[0])
    return json.dumps(fields, sort_keys=True, default=str)


def _canonical_instructions(instructions: list[Any]) -> str:
    text = json.dumps([i.to_jsondict() for i in instructions], sort_keys=True, default=str)
    # A parsed reg_move names its fields by their NXM header ("eth_src_nxm"); ours by OXM.
    return text.replace('_nxm"', '"')


def key_of_spec(spec: FlowSpec) -> FlowKey:
    return (spec.table, spec.priority, _canonical_match(_roundtrip_match(match_of(spec))))


def key_of_stats(stats: Any) -> FlowKey:
    return (stats.table_id, stats.priority, _canonical_match(stats.match))


def body_of_spec(spec: FlowSpec) -> str:
    """Canonical instructions of a spec, as the switch would report them."""
    buf = bytearray()
    mod = flow_add(None, spec)
    instructions = []
    for inst in mod.instructions:
        buf = bytearray()
        inst.serialize(buf, 0)
        instructions.append(parser.OFPInstruction.parser(bytes(buf), 0))
    return _canonical_instructions(instructions)


def body_of_stats(stats: Any) -> str:
    return _canonical_instructions(list(stats.instructions))


def canonical(spec: FlowSpec) -> tuple[FlowKey, str]:
    return key_of_spec(spec), body_of_spec(spec)
