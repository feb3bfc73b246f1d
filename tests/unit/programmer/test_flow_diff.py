"""The pure diff: installed x desired -> flow-mod descriptions, no datapath involved."""

from __future__ import annotations

from ryu_sched.flows.spec import FlowSpec, GotoTable, Match, Output, SetField, WriteMetadata
from ryu_sched.programmer import canonical
from ryu_sched.programmer.diff import (
    AddFlow,
    DeleteFlow,
    FlowChanges,
    Installed,
    diff,
    wanted_of,
)

A = FlowSpec(0, 100, Match(in_port=1), (WriteMetadata(5, 0xFFFFFF), GotoTable(10)), cookie=1)
B = FlowSpec(60, 100, Match(metadata=(5, 0xFFFFFF), eth_dst="fa:16:3e:00:00:01"),
             (Output(10),), cookie=2)
C = FlowSpec(60, 90, Match(metadata=(5, 0xFFFFFF)), (Output(1), Output(10)), cookie=3)


def as_installed(*specs: FlowSpec) -> dict[canonical.FlowKey, Installed]:
    """What a switch that has exactly ``specs`` reports, with its own match objects."""
    return {canonical.spec_key(s): Installed(s.cookie, canonical.spec_body(s), f"match-{i}")
            for i, s in enumerate(specs)}


def test_an_empty_switch_gets_every_desired_flow_added() -> None:
    changes = diff({}, wanted_of([A, B, C]))
    assert changes.deletes == ()
    assert [a.spec for a in changes.adds] == [A, B, C]
    assert not any(a.replaces for a in changes.adds)
    assert len(changes) == 3


def test_a_switch_with_exactly_the_desired_flows_needs_nothing() -> None:
    changes = diff(as_installed(A, B, C), wanted_of([A, B, C]))
    assert changes == FlowChanges()
    assert len(changes) == 0


def test_a_flow_not_desired_is_deleted_with_the_switch_s_own_match() -> None:
    changes = diff(as_installed(A, B, C), wanted_of([A, C]))
    assert changes.adds == ()
    (delete,) = changes.deletes
    assert delete == DeleteFlow(canonical.spec_key(B), "match-1")
    assert (delete.table, delete.priority) == (60, 100)


def test_a_changed_body_is_added_again_in_place() -> None:
    moved = FlowSpec(B.table, B.priority, B.match, (Output(11),), B.cookie)
    changes = diff(as_installed(A, B), wanted_of([A, moved]))
    assert changes.deletes == ()
    assert changes.adds == (AddFlow(canonical.spec_key(moved), moved,
                                    canonical.spec_body(moved), replaces=True),)


def test_a_changed_cookie_alone_is_added_again() -> None:
    owned = FlowSpec(C.table, C.priority, C.match, C.actions, cookie=0x99)
    (add,) = diff(as_installed(C), wanted_of([owned])).adds
    assert add.spec == owned and add.replaces


def test_deletes_come_before_adds() -> None:
    changes = diff(as_installed(A, B), wanted_of([A, C]))
    assert [type(m) for m in changes] == [DeleteFlow, AddFlow]


def test_applied_changes_give_the_desired_table() -> None:
    installed = as_installed(A, B)
    wanted = wanted_of([A, C])
    after = diff(installed, wanted).applied_to(installed)
    assert set(after) == set(wanted)
    assert after[canonical.spec_key(A)].match == "match-0"  # untouched: the switch's match
    assert after[canonical.spec_key(C)].match == C.match  # added by us: the spec's match
    assert diff(after, wanted) == FlowChanges()


def test_set_field_values_are_compared_as_the_switch_stores_them() -> None:
    upper = FlowSpec(60, 5, Match(eth_dst="FA:16:3E:00:00:01"),
                     (SetField("eth_src", "FA:16:3E:00:00:02"), Output(1)), cookie=7)
    lower = FlowSpec(60, 5, Match(eth_dst="fa:16:3e:00:00:01"),
                     (SetField("eth_src", "fa:16:3e:00:00:02"), Output(1)), cookie=7)
    assert diff(as_installed(upper), wanted_of([lower])) == FlowChanges()
