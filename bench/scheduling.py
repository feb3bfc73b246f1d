"""Scheduling at scale, through the real registry and a SQLite file database.

    python bench/scheduling.py [--networks 10000 --routers 10000 --agents 1000 --dead 100]

1,000 agents (half DHCP, half L3; every other L3 agent has an external port) register by
``report_state``; 10,000 networks (each with a DHCP subnet) and 10,000 routers (10% with a
gateway) are inserted unhosted. Figures:

- *batch*: the reconcile that schedules everything unhosted (what happens when agents appear
  or the controller starts): seconds, and the max/min load ratio per agent type;
- *per event*: ``--events`` networks and routers created one by one through bus events (the
  API path: one placement and one transaction each), as objects per second;
- *failover*: ``--dead`` agents stop heartbeating; the seconds of the one monitor tick that
  moves everything they hosted (bindings + move log, one transaction); with ``--ha-share``,
  that share of the routers are HA routers (``max_l3_agents_per_router`` 2): their standbys
  promoted in the same transaction (the switchovers are counted);
- *rebalance*: the dead agents come back (empty); the seconds of one rebalance of both
  kinds, every candidate move checked by the driver's filter.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ryu_sched.config import Settings  # noqa: E402
from ryu_sched.db import Database, models  # noqa: E402
from ryu_sched.events import Action, RouterChanged, SubnetChanged  # noqa: E402
from ryu_sched.registry.reactions import Reactions  # noqa: E402
from ryu_sched.registry.registry import Registry  # noqa: E402
from ryu_sched.services import Services  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def seed(db: Database, networks: int, routers: int, gateway_share: float,
         first: int = 0, ha_share: float = 0.0) -> tuple[list[str], list[str]]:
    with db.session() as session:
        nets = [models.Network(name=f"n{first + i}", physical_network=f"p{(first + i) // 4000}",
                               segmentation_id=(first + i) % 4000 + 1) for i in range(networks)]
        session.add_all(nets)
        session.flush()
        session.add_all(models.Subnet(network_id=n.id, cidr="10.0.0.0/24") for n in nets)
        n_gw = int(routers * gateway_share)
        ext = models.Network(name="ext", physical_network=f"ext{first}", segmentation_id=1)
        session.add(ext)
        session.flush()
        ports = [models.Port(network_id=ext.id, mac_address=f"fa:16:{i:08x}")
                 for i in range(n_gw)]
        session.add_all(ports)
        session.flush()
        n_ha = int(routers * ha_share)
        rtrs = [models.Router(name=f"r{i}", gw_port_id=ports[i].id if i < n_gw else None,
                              ha=i >= routers - n_ha)
                for i in range(routers)]
        session.add_all(rtrs)
        session.flush()
        return [n.id for n in nets], [r.id for r in rtrs]


def load_ratio(registry: Registry, agent_type: str) -> str:
    loads = [registry.load_of(rec.id) for rec in registry.agents.of_type(agent_type)]
    low, high = min(loads), max(loads)
    return f"min {low} max {high} ratio {high / low if low else float('inf'):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--networks", type=int, default=10_000)
    parser.add_argument("--routers", type=int, default=10_000)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--dead", type=int, default=100)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--driver", default="least_loaded")
    parser.add_argument("--ha-share", type=float, default=0.0,
                        help="share of the routers that are HA routers (0..1)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    with tempfile.TemporaryDirectory(prefix="ryu-sched-bench-") as tmp:
        db = Database(f"sqlite:///{tmp}/sched.sqlite")
        db.create_schema()
        settings = Settings(agent_down_time=15, network_scheduler_driver=args.driver,
                            router_scheduler_driver=args.driver)
        services = Services(settings=settings, db=db)
        clock = Clock()
        registry = Registry(services, clock=clock)
        reactions = Reactions(registry)
        registry.started = clock.now - 60
        hosts = []
        for i in range(args.agents):
            dhcp = i % 2 == 0
            state = {"agent_type": "DHCP agent" if dhcp else "L3 agent", "host": f"h{i:05d}",
                     "availability_zone": f"az{i % 3}",
                     "configurations": {"datapath_id": f"{i + 1:016x}",
                                        **({"external_port": "ext0"} if i % 4 == 1 else {})}}
            registry.report_state(None, state)
            hosts.append(state)
        registry.flush()
        seed(db, args.networks, args.routers, 0.1, ha_share=args.ha_share)
        print(f"scheduling: {args.networks:,} networks + {args.routers:,} routers over "
              f"{args.agents:,} agents (driver {args.driver}, SQLite file)")

        started = time.perf_counter()
        scheduled = registry.reconcile()
        batch = time.perf_counter() - started
        print(f"  batch schedule: {scheduled:,} bindings in {batch:.2f}s "
              f"({scheduled / batch:,.0f}/s)")
        print(f"  DHCP agent load: {load_ratio(registry, 'DHCP agent')}")
        print(f"  L3 agent load:   {load_ratio(registry, 'L3 agent')}")

        nets, rtrs = seed(db, args.events, args.events, 0.1, first=args.networks)
        started = time.perf_counter()
        for net_id in nets:
            reactions.handle(SubnetChanged(Action.CREATE, "s", net_id))
        for router_id in rtrs:
            reactions.handle(RouterChanged(Action.CREATE, router_id))
        per_event = time.perf_counter() - started
        print(f"  per event: {2 * args.events:,} objects in {per_event:.2f}s "
              f"({2 * args.events / per_event:,.0f}/s, one transaction each)")

        # failover: --dead agents spread over the list (half DHCP, half L3) stop; everyone
        # else heartbeats on
        clock.now += settings.agent_down_time + 1
        step = max(1, args.agents // max(1, args.dead))
        dead_hosts = {hosts[(i * step + i % 2) % len(hosts)]["host"] for i in range(args.dead)}
        for state in hosts:
            if state["host"] not in dead_hosts:
                registry.report_state(None, state)
        registry.flush()
        hosted = sum(registry.load_of(r.id) for r in registry.agents
                     if r.host in dead_hosts)
        started = time.perf_counter()
        summary = registry.monitor_tick()
        failover = time.perf_counter() - started
        left = sum(registry.load_of(r.id) for r in registry.agents
                   if r.host in dead_hosts)
        print(f"  failover: {args.dead} dead agents hosting {hosted:,} objects; moved "
              f"{summary['moved']:,} in {failover:.2f}s (one monitor tick; "
              f"{summary.get('switched', 0):,} standbys promoted); left on dead agents: {left}")
        print(f"  after failover DHCP load: {load_ratio_alive(registry, 'DHCP agent')}")
        print(f"  after failover L3 load:   {load_ratio_alive(registry, 'L3 agent')}")

        # rebalance: the dead agents come back empty; every move is checked by the driver
        clock.now += 1
        for state in hosts:
            registry.report_state(None, state)
        registry.flush()
        started = time.perf_counter()
        moves = registry.rebalance()
        rebalance = time.perf_counter() - started
        print(f"  rebalance: {len(moves):,} moves in {rebalance:.2f}s; DHCP load "
              f"{load_ratio_alive(registry, 'DHCP agent')}, L3 load "
              f"{load_ratio_alive(registry, 'L3 agent')}")
        db.dispose()


def load_ratio_alive(registry: Registry, agent_type: str) -> str:
    loads = [registry.load_of(rec.id) for rec in registry.agents.of_type(agent_type)
             if registry.is_alive(rec)]
    low, high = min(loads), max(loads)
    return f"min {low} max {high} ratio {high / low if low else float('inf'):.2f}"


if __name__ == "__main__":
    main()
