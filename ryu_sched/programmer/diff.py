"""The difference between a switch's flow table and its desired flows, as flow-mod
descriptions: pure (no framework, no datapath), so that it is tested on plain values.

Installed flows are keyed by their canonical key (:mod:`ryu_sched.programmer.canonical`);
so are the desired ones. A key installed but not desired is deleted strictly; a key desired
but missing is added; a key whose body or cookie differs is added again, which replaces the
entry in place (an OpenFlow 1.3 modify would keep the old cookie).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from ryu_sched.flows.spec import FlowSpec
from ryu_sched.programmer import readback
from ryu_sched.programmer.canonical import Body, FlowKey, of_spec


class Installed(NamedTuple):
    """A flow entry the switch has (or will have once the last change is applied)."""

    cookie: int
    body: Body
    #: what a strict delete matches on: the spec's Match for flows we added, the switch's own
    #: ofp_match bytes for flows read back from it
    match: Any


class Wanted(NamedTuple):
    """A desired flow with its canonical body."""

    spec: FlowSpec
    body: Body


@dataclasses.dataclass(frozen=True, slots=True)
class AddFlow:
    key: FlowKey
    spec: FlowSpec
    body: Body
    #: True when it replaces an entry with the same key whose body or cookie differs
    replaces: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class DeleteFlow:
    key: FlowKey
    match: Any

    @property
    def table(self) -> int:
        return self.key[0]

    @property
    def priority(self) -> int:
        return self.key[1]


FlowMod = AddFlow | DeleteFlow


@dataclasses.dataclass(frozen=True)
class FlowChanges:
    """What to send: deletes, then adds. Keys are unique, so no add needs a delete first."""

    deletes: tuple[DeleteFlow, ...] = ()
    adds: tuple[AddFlow, ...] = ()

    def __len__(self) -> int:
        return len(self.deletes) + len(self.adds)

    def __iter__(self) -> Iterator[FlowMod]:
        yield from self.deletes
        yield from self.adds

    def applied_to(self, installed: Mapping[FlowKey, Installed]) -> dict[FlowKey, Installed]:
        """``installed`` once these changes took effect. Entries left alone keep the switch's
        own match, which a later strict delete reuses."""
        result = dict(installed)
        for delete in self.deletes:
            result.pop(delete.key, None)
        for add in self.adds:
            result[add.key] = Installed(add.spec.cookie, add.body, add.spec.match)
        return result

    def apply_to(self, installed: dict[FlowKey, Installed]) -> None:
        """:meth:`applied_to`, changing ``installed`` in place (no copy of a large table)."""
        for delete in self.deletes:
            installed.pop(delete.key, None)
        for add in self.adds:
            installed[add.key] = Installed(add.spec.cookie, add.body, add.spec.match)


def diff(installed: Mapping[FlowKey, Installed],
         wanted: Mapping[FlowKey, Wanted]) -> FlowChanges:
    """The flow mods that turn ``installed`` into ``wanted``."""
    deletes = tuple(DeleteFlow(key, flow.match)
                    for key, flow in installed.items() if key not in wanted)
    adds = []
    for key, want in wanted.items():
        have = installed.get(key)
        if have is None:
            adds.append(AddFlow(key, want.spec, want.body))
        elif have.body != want.body or have.cookie != want.spec.cookie:
            adds.append(AddFlow(key, want.spec, want.body, replaces=True))
    return FlowChanges(deletes=deletes, adds=tuple(adds))


def wanted_of(desired: Iterable[FlowSpec]) -> dict[FlowKey, Wanted]:
    """Desired flows by canonical key (``desired_flows`` keeps keys unique)."""
    result: dict[FlowKey, Wanted] = {}
    for spec in desired:
        key, body = of_spec(spec)
        result[key] = Wanted(spec, body)
    return result


def installed_of(entries: Iterable[bytes]) -> dict[FlowKey, Installed]:
    """A switch's flow table from its flow-stats entries (each exactly its bytes). An entry
    whose framing is broken is left out: it cannot be named, so neither kept nor deleted."""
    result: dict[FlowKey, Installed] = {}
    for data in entries:
        try:
            entry = readback.decode(data)
        except ValueError:
            continue
        result[entry.key] = Installed(entry.cookie, entry.body, entry.match)
    return result


def diff_keys(installed: Mapping[FlowKey, Installed], wanted: Mapping[FlowKey, Wanted],
              keys: Iterable[FlowKey]) -> FlowChanges:
    """:func:`diff` restricted to ``keys`` (the keys whose desired flow changed, when every
    other key is known to be as desired)."""
    deletes = []
    adds = []
    for key in keys:
        want = wanted.get(key)
        have = installed.get(key)
        if want is None:
            if have is not None:
                deletes.append(DeleteFlow(key, have.match))
        elif have is None:
            adds.append(AddFlow(key, want.spec, want.body))
        elif have.body != want.body or have.cookie != want.spec.cookie:
            adds.append(AddFlow(key, want.spec, want.body, replaces=True))
    return FlowChanges(deletes=tuple(deletes), adds=tuple(adds))
