"""Canonical forms: one comparable value per flow, the same for a desired :class:`FlowSpec` and
for the flow-stats entry a switch reports for it (decoded by
:mod:`ryu_sched.programmer.readback`).

A flow's form is ``(key, body)``: ``key = (table, priority, match)`` names the flow entry
(unique per switch), ``body`` is what it does (its instructions). Both are tuples of ints and
short strings, built straight from the spec (here) or from the entry's bytes (``readback``)
in one pass, with no trip through the framework. What the switch normalises is normalised
on both sides: addresses become ints, a masked value is ``value & mask``, an all-ones mask is
dropped, a reg_move's NXM field numbers are named as the OXM fields, an output's ``max_len``
only counts for the controller port. ``tests/unit/programmer/test_programmer_real_ovs.py``
checks the forms of every flow of the pipeline against what Open vSwitch reports.

The cookie is not part of either: the programmer compares it separately. Pure: nothing here
imports the framework.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
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
    MoveField,
    Output,
    PopVlan,
    PushVlan,
    SetField,
    WriteMetadata,
)

#: (table, priority, ((field, value or (value, mask)), ... sorted by field))
FlowKey = tuple[int, int, tuple[tuple[str, Any], ...]]
#: the instructions, each a tuple starting with its kind
Body = tuple[tuple[Any, ...], ...]

# OpenFlow 1.3 and Nicira constants (protocol numbers, not framework objects).
OFPP_IN_PORT = 0xFFFFFFF8
OFPP_CONTROLLER = 0xFFFFFFFD
OFPCML_NO_BUFFER = 0xFFFF
OFPIT_APPLY_ACTIONS = 4
NX_CT_F_COMMIT = 1 << 0
NX_CT_RECIRC_NONE = 0xFF
NX_NAT_F_SRC = 1 << 0
NX_NAT_F_DST = 1 << 1
NAT_FLAGS = {"src": NX_NAT_F_SRC, "dst": NX_NAT_F_DST, None: 0}
NXM_SUFFIX = "_nxm"


def mac_int(text: str) -> int:
    return int(text.replace(":", ""), 16)


def ipv4_int(text: str) -> int:
    return int.from_bytes(socket.inet_aton(text), "big")


def _as_int(value: Any) -> int:
    return int(value)


def _converter(kind: str) -> Callable[[Any], int]:
    return {MAC: mac_int, IPV4: ipv4_int}.get(kind, _as_int)


#: field -> (text/int -> int, all-ones mask of its width)
_FIELDS: dict[str, tuple[Callable[[Any], int], int]] = {
    name: (_converter(kind), (1 << width) - 1)
    for name, (kind, width, _ofctl, _hexa) in FIELDS.items()}
#: field -> its all-ones mask (a mask a switch reports that way means "not masked")
FIELD_ONES: dict[str, int] = {name: ones for name, (_convert, ones) in _FIELDS.items()}


def field_value(name: str, value: Any) -> Any:
    """A match (or set-field) value as an int, or ``(value & mask, mask)`` when masked by
    less than all ones. Fields unknown to the pipeline keep the value they came with."""
    known = _FIELDS.get(name)
    if known is None:
        return tuple(value) if isinstance(value, list) else value
    convert, ones = known
    if isinstance(value, tuple | list):
        raw, raw_mask = value
        mask = convert(raw_mask)
        if mask != ones:
            return (convert(raw) & mask, mask)
        value = raw
    return convert(value)


def _match_form(items: Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((name, field_value(name, value)) for name, value in items))


# --- desired flows ------------------------------------------------------------------------

def _output_port(port: int | str) -> tuple[Any, ...]:
    if port == "CONTROLLER":
        return ("output", OFPP_CONTROLLER, OFPCML_NO_BUFFER)
    if port == "IN_PORT":
        return ("output", OFPP_IN_PORT, 0)
    return ("output", int(port), 0)


def _spec_action(action: Any) -> tuple[Any, ...]:
    kind = type(action)
    if kind is Output:
        return _output_port(action.port)
    if kind is SetField:
        return ("set", action.field, field_value(action.field, action.value))
    if kind is PushVlan:
        return ("push_vlan", action.ethertype)
    if kind is PopVlan:
        return ("pop_vlan",)
    if kind is DecNwTtl:
        return ("dec_ttl",)
    if kind is MoveField:
        return ("move", action.src, action.dst, action.n_bits, 0, 0)
    if kind is Conjunction:
        return ("conj", action.id, action.clause, action.n_clauses)
    if kind is Ct:
        nested: tuple[Any, ...] = ()
        if action.mark is not None:
            nested = (("set", "ct_mark", action.mark),)
        if action.nat is not None:
            ip = None if action.nat.ip is None else ipv4_int(action.nat.ip)
            nested = (*nested, ("nat", NAT_FLAGS[action.nat.kind], ip, ip, None, None))
        return ("ct", NX_CT_F_COMMIT if action.commit else 0, action.zone,
                NX_CT_RECIRC_NONE if action.table is None else int(action.table), 0, nested)
    raise TypeError(f"unsupported action {action!r}")


#: Forms kept for the desired side: a (field, value) pair recurs in thousands of flows (a
#: network's metadata, a router's MAC, a port's address). Keys are the specs' own validated
#: values (ints, strings and pairs of them); each cache is emptied at :data:`CACHE_MAX`.
CACHE_MAX = 1 << 17
_SPEC_FIELDS: dict[tuple[str, Any], tuple[str, Any]] = {}
_SET_FIELDS: dict[tuple[str, Any], tuple[Any, ...]] = {}


def _remember(cache: dict, key: Any, value: Any) -> Any:
    if len(cache) >= CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def spec_key(spec: FlowSpec) -> FlowKey:
    # a Match keeps its fields in name order: the order _match_form sorts them in
    known = _SPEC_FIELDS
    return (spec.table, spec.priority, tuple([
        known.get(item) or _remember(known, item, (item[0], field_value(*item)))
        for item in spec.match.items()]))


def _set_form(action: SetField) -> tuple[Any, ...]:
    key = (action.field, action.value)
    return _SET_FIELDS.get(key) or _remember(_SET_FIELDS, key, _spec_action(action))


_OUTPUTS: dict[Any, tuple[Any, ...]] = {}


def _output_form(action: Output) -> tuple[Any, ...]:
    return _OUTPUTS.get(action.port) or _remember(_OUTPUTS, action.port,
                                                  _output_port(action.port))


#: the apply-actions whose forms are kept or cheap, by class
_FAST_ACTIONS: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    Output: _output_form,
    SetField: _set_form,
    DecNwTtl: lambda a: ("dec_ttl",),
    PopVlan: lambda a: ("pop_vlan",),
}


def spec_body(spec: FlowSpec) -> Body:
    apply: list[tuple[Any, ...]] = []
    tail: list[tuple[Any, ...]] = []
    fast = _FAST_ACTIONS
    for action in spec.actions:
        kind = type(action)
        if kind is GotoTable:
            tail.append(("goto", int(action.table)))
        elif kind is WriteMetadata:
            tail.append(("meta", action.value & action.mask, action.mask))
        else:
            form = fast.get(kind)
            apply.append(form(action) if form is not None else _spec_action(action))
    if apply:
        return (("apply", *apply), *tail)  # FlowSpec keeps write_metadata before goto_table
    return tuple(tail)


def of_spec(spec: FlowSpec) -> tuple[FlowKey, Body]:
    return spec_key(spec), spec_body(spec)
