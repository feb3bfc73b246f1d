"""Security group flows at scale: flows per switch and compile time, against a naive expansion.

    python bench/security_groups.py [--ports 5000 --groups 100 --rules 20 --switches 10]

``--ports`` VM ports on ``--networks`` VLAN networks, spread round-robin over ``--switches``
compute switches; each port is in one of ``--groups`` groups (round-robin, so every group has
members on every switch). Each group has ``--rules`` rules: egress any, and ingress rules of
which half are remote-group rules (from the group itself and from other groups, tcp single
ports and ranges, udp, icmp) and the rest remote-prefix or protocol rules (tcp ranges from
/16 and /24 prefixes, protocol 112, icmp echo).

Figures for one switch (the others are alike): ``desired_flows`` seconds and flows, with the
firewall and without (the same snapshot with ``security_group_ids=None``); the firewall's
flows by table; the conjunction actions those flows carry; and the count a naive expansion
would install for the same rules: per local port, per rule, one flow per port block x remote
address (every member address of a remote group), which is what a switch without conjunctive
matches needs.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ryu_sched.flows.context import SwitchView  # noqa: E402
from ryu_sched.flows.model import (  # noqa: E402
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
from ryu_sched.flows.pipeline import desired_flows  # noqa: E402
from ryu_sched.flows.security_groups import applies_to_ipv4, what_of  # noqa: E402
from ryu_sched.flows.tables import Table  # noqa: E402

FIREWALL_TABLES = (Table.SG_EGRESS_STATE, Table.SG_EGRESS_RULES, Table.SG_EGRESS_ACCEPT,
                   Table.SG_INGRESS_STATE, Table.SG_INGRESS_RULES, Table.SG_INGRESS_ACCEPT)
TCP, UDP, ICMP = 6, 17, 1


def uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name + ".bench.ryu-sched"))


def make_rules(group: int, groups: int, count: int, rng: random.Random) -> tuple:
    gid = uid(f"g{group}")
    rules = [SecurityGroupRule(uid(f"g{group}-out"), Direction.EGRESS)]
    for i in range(count - 1):
        rid = uid(f"g{group}-r{i}")
        if i % 2 == 0:  # remote-group rules: own group first, then others
            remote = gid if i == 0 else uid(f"g{rng.randrange(groups)}")
            kind = i // 2 % 4
            if kind == 0:
                port = rng.choice((22, 80, 443, 5432, 6379, 8080))
                fields = dict(protocol=TCP, port_range_min=port, port_range_max=port)
            elif kind == 1:
                low = rng.randrange(1024, 60000)
                fields = dict(protocol=TCP, port_range_min=low,
                              port_range_max=low + rng.randrange(1, 2000))
            elif kind == 2:
                fields = dict(protocol=UDP, port_range_min=53, port_range_max=53)
            else:
                fields = dict(protocol=ICMP)
            rules.append(SecurityGroupRule(rid, Direction.INGRESS, remote_group_id=remote,
                                           **fields))
        else:  # prefix and protocol rules
            kind = i // 2 % 3
            prefix = f"10.{rng.randrange(200, 250)}.{rng.randrange(256)}.0/24"
            if kind == 0:
                low = rng.randrange(1024, 60000)
                fields = dict(protocol=TCP, port_range_min=low,
                              port_range_max=low + rng.randrange(1, 5000))
            elif kind == 1:
                fields = dict(protocol=112)
                prefix = f"172.{16 + rng.randrange(16)}.0.0/16"
            else:
                fields = dict(protocol=ICMP, port_range_min=8)
            rules.append(SecurityGroupRule(rid, Direction.INGRESS, remote_ip_prefix=prefix,
                                           **fields))
    return gid, tuple(rules)


def make_snapshot(ports: int, networks: int, groups: int, rules: int,
                  switches: int) -> Snapshot:
    rng = random.Random(13)
    nets = [Network(uid(f"n{i}"), i + 1, "t", "vlan", "physnet1", i % 4000 + 1)
            for i in range(networks)]
    subnets = [Subnet(uid(f"s{i}"), n.id, f"10.{i // 256}.{i % 256}.0/24")
               for i, n in enumerate(nets)]
    sgs = [SecurityGroup(*make_rules(g, groups, rules, rng)) for g in range(groups)]
    port_list, locations = [], {}
    per_switch: dict[int, dict[str, int]] = {d: {"uplink": 1} for d in range(1, switches + 1)}
    per_net: Counter[int] = Counter()
    for i in range(ports):
        n = i % networks
        host = per_net[n] + 2
        per_net[n] += 1
        port = Port(uid(f"p{i}"), nets[n].id, f"fa:16:3e:{i >> 16 & 0xFF:02x}:"
                    f"{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
                    ((subnets[n].id, f"10.{n // 256}.{n % 256}.{host}"),), "compute:nova",
                    security_group_ids=(sgs[i % groups].id,))
        dpid = i % switches + 1
        per_switch[dpid][tap_name(port.id)] = len(per_switch[dpid]) + 10
        locations[port.id] = dpid
        port_list.append(port)
    return Snapshot(networks=tuple(nets), subnets=tuple(subnets), ports=tuple(port_list),
                    switches=tuple(Switch(d, ofports) for d, ofports in per_switch.items()),
                    port_locations=locations, security_groups=tuple(sgs))


def naive_rule_flows(snapshot: Snapshot, dpid: int) -> int:
    """Rule flows without conjunctions: every local port x rule x port block x remote."""
    view = SwitchView(snapshot, dpid)
    total = 0
    for port_id in view.firewall_zones:
        for gid in view.ports[port_id].security_group_ids or ():
            for rule in view.security_groups[gid].rules:
                if not applies_to_ipv4(rule):
                    continue
                whats = what_of(rule)
                remotes = (len(view.group_members(rule.remote_group_id))
                           if rule.remote_group_id else 1)
                total += (1 if whats is None else len(whats)) * remotes
    return total


def timed(snapshot: Snapshot, dpid: int, repeat: int) -> tuple[float, list]:
    best, flows = float("inf"), []
    for _ in range(repeat):
        t0 = time.perf_counter()
        flows = desired_flows(snapshot, dpid)
        best = min(best, time.perf_counter() - t0)
    return best, flows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", type=int, default=5000)
    parser.add_argument("--networks", type=int, default=50)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="best of N compilations")
    args = parser.parse_args()

    snapshot = make_snapshot(args.ports, args.networks, args.groups, args.rules, args.switches)
    plain = replace(snapshot, ports=tuple(replace(p, security_group_ids=None)
                                          for p in snapshot.ports), security_groups=())
    dpid = 1
    local = sum(1 for loc in snapshot.port_locations.values() if loc == dpid)
    seconds, flows = timed(snapshot, dpid, args.repeat)
    plain_seconds, plain_flows = timed(plain, dpid, args.repeat)
    by_table = Counter(int(f.table) for f in flows)
    firewall = sum(by_table[int(t)] for t in FIREWALL_TABLES)
    rule_flows = by_table[int(Table.SG_EGRESS_RULES)] + by_table[int(Table.SG_INGRESS_RULES)]
    conj_actions = sum(len(f.conjunctions) for f in flows)
    naive = naive_rule_flows(snapshot, dpid)
    rule_count = sum(len(g.rules) for g in snapshot.security_groups)

    print(f"security groups: {args.ports:,} ports, {args.groups} groups x {args.rules} rules "
          f"({rule_count:,} rules), {args.networks} networks, {args.switches} switches")
    print(f"switch {dpid}: {local} firewalled ports bound")
    print(f"  desired_flows with firewall:    {seconds:.3f}s, {len(flows):,} flows")
    print(f"  desired_flows without firewall: {plain_seconds:.3f}s, {len(plain_flows):,} flows")
    print("  firewall tables: " + ", ".join(f"{Table(t).name} {by_table[int(t)]:,}"
                                            for t in FIREWALL_TABLES))
    print(f"  firewall flows {firewall:,} (rule flows {rule_flows:,}, carrying "
          f"{conj_actions:,} conjunction actions)")
    print(f"  naive members x rules expansion: {naive:,} rule flows "
          f"({naive / rule_flows:.0f}x the conjunctive rule flows)")


if __name__ == "__main__":
    main()
