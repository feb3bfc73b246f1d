"""A switch's flow table read back: flow-stats entries decoded straight from their bytes into
canonical forms (stdlib only), the reverse of :mod:`ryu_sched.programmer.wire`.

A reconnect or a controller restart reads every installed flow; having the framework parse
each entry into objects (a match parsed twice, every action an object) cost about 40 us a
flow, most of a resync. The framework hands over the raw entries instead
(``compat.RawFlowStats``) and this module turns each into ``(key, body)`` exactly as
:func:`ryu_sched.programmer.canonical.of_spec` forms a desired flow, plus its cookie and its
match bytes (what a strict delete of the entry sends back). Instructions repeat across a table
(the same goto, the same output), and so do single match fields: their forms are remembered
by their bytes. ``tests/unit/programmer/test_programmer_real_ovs.py`` checks the forms of
every flow of the pipeline against what Open vSwitch reports.

Layouts: OpenFlow 1.3.5 ``ofp_flow_stats``, OXM TLVs, instructions and actions; Nicira
``reg_move``, ``ct``, ``nat`` and ``conjunction`` as Open vSwitch encodes them. An entry the
decoder does not understand gets a form no desired flow has (so it is replaced or deleted),
never an exception.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from ryu_sched.programmer.canonical import FIELD_ONES, OFPP_CONTROLLER, Body, FlowKey
from ryu_sched.programmer.oxm import NXM_CLASS_NX, NXM_CLASS_OF, OXM_FIELDS

#: ofp_flow_stats up to its match: length, table_id, pad, duration (2), priority, idle and
#: hard timeouts, flags, pad, cookie, packet and byte counts
_ENTRY = struct.Struct("!HBxIIHHHH4xQQQ")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_HEADER = struct.Struct("!HH")
_OUTPUT = struct.Struct("!IH")
_NX = struct.Struct("!IH")
_REG_MOVE = struct.Struct("!HHHII")
_CT = struct.Struct("!HIHB3xH")
_NAT = struct.Struct("!2xHH")
_CONJUNCTION = struct.Struct("!BBI")
_METADATA = struct.Struct("!4xQQ")

OFPIT_GOTO_TABLE, OFPIT_WRITE_METADATA, OFPIT_APPLY_ACTIONS = 1, 2, 4
OFPAT_OUTPUT, OFPAT_PUSH_VLAN, OFPAT_POP_VLAN = 0, 17, 18
OFPAT_DEC_NW_TTL, OFPAT_SET_FIELD, OFPAT_EXPERIMENTER = 24, 25, 0xFFFF
NX_VENDOR_ID = 0x00002320
NXAST_REG_MOVE, NXAST_CONJUNCTION, NXAST_CT, NXAST_NAT = 6, 34, 35, 36
NX_NAT_RANGE_IPV4_MIN, NX_NAT_RANGE_IPV4_MAX = 1, 2
NX_NAT_RANGE_IPV6_MIN, NX_NAT_RANGE_IPV6_MAX = 4, 8
NX_NAT_RANGE_PROTO_MIN, NX_NAT_RANGE_PROTO_MAX = 16, 32

#: (OXM/NXM class, field number) -> field name: OpenFlow basic and Nicira fields as matched,
#: and the older NXM_OF_* numbering Open vSwitch uses for a reg_move's fields
_NAMES: dict[tuple[int, int], str] = {where: name for name, where in OXM_FIELDS.items()}
_NAMES.update({(NXM_CLASS_OF, number): name for number, name in enumerate((
    "in_port", "eth_dst", "eth_src", "eth_type", "vlan_tci", "ip_tos", "ip_proto",
    "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst", "udp_src", "udp_dst", "icmpv4_type",
    "icmpv4_code", "arp_op", "arp_spa", "arp_tpa"))})
_NAMES.update({(NXM_CLASS_NX, 17): "arp_sha", (NXM_CLASS_NX, 18): "arp_tha"})

#: how many remembered forms of single match fields and of instruction lists, at most
CACHE_LIMIT = 1 << 16


class Entry(NamedTuple):
    """One installed flow as read back."""

    key: FlowKey
    body: Body
    cookie: int
    #: the entry's ofp_match as the switch sent it (padded): a strict delete sends it back
    match: bytes


def _field_name(header: int) -> str:
    cls, number = header >> 16, (header >> 9) & 0x7F
    return _NAMES.get((cls, number)) or f"oxm_{cls:04x}_{number}"


def _oxm(data: bytes, offset: int) -> tuple[tuple[str, Any], int]:
    """One OXM TLV at ``offset``: ``((name, value or (value, mask)), next offset)``."""
    (header,) = _U32.unpack_from(data, offset)
    length = header & 0xFF
    start, end = offset + 4, offset + 4 + length
    if end > len(data):
        raise ValueError("OXM field runs past its entry")
    cls, number = header >> 16, (header >> 9) & 0x7F
    name = _NAMES.get((cls, number))
    if name is None:  # also every experimenter field (class 0xFFFF)
        return (f"oxm_{cls:04x}_{number}", data[start:end].hex()), end
    if header & 0x100:  # masked: value then mask, each half the length
        half = length // 2
        value = int.from_bytes(data[start:start + half], "big")
        mask = int.from_bytes(data[start + half:end], "big")
        if mask != FIELD_ONES.get(name, (1 << (8 * half)) - 1):
            return (name, (value & mask, mask)), end
        return (name, value), end
    return (name, int.from_bytes(data[start:end], "big")), end


_FIELD_FORMS: dict[bytes, tuple[str, Any]] = {}


def _match_fields(data: bytes, start: int, end: int) -> tuple[tuple[str, Any], ...]:
    fields = []
    offset = start
    forms = _FIELD_FORMS
    while offset + 4 <= end:
        length = data[offset + 3]
        raw = data[offset:offset + 4 + length]
        form = forms.get(raw)
        if form is None:
            form, _next = _oxm(data, offset)
            if len(forms) >= CACHE_LIMIT:
                forms.clear()
            forms[raw] = form
        fields.append(form)
        offset += 4 + length
    if offset != end:
        raise ValueError("match length does not add up")
    fields.sort()
    return tuple(fields)


# --- actions ------------------------------------------------------------------------------

def _nat(data: bytes, offset: int, end: int) -> tuple[Any, ...]:
    flags, present = _NAT.unpack_from(data, offset)
    offset += _NAT.size
    ranges: dict[int, Any] = {}
    for bit, size in ((NX_NAT_RANGE_IPV4_MIN, 4), (NX_NAT_RANGE_IPV4_MAX, 4),
                      (NX_NAT_RANGE_IPV6_MIN, 16), (NX_NAT_RANGE_IPV6_MAX, 16),
                      (NX_NAT_RANGE_PROTO_MIN, 2), (NX_NAT_RANGE_PROTO_MAX, 2)):
        if present & bit:
            if offset + size > end:
                raise ValueError("NAT range runs past its action")
            ranges[bit] = int.from_bytes(data[offset:offset + size], "big")
            offset += size
    low = ranges.get(NX_NAT_RANGE_IPV4_MIN)
    high = ranges.get(NX_NAT_RANGE_IPV4_MAX)
    return ("nat", flags, low, high if high is not None else low,
            ranges.get(NX_NAT_RANGE_PROTO_MIN), ranges.get(NX_NAT_RANGE_PROTO_MAX))


def _nicira(data: bytes, offset: int, end: int) -> tuple[Any, ...]:
    """A Nicira action; ``offset`` is just past its type and length."""
    vendor, subtype = _NX.unpack_from(data, offset)
    body = offset + _NX.size
    if vendor != NX_VENDOR_ID:
        return ("unknown", data[offset - 4:end])
    if subtype == NXAST_REG_MOVE:
        n_bits, src_ofs, dst_ofs, src, dst = _REG_MOVE.unpack_from(data, body)
        return ("move", _field_name(src), _field_name(dst), n_bits, src_ofs, dst_ofs)
    if subtype == NXAST_CONJUNCTION:
        clause, n_clauses, conj_id = _CONJUNCTION.unpack_from(data, body)
        return ("conj", conj_id, clause + 1, n_clauses)  # clauses count from 0 on the wire
    if subtype == NXAST_CT:
        flags, zone_src, zone, table, alg = _CT.unpack_from(data, body)
        where: Any = zone if not zone_src else ("field", _field_name(zone_src), zone)
        nested = _actions(data, body + _CT.size, end)
        return ("ct", flags, where, table, alg, nested)
    if subtype == NXAST_NAT:
        return _nat(data, body, end)
    return ("unknown", data[offset - 4:end])


def _action(data: bytes, offset: int) -> tuple[tuple[Any, ...], int]:
    kind, length = _HEADER.unpack_from(data, offset)
    end = offset + length
    if length < 8 or end > len(data):
        raise ValueError("action length out of bounds")
    body = offset + 4
    if kind == OFPAT_OUTPUT:
        port, max_len = _OUTPUT.unpack_from(data, body)
        return ("output", port, max_len if port == OFPP_CONTROLLER else 0), end
    if kind == OFPAT_SET_FIELD:
        (name, value), _next = _oxm(data, body)
        return ("set", name, value), end
    if kind == OFPAT_PUSH_VLAN:
        return ("push_vlan", _U16.unpack_from(data, body)[0]), end
    if kind == OFPAT_POP_VLAN:
        return ("pop_vlan",), end
    if kind == OFPAT_DEC_NW_TTL:
        return ("dec_ttl",), end
    if kind == OFPAT_EXPERIMENTER:
        return _nicira(data, body, end), end
    return ("unknown", data[offset:end]), end


def _actions(data: bytes, offset: int, end: int) -> tuple[tuple[Any, ...], ...]:
    actions = []
    while offset < end:
        action, offset = _action(data, offset)
        actions.append(action)
    if offset != end:
        raise ValueError("actions overrun their instruction")
    return tuple(actions)


def _instructions(data: bytes) -> Body:
    result = []
    offset, end = 0, len(data)
    while offset < end:
        kind, length = _HEADER.unpack_from(data, offset)
        stop = offset + length
        if length < 8 or stop > end:
            raise ValueError("instruction length out of bounds")
        if kind == OFPIT_GOTO_TABLE:
            result.append(("goto", data[offset + 4]))
        elif kind == OFPIT_WRITE_METADATA:
            metadata, mask = _METADATA.unpack_from(data, offset + 4)
            result.append(("meta", metadata & mask, mask))
        elif kind == OFPIT_APPLY_ACTIONS:
            result.append(("apply", *_actions(data, offset + 8, stop)))
        elif kind in (3, 5):  # write actions, clear actions
            result.append(("actions", kind, *_actions(data, offset + 8, stop)))
        else:
            result.append(("unknown", data[offset:stop]))
        offset = stop
    return tuple(result)


_BODIES: dict[bytes, Body] = {}


def _body(data: bytes) -> Body:
    body = _BODIES.get(data)
    if body is None:
        try:
            body = _instructions(data)
        except (ValueError, struct.error, IndexError):
            body = (("unknown", data),)
        if len(_BODIES) >= CACHE_LIMIT:
            _BODIES.clear()
        _BODIES[data] = body
    return body


# --- entries --------------------------------------------------------------------------------

def decode(data: bytes) -> Entry:
    """One ``ofp_flow_stats`` entry (exactly its bytes) as read back. Raises ``ValueError``
    when its framing is broken (too short, a match longer than the entry): such an entry
    cannot even be named in a delete."""
    if len(data) < _ENTRY.size + 8:
        raise ValueError("flow-stats entry too short")
    _length, table, _sec, _nsec, priority, _idle, _hard, _flags, cookie, _packets, _bytes = (
        _ENTRY.unpack_from(data, 0))
    start = _ENTRY.size
    (match_length,) = _U16.unpack_from(data, start + 2)
    match_end = start + match_length
    padded = start + ((match_length + 7) & ~7)
    if match_length < 4 or padded > len(data):
        raise ValueError("flow-stats entry's match does not fit in it")
    match = data[start:padded]
    try:
        fields = _match_fields(data, start + 4, match_end)
    except (ValueError, struct.error, IndexError):
        fields = (("undecoded", match.hex()),)
    return Entry((table, priority, fields), _body(data[padded:]), cookie, match)


def flow_stats_entry(table: int, priority: int, cookie: int, match: bytes,
                     instructions: bytes) -> bytes:
    """The ``ofp_flow_stats`` entry a switch reports for a flow (for tests and tools that
    stand in for a switch): ``match`` padded to 8 bytes, counters zero."""
    length = _ENTRY.size + len(match) + len(instructions)
    return (_ENTRY.pack(length, table, 0, 0, priority, 0, 0, 0, cookie, 0, 0)
            + match + instructions)


#: ofp_flow_mod up to its match: header, cookie and mask, table, command, timeouts,
#: priority, buffer id, out port and group, flags, pad
_FLOW_MOD = struct.Struct("!BBHIQQBBHHHIIIH2x")


def installed_entry(flow_mod: bytes) -> bytes:
    """The ``ofp_flow_stats`` entry a switch reports for the flow a flow add (as
    :func:`ryu_sched.programmer.wire.flow_add` encodes it) installed."""
    fields = _FLOW_MOD.unpack_from(flow_mod, 0)
    cookie, table, priority = fields[4], fields[6], fields[10]
    body = flow_mod[_FLOW_MOD.size:]
    padded = (_U16.unpack_from(body, 2)[0] + 7) & ~7
    return flow_stats_entry(table, priority, cookie, body[:padded], body[padded:])
