"""OpenFlow 1.3 bytes of flow adds and strict deletes, straight from specs (stdlib only).

Filling a switch sends thousands of flow adds; building each as framework objects and
serialising them (and again inside a bundle-add message) cost far more than the switch's
own work. This encoder writes the same bytes the framework's serialiser writes for
:func:`ryu_sched.programmer.messages.flow_add` and ``flow_delete``
(``tests/unit/programmer/test_flow_encoding.py`` checks every flow of the pipeline byte for
byte), and wraps them in ONF bundle-add messages.

Layouts (OpenFlow 1.3.5, the ONF bundle extension, Nicira extensions as Open vSwitch
defines them): OXM fields are written in the order the framework writes them (Nicira
conntrack fields first, then OpenFlow basic fields by number); a masked value is written as
``value & mask``.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

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
from ryu_sched.programmer.oxm import OXM_CLASS_BASIC, OXM_FIELDS

OFP_VERSION = 4
OFPT_EXPERIMENTER = 4
OFPT_FLOW_MOD = 14
OFPFC_ADD = 0
OFPFC_DELETE_STRICT = 4
OFPP_ANY = OFPG_ANY = 0xFFFFFFFF
OFP_NO_BUFFER = 0xFFFFFFFF
OFPP_IN_PORT = 0xFFFFFFF8
OFPP_CONTROLLER = 0xFFFFFFFD
OFPCML_NO_BUFFER = 0xFFFF
OFPMT_OXM = 1
OFPIT_GOTO_TABLE, OFPIT_WRITE_METADATA, OFPIT_APPLY_ACTIONS = 1, 2, 4
OFPAT_OUTPUT, OFPAT_PUSH_VLAN, OFPAT_POP_VLAN = 0, 17, 18
OFPAT_DEC_NW_TTL, OFPAT_SET_FIELD, OFPAT_EXPERIMENTER = 24, 25, 0xFFFF
NX_VENDOR_ID = 0x00002320
NXAST_REG_MOVE, NXAST_CONJUNCTION, NXAST_CT, NXAST_NAT = 6, 34, 35, 36
NX_CT_F_COMMIT = 1
NX_CT_RECIRC_NONE = 0xFF
NX_NAT_F_SRC, NX_NAT_F_DST = 1, 2
NX_NAT_RANGE_IPV4_MIN, NX_NAT_RANGE_IPV4_MAX = 1, 2
ONF_EXPERIMENTER_ID = 0x4F4E4600
ONF_ET_BUNDLE_ADD_MESSAGE = 2301

#: the order fields are written in
_ORDER = {name: (cls == OXM_CLASS_BASIC, num) for name, (cls, num) in OXM_FIELDS.items()}

_HEADER = struct.Struct("!BBHI")
_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")
_MATCH_HEADER = struct.Struct("!HH")
_OUTPUT = struct.Struct("!HHIH6x")
_SHORT_ACTION = struct.Struct("!HH4x")
_PUSH_VLAN = struct.Struct("!HHH2x")
_NX_HEADER = struct.Struct("!HHIH")
_REG_MOVE = struct.Struct("!HHHII")
_CT = struct.Struct("!HIHB3xH")
_NAT = struct.Struct("!2xHH")
_CONJUNCTION = struct.Struct("!BBI")
_WRITE_METADATA = struct.Struct("!HH4xQQ")
_GOTO = struct.Struct("!HHB3x")
_INSTRUCTION_HEADER = struct.Struct("!HH4x")
_BUNDLE_ADD = struct.Struct("!IIIxxH")


def _width(name: str) -> int:
    """Bytes of a field's value."""
    return (FIELDS[name][1] + 7) // 8


def _value_bytes(name: str, value: Any) -> bytes:
    kind = FIELDS[name][0]
    if kind == MAC:
        return bytes.fromhex(value.replace(":", ""))
    if kind == IPV4:
        return socket.inet_aton(value)
    return int(value).to_bytes(_width(name), "big")


def _oxm_header(name: str, masked: bool, length: int) -> int:
    cls, num = OXM_FIELDS[name]
    return (cls << 16) | (num << 9) | (int(masked) << 8) | length


def _encode_oxm(name: str, value: Any) -> bytes:
    if isinstance(value, tuple):
        raw, mask = (_value_bytes(name, part) for part in value)
        width = len(raw)
        raw = (int.from_bytes(raw, "big") & int.from_bytes(mask, "big")).to_bytes(width, "big")
        return _OXM_HEADERS[name][1] + raw + mask
    return _OXM_HEADERS[name][0] + _value_bytes(name, value)


#: field -> its OXM header, unmasked and masked (4 bytes each)
_OXM_HEADERS: dict[str, tuple[bytes, bytes]] = {
    name: (struct.pack("!I", _oxm_header(name, False, _width(name))),
           struct.pack("!I", _oxm_header(name, True, 2 * _width(name)))) for name in OXM_FIELDS}

#: Encodings kept: the same (field, value) pairs and set-fields recur in thousands of flows
#: (a network's metadata, a router's MAC, a port's address), and encoding each again was
#: most of a flow add's cost. Keys are the specs' own validated values (ints, strings and
#: pairs of them); each cache is emptied when it reaches :data:`CACHE_MAX` entries.
CACHE_MAX = 1 << 17
_OXMS: dict[tuple[str, Any], bytes] = {}
_SET_FIELDS: dict[tuple[str, Any], bytes] = {}
#: the match's field names (in name order) -> the same in the order they are written
_ORDERS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _remember(cache: dict, key: Any, value: Any) -> Any:
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _oxm(name: str, value: Any) -> bytes:
    return _OXMS.get((name, value)) or _remember(_OXMS, (name, value),
                                                 _encode_oxm(name, value))


def _pad8(data: bytes) -> bytes:
    return data + bytes(-len(data) % 8)


def match_bytes(items: Any) -> bytes:
    """An OXM match (padded to 8 bytes) from ``(field, value)`` pairs."""
    return _match_of(dict(items))


def _match_of(fields: dict[str, Any]) -> bytes:
    """:func:`match_bytes` of a dict of field -> value."""
    names = tuple(fields)
    order = _ORDERS.get(names)
    if order is None:
        order = _remember(_ORDERS, names, tuple(sorted(names, key=_ORDER.__getitem__)))
    oxms = _OXMS
    body = b"".join([oxms.get((name, fields[name])) or _oxm(name, fields[name])
                     for name in order])
    length = 4 + len(body)
    return _MATCH_HEADER.pack(OFPMT_OXM, length) + body + bytes(-length % 8)


def _nx(subtype: int, body: bytes) -> bytes:
    """A Nicira action, padded to a multiple of 8 bytes."""
    length = 10 + len(body)
    length += -length % 8
    return _pad8(_NX_HEADER.pack(OFPAT_EXPERIMENTER, length, NX_VENDOR_ID, subtype) + body)


def _oxm_name_header(name: str) -> int:
    return _oxm_header(name, False, _width(name))


def _encode_set_field(name: str, value: Any) -> bytes:
    field = _oxm(name, value)
    return _pad8(struct.pack("!HH", OFPAT_SET_FIELD, len(_pad8(b"1234" + field))) + field)


def _set_field(name: str, value: Any) -> bytes:
    return _SET_FIELDS.get((name, value)) or _remember(_SET_FIELDS, (name, value),
                                                       _encode_set_field(name, value))


_OUTPUT_CONTROLLER = _OUTPUT.pack(OFPAT_OUTPUT, 16, OFPP_CONTROLLER, OFPCML_NO_BUFFER)
_OUTPUT_IN_PORT = _OUTPUT.pack(OFPAT_OUTPUT, 16, OFPP_IN_PORT, 0)
_POP_VLAN = _SHORT_ACTION.pack(OFPAT_POP_VLAN, 8)
_DEC_NW_TTL = _SHORT_ACTION.pack(OFPAT_DEC_NW_TTL, 8)


def _output(action: Output) -> bytes:
    port = action.port
    if port == "CONTROLLER":
        return _OUTPUT_CONTROLLER
    if port == "IN_PORT":
        return _OUTPUT_IN_PORT
    return _OUTPUT.pack(OFPAT_OUTPUT, 16, int(port), 0)


def _move(action: MoveField) -> bytes:
    return _NX_HEADER.pack(OFPAT_EXPERIMENTER, 24, NX_VENDOR_ID, NXAST_REG_MOVE) + (
        struct.pack("!HHHII", action.n_bits, 0, 0, _oxm_name_header(action.src),
                    _oxm_name_header(action.dst)))


def _conjunction(action: Conjunction) -> bytes:  # clauses count from 0 on the wire
    return _NX_HEADER.pack(OFPAT_EXPERIMENTER, 16, NX_VENDOR_ID, NXAST_CONJUNCTION) + (
        _CONJUNCTION.pack(action.clause - 1, action.n_clauses, action.id))


def _ct(action: Ct) -> bytes:
    nested = b"" if action.mark is None else _set_field("ct_mark", action.mark)
    if action.nat is not None:
        flags = {"src": NX_NAT_F_SRC, "dst": NX_NAT_F_DST, None: 0}[action.nat.kind]
        if action.nat.ip is None:
            nested += _nx(NXAST_NAT, _NAT.pack(flags, 0))
        else:
            ip = socket.inet_aton(action.nat.ip)
            nested += _nx(NXAST_NAT, _NAT.pack(
                flags, NX_NAT_RANGE_IPV4_MIN | NX_NAT_RANGE_IPV4_MAX) + ip + ip)
    table = NX_CT_RECIRC_NONE if action.table is None else int(action.table)
    body = _CT.pack(NX_CT_F_COMMIT if action.commit else 0, 0, action.zone, table, 0)
    return _NX_HEADER.pack(OFPAT_EXPERIMENTER, 10 + len(body) + len(nested),
                           NX_VENDOR_ID, NXAST_CT) + body + nested


#: apply-action class -> its encoder
_ENCODERS: dict[type, Any] = {
    Output: _output,
    SetField: lambda a: _set_field(a.field, a.value),
    PushVlan: lambda a: _PUSH_VLAN.pack(OFPAT_PUSH_VLAN, 8, a.ethertype),
    PopVlan: lambda a: _POP_VLAN,
    DecNwTtl: lambda a: _DEC_NW_TTL,
    MoveField: _move,
    Conjunction: _conjunction,
    Ct: _ct,
}


def action_bytes(action: Any) -> bytes:
    encoder = _ENCODERS.get(type(action))
    if encoder is None:
        raise TypeError(f"unsupported action {action!r}")
    return encoder(action)


def instructions_bytes(spec: FlowSpec) -> bytes:
    apply: list[bytes] = []
    tail = b""
    for action in spec.actions:
        kind = type(action)
        if kind is GotoTable:
            tail += _GOTO.pack(OFPIT_GOTO_TABLE, 8, int(action.table))
        elif kind is WriteMetadata:
            tail += _WRITE_METADATA.pack(OFPIT_WRITE_METADATA, 24, action.value, action.mask)
        else:
            encoder = _ENCODERS.get(kind)
            if encoder is None:
                raise TypeError(f"unsupported action {action!r}")
            apply.append(encoder(action))
    if not apply:
        return tail
    actions = b"".join(apply)
    return _INSTRUCTION_HEADER.pack(OFPIT_APPLY_ACTIONS, 8 + len(actions)) + actions + tail


_FLOW_MOD_SIZE = 8 + _FLOW_MOD.size
#: the OpenFlow header and the flow mod's fixed part, in one pack
_FLOW_MOD_HEAD = struct.Struct("!BBHI" + _FLOW_MOD.format.lstrip("!"))
#: the same inside a bundle-add message (its header and ONF bundle-add part first)
_BUNDLED_FLOW_MOD_HEAD = struct.Struct(
    "!BBHI" + _BUNDLE_ADD.format.lstrip("!") + "BBHI" + _FLOW_MOD.format.lstrip("!"))
_BUNDLE_ADD_SIZE = 8 + _BUNDLE_ADD.size


def flow_add(xid: int, spec: FlowSpec) -> bytes:
    """The OFPT_FLOW_MOD (add) message for ``spec``."""
    match = _match_of(dict(spec.match.items()))
    instructions = instructions_bytes(spec)
    return b"".join((
        _FLOW_MOD_HEAD.pack(OFP_VERSION, OFPT_FLOW_MOD,
                            _FLOW_MOD_SIZE + len(match) + len(instructions), xid,
                            spec.cookie, 0, spec.table, OFPFC_ADD, 0, 0, spec.priority,
                            OFP_NO_BUFFER, 0, 0, 0),
        match, instructions))


def bundled_flow_add(xid: int, bundle_id: int, flags: int, spec: FlowSpec) -> bytes:
    """``bundle_add(xid, bundle_id, flags, flow_add(xid, spec))``, in one go."""
    match = _match_of(dict(spec.match.items()))
    instructions = instructions_bytes(spec)
    length = _FLOW_MOD_SIZE + len(match) + len(instructions)
    return b"".join((
        _BUNDLED_FLOW_MOD_HEAD.pack(
            OFP_VERSION, OFPT_EXPERIMENTER, _BUNDLE_ADD_SIZE + length, xid,
            ONF_EXPERIMENTER_ID, ONF_ET_BUNDLE_ADD_MESSAGE, bundle_id, flags,
            OFP_VERSION, OFPT_FLOW_MOD, length, xid,
            spec.cookie, 0, spec.table, OFPFC_ADD, 0, 0, spec.priority,
            OFP_NO_BUFFER, 0, 0, 0),
        match, instructions))


def flow_delete(xid: int, table: int, priority: int, match: Match | bytes) -> bytes:
    """The OFPT_FLOW_MOD (strict delete) of one entry: ``match`` is a spec's match, or an
    ofp_match exactly as the switch reported it (:mod:`ryu_sched.programmer.readback`)."""
    raw = match if isinstance(match, bytes) else match_bytes(match.items())
    body = _FLOW_MOD.pack(0, 0, table, OFPFC_DELETE_STRICT, 0, 0, priority, OFP_NO_BUFFER,
                          OFPP_ANY, OFPG_ANY, 0) + raw
    return _HEADER.pack(OFP_VERSION, OFPT_FLOW_MOD, 8 + len(body), xid) + body


def bundle_add(xid: int, bundle_id: int, flags: int, message: bytes) -> bytes:
    """``message`` (whose xid must be ``xid``) added to bundle ``bundle_id``."""
    length = 8 + _BUNDLE_ADD.size + len(message)
    return (_HEADER.pack(OFP_VERSION, OFPT_EXPERIMENTER, length, xid)
            + _BUNDLE_ADD.pack(ONF_EXPERIMENTER_ID, ONF_ET_BUNDLE_ADD_MESSAGE, bundle_id, flags)
            + message)
