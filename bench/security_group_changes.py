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
switches), computed on the flow specs.

(c) the same two changes through the real controller process (``python -m
    ryu_sched.launcher``) and a real ``ovs-vswitchd`` 3.x: the cloud of (a) is written to a
    SQLite file (the ``app`` group also has ``--members`` ports), compute switch 1 (its share
    of the ports as dummy interfaces, as in bench/programmer.py) is connected and filled;
    then (c1) ``PUT /v2.0/ports/<id>`` puts one more port of switch 1 in ``app``, and (c2)
    ``POST /v2.0/security-group-rules`` adds tcp 8080 from 0.0.0.0/0 to ``app``. Timed from
    the request until ``ovs-ofctl`` shows the new flows on the switch, with the programmer's
    own figures (flow-mods, seconds) from its log. Needs root and Open vSwitch; ``--no-ovs``
    skips it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ryu_sched.db import models as db  # noqa: E402
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
from ryu_sched.flows.spec import FlowSpec  # noqa: E402

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
    compile_all(before)  # warm: owner idents are computed once per process
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


# --- (c) through the controller, on a real switch ---------------------------------------------

BRIDGE = "br-int"


def populate(path: Path, snapshot: Snapshot, groups: tuple[SecurityGroup, ...]) -> None:
    """The snapshot's networks, subnets, ports (with their groups, bound where the snapshot
    puts them) and ``groups`` as database rows."""
    from sqlalchemy import insert

    from ryu_sched.db import Database

    database = Database(f"sqlite:///{path}")
    database.create_schema()
    with database.session() as session:
        session.execute(insert(db.Network), [dict(
            id=n.id, key=n.key, project_id="t", name=f"net-{n.key}", network_type="vlan",
            physical_network="physnet1", segmentation_id=n.segmentation_id)
            for n in snapshot.networks])
        session.execute(insert(db.Subnet), [dict(
            id=s.id, project_id="t", network_id=s.network_id, cidr=s.cidr,
            gateway_ip=s.cidr.replace(".0/24", ".1")) for s in snapshot.subnets])
        session.execute(insert(db.Port), [dict(
            id=p.id, project_id="t", network_id=p.network_id, mac_address=p.mac,
            device_owner=p.device_owner, status="ACTIVE",
            bound_dpid=snapshot.port_locations[p.id]) for p in snapshot.ports])
        session.execute(insert(db.IPAllocation), [dict(
            port_id=p.id, subnet_id=p.fixed_ips[0][0], network_id=p.network_id,
            ip_address=p.ips[0]) for p in snapshot.ports])
        session.execute(insert(db.SecurityGroup), [dict(id=g.id, project_id="t", name=g.id)
                                                   for g in groups])
        session.execute(insert(db.SecurityGroupRule), [dict(
            id=r.id, project_id="t", security_group_id=g.id, direction=str(r.direction),
            ethertype="IPv4", protocol=None if r.protocol is None else str(r.protocol),
            port_range_min=r.port_range_min, port_range_max=r.port_range_max,
            remote_ip_prefix=r.remote_ip_prefix, remote_group_id=r.remote_group_id)
            for g in groups for r in g.rules])
        session.execute(insert(db.SecurityGroupPortBinding), [dict(
            port_id=p.id, security_group_id=gid) for p in snapshot.ports
            for gid in p.security_group_ids or ()])
    database.dispose()


def api(url: str, method: str, path: str, body: Any) -> Any:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                     method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def through_the_controller(snapshot: Snapshot, groups: tuple[SecurityGroup, ...],
                           app: str, members: int) -> None:
    from bench.programmer import ControllerLog, Ovs, wait_for
    from tests.support.controller import ControllerProcess
    from tests.topology import cleanup, netns, unique_prefix
    from tests.topology._run import child_env
    from tests.topology.netns import add_netns

    workdir = Path(tempfile.mkdtemp(prefix="bench-sgchanges-"))
    populate(workdir / "ryu_sched.sqlite", snapshot, groups)
    switch = next(sw for sw in snapshot.switches if sw.dpid == 1)
    joiner = snapshot.ports[-1]
    assert snapshot.port_locations[joiner.id] == 1, "the joining port is on switch 1"
    prefix = unique_prefix("b")
    add_netns(prefix + "ovs")
    try:
        with netns(prefix + "ovs"):
            ovs = Ovs(workdir / "ovs", child_env(prefix))
            ovs.root.mkdir()
            ovs.start()
            ovs.add_bridge(BRIDGE, 1, dict(switch.ports))
            controller = ControllerProcess(workdir / "controller", options={
                "connection": f"sqlite:///{workdir / 'ryu_sched.sqlite'}",
                "allow_automatic_failover": False, "network_auto_schedule": False,
                "router_auto_schedule": False})
            try:
                controller.start(timeout=60)
                log = ControllerLog(controller.log_path)
                t0 = time.perf_counter()
                ovs.set_controller(BRIDGE, f"tcp:127.0.0.1:{controller.of_port}")
                _t, mods, _desired, prog_s = log.wait_sync(1, 0, 120)
                print(f"(c) switch 1 ({len(switch.ports) - 1} ports bound) filled: {mods:,} "
                      f"flow-mods in {time.perf_counter() - t0:.2f}s (programmer {prog_s:.2f}s)")

                def change(label: str, method: str, path: str, body: Any,
                           on_switch: Any) -> None:
                    seen = len(log.syncs(1))
                    t0 = time.perf_counter()
                    api(controller.url, method, path, body)
                    answered = time.perf_counter() - t0
                    t1 = wait_for(on_switch, 120, label, interval=0.005)
                    _t, mods, desired, prog_s = log.wait_sync(1, seen, 120)
                    print(f"  {label}: on the switch {t1 - t0:.3f}s after the request "
                          f"(API answered in {answered:.3f}s); the programmer sent "
                          f"{mods:,} flow-mods for {desired:,} desired in {prog_s:.3f}s")

                ip = joiner.ips[0]
                change(f"(c1) one port joins app ({members:,} members)",
                       "PUT", f"/v2.0/ports/{joiner.id}",
                       {"port": {"security_groups": [app]}},
                       lambda: "conjunction" in ovs.ofctl(
                           BRIDGE, "dump-flows", f"table=72,ip,nw_src={ip}"))
                change(f"(c2) one rule added to app ({members + 1:,} ports)", "POST",
                       "/v2.0/security-group-rules",
                       {"security_group_rule": {
                           "security_group_id": app, "direction": "ingress",
                           "protocol": "tcp", "port_range_min": 8080,
                           "port_range_max": 8080, "remote_ip_prefix": "0.0.0.0/0"}},
                       lambda: "conjunction" in ovs.ofctl(
                           BRIDGE, "dump-flows", "table=72,tcp,tp_dst=8080"))
            except Exception:
                print(controller.log_text()[-3000:])
                raise
            finally:
                controller.stop()
                ovs.stop()
    finally:
        cleanup(prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument("--no-ovs", action="store_true", help="only (a) and (b)")
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

    if not args.no_ovs:
        app_snapshot, _ = cloud(args.members, args.watchers, args.switches, app, db)
        through_the_controller(replace(app_snapshot, security_groups=groups), groups, app,
                               args.members)


if __name__ == "__main__":
    main()
