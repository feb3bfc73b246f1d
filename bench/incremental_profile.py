"""In-process profile of one change: a new VM's tap appears on its switch (no OVS, no database).

    python bench/incremental_profile.py [--ports 3000 30000] [--per-network 6] [--switches 6]
                                        [--events 30] [--full]

A synthetic cloud in the flows layer's vocabulary: ``--ports`` VM ports (one fixed IP each,
in their tenant's default security group, whose ingress rule admits the group's members),
``--per-network`` ports per VLAN network, spread over ``--switches`` switches, every switch
already brought to its desired table. Then ``--events`` times a port with no tap yet gets
one on a switch, and the work the programmer does for it is timed, stage by stage, the same
way ``Programmer._absorb`` and ``Programmer.sync_switch`` do it (``--creates``: also ports
created, each a new member of the default group, before their taps appear):

* incremental (what the programmer does now): the port locations compared with the last
  round's, the switches the move concerns (``engine.affected_switches``), the snapshot and
  each concerned switch's view, only the partitions of its desired table the move touches
  recomputed (``desired.SwitchTable.refresh``) and only their keys diffed;
* ``--full`` also times what it did before, in the same run: every switch's whole desired
  table (``desired_flows``), canonical forms and diff over every key.

Figures are the programmer's own CPU time for one change, without OpenFlow and OVS (see
``bench/port_latency.py`` for the end to end latency on real switches).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from typing import Any

from ryu_sched.flows import model as fm
from ryu_sched.flows.context import SwitchView
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.programmer import diff
from ryu_sched.programmer.desired import Change, SwitchTable
from ryu_sched.programmer.engine import ModelState, Touched, affected_switches
from ryu_sched.programmer.snapshot import Model, Recorded, assemble, locations

UPLINKS = {"physnet1": "uplink"}


def build(ports: int, per_network: int, switches: int, seed: int = 1) -> tuple[Model, dict]:
    rng = random.Random(seed)

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    group_id = uid()
    group = fm.SecurityGroup(group_id, (
        fm.SecurityGroupRule(uid(), fm.Direction.INGRESS, remote_group_id=group_id),
        fm.SecurityGroupRule(uid(), fm.Direction.EGRESS)))
    count = max(1, ports // per_network)
    networks, subnets, port_list = [], [], []
    for i in range(count):
        network = fm.Network(uid(), i + 1, "tenant", "vlan", "physnet1", 1 + i % 4000)
        prefix = f"10.{i // 256 % 256}.{i % 256}"
        networks.append(network)
        subnets.append(fm.Subnet(uid(), network.id, f"{prefix}.0/24", f"{prefix}.1"))
    taps: dict[int, dict[str, int]] = {d: {"uplink": 1} for d in range(1, switches + 1)}
    recorded = {}
    for j in range(ports):
        network, subnet = networks[j % count], subnets[j % count]
        prefix = subnet.cidr.rsplit(".", 1)[0]
        mac = f"fa:16:3e:{j >> 16 & 255:02x}:{j >> 8 & 255:02x}:{j & 255:02x}"
        address = f"{prefix}.{10 + j // count}"
        port = fm.Port(uid(), network.id, mac, ((subnet.id, address),), "compute:nova", uid(),
                       security_group_ids=(group_id,))
        port_list.append(port)
        dpid = 1 + j % switches
        taps[dpid][fm.tap_name(port.id)] = 10 + j
        recorded[port.id] = Recorded(dpid, "ACTIVE")
    model = Model(tuple(networks), tuple(subnets), tuple(port_list), (), (), (group,), {},
                  recorded, {fm.tap_name(p.id): p.id for p in port_list})
    return model, taps


class Timer:
    def __init__(self) -> None:
        self.stages: dict[str, list[float]] = {}
        self._last = time.perf_counter()

    def start(self) -> None:
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages.setdefault(stage, []).append(now - self._last)
        self._last = now


def run(args: argparse.Namespace, ports: int) -> None:
    model, taps = build(ports, args.per_network, args.switches)
    state = ModelState(model)
    rng = random.Random(2)
    # the ports whose taps will appear: unplugged at first (recorded nowhere)
    coming = rng.sample(list(model.ports), args.events)
    for port in coming:
        for names in taps.values():
            names.pop(fm.tap_name(port.id), None)
    state.record({p.id: Recorded(None, "DOWN") for p in coming})
    model = state.model()
    where = locations(model, taps)
    snapshot = assemble(model, taps, UPLINKS, where)
    started = time.perf_counter()
    tables = {}
    installed = {}
    for dpid in taps:
        tables[dpid] = SwitchTable()
        tables[dpid].refresh(SwitchView(snapshot, dpid), None)
        tables[dpid].take_changed()
        installed[dpid] = {k: diff.Installed(w.spec.cookie, w.body, w.spec.match)
                           for k, w in tables[dpid].wanted.items()}
    flows = sum(len(t) for t in tables.values())
    described = {switch.dpid: switch for switch in snapshot.switches}
    print(f"\n{ports} ports, {len(model.networks)} networks, {args.switches} switches, "
          f"{flows} flows (built in {time.perf_counter() - started:.1f}s)")
    new, old = Timer(), Timer()
    totals: dict[str, Any] = {"incremental": [], "full": []}
    concerned_counts = []
    for n, port in enumerate(coming):
        dpid = 1 + n % args.switches
        taps[dpid][fm.tap_name(port.id)] = 10 + ports + n  # OVS numbers ofports from 1
        # --- incremental, as Programmer._absorb and sync_switch
        begin = time.perf_counter()
        new.start()
        model = state.model()
        # as Programmer._relocate: only the port whose tap changed, in place
        was = {port.id: where[port.id]} if port.id in where else {}
        where[port.id] = dpid
        after = where
        moved = {port.id}
        new.lap("locations")
        touched = Touched(ports=moved)
        concerned = affected_switches(state, touched, [was, after], taps)
        concerned_counts.append(len(concerned))
        new.lap("affected switches")
        # as Programmer.snapshot: the locations not copied, the other switches reused
        described[dpid] = fm.Switch(dpid, dict(taps[dpid]), UPLINKS)
        snapshot = fm.Snapshot(
            networks=model.networks, subnets=model.subnets, ports=model.ports,
            routers=model.routers, floating_ips=model.floating_ips,
            security_groups=model.security_groups,
            switches=tuple(described[d] for d in sorted(described)),
            port_locations=fm.FrozenMap.over(after))
        new.lap("snapshot")
        for switch in sorted(concerned):
            view = SwitchView(snapshot, switch)
            new.lap("views")
            tables[switch].refresh(view, Change(ports=set(moved)))
            new.lap("partitions")
            changes = diff.diff_keys(installed[switch], tables[switch].wanted,
                                     tables[switch].take_changed())
            changes.apply_to(installed[switch])
            new.lap("diff")
        totals["incremental"].append(time.perf_counter() - begin)
        # --- before: every switch's whole table (the model read is not counted)
        if args.full:
            begin = time.perf_counter()
            old.start()
            snapshot = assemble(model, taps, UPLINKS, locations(model, taps))
            old.lap("snapshot")
            for switch in taps:
                specs = desired_flows(snapshot, switch)
                old.lap("desired_flows")
                wanted = diff.wanted_of(specs)
                old.lap("canonical forms")
                diff.diff(installed[switch], wanted)
                old.lap("diff")
            totals["full"].append(time.perf_counter() - begin)
    if args.creates:
        create(args, state, tables, installed, described, where, totals)
    print(f"  switches concerned by a tap: {statistics.mean(concerned_counts):.1f} on average")
    for name, timer in (("incremental", new), ("full (before)", old),
                        ("port created", totals.get("timer"))):
        key = name.split()[0]
        if timer is None or key not in totals:
            continue
        if not totals[key]:
            continue
        print(f"  {name}: per change p50 {_ms(_pct(totals[key], 50))}, "
              f"p99 {_ms(_pct(totals[key], 99))}, max {_ms(max(totals[key]))}")
        for stage, laps in timer.stages.items():
            per_change = sum(laps) / len(totals[key])
            print(f"    {stage:<18} {_ms(per_change)} per change")


def create(args: argparse.Namespace, state: ModelState, tables: dict[int, SwitchTable],
           installed: dict[int, dict], described: dict[int, fm.Switch],
           where: dict[str, int], totals: dict[str, Any]) -> None:
    """``--creates`` ports created (no tap yet), applied to the model as the engine does for
    their PortChanged event: every switch with a port in their group (whose ingress rule
    admits the group's members) gets the new member's address."""
    timer = Timer()
    totals["port"], totals["timer"] = [], timer
    model = state.model()
    group_id = model.ports[0].security_group_ids[0]
    rng = random.Random(3)
    for n in range(args.creates):
        network = rng.choice(model.networks)
        subnet = next(s for s in model.subnets if s.network_id == network.id)
        port = fm.Port(str(uuid.UUID(int=rng.getrandbits(128), version=4)), network.id,
                       f"fa:16:3f:00:{n >> 8 & 255:02x}:{n & 255:02x}",
                       ((subnet.id, subnet.cidr.rsplit(".", 1)[0] + f".{200 + n % 50}"),),
                       "compute:nova", "vm", security_group_ids=(group_id,))
        begin = time.perf_counter()
        timer.start()
        state.ports[port.id] = port
        state.ports_by_network.setdefault(network.id, set()).add(port.id)
        state.recorded[port.id] = Recorded(None, "DOWN")
        state.tap_to_port[fm.tap_name(port.id)] = port.id
        state._changed(state.ports)
        model = state.model()
        timer.lap("model")
        touched = Touched(ports={port.id}, networks={network.id}, groups={group_id})
        concerned = affected_switches(state, touched, [where], described)
        timer.lap("affected switches")
        snapshot = fm.Snapshot(
            networks=model.networks, subnets=model.subnets, ports=model.ports,
            routers=model.routers, floating_ips=model.floating_ips,
            security_groups=model.security_groups,
            switches=tuple(described[d] for d in sorted(described)),
            port_locations=fm.FrozenMap.over(where))
        timer.lap("snapshot")
        for switch in sorted(concerned):
            view = SwitchView(snapshot, switch)
            timer.lap("views")
            tables[switch].refresh(view, Change(ports={port.id}, networks={network.id},
                                                groups={group_id}))
            timer.lap("partitions")
            changes = diff.diff_keys(installed[switch], tables[switch].wanted,
                                     tables[switch].take_changed())
            changes.apply_to(installed[switch])
            timer.lap("diff")
        totals["port"].append(time.perf_counter() - begin)


def _pct(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, nargs="+", default=[3000, 30000])
    parser.add_argument("--per-network", type=int, default=6)
    parser.add_argument("--switches", type=int, default=6)
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--creates", type=int, default=0,
                        help="also time this many ports created (their PortChanged event)")
    parser.add_argument("--full", action="store_true",
                        help="also time the full recompute of every switch (before)")
    args = parser.parse_args(argv)
    for ports in args.ports:
        run(args, ports)


if __name__ == "__main__":
    main()
