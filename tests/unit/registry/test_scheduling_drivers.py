"""The scheduler drivers are pure: candidates and placements in, agent ids out."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from ryu_sched.scheduling import Candidate, LoadPool, Placement, get_driver
from ryu_sched.scheduling.chance import ChanceScheduler


def agents(n: int, zones: tuple[str, ...] = ("az1",), ext_every: int = 0,
           load: int = 0) -> list[Candidate]:
    return [Candidate(f"a{i:04d}", f"h{i}", zones[i % len(zones)], load,
                      bool(ext_every) and i % ext_every == 0) for i in range(n)]


def test_least_loaded_picks_the_agent_hosting_least():
    cands = [Candidate("busy", load=5), Candidate("idle", load=1), Candidate("mid", load=3)]
    assert get_driver("least_loaded").select(Placement("n1"), cands) == ["idle"]


def test_least_loaded_spreads_a_batch_evenly():
    result = get_driver("least_loaded").schedule(
        [Placement(f"n{i}") for i in range(1000)], agents(100))
    loads = Counter(a for chosen in result for a in chosen)
    assert len(loads) == 100 and max(loads.values()) == min(loads.values()) == 10


def test_n_way_placement_uses_distinct_agents_and_skips_excluded():
    chosen = get_driver("least_loaded").select(
        Placement("n1", count=3, exclude=frozenset({"a0000"})), agents(4))
    assert sorted(chosen) == ["a0001", "a0002", "a0003"]


def test_fewer_candidates_than_copies_gives_what_exists():
    assert len(get_driver("least_loaded").select(Placement("n1", count=5), agents(2))) == 2


def test_no_candidates_places_nothing():
    assert get_driver("least_loaded").select(Placement("n1"), []) == []


@pytest.mark.parametrize("name", ["chance", "least_loaded", "az_aware"])
def test_router_with_gateway_only_goes_to_agents_with_external_port(name):
    cands = agents(30, ext_every=10)
    for _ in range(20):
        chosen = get_driver(name).select(Placement("r1", needs_external_port=True), cands)
        assert chosen and chosen[0] in {"a0000", "a0010", "a0020"}


@pytest.mark.parametrize("name", ["chance", "least_loaded", "az_aware"])
def test_every_driver_never_returns_duplicates_or_excluded(name):
    cands = agents(10, zones=("az1", "az2"))
    for count in range(1, 12):
        chosen = get_driver(name).select(
            Placement("n", count=count, exclude=frozenset({"a0001"})), cands)
        assert len(chosen) == len(set(chosen)) == min(count, 9)
        assert "a0001" not in chosen


def test_chance_ignores_load():
    driver = ChanceScheduler(random.Random(7))
    cands = [Candidate("busy", load=1000), Candidate("idle", load=0)]
    picks = Counter(driver.select(Placement(f"n{i}"), cands)[0] for i in range(200))
    assert picks["busy"] > 50


def test_az_aware_honours_hints():
    cands = agents(9, zones=("az1", "az2", "az3"))
    chosen = get_driver("az_aware").select(
        Placement("n1", count=2, availability_zone_hints=("az2",)), cands)
    assert {c.availability_zone for c in cands if c.agent_id in chosen} == {"az2"}


def test_az_aware_spreads_copies_across_zones():
    cands = agents(9, zones=("az1", "az2", "az3"))
    by_id = {c.agent_id: c for c in cands}
    chosen = get_driver("az_aware").select(Placement("n1", count=3), cands)
    assert {by_id[a].availability_zone for a in chosen} == {"az1", "az2", "az3"}


def test_az_aware_prefers_zones_not_already_hosting():
    cands = agents(6, zones=("az1", "az2"))
    chosen = get_driver("az_aware").select(
        Placement("n1", count=1, exclude=frozenset({"a0000"}), hosted_zones=("az1",)), cands)
    assert {c.availability_zone for c in cands if c.agent_id in chosen} == {"az2"}


def test_unknown_driver_is_rejected():
    with pytest.raises(ValueError):
        get_driver("round_robin")


def test_load_pool_discards_stale_entries():
    pool = LoadPool([Candidate("a", load=0), Candidate("b", load=1)])
    assert pool.least_loaded("k", lambda c: True, 1) == ["a"]
    pool.charge("a", 2)
    assert pool.least_loaded("k", lambda c: True, 2) == ["b", "a"]


def test_ten_thousand_placements_over_a_thousand_agents_are_spread_evenly():
    # (how fast this is, is measured by bench/scheduling.py)
    result = get_driver("least_loaded").schedule(
        [Placement(f"n{i}") for i in range(10_000)], agents(1000, ext_every=3))
    loads = Counter(a for chosen in result for a in chosen)
    assert max(loads.values()) - min(loads.values()) <= 1
