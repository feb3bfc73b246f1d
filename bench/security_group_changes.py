"""Security group changes at scale: what one change costs to compile and how many flows move.

    python bench/security_group_changes.py [--members 2000 --switches 10 --watchers 200]

Two changes, each against a cloud of ``--members`` VM ports spread round-robin over
``--switches`` compute switches (one VLAN network per 250 ports):

(a) *a port joins a remote group*: group ``app`` has ``--members`` ports; group ``db``
    (``--watchers`` other ports, on every switch) allows tcp 5432 from members of ``app``.
    One more port joins ``app``: every switch that holds a ``db`` port gains the new
    member's address as a remote of the conjunction, and the port's own switch its *who*
    flow.
(b) *a rule is added to a group of 2,000 ports*: group ``web`` has ``--members`` ports; a
    rule tcp 8080 from 0.0.0.0/0 is added: every switch gains the rule's flows and every
    local member's *who* flow gains a conjunction action.

For each: ``desired_flows`` of every switch before and after (seconds, all switches), and the
diff the programmer would send (flows added, removed, and changed in place, summed over the
switches), computed on the flow specs. Pure: no switch, no controller.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flows.model import (  # noqa: E402
    Direction,
    Network,
    Port,
    SecurityGroup,
    SecurityGroupRule,
    Snapshot,
    Subnet,
    Switch,
    tap_name,
)
from flows.pipeline import desired_flows  # noqa: E402
from flows.spec import FlowSpec  # noqa: E402

TCP = 6
PORTS_PER_NETWORK = 250


def uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name + ".sgchanges.bench.ryu-sched"))


def egress_any(group: str) -> SecurityGroupRule:
    return SecurityGroupRule(uid(group + "-out"), Direction.EGRESS)


def cloud(members: int, watchers: int, switches: int, member_group: str,
          watcher_group: str | None) -> tuple[Snapshot, list[str]]:
    """``members`` ports in ``member_group`` and ``watchers`` in ``watcher_group``, round
    robin over the switches; returns the snapshot and the member port ids."""
    total = members + watchers + 1
    nets, subnets = [], []
    for n in range((total + PORTS_PER_NETWORK - 1) // PORTS_PER_NETWORK):
        nets.append(Network(uid(f"n{n}"), n + 1, "t", "vlan", "physnet1", n + 1))
        subnets.append(Subnet(uid(f"s{n}"), nets[-1].id, f"10.{n // 256}.{n % 256}.0/24"))
    ports, locations = [], {}
    per_switch: dict[int, dict[str, int]] = {d: {"uplink": 1} for d in range(1, switches + 1)}
    member_ids = []
    for i in range(total):
        n = i // PORTS_PER_NETWORK
        if i < members:
            groups: tuple[str, ...] = (member_group,)
            member_ids.append(uid(f"p{i}"))
        elif i < members + watchers and watcher_group is not None:
            groups = (watcher_group,)
        else:
            groups = ()  # the last port: the one that will join
        port = Port(uid(f"p{i}"), nets[n].id, f"fa:16:3e:00:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
                    ((subnets[n].id, f"10.{n // 256}.{n % 256}.{i % PORTS_PER_NETWORK + 2}"),),
                    "compute:nova", security_group_ids=groups)
        dpid = i % switches + 1
        per_switch[dpid][tap_name(port.id)] = len(per_switch[dpid]) + 10
        locations[port.id] = dpid
        ports.append(port)
    return Snapshot(networks=tuple(nets), subnets=tuple(subnets), ports=tuple(ports),
                    switches=tuple(Switch(d, p) for d, p in per_switch.items()),
                    port_locations=locations), member_ids


def compile_all(snapshot: Snapshot) -> tuple[float, dict[int, list[FlowSpec]]]:
    t0 = time.perf_counter()
    flows = {sw.dpid: desired_flows(snapshot, sw.dpid) for sw in snapshot.switches}
    return time.perf_counter() - t0, flows


def diff(before: dict[int, list[FlowSpec]], after: dict[int, list[FlowSpec]]
         ) -> tuple[int, int, int, int]:
    """(added, removed, changed in place, switches touched) over all switches."""
    added = removed = changed = touched = 0
    for dpid in after:
        old = {f.key: f for f in before[dpid]}
        new = {f.key: f for f in after[dpid]}
        a = sum(1 for k in new if k not in old)
        r = sum(1 for k in old if k not in new)
        c = sum(1 for k in new if k in old and new[k] != old[k])
        added, removed, changed = added + a, removed + r, changed + c
        touched += bool(a or r or c)
    return added, removed, changed, touched


def report(title: str, before: Snapshot, after: Snapshot) -> None:
    seconds_before, flows_before = compile_all(before)
    seconds_after, flows_after = compile_all(after)
    added, removed, changed, touched = diff(flows_before, flows_after)
    total = sum(len(f) for f in flows_after.values())
    switches = len(after.switches)
    print(title)
    print(f"  desired_flows, {switches} switches: {seconds_before:.2f}s before, "
          f"{seconds_after:.2f}s after ({seconds_after / switches * 1000:.0f} ms a switch); "
          f"{total:,} flows in all")
    print(f"  diff: {added:,} added, {removed:,} removed, {changed:,} changed in place, "
          f"on {touched} of {switches} switches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--switches", type=int, default=10)
    args = parser.parse_args()

    app, db = uid("app"), uid("db")
    snap, _ = cloud(args.members, args.watchers, args.switches, app, db)
    groups = (SecurityGroup(app, (egress_any("app"),
                                  SecurityGroupRule(uid("app-in"), Direction.INGRESS,
                                                    remote_group_id=app))),
              SecurityGroup(db, (egress_any("db"),
                                 SecurityGroupRule(uid("db-in"), Direction.INGRESS,
                                                   protocol=TCP, port_range_min=5432,
                                                   port_range_max=5432,
                                                   remote_group_id=app))))
    before = replace(snap, security_groups=groups)
    joiner = before.ports[-1]
    after = replace(before, ports=(*before.ports[:-1],
                                   replace(joiner, security_group_ids=(app,))))
    report(f"(a) one port joins a {args.members:,}-member remote group "
           f"({args.watchers} ports of another group name it)", before, after)

    web = uid("web")
    snap, _ = cloud(args.members, 0, args.switches, web, None)
    rules = (egress_any("web"), SecurityGroupRule(uid("web-22"), Direction.INGRESS,
                                                  protocol=TCP, port_range_min=22,
                                                  port_range_max=22,
                                                  remote_ip_prefix="192.0.2.0/24"))
    before = replace(snap, security_groups=(SecurityGroup(web, rules),))
    added_rule = SecurityGroupRule(uid("web-8080"), Direction.INGRESS, protocol=TCP,
                                   port_range_min=8080, port_range_max=8080,
                                   remote_ip_prefix="0.0.0.0/0")
    after = replace(before, security_groups=(SecurityGroup(web, (*rules, added_rule)),))
    report(f"(b) one rule added to a group of {args.members:,} ports", before, after)


if __name__ == "__main__":
    main()
