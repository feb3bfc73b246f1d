"""Flow specs: the output of the flow compiler, independent of any OpenFlow library.

A :class:`FlowSpec` is one OpenFlow 1.3 flow entry: ``table``, ``priority``, a :class:`Match`
(a frozen mapping of OXM field names spelled as os-ken spells them) and a tuple of actions,
plus the ``cookie`` that names its owner (see :mod:`flows.cookies`).

Match values
    Plain ints for numeric fields, strings for MAC and IPv4 addresses. A masked field is a
    ``(value, mask)`` tuple: ``ipv4_dst=('10.0.0.0', '255.255.255.0')``,
    ``metadata=(5, 0xffffff)``, ``eth_dst=('01:00:00:00:00:00', '01:00:00:00:00:00')``.
    ``vlan_vid`` carries the OpenFlow 1.3 present bit: ``0x1000 | vid`` for a tag, ``0`` for
    "no tag". ``ct_state`` is always ``(value, mask)`` of the ``CT_*`` bits below.
    Prerequisites (``eth_type`` for ARP/IPv4 fields, ``ip_proto`` for UDP/TCP/ICMP fields)
    must be present; :class:`FlowSpec` checks them.

Actions (the minimal set the pipeline needs; all supported by OVS 3.1 and os-ken 3.1)
    ``Output(port)``
        port number, ``'IN_PORT'`` (send back where it came from; a plain port number equal to
        the in_port is silently dropped by OpenFlow) or ``'CONTROLLER'`` (packet-in, whole
        packet: ``OFPCML_NO_BUFFER``).
    ``SetField(field, value)``                       OFPActionSetField
    ``PushVlan(ethertype=0x8100)``                   OFPActionPushVlan (then SetField vlan_vid)
    ``PopVlan()``                                    OFPActionPopVlan
    ``DecNwTtl()``                                   OFPActionDecNwTtl (drops at TTL <= 1)
    ``MoveField(src, dst)``                          NXActionRegMove of the whole field
    ``Ct(commit, zone, table, nat, mark)``           NXActionCT with an optional NXActionNAT,
                                                     or with ``mark``: exec(set_field ct_mark)
    ``Conjunction(id, clause, n_clauses)``           NXActionConjunction: this flow is one
                                                     value of dimension ``clause`` (1-based) of
                                                     the conjunctive match ``id``; the flow
                                                     that acts matches ``conj_id=id``
    ``Nat(kind, ip)``                                the NAT part of Ct: ``kind`` 'src'/'dst'
                                                     with an address, or neither ("apply the
                                                     connection's existing NAT")
    ``WriteMetadata(value, mask)``                   OFPInstructionWriteMetadata
    ``GotoTable(table)``                             OFPInstructionGotoTable

``FlowSpec.actions`` lists the apply-actions first, then at most one ``WriteMetadata`` and at
most one ``GotoTable`` (last); :attr:`FlowSpec.apply_actions`, :attr:`FlowSpec.write_metadata`
and :attr:`FlowSpec.goto_table` split them into OpenFlow instructions. An empty action tuple
means drop. A flow with ``Conjunction`` actions has nothing else (OVS forbids it).

Size: over 400 lines on purpose: every match field, action and instruction the pipeline
may emit is declared here, once, with its canonical text form; the flow modules, the
simulator and the programmer all read this one vocabulary.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

# Conntrack state bits (OVS ct_state; os-ken's nicira_ext.NX_CT_STATE_*).
CT_NEW = 0x01
CT_EST = 0x02
CT_REL = 0x04
CT_RPL = 0x08
CT_INV = 0x10
CT_TRK = 0x20
_CT_NAMES = ((CT_NEW, "new"), (CT_EST, "est"), (CT_REL, "rel"), (CT_RPL, "rpl"),
             (CT_INV, "inv"), (CT_TRK, "trk"))

ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
ETH_TYPE_VLAN = 0x8100
IP_PROTO_ICMP = 1
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
ARP_REQUEST = 1
ARP_REPLY = 2
OFPVID_PRESENT = 0x1000
OFPVID_NONE = 0x0000
MULTICAST_BIT = ("01:00:00:00:00:00", "01:00:00:00:00:00")
ALL_ONES_64 = (1 << 64) - 1

MAC, IPV4, INT = "mac", "ipv4", "int"

# OXM name (os-ken spelling) -> (kind, width in bits, ovs-ofctl name, render hex?)
FIELDS: Mapping[str, tuple[str, int, str, bool]] = {  # in the order to_ofctl() prints them
    "in_port": (INT, 32, "in_port", False),
    "metadata": (INT, 64, "metadata", True),
    "ct_state": (INT, 32, "ct_state", True),
    "ct_zone": (INT, 16, "ct_zone", False),
    "ct_mark": (INT, 32, "ct_mark", True),
    "conj_id": (INT, 32, "conj_id", False),
    "vlan_vid": (INT, 13, "vlan_vid", True),
    "eth_src": (MAC, 48, "eth_src", False),
    "eth_dst": (MAC, 48, "eth_dst", False),
    "eth_type": (INT, 16, "eth_type", True),
    "ip_proto": (INT, 8, "nw_proto", False),
    "ipv4_src": (IPV4, 32, "nw_src", False),
    "ipv4_dst": (IPV4, 32, "nw_dst", False),
    "tcp_src": (INT, 16, "tcp_src", False),
    "tcp_dst": (INT, 16, "tcp_dst", False),
    "udp_src": (INT, 16, "udp_src", False),
    "udp_dst": (INT, 16, "udp_dst", False),
    "icmpv4_type": (INT, 8, "icmp_type", False),
    "icmpv4_code": (INT, 8, "icmp_code", False),
    "arp_op": (INT, 16, "arp_op", False),
    "arp_spa": (IPV4, 32, "arp_spa", False),
    "arp_tpa": (IPV4, 32, "arp_tpa", False),
    "arp_sha": (MAC, 48, "arp_sha", False),
    "arp_tha": (MAC, 48, "arp_tha", False),
}
_FIELD_ORDER = {name: i for i, name in enumerate(FIELDS)}
#: Fields that may be written by SetField / MoveField (the pipeline's needs, nothing more).
WRITABLE = frozenset({"eth_src", "eth_dst", "vlan_vid", "ipv4_src", "ipv4_dst", "icmpv4_type",
                      "arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha"})

# Field -> the (field, value) it requires, checked in order.
_PREREQS: Mapping[str, tuple[tuple[str, int], ...]] = {
    **{f: (("eth_type", ETH_TYPE_ARP),) for f in
       ("arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha")},
    **{f: (("eth_type", ETH_TYPE_IP),) for f in ("ip_proto", "ipv4_src", "ipv4_dst")},
    **{f: (("eth_type", ETH_TYPE_IP), ("ip_proto", IP_PROTO_UDP)) for f in
       ("udp_src", "udp_dst")},
    **{f: (("eth_type", ETH_TYPE_IP), ("ip_proto", IP_PROTO_TCP)) for f in
       ("tcp_src", "tcp_dst")},
    **{f: (("eth_type", ETH_TYPE_IP), ("ip_proto", IP_PROTO_ICMP)) for f in
       ("icmpv4_type", "icmpv4_code")},
}

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
#: dotted-quad IPv4 addresses that ``ipaddress.IPv4Address`` accepts (no leading zeros)
_IPV4_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")

Scalar = int | str
MatchValue = int | str | tuple[int, int] | tuple[str, str]


def _normalize(name: str, value: object) -> object:
    """MAC addresses are kept lower-case, so that equal specs compare equal."""
    if FIELDS[name][0] == MAC and isinstance(value, str):
        return value.lower()
    if isinstance(value, tuple):
        return tuple(_normalize(name, part) for part in value)
    return value


def is_ipv4_text(text: object) -> bool:
    """``text`` is an IPv4 address as ``ipaddress.IPv4Address`` reads it (dotted quad)."""
    if not isinstance(text, str):
        return False
    if _IPV4_RE.fullmatch(text):
        return True
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def ipv4_int(text: str) -> int:
    """An IPv4 address (checked) as an int."""
    return int.from_bytes(socket.inet_aton(text), "big")


def _check_scalar(name: str, kind: str, width: int, value: object) -> None:
    if kind == MAC:
        if not (isinstance(value, str) and _MAC_RE.match(value)):
            raise ValueError(f"{name}: {value!r} is not a MAC address")
    elif kind == IPV4:
        if not isinstance(value, str):
            raise ValueError(f"{name}: {value!r} is not an IPv4 address string")
        if not _IPV4_RE.fullmatch(value):  # (the common case without ipaddress's parser)
            ipaddress.IPv4Address(value)
    else:
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << width:
            raise ValueError(f"{name}: {value!r} is not a {width}-bit unsigned int")


def _check_value(name: str, value: object) -> MatchValue:
    """A match value normalised (:func:`_normalize`), or ValueError."""
    if name not in FIELDS:
        raise ValueError(f"unknown match field {name!r}")
    value = _normalize(name, value)
    kind, width, _, _ = FIELDS[name]
    if name == "ct_state" and not isinstance(value, tuple):
        raise ValueError("ct_state must be (value, mask)")
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"{name}: masked value must be (value, mask)")
        for part in value:
            _check_scalar(name, kind, width, part)
    else:
        _check_scalar(name, kind, width, value)
    return value  # type: ignore[return-value]


#: (field, value) -> the value checked and normalised. The same addresses, ports and
#: metadata values recur in thousands of flows; checking each (an IPv4 address parsed by
#: ``ipaddress``) was most of a match's cost. Only plain ints and strings (or pairs of them)
#: are kept: ``True == 1``, and a bool must still be refused.
_CHECKED: dict[tuple[str, object], MatchValue] = {}
_CHECKED_MAX = 1 << 18
_PLAIN = (int, str)


def _checked_value(name: str, value: object) -> MatchValue:
    cls = value.__class__
    if not (cls is int or cls is str or (
            cls is tuple and len(value) == 2  # type: ignore[arg-type]
            and value[0].__class__ in _PLAIN  # type: ignore[index]
            and value[1].__class__ in _PLAIN)):  # type: ignore[index]
        return _check_value(name, value)
    key = (name, value)
    known = _CHECKED.get(key)
    if known is None:
        known = _check_value(name, value)
        if len(_CHECKED) >= _CHECKED_MAX:
            _CHECKED.clear()
        _CHECKED[key] = known
    return known


class Match(Mapping[str, MatchValue]):
    """A frozen, hashable mapping of OXM field names to values (``(value, mask)`` if masked).

    ``Match(in_port=3, eth_type=0x0800, ipv4_dst=('10.0.0.0', '255.255.255.0'))``
    """

    __slots__ = ("_dict", "_hash", "_items", "_sort_key")

    def __init__(self, fields: Mapping[str, MatchValue] | None = None, /,
                 **kwargs: MatchValue) -> None:
        merged = dict(fields) if fields else {}
        if kwargs:
            merged.update(kwargs)
        checked = _CHECKED
        for name, value in merged.items():
            cls = value.__class__
            known = checked.get((name, value)) if cls is int or cls is str else None
            merged[name] = known if known is not None else _checked_value(name, value)
        items = tuple(sorted(merged.items()))  # names are unique: never compares values
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_dict", dict(items))
        object.__setattr__(self, "_hash", hash(items))
        object.__setattr__(self, "_sort_key", None)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Match is immutable")

    def __getitem__(self, key: str) -> MatchValue:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._items)

    def items(self):  # type: ignore[override]  # the dict's view: faster than Mapping's
        return self._dict.items()

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        return self._dict.get(key, default)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Match):
            return self._items == other._items
        return NotImplemented

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._items)
        return f"Match({inner})"

    def sort_key(self) -> tuple:
        if self._sort_key is None:
            object.__setattr__(self, "_sort_key", tuple((k, repr(v)) for k, v in self._items))
        return self._sort_key

    def to_ofctl(self) -> str:
        items = sorted(self._items, key=lambda kv: _FIELD_ORDER[kv[0]])
        return ",".join(_render_match_field(k, v) for k, v in items)


def _render_scalar(name: str, value: Scalar) -> str:
    kind, _, _, hexa = FIELDS[name]
    if kind == INT and hexa:
        return hex(int(value))
    return str(value)


def _render_ct_state(value: int, mask: int) -> str:
    return "".join(("+" if value & bit else "-") + label
                   for bit, label in _CT_NAMES if mask & bit)


def _render_match_field(name: str, value: MatchValue) -> str:
    ofctl = FIELDS[name][2]
    if name == "ct_state":
        v, m = value  # type: ignore[misc]
        return f"{ofctl}={_render_ct_state(int(v), int(m))}"
    if isinstance(value, tuple):
        if FIELDS[name][0] == INT:  # a bitwise mask reads best in hex, as OVS prints it
            return f"{ofctl}={int(value[0]):#x}/{int(value[1]):#x}"
        return f"{ofctl}={_render_scalar(name, value[0])}/{_render_scalar(name, value[1])}"
    return f"{ofctl}={_render_scalar(name, value)}"


# --------------------------------------------------------------------------------- actions

PortSpec = int | Literal["IN_PORT", "CONTROLLER"]


@dataclass(frozen=True)
class Output:
    """Send a copy of the packet, as it is now, to a port, back to IN_PORT or to CONTROLLER."""

    port: PortSpec

    def __post_init__(self) -> None:
        if isinstance(self.port, str):
            if self.port not in ("IN_PORT", "CONTROLLER"):
                raise ValueError(f"unsupported output port {self.port!r}")
        elif not 0 < self.port < 0xFFFFFF00:
            raise ValueError(f"bad output port {self.port!r}")

    def to_ofctl(self) -> str:
        if self.port == "IN_PORT":
            return "in_port"
        if self.port == "CONTROLLER":
            return "controller(max_len=65535)"
        return f"output:{self.port}"


@dataclass(frozen=True)
class SetField:
    """Overwrite one header field (``vlan_vid`` value includes the 0x1000 present bit)."""

    field: str
    value: Scalar

    def __post_init__(self) -> None:
        if self.field not in WRITABLE:
            raise ValueError(f"field {self.field!r} is not writable here")
        if isinstance(self.value, tuple):  # refused: a set-field takes no mask
            kind, width, _, _ = FIELDS[self.field]
            _check_scalar(self.field, kind, width, self.value)
        # the check of a match's value (no writable field has a rule of its own there)
        object.__setattr__(self, "value", _checked_value(self.field, self.value))

    def to_ofctl(self) -> str:
        return f"set_field:{_render_scalar(self.field, self.value)}->{FIELDS[self.field][2]}"


@dataclass(frozen=True)
class PushVlan:
    """Push an 802.1Q header (VID 0); a SetField of ``vlan_vid`` must follow."""

    ethertype: int = ETH_TYPE_VLAN

    def to_ofctl(self) -> str:
        return f"push_vlan:{self.ethertype:#06x}"


@dataclass(frozen=True)
class PopVlan:
    """Remove the outer 802.1Q header."""

    def to_ofctl(self) -> str:
        return "pop_vlan"


@dataclass(frozen=True)
class DecNwTtl:
    """Decrement the IPv4 TTL; a packet whose TTL is 0 or 1 is dropped instead."""

    def to_ofctl(self) -> str:
        return "dec_ttl"


@dataclass(frozen=True)
class MoveField:
    """Copy the whole of one field into another of the same width (Nicira reg_move)."""

    src: str
    dst: str

    def __post_init__(self) -> None:
        if self.src not in FIELDS or self.dst not in WRITABLE:
            raise ValueError(f"cannot move {self.src!r} to {self.dst!r}")
        if FIELDS[self.src][1] != FIELDS[self.dst][1]:
            raise ValueError(f"{self.src} and {self.dst} differ in width")

    @property
    def n_bits(self) -> int:
        return FIELDS[self.src][1]

    def to_ofctl(self) -> str:
        return f"move:{FIELDS[self.src][2]}[]->{FIELDS[self.dst][2]}[]"


@dataclass(frozen=True)
class Nat:
    """NAT inside a Ct action. ``kind``='src'|'dst' with ``ip`` sets up a new translation;
    ``Nat()`` only applies the translation the connection already has (reply direction)."""

    kind: Literal["src", "dst"] | None = None
    ip: str | None = None

    def __post_init__(self) -> None:
        if (self.kind is None) != (self.ip is None) or self.kind not in (None, "src", "dst"):
            raise ValueError("Nat needs both kind and ip, or neither")
        if self.ip is not None:
            if self.ip.__class__ is str:
                _checked_value("ipv4_src", self.ip)  # as a match's address (kept)
            else:
                ipaddress.IPv4Address(self.ip)

    def to_ofctl(self) -> str:
        return "nat" if self.kind is None else f"nat({self.kind}={self.ip})"


@dataclass(frozen=True)
class Ct:
    """Send the packet through conntrack in ``zone``; ``commit`` stores the connection;
    ``nat`` translates it. With ``table`` the pipeline forks: a tracked copy resumes in that
    table (where ct_state/ct_zone can be matched) and the original continues untracked with the
    following actions. Without ``table`` the following actions see the translated packet."""

    commit: bool = False
    zone: int = 0
    table: int | None = None
    nat: Nat | None = None

    mark: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.zone < 1 << 16:
            raise ValueError(f"ct zone {self.zone} out of range")
        if self.mark is not None:
            if not 0 <= self.mark < 1 << 32:
                raise ValueError(f"ct_mark {self.mark} out of range")
            if not self.commit or self.nat is not None:
                raise ValueError("a ct_mark is set by a committing ct without nat")

    def to_ofctl(self) -> str:
        """In the order ovs-ofctl dump-flows prints it."""
        parts = []
        if self.commit:
            parts.append("commit")
        if self.table is not None:
            parts.append(f"table={int(self.table)}")
        parts.append(f"zone={self.zone}")
        if self.nat is not None:
            parts.append(self.nat.to_ofctl())
        if self.mark is not None:
            parts.append(f"exec(set_field:{self.mark:#x}->ct_mark)")
        return "ct(" + ",".join(parts) + ")"


@dataclass(frozen=True)
class Conjunction:
    """One dimension value of a conjunctive match (OVS ``conjunction(id,clause/n_clauses)``).

    A packet matches conjunctive match ``id`` when, for each of its ``n_clauses`` dimensions,
    some flow with ``Conjunction(id, clause, n)`` matches it; OVS then looks up the flow that
    matches ``conj_id=id``. All flows of one conjunctive match share one priority."""

    id: int
    clause: int
    n_clauses: int

    def __post_init__(self) -> None:
        if not 0 < self.id < 1 << 32:
            raise ValueError(f"conjunction id {self.id} out of range 1..2**32-1")
        if not 2 <= self.n_clauses <= 64 or not 1 <= self.clause <= self.n_clauses:
            raise ValueError(f"bad conjunction clause {self.clause}/{self.n_clauses}")

    def to_ofctl(self) -> str:
        return f"conjunction({self.id},{self.clause}/{self.n_clauses})"


@dataclass(frozen=True)
class WriteMetadata:
    """Instruction: metadata = (metadata & ~mask) | (value & mask)."""

    value: int
    mask: int = ALL_ONES_64

    def to_ofctl(self) -> str:
        return f"write_metadata:{self.value:#x}/{self.mask:#x}"


@dataclass(frozen=True)
class GotoTable:
    """Instruction: continue in a later table."""

    table: int

    def to_ofctl(self) -> str:
        return f"goto_table:{int(self.table)}"


Action = (Output | SetField | PushVlan | PopVlan | DecNwTtl | MoveField | Ct | Conjunction
          | WriteMetadata | GotoTable)
APPLY_ACTIONS = (Output, SetField, PushVlan, PopVlan, DecNwTtl, MoveField, Ct, Conjunction)
#: What FlowSpec's one-pass check makes of each action class (Conjunction: the full check)
_APPLY, _CT, _WRITE_METADATA, _GOTO = range(4)
_STEP = {Output: _APPLY, SetField: _APPLY, PushVlan: _APPLY, PopVlan: _APPLY,
         DecNwTtl: _APPLY, MoveField: _APPLY, Ct: _CT, WriteMetadata: _WRITE_METADATA,
         GotoTable: _GOTO}


@dataclass(frozen=True)
class FlowSpec:
    """One flow entry. Hashable; ``key`` (table, priority, match) is unique per switch."""

    table: int
    priority: int
    match: Match
    actions: tuple[Action, ...]
    cookie: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", int(self.table))
        object.__setattr__(self, "actions", tuple(self.actions))
        if not 0 <= self.table < 255:
            raise ValueError(f"bad table {self.table}")
        if not 0 <= self.priority <= 0xFFFF:
            raise ValueError(f"bad priority {self.priority}")
        if not 0 <= self.cookie <= ALL_ONES_64:
            raise ValueError(f"bad cookie {self.cookie:#x}")
        self._check_prerequisites()
        self._check_action_order()

    def _check_prerequisites(self) -> None:
        fields = self.match._dict if isinstance(self.match, Match) else self.match
        for name in fields:
            needs = _PREREQS.get(name)
            if needs is None:
                continue
            for need, value in needs:
                if fields.get(need) != value:
                    raise ValueError(f"match on {name} needs {need}={value:#x}: {self.match}")

    def _check_action_order(self) -> None:
        """The common case (no conjunction) in one pass; anything unusual (a conjunction,
        an action out of place, an unknown action class) is checked by
        :meth:`_check_actions`, which says what is wrong."""
        stage = 0
        for action in self.actions:
            step = _STEP.get(action.__class__)
            if step is None:
                break
            if step == _APPLY:
                if stage:
                    break
            elif step == _CT:
                if stage or (action.table is not None and action.table <= self.table):
                    break
            elif step == _WRITE_METADATA:
                if stage:
                    break
                stage = 1
            else:
                if stage == 2 or int(action.table) <= self.table:
                    break
                stage = 2
        else:
            return
        self._check_actions()

    def _check_actions(self) -> None:
        conjunctions = [a for a in self.actions if isinstance(a, Conjunction)]
        if conjunctions and len(conjunctions) != len(self.actions):
            raise ValueError("a flow with conjunction actions may have no other action")
        if conjunctions and "conj_id" in self.match:
            raise ValueError("a conj_id flow cannot itself be part of a conjunction")
        stage = 0  # 0: apply-actions, 1: after write_metadata, 2: after goto
        for action in self.actions:
            if isinstance(action, APPLY_ACTIONS):
                if stage:
                    raise ValueError("apply-actions must precede write_metadata/goto_table")
                if isinstance(action, Ct) and action.table is not None:
                    if action.table <= self.table:
                        raise ValueError("ct(table=...) must resume in a later table")
            elif isinstance(action, WriteMetadata):
                if stage:
                    raise ValueError("at most one write_metadata, before goto_table")
                stage = 1
            elif isinstance(action, GotoTable):
                if stage == 2:
                    raise ValueError("at most one goto_table")
                if int(action.table) <= self.table:
                    raise ValueError("goto_table must go forward")
                stage = 2
            else:
                raise TypeError(f"not an action: {action!r}")

    @property
    def key(self) -> tuple[int, int, Match]:
        return (self.table, self.priority, self.match)

    @property
    def apply_actions(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if isinstance(a, APPLY_ACTIONS))

    @property
    def write_metadata(self) -> WriteMetadata | None:
        return next((a for a in self.actions if isinstance(a, WriteMetadata)), None)

    @property
    def conjunctions(self) -> tuple[Conjunction, ...]:
        return tuple(a for a in self.actions if isinstance(a, Conjunction))

    @property
    def goto_table(self) -> int | None:
        goto = next((a for a in self.actions if isinstance(a, GotoTable)), None)
        return None if goto is None else int(goto.table)

    def sort_key(self) -> tuple:
        return (self.table, -self.priority, self.match.sort_key(), self.cookie,
                repr(self.actions))

    def to_ofctl(self) -> str:
        """This flow as an ``ovs-ofctl -O OpenFlow13 add-flow`` argument."""
        head = f"cookie={self.cookie:#018x},table={self.table},priority={self.priority}"
        match = self.match.to_ofctl()
        actions = ",".join(a.to_ofctl() for a in self.actions) or "drop"
        return f"{head}{',' + match if match else ''},actions={actions}"
