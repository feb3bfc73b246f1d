"""A packet-level simulator of an OpenFlow 1.3 switch running a list of FlowSpecs.

It answers "where would this packet go, and how would it look?" without a switch, so the
pipeline's promises (isolation, anti-spoofing, routing, NAT) can be tested exhaustively.

A packet is a dict of header fields named like the match fields (``eth_src``, ``eth_dst``,
``eth_type``, ``vlan_vid`` (absent or 0: untagged), ``ipv4_src``, ``ip_proto``, ``udp_dst``,
``arp_op``, ...) plus ``in_port`` and, for IPv4, ``ip_ttl`` (default 64) and, for ICMP,
``icmp_id``.

Semantics modelled (those the pipeline relies on):

* per table, the highest-priority matching flow wins; two matching flows of the same priority
  are a bug in the pipeline and raise :class:`AmbiguousMatch`;
* apply-actions run in order on the packet; ``Output`` sends a copy (a plain port equal to the
  in_port is dropped, as OpenFlow requires; ``IN_PORT`` is the way back); then
  ``WriteMetadata``; then ``GotoTable``; no goto means the pipeline ends;
* ``DecNwTtl`` at TTL <= 1 stops the action list (the packet is dropped);
* conjunctive matches (OVS ``conjunction``): when no plain flow of higher priority matches
  and, at some priority, every dimension of a conjunction ``id`` has a matching flow, the
  table is searched again with ``conj_id=id`` (conjunction flows ignored). Should several
  conjunctions complete at that priority (OVS then picks any), they must lead to flows with
  the same actions, else :class:`AmbiguousMatch`;
* conntrack (:class:`Conntrack`): connections per zone, committed by ``ct(commit)``; ``ct_state``
  is ``+trk`` plus ``+new`` until the first reply, ``+est`` after, ``+rpl`` for replies;
  ``+inv`` for non-IP packets and for a TCP SYN+ACK (``tcp_flags``) that opens nothing, as
  OVS's own conntrack does; ``nat(src|dst=ip)`` on commit sets up a translation, which every
  later ``ct(nat)`` of that connection applies in either direction; ``ct(commit,exec(
  set_field:m->ct_mark))`` stores a mark on the connection, matched as ``ct_mark``.
  ``ct(table=N)`` forks: a tracked copy resumes in table N with ``ct_state``/``ct_zone``/
  ``ct_mark`` set and the metadata preserved; several forks in one action list are several
  copies. After any ``ct`` the action list goes on with the packet untracked (NATed, if the
  ``ct`` had no table), as in OVS.

:class:`Fabric` joins several simulated switches through their uplinks on one flooding L2
segment (the worst case of a learning bridge), to test cross-host delivery.

Size: over 400 lines on purpose: one packet walk through tables, the OpenFlow match
semantics and a conntrack model that must stay consistent with each other; split, the
semantics the tests rely on would be spread over modules that only make sense together.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .spec import (
    CT_EST,
    CT_INV,
    CT_NEW,
    CT_RPL,
    CT_TRK,
    ETH_TYPE_IP,
    FIELDS,
    IPV4,
    MAC,
    OFPVID_PRESENT,
    Conjunction,
    Ct,
    DecNwTtl,
    FlowSpec,
    GotoTable,
    MoveField,
    Nat,
    Output,
    PopVlan,
    PushVlan,
    SetField,
    WriteMetadata,
)

Packet = dict[str, Any]
MAX_RECIRCULATIONS = 8
MAX_FABRIC_HOPS = 64
TCP_SYN = 0x002
TCP_ACK = 0x010


class SimulationError(Exception):
    """The flows do something the simulator (or OpenFlow) does not allow."""


class AmbiguousMatch(SimulationError):
    """Two flows of the same priority in one table match the same packet."""


def _as_int(name: str, value: Any) -> int:
    kind = FIELDS[name][0]
    if kind == MAC:
        return int(str(value).replace(":", ""), 16)
    if kind == IPV4:
        return int(ipaddress.IPv4Address(value))
    return int(value)


@dataclass
class _State:
    table: int = 0
    metadata: int = 0
    ct_state: int = 0
    ct_zone: int = 0
    ct_mark: int = 0
    recirculations: int = 0


@dataclass
class Connection:
    zone: int
    orig: tuple
    reply: tuple
    nat: Nat | None
    reply_seen: bool = False
    mark: int = 0


@dataclass(frozen=True)
class Tracked:
    """What conntrack says about a packet: its ``ct_state`` and its connection's ``ct_mark``."""

    state: int
    mark: int = 0


def five_tuple(packet: Mapping[str, Any]) -> tuple:
    proto = packet.get("ip_proto", 0)
    if proto == 1:
        sport = dport = packet.get("icmp_id", 0)
    else:
        prefix = {6: "tcp", 17: "udp"}.get(proto)
        sport = packet.get(f"{prefix}_src", 0) if prefix else 0
        dport = packet.get(f"{prefix}_dst", 0) if prefix else 0
    return (packet.get("ipv4_src"), packet.get("ipv4_dst"), proto, sport, dport)


def _reverse(t: tuple) -> tuple:
    src, dst, proto, sport, dport = t
    return (dst, src, proto, dport, sport)


def _opens_nothing(packet: Packet) -> bool:
    """A SYN+ACK cannot start a connection: OVS conntrack calls it invalid."""
    flags = packet.get("tcp_flags", 0)
    return packet.get("ip_proto") == 6 and flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK


class Conntrack:
    """Connection tracking with NAT, one table of connections per zone."""

    def __init__(self) -> None:
        self.connections: list[Connection] = []

    def lookup(self, zone: int, t: tuple) -> tuple[Connection | None, bool]:
        for conn in self.connections:
            if conn.zone != zone:
                continue
            if conn.orig == t:
                return conn, False
            if conn.reply == t:
                return conn, True
        return None, False

    def execute(self, action: Ct, packet: Packet) -> int:
        """Track (and maybe commit / NAT) ``packet`` in place; return its ct_state."""
        return self.track(action, packet).state

    def track(self, action: Ct, packet: Packet) -> Tracked:
        """Track (and maybe commit / NAT / mark) ``packet`` in place."""
        if packet.get("eth_type") != ETH_TYPE_IP:
            return Tracked(CT_TRK | CT_INV)
        t = five_tuple(packet)
        conn, is_reply = self.lookup(action.zone, t)
        if conn is None and _opens_nothing(packet):
            return Tracked(CT_TRK | CT_INV)
        state, conn = self._track(action, packet, t, conn, is_reply)
        if conn is not None and action.commit and action.mark is not None:
            conn.mark = action.mark
        return Tracked(state, conn.mark if conn is not None else 0)

    def _track(self, action: Ct, packet: Packet, t: tuple, conn: Connection | None,
               is_reply: bool) -> tuple[int, Connection | None]:
        if conn is None:
            reply = _reverse(t)
            nat = action.nat if action.nat is not None and action.nat.kind else None
            if nat is not None and action.commit:
                src, dst, proto, sport, dport = t
                translated = (nat.ip, dst, proto, sport, dport) if nat.kind == "src" else \
                    (src, nat.ip, proto, sport, dport)
                reply = _reverse(translated)
            if action.commit:
                conn = Connection(action.zone, t, reply, nat)
                self.connections.append(conn)
                if action.nat is not None:
                    self._translate(conn, False, packet)
            return CT_TRK | CT_NEW, conn
        state = CT_TRK
        if is_reply:
            conn.reply_seen = True
            state |= CT_EST | CT_RPL
        else:
            state |= CT_EST if conn.reply_seen else CT_NEW
        if action.nat is not None:
            self._translate(conn, is_reply, packet)
        return state, conn

    @staticmethod
    def _translate(conn: Connection, is_reply: bool, packet: Packet) -> None:
        if conn.nat is None:
            return
        if not is_reply:
            packet["ipv4_src" if conn.nat.kind == "src" else "ipv4_dst"] = conn.nat.ip
        elif conn.nat.kind == "src":
            packet["ipv4_dst"] = conn.orig[0]
        else:
            packet["ipv4_src"] = conn.orig[1]


@dataclass
class SimResult:
    """Where the packet went: ``outputs`` is a list of (ofport, packet as rewritten)."""

    outputs: list[tuple[int, Packet]] = field(default_factory=list)
    packet_ins: list[Packet] = field(default_factory=list)
    #: (table, priority, cookie) of every flow the packet hit, in order: for debugging.
    trace: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def to_controller(self) -> bool:
        return bool(self.packet_ins)

    @property
    def ports(self) -> set[int]:
        return {port for port, _ in self.outputs}

    @property
    def dropped(self) -> bool:
        return not self.outputs and not self.packet_ins


class SwitchSimulator:
    """One switch: its flows and its conntrack."""

    def __init__(self, flows: Iterable[FlowSpec]) -> None:
        self.tables: dict[int, list[FlowSpec]] = {}
        for flow in flows:
            self.tables.setdefault(flow.table, []).append(flow)
        for table in self.tables.values():
            table.sort(key=lambda f: -f.priority)
        self.conntrack = Conntrack()

    def process(self, packet: Mapping[str, Any]) -> SimResult:
        if "in_port" not in packet:
            raise SimulationError("packet needs an in_port")
        result = SimResult()
        pkt = dict(packet)
        if pkt.get("eth_type") == ETH_TYPE_IP:
            pkt.setdefault("ip_ttl", 64)
        self._run(pkt, _State(), result)
        return result

    def replace_flows(self, flows: Iterable[FlowSpec]) -> None:
        """Reprogram the switch; its conntrack (connections, marks) stays, as in OVS."""
        conntrack = self.conntrack
        self.__init__(flows)  # type: ignore[misc]
        self.conntrack = conntrack

    # ------------------------------------------------------------------ lookup
    def lookup(self, table: int, packet: Packet, state: _State) -> FlowSpec | None:
        flows = self.tables.get(table, ())
        hard = self._plain_lookup(flows, packet, state, 0)
        floor = -1 if hard is None else hard.priority
        seen: dict[tuple[int, int], tuple[int, set[int]]] = {}
        for flow in flows:
            if flow.priority <= floor:
                break
            if flow.conjunctions and self._matches(flow, packet, state, 0):
                for conj in flow.conjunctions:
                    n, clauses = seen.setdefault((flow.priority, conj.id),
                                                 (conj.n_clauses, set()))
                    if n != conj.n_clauses:
                        raise SimulationError(f"conjunction {conj.id}: n differs")
                    clauses.add(conj.clause)
        complete = sorted(((prio, cid) for (prio, cid), (n, clauses) in seen.items()
                           if len(clauses) == n), key=lambda pc: (-pc[0], pc[1]))
        if not complete:
            return hard
        top = complete[0][0]
        results = [self._plain_lookup(flows, packet, state, cid)
                   for prio, cid in complete if prio == top]
        if len({None if r is None else r.actions for r in results}) > 1:
            raise AmbiguousMatch("conjunctions at one priority disagree:\n" + "\n".join(
                "none" if r is None else r.to_ofctl() for r in results) + f"\n{packet}")
        return results[0]

    def _plain_lookup(self, flows: Iterable[FlowSpec], packet: Packet, state: _State,
                      conj_id: int) -> FlowSpec | None:
        best: FlowSpec | None = None
        for flow in flows:
            if best is not None and flow.priority < best.priority:
                break
            if not flow.conjunctions and self._matches(flow, packet, state, conj_id):
                if best is not None:
                    raise AmbiguousMatch(f"{best.to_ofctl()}\n{flow.to_ofctl()}\n{packet}")
                best = flow
        return best

    @staticmethod
    def _matches(flow: FlowSpec, packet: Packet, state: _State, conj_id: int) -> bool:
        for name, expected in flow.match.items():
            if name == "metadata":
                actual: Any = state.metadata
            elif name == "conj_id":
                actual = conj_id
            elif name == "ct_state":
                actual = state.ct_state
            elif name == "ct_zone":
                actual = state.ct_zone if state.ct_state else 0
            elif name == "ct_mark":
                actual = state.ct_mark if state.ct_state else 0
            elif name == "vlan_vid":
                actual = packet.get("vlan_vid", 0)
            else:
                actual = packet.get(name)
                if actual is None:
                    return False
            value, mask = expected if isinstance(expected, tuple) else (expected, None)
            a, v = _as_int(name, actual), _as_int(name, value)
            m = _as_int(name, mask) if mask is not None else (1 << 64) - 1
            if a & m != v & m:
                return False
        return True

    # ----------------------------------------------------------------- execute
    def _run(self, pkt: Packet, state: _State, result: SimResult) -> None:
        table: int | None = state.table
        while table is not None:
            flow = self.lookup(table, pkt, state)
            if flow is None:
                return  # no table-miss flow: OpenFlow 1.3 drops too
            result.trace.append((flow.table, flow.priority, flow.cookie))
            table = None
            for action in flow.actions:
                if isinstance(action, WriteMetadata):
                    state.metadata = (state.metadata & ~action.mask) | (action.value & action.mask)
                elif isinstance(action, GotoTable):
                    table = int(action.table)
                elif not self._apply(action, pkt, state, result):
                    return

    def _apply(self, action: Any, pkt: Packet, state: _State, result: SimResult) -> bool:
        """Apply one action; False stops the pipeline (dropped)."""
        if isinstance(action, Output):
            if action.port == "CONTROLLER":
                result.packet_ins.append(dict(pkt))
            elif action.port == "IN_PORT":
                result.outputs.append((pkt["in_port"], dict(pkt)))
            elif action.port != pkt["in_port"]:
                result.outputs.append((int(action.port), dict(pkt)))
        elif isinstance(action, SetField):
            if action.field == "vlan_vid" and not pkt.get("vlan_vid"):
                raise SimulationError("set vlan_vid on an untagged packet")
            pkt[action.field] = action.value
        elif isinstance(action, PushVlan):
            if pkt.get("vlan_vid"):
                raise SimulationError("double tagging is not used by this pipeline")
            pkt["vlan_vid"] = OFPVID_PRESENT
        elif isinstance(action, PopVlan):
            if not pkt.get("vlan_vid"):
                raise SimulationError("pop_vlan on an untagged packet")
            pkt.pop("vlan_vid")
        elif isinstance(action, DecNwTtl):
            if pkt.get("eth_type") != ETH_TYPE_IP:
                raise SimulationError("dec_ttl on a non-IP packet")
            if pkt["ip_ttl"] <= 1:
                return False
            pkt["ip_ttl"] -= 1
        elif isinstance(action, MoveField):
            if action.src not in pkt:
                raise SimulationError(f"move from missing field {action.src}")
            pkt[action.dst] = pkt[action.src]
        elif isinstance(action, Ct):
            return self._ct(action, pkt, state, result)
        elif isinstance(action, Conjunction):
            raise SimulationError("a conjunction flow was executed")
        else:
            raise SimulationError(f"unsupported action {action!r}")
        return True

    def _ct(self, action: Ct, pkt: Packet, state: _State, result: SimResult) -> bool:
        tracked = dict(pkt) if action.table is not None else pkt
        verdict = self.conntrack.track(action, tracked)
        if action.table is None:
            # As in OVS: the packet goes on (NATed), its conntrack fields cleared.
            state.ct_state = state.ct_zone = state.ct_mark = 0
            return True
        if state.recirculations >= MAX_RECIRCULATIONS:
            raise SimulationError("too many recirculations")
        fork = _State(table=action.table, metadata=state.metadata, ct_state=verdict.state,
                      ct_zone=action.zone, ct_mark=verdict.mark,
                      recirculations=state.recirculations + 1)
        self._run(tracked, fork, result)
        # The original continues untracked with the rest of the action list.
        state.ct_state = state.ct_zone = state.ct_mark = 0
        return True


@dataclass
class FabricResult:
    """Where a packet went across switches: (dpid, ofport, packet) outside the fabric."""

    deliveries: list[tuple[int, int, Packet]] = field(default_factory=list)
    packet_ins: list[tuple[int, Packet]] = field(default_factory=list)
    #: (dpid, packet) of every copy that crossed the fabric.
    on_wire: list[tuple[int, Packet]] = field(default_factory=list)

    def at(self, dpid: int, port: int) -> list[Packet]:
        return [p for d, o, p in self.deliveries if (d, o) == (dpid, port)]

    @property
    def endpoints(self) -> set[tuple[int, int]]:
        return {(d, o) for d, o, _ in self.deliveries}


class Fabric:
    """Switches whose uplinks (``uplinks``: dpid -> ofport) share one flooding L2 segment."""

    def __init__(self, switches: Mapping[int, SwitchSimulator],
                 uplinks: Mapping[int, int]) -> None:
        self.switches = dict(switches)
        self.uplinks = dict(uplinks)

    def send(self, dpid: int, packet: Mapping[str, Any]) -> FabricResult:
        result = FabricResult()
        queue: list[tuple[int, Packet]] = [(dpid, dict(packet))]
        hops = 0
        while queue:
            hops += 1
            if hops > MAX_FABRIC_HOPS:
                raise SimulationError("forwarding loop across the fabric")
            here, pkt = queue.pop(0)
            sim = self.switches[here].process(pkt)
            result.packet_ins.extend((here, p) for p in sim.packet_ins)
            for port, out in sim.outputs:
                if port != self.uplinks.get(here):
                    result.deliveries.append((here, port, out))
                    continue
                result.on_wire.append((here, out))
                for other, uplink in sorted(self.uplinks.items()):
                    if other != here:
                        queue.append((other, {**out, "in_port": uplink}))
        return result
