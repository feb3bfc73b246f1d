"""The status snapshot built from a real registry (in-memory SQLite, hand-driven clock), and
the gauges a scrape computes from it."""

from __future__ import annotations

import dataclasses
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ryu_sched.leadership import SoleLeadership
from ryu_sched.observability.collect import build_status, is_leader, timeline
from ryu_sched.observability.metrics import Metrics
from ryu_sched.services import Services
from tests.unit.registry.test_agent_scheduler_service import world
from tests.unit.registry.world import DHCP, L3, World


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_agents_and_placements_come_from_the_registry_memory():
    w, handle = world()
    w.agents(2)
    w.agents(1, L3, prefix="gw")
    nets = [w.network() for _ in range(3)]
    router = w.router()
    w.reg.reconcile()
    handle.stats.connections_open = 3
    handle.stats.malformed_frames = 2
    status = build_status(w.services)
    assert [(a.agent_type, a.host) for a in status.agents] == [
        (DHCP, "h0"), (DHCP, "h1"), (L3, "gw0")]
    assert all(a.alive and a.admin_state_up for a in status.agents)
    assert sum(a.load for a in status.agents if a.agent_type == DHCP) == 3
    by_id = {p.id: p for p in status.placements}
    assert set(by_id) == {*nets, router}
    assert by_id[router].kind == "router" and by_id[router].agents == (w.rec("gw0", L3).id,)
    assert all(by_id[n].live_agents == by_id[n].wanted == 1 for n in nets)
    assert status.unhosted_counts() == {"network": 0, "router": 0}
    assert (status.rpc_connections, status.rpc_malformed_frames) == (3, 2)
    assert status.heartbeats == 3 and status.leader and status.agent_down_time == 10.0


def test_an_object_no_agent_could_take_is_unhosted_without_a_binding():
    w, _ = world(dhcp_agents_per_network=2)
    w.agents(1)
    net = w.network()
    router = w.router()                       # no L3 agent at all
    w.reg.reconcile()
    placements = {p.id: p for p in build_status(w.services).placements}
    assert placements[router].agents == () and placements[router].unhosted
    assert placements[net].live_agents == 1 and placements[net].wanted == 2
    assert placements[net].unhosted
    w.agents(1, L3, prefix="late")
    w.reg.reconcile()
    assert build_status(w.services).unhosted_counts() == {"network": 1, "router": 0}
    w.reg.forget_object("network", net)
    assert build_status(w.services).unhosted_counts() == {"network": 0, "router": 0}


def test_unhosted_stays_zero_through_a_failover_with_live_candidates():
    w, _ = world()
    w.agents(2)
    for _ in range(4):
        w.network()
    w.reg.reconcile()
    w.clock.advance(11)
    w.keep_alive([("h1", DHCP)])
    status = build_status(w.services)
    # h0's heartbeat is too old (the API says dead) but the monitor has not judged yet
    assert [a.alive for a in status.agents] == [False, True]
    assert status.unhosted_counts()["network"] == 0
    w.reg.monitor_tick()
    status = build_status(w.services)
    assert status.unhosted_counts()["network"] == 0
    assert [a.load for a in status.agents] == [0, 4]


def test_a_dead_agent_that_nobody_replaces_leaves_its_objects_unhosted():
    w, _ = world(allow_automatic_failover=False)
    w.agents(1)
    w.network()
    w.reg.reconcile()
    w.agents(1, prefix="idle")
    w.clock.advance(11)
    w.keep_alive([("idle0", DHCP)])
    w.reg.monitor_tick()
    status = build_status(w.services)
    assert status.unhosted_counts()["network"] == 1
    assert status.placements[0].agents == (w.rec("h0").id,)


def test_the_gauges_of_a_scrape_follow_the_status():
    w, _ = world()
    w.agents(1)
    w.agents(1, L3, prefix="gw")
    w.network()
    w.reg.reconcile()
    metrics = Metrics(lambda: build_status(w.services))
    samples = scrape(metrics)
    labels = {"agent_type": DHCP, "host": "h0", "availability_zone": "nova"}
    assert value(samples, "ryu_sched_agent_up", **labels) == 1.0
    assert value(samples, "ryu_sched_agent_hosted", agent_type=DHCP, host="h0") == 1.0
    assert value(samples, "ryu_sched_unhosted", kind="network") == 0.0
    assert value(samples, "ryu_sched_leader") == 1.0
    w.clock.advance(11)
    samples = scrape(metrics)
    assert value(samples, "ryu_sched_agent_up", **labels) == 0.0
    assert value(samples, "ryu_sched_agent_heartbeat_age_seconds", **labels) == 11.0


def test_timeline_is_newest_first_and_empty_without_a_registry():
    w, _ = world()
    w.agents(1)
    w.network()
    w.reg.reconcile()
    w.clock.advance(11)
    w.reg.monitor_tick()
    entries = timeline(w.services, 10)
    assert entries[0]["kind"] == "agent" and entries[0]["reason"] == "dead"
    bare = Services(settings=w.services.settings, db=w.db)
    assert timeline(bare, 10) == [] and build_status(bare).agents == ()


@dataclasses.dataclass
class FakeSwitch:
    ready: bool
    installed: dict[int, Any] | None


class FakeProgrammer:
    switches = {0xAA: FakeSwitch(True, dict.fromkeys(range(5))),
                0xBB: FakeSwitch(False, None)}


def test_switches_come_from_the_programmer_table():
    w = World()
    w.services.programmer = FakeProgrammer()
    switches = build_status(w.services).switches
    assert [(s.dpid, s.connected, s.flows) for s in switches] == [
        ("00000000000000aa", True, 5), ("00000000000000bb", False, 0)]


class Elector:
    def __init__(self, leading: bool) -> None:
        self.is_leader = leading


def test_leadership_is_read_from_the_cluster_layer_when_there_is_one():
    w = World()
    assert is_leader(w.services)           # alone on its database: it leads
    for role, expected in ((Elector(False), False), (Elector(True), True),
                           (SoleLeadership(), False), (SoleLeadership(leading=True), True)):
        w.services.leadership = role  # type: ignore[assignment]
        assert is_leader(w.services) is expected
