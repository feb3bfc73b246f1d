"""The stateful firewall of security groups: SG_{EGRESS,INGRESS}_{STATE,RULES,ACCEPT}.

A *firewalled* port (port security on, not trusted, ``security_group_ids`` not None) gets a
conntrack zone of its own on its switch (flows/zones.py). Its IPv4 passes through conntrack
in that zone twice at most: leaving it (PORT_SECURITY: ``ct(table=SG_EGRESS_STATE)``) and
arriving at it (L2_FORWARD: ``ct(table=SG_INGRESS_STATE)``). Both directions of a connection
are in the one zone, so the reply to what the port opened arrives as ``+est+rpl``, and so does
the port's reply to what was opened towards it. Per direction, three tables:

STATE (shared by every port; the ct_zone says which port):

* 210 ingress only, per port ``in_port=<port>,ct_zone=<its zone>``: drop (the port's own
  flooded packet coming back; it must not be judged as ingress).
* 200 ``+inv+trk``: drop.
* 180 ``+rpl+trk,ct_mark=DEAD``, 170 ``+rel+trk,ct_mark=DEAD``: drop (the connection's rule is
  gone, see below).
* 160 ``+rpl+trk``, 150 ``+rel+trk``: a reply, or related (ICMP errors), of a live
  connection: ACCEPT.
* 100 ``+trk``: the opening direction, new or established: RULES.

RULES, the current rules, re-checked for every packet of the opening direction:

* 200 DHCP: ingress ``udp,udp_src=67,udp_dst=68``, egress ``udp,udp_src=68,udp_dst=67``:
  ACCEPT, whatever the rules (as in Neutron).
* 150 per port ``ct_zone=<zone>`` when one of its groups allows everything in this direction
  (any protocol, any remote): ACCEPT.
* 100 conjunctive matches, one per (group, remote) in this direction, with up to three
  dimensions: *who*, ``ct_zone=<zone>`` of each local port in the group (one flow per port
  carries all its conjunctions); *what*, one flow per protocol / masked port block / ICMP
  type of the group's rules with that remote (shared by every group using the same one);
  *remote*, ``nw_src`` (ingress) / ``nw_dst`` (egress) of the rule's ``remote_ip_prefix``,
  or of every address of the remote group's members (one flow per address, carrying all
  the conjunctions that refer to it). A dimension that is "any" is left out. The flow
  ``conj_id=<id>``: ACCEPT. Flows grow with ports + addresses + port blocks, not with their
  product.
* 10 per port ``ct_zone=<zone>,+est+trk``: an established connection the rules no longer
  allow: ``ct(commit,zone,exec(set_field:DEAD->ct_mark))``, drop. Its replies now hit the
  DEAD flows of STATE. A new connection nothing allows: table-miss drop.

ACCEPT, per port (``ct_zone=<zone>``):

* 30 ``+new+trk``: ``ct(commit,zone)``, then on.
* 20 ``ct_mark=DEAD``: allowed again (a rule came back): ``ct(commit,zone,exec(set_field:
  0->ct_mark))``, then on.
* 10 anything: on.

"On" is ARP_RESPONDER for egress (the pipeline continues to L3_ENTRY / L2_FORWARD) and
``output:<port>`` for ingress.

So removing a rule (or a member from a remote group) stops the established connections it
allowed at their next packet in the opening direction (for TCP: the next segment or ACK of
the side that opened it), and from then on both ways; new ones are not opened. A stream that
only ever flows in the reply direction keeps going until such a packet; the controller may
flush the port's zone to cut it at once. Related traffic and replies are not re-checked.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from .context import SwitchView, address_match, ipv4_network
from .cookies import CookieKind, cookie_for, ident_of
from .model import (
    IP_PROTO_ICMP,
    PORT_PROTOCOLS,
    Direction,
    Ethertype,
    SecurityGroupRule,
)
from .port_ranges import port_blocks
from .spec import (
    CT_EST,
    CT_INV,
    CT_NEW,
    CT_REL,
    CT_RPL,
    CT_TRK,
    ETH_TYPE_IP,
    IP_PROTO_TCP,
    IP_PROTO_UDP,
    Action,
    Conjunction,
    Ct,
    FlowSpec,
    GotoTable,
    Match,
    MatchValue,
    Output,
)
from .tables import Table
from .zones import CT_MARK_DEAD

PRIO_SELF = 210
PRIO_INVALID = 200
PRIO_DEAD_REPLY = 180
PRIO_DEAD_RELATED = 170
PRIO_REPLY = 160
PRIO_RELATED = 150
PRIO_CHECK = 100

PRIO_DHCP = 200
PRIO_ALLOW_ALL = 150
PRIO_RULE = 100
PRIO_KILL = 10

PRIO_COMMIT_NEW = 30
PRIO_REVIVE = 20
PRIO_PASS = 10

SHARED_COOKIE = cookie_for(CookieKind.SECURITY_GROUP)
IP = dict(eth_type=ETH_TYPE_IP)


@dataclass(frozen=True)
class Stage:
    """The three firewall tables of one direction."""

    direction: Direction
    state: Table
    rules: Table
    accept: Table
    #: The packet field that holds the remote address.
    remote_field: str
    #: DHCP that always passes in this direction (udp source, destination port).
    dhcp: tuple[int, int]


EGRESS = Stage(Direction.EGRESS, Table.SG_EGRESS_STATE, Table.SG_EGRESS_RULES,
               Table.SG_EGRESS_ACCEPT, "ipv4_dst", (68, 67))
INGRESS = Stage(Direction.INGRESS, Table.SG_INGRESS_STATE, Table.SG_INGRESS_RULES,
                Table.SG_INGRESS_ACCEPT, "ipv4_src", (67, 68))

class RemoteKind(StrEnum):
    PREFIX = "prefix"
    GROUP = "group"


@dataclass(frozen=True, order=True)
class Remote:
    """Whom a rule admits: the addresses of an IPv4 prefix, or of a group's members."""

    kind: RemoteKind
    value: str  # a CIDR, or a group id


#: A rule's protocol part as match fields (eth_type included).
What = tuple[tuple[str, MatchValue], ...]


def ct_state(*bits: int, off: int = 0) -> tuple[int, int]:
    """``ct_state`` with ``bits`` set and ``off`` clear (everything else wildcarded)."""
    on = 0
    for bit in bits:
        on |= bit
    return (on, on | off)


# ------------------------------------------------------------------------ rule parts
def applies_to_ipv4(rule: SecurityGroupRule) -> bool:
    """An IPv4 rule whose remote prefix, if any, is IPv4 too (the pipeline is IPv4 only)."""
    return rule.ethertype is Ethertype.IPV4 and (
        rule.remote_ip_prefix is None or ipv4_network(rule.remote_ip_prefix) is not None)


def remote_of(rule: SecurityGroupRule) -> Remote | None:
    """The rule's remote (an IPv4 rule's): None for any address."""
    if rule.remote_group_id is not None:
        return Remote(RemoteKind.GROUP, rule.remote_group_id)
    net = None if rule.remote_ip_prefix is None else ipv4_network(rule.remote_ip_prefix)
    return None if net is None or net.prefixlen == 0 else Remote(RemoteKind.PREFIX, str(net))


def what_of(rule: SecurityGroupRule) -> tuple[What, ...] | None:
    """The protocol matches of a rule (any of them), None for any protocol."""
    proto = rule.protocol
    if proto is None:
        return None
    base: dict[str, MatchValue] = dict(IP, ip_proto=proto)
    low, high = rule.port_range_min, rule.port_range_max
    if proto in PORT_PROTOCOLS and (low is not None or high is not None):
        low = high if low is None else low
        high = low if high is None else high
        assert low is not None and high is not None
        blocks = port_blocks(low, high)
        if blocks != [(0, 0)]:
            name = "tcp_dst" if proto == IP_PROTO_TCP else "udp_dst"
            return tuple(_what({**base, name: v if m == 0xFFFF else (v, m)}) for v, m in blocks)
    if proto == IP_PROTO_ICMP and low is not None:
        base["icmpv4_type"] = low
        if high is not None:
            base["icmpv4_code"] = high
    return (_what(base),)


def _what(fields: dict[str, MatchValue]) -> What:
    return tuple(sorted(fields.items()))


# ------------------------------------------------------------------- compilation
@dataclass(frozen=True)
class Conj:
    """One conjunctive match: a group's rules of one direction that share one remote.

    ``whats`` None means any protocol, ``remotes`` None any address; such a dimension is left
    out. ``holders`` are the local ports in the group."""

    id: int
    group_id: str
    holders: tuple[str, ...]
    whats: tuple[What, ...] | None
    remotes: tuple[MatchValue, ...] | None

    @property
    def dimensions(self) -> int:
        return 1 + (self.whats is not None) + (self.remotes is not None)


class _Merged:
    """Conjunction flows keyed by (table, priority, match): one flow, all their actions."""

    def __init__(self) -> None:
        self.actions: dict[tuple[int, int, Match], set[Conjunction]] = defaultdict(set)
        self.cookies: dict[tuple[int, int, Match], int] = {}

    def add(self, table: int, match: Match, conj: Conjunction, cookie: int) -> None:
        key = (table, PRIO_RULE, match)
        self.actions[key].add(conj)
        self.cookies.setdefault(key, cookie)

    def flows(self) -> Iterator[FlowSpec]:
        for key, conjs in self.actions.items():
            table, priority, match = key
            ordered = sorted(conjs, key=lambda c: (c.id, c.clause))
            yield FlowSpec(table, priority, match, tuple(ordered), self.cookies[key])


def _conjunctions(view: SwitchView, stage: Stage) -> tuple[list[Conj], set[str]]:
    """The conjunctive matches of one direction on this switch, and the ports whose groups
    allow everything in it."""
    holders: dict[str, list[str]] = defaultdict(list)  # group id -> local port ids
    for port_id in sorted(view.firewall_zones):
        for group_id in dict.fromkeys(view.ports[port_id].security_group_ids or ()):
            holders[group_id].append(port_id)
    # (group, remote) -> the protocol matches of its rules; None once one allows any.
    whats: dict[tuple[str, Remote | None], set[What] | None] = {}
    open_groups: set[str] = set()
    for group_id in sorted(holders):
        group = view.security_groups.get(group_id)
        for rule in group.rules if group is not None else ():
            if rule.direction is not stage.direction or not applies_to_ipv4(rule):
                continue
            remote, rule_whats = remote_of(rule), what_of(rule)
            if remote is None and rule_whats is None:
                open_groups.add(group_id)
                continue
            key = (group_id, remote)
            known = whats.setdefault(key, set())
            if known is not None:
                whats[key] = None if rule_whats is None else known | set(rule_whats)
    allow_all = {p for g in open_groups for p in holders[g]}
    result: list[Conj] = []
    used: set[int] = set()
    for (group_id, remote), group_whats in sorted(
            whats.items(), key=lambda kv: (kv[0][0], kv[0][1] is not None, kv[0][1] or "")):
        ports = tuple(p for p in holders[group_id] if p not in allow_all)
        remotes = None if remote is None else _remote_matches(view, remote)
        if group_id in open_groups or not ports or remotes == ():
            continue
        ident = _conj_id(stage, group_id, remote, used)
        result.append(Conj(ident, group_id, ports,
                           None if group_whats is None else tuple(sorted(group_whats, key=repr)),
                           remotes))
    return result, allow_all


def _remote_matches(view: SwitchView, remote: Remote) -> tuple[MatchValue, ...]:
    if remote.kind is RemoteKind.PREFIX:
        return (address_match(ipaddress.IPv4Network(remote.value)),)
    key = ("remote group", remote.value)
    matches = view.index.memo.get(key)
    if matches is None:   # the same on every switch: once per snapshot's ports
        matches = view.index.memo[key] = tuple(
            address_match(net) for net in view.group_members(remote.value))
    return matches  # type: ignore[return-value]


def _conj_id(stage: Stage, group_id: str, remote: Remote | None, used: set[int]) -> int:
    """A 32-bit conjunction id, stable while its group and remote exist: a hash of
    (direction, group, remote), probing on (rare) collisions within the table."""
    label = "any" if remote is None else f"{remote.kind}:{remote.value}"
    ident = ident_of(f"{stage.direction}|{group_id}|{label}") & 0xFFFFFFFF
    while ident == 0 or ident in used:
        ident = (ident + 1) & 0xFFFFFFFF
    used.add(ident)
    return ident


def _rule_flows(view: SwitchView, stage: Stage) -> list[FlowSpec]:
    conjs, allow_all = _conjunctions(view, stage)
    zones = view.firewall_zones
    to_accept = (GotoTable(stage.accept),)
    flows = [FlowSpec(stage.rules, PRIO_ALLOW_ALL, Match(ct_zone=zones[p]), to_accept,
                      cookie_for(CookieKind.PORT, p)) for p in sorted(allow_all)]
    merged = _Merged()
    for conj in conjs:
        n = conj.dimensions
        for port_id in conj.holders:
            merged.add(stage.rules, Match(ct_zone=zones[port_id]), Conjunction(conj.id, 1, n),
                       cookie_for(CookieKind.PORT, port_id))
    flows.extend(merged.flows())
    flows.extend(shared_rule_flows(stage, conjs))
    return flows


def shared_rule_flows(stage: Stage, conjs: list[Conj], remotes: bool = True) -> list[FlowSpec]:
    """The RULES flows no single port owns: one ``conj_id`` flow per conjunctive match, and
    the *what* and (``remotes``) *remote* dimensions (merged across matches)."""
    to_accept = (GotoTable(stage.accept),)
    flows: list[FlowSpec] = []
    merged = _Merged()
    for conj in conjs:
        n = conj.dimensions
        for what in conj.whats or ():
            merged.add(stage.rules, Match(dict(what)), Conjunction(conj.id, 2, n),
                       SHARED_COOKIE)
        for address in conj.remotes if remotes and conj.remotes else ():
            merged.add(stage.rules, Match(IP, **{stage.remote_field: address}),
                       Conjunction(conj.id, n, n), SHARED_COOKIE)
        flows.append(FlowSpec(stage.rules, PRIO_RULE, Match(conj_id=conj.id), to_accept,
                              cookie_for(CookieKind.SECURITY_GROUP, conj.group_id)))
    flows.extend(merged.flows())
    return flows


def remote_flow(stage: Stage, address: MatchValue,
                conjunctions: Iterable[Conjunction]) -> FlowSpec:
    """The *remote* dimension for one address: every conjunctive match it belongs to."""
    ordered = tuple(sorted(set(conjunctions), key=lambda c: (c.id, c.clause)))
    return FlowSpec(stage.rules, PRIO_RULE, Match(IP, **{stage.remote_field: address}),
                    ordered, SHARED_COOKIE)


def port_rule_flows(view: SwitchView, stage: Stage, port_id: str, conjs: list[Conj],
                    allow_all: set[str]) -> list[FlowSpec]:
    """The RULES flow of one firewalled local port (as :func:`_rule_flows` makes it): accept
    all when one of its groups allows everything, else its *who* dimension of every
    conjunctive match of its groups (``conjs``, ``allow_all``: :func:`conjunctions`)."""
    zone = view.firewall_zones[port_id]
    cookie = cookie_for(CookieKind.PORT, port_id)
    if port_id in allow_all:
        return [FlowSpec(stage.rules, PRIO_ALLOW_ALL, Match(ct_zone=zone),
                         (GotoTable(stage.accept),), cookie)]
    groups = set(view.ports[port_id].security_group_ids or ())
    actions = {Conjunction(c.id, 1, c.dimensions) for c in conjs if c.group_id in groups}
    if not actions:
        return []
    ordered = tuple(sorted(actions, key=lambda c: (c.id, c.clause)))
    return [FlowSpec(stage.rules, PRIO_RULE, Match(ct_zone=zone), ordered, cookie)]


def conjunctions(view: SwitchView, stage: Stage) -> tuple[list[Conj], set[str]]:
    """The conjunctive matches of one direction on this switch, and the ports whose groups
    allow everything in it."""
    return _conjunctions(view, stage)


def port_flows(view: SwitchView, stage: Stage, port_id: str) -> list[FlowSpec]:
    """The STATE and ACCEPT flows of one firewalled local port."""
    return _port_flows(stage, port_id, view.local_ports[port_id], view.firewall_zones[port_id])


def common_flows(stage: Stage) -> list[FlowSpec]:
    """The STATE and RULES flows every switch with a firewalled port has."""
    return _shared_flows(stage)


def _shared_flows(stage: Stage) -> list[FlowSpec]:
    dead = (CT_MARK_DEAD, CT_MARK_DEAD)
    to_accept = (GotoTable(stage.accept),)
    sport, dport = stage.dhcp

    def state(priority: int, actions: tuple[Action, ...], **fields: MatchValue) -> FlowSpec:
        return FlowSpec(stage.state, priority, Match(**fields), actions, SHARED_COOKIE)

    return [
        state(PRIO_INVALID, (), ct_state=ct_state(CT_INV, CT_TRK)),
        state(PRIO_DEAD_REPLY, (), ct_state=ct_state(CT_RPL, CT_TRK), ct_mark=dead),
        state(PRIO_DEAD_RELATED, (), ct_state=ct_state(CT_REL, CT_TRK), ct_mark=dead),
        state(PRIO_REPLY, to_accept, ct_state=ct_state(CT_RPL, CT_TRK)),
        state(PRIO_RELATED, to_accept, ct_state=ct_state(CT_REL, CT_TRK)),
        state(PRIO_CHECK, (GotoTable(stage.rules),), ct_state=ct_state(CT_TRK)),
        FlowSpec(stage.rules, PRIO_DHCP,
                 Match(IP, ip_proto=IP_PROTO_UDP, udp_src=sport, udp_dst=dport),
                 to_accept, SHARED_COOKIE),
    ]


def _port_flows(stage: Stage, port_id: str, ofport: int, zone: int) -> list[FlowSpec]:
    cookie = cookie_for(CookieKind.PORT, port_id)
    on: tuple[Action, ...] = ((GotoTable(Table.ARP_RESPONDER),) if stage is EGRESS
                              else (Output(ofport),))
    flows = [
        FlowSpec(stage.rules, PRIO_KILL,
                 Match(IP, ct_zone=zone, ct_state=ct_state(CT_EST, CT_TRK)),
                 (Ct(commit=True, zone=zone, mark=CT_MARK_DEAD),), cookie),
        FlowSpec(stage.accept, PRIO_COMMIT_NEW,
                 Match(IP, ct_zone=zone, ct_state=ct_state(CT_NEW, CT_TRK)),
                 (Ct(commit=True, zone=zone), *on), cookie),
        FlowSpec(stage.accept, PRIO_REVIVE,
                 Match(IP, ct_zone=zone, ct_mark=(CT_MARK_DEAD, CT_MARK_DEAD)),
                 (Ct(commit=True, zone=zone, mark=0), *on), cookie),
        FlowSpec(stage.accept, PRIO_PASS, Match(ct_zone=zone), on, cookie),
    ]
    if stage is INGRESS:
        flows.append(FlowSpec(stage.state, PRIO_SELF, Match(in_port=ofport, ct_zone=zone), (),
                              cookie))
    return flows


def security_group_flows(view: SwitchView) -> list[FlowSpec]:
    zones = view.firewall_zones
    if not zones:
        return []
    flows: list[FlowSpec] = []
    for stage in (EGRESS, INGRESS):
        flows.extend(_shared_flows(stage))
        for port_id, zone in zones.items():
            flows.extend(_port_flows(stage, port_id, view.local_ports[port_id], zone))
        flows.extend(_rule_flows(view, stage))
    return flows
