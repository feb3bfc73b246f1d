"""HA routers in the registry: one active binding and standbys, promotion when the active
binding leaves, replacement standbys, no preemption, the fast path (gateway_failed), the
admin move (set_active), and never two active bindings of one router."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ryu_sched import errors
from ryu_sched.db import models
from ryu_sched.events import Action, BindingChanged, RouterChanged
from tests.unit.registry.world import L3, ROUTER, World

EXT = {"external_port": "ext0"}


def gateways(w: World, n: int, prefix: str = "g", **extra) -> list[str]:
    return w.agents(n, L3, prefix=prefix, configurations=dict(EXT), **extra)


def active(w: World, rid: str) -> list[str]:
    return sorted(host for host, state in w.roles(rid).items() if state == "active")


def standby(w: World, rid: str) -> list[str]:
    return sorted(host for host, state in w.roles(rid).items() if state == "standby")


def beat(w: World, *hosts: str) -> None:
    for host in hosts:
        w.beat(host, L3, configurations=dict(EXT), az=w.rec(host, L3).availability_zone)


def kill(w: World, *dead: str, hosts: tuple[str, ...]) -> dict[str, int]:
    """Advance past agent_down_time with only the other ``hosts`` heartbeating; one tick."""
    alive = [h for h in hosts if h not in dead]
    w.clock.advance(5)
    beat(w, *alive)
    w.clock.advance(6)
    beat(w, *alive)
    return w.reg.monitor_tick()


def role_events(w: World, rid: str) -> list[tuple[str, bool, str | None]]:
    return [(e.host, e.bound, e.ha_state) for e in w.events
            if isinstance(e, BindingChanged) and e.object_id == rid]


def test_ha_router_is_scheduled_to_n_agents_one_active():
    w = World(max_l3_agents_per_router=3)
    gateways(w, 4)
    rid = w.router(gateway=True, ha=True)
    plain = w.router(gateway=True)
    w.reg.reconcile()
    roles = w.roles(rid)
    assert len(roles) == 3 and sorted(roles.values()) == ["active", "standby", "standby"]
    assert sorted(w.hosts(ROUTER, rid).values()) == [1, 2, 3]
    assert list(w.roles(plain).values()) == ["active"]
    assert sorted(s for _, bound, s in role_events(w, rid) if bound) == [
        "active", "standby", "standby"]


def test_active_roles_are_spread_over_the_agents():
    w = World()
    gateways(w, 2)
    routers = [w.router(gateway=True, ha=True) for _ in range(6)]
    w.reg.reconcile()
    actives = [active(w, r)[0] for r in routers]
    assert sorted(actives) == ["g0"] * 3 + ["g1"] * 3
    assert all(len(w.roles(r)) == 2 for r in routers)


def test_an_ha_router_gets_what_candidates_exist_and_more_when_they_appear():
    w = World()
    gateways(w, 1)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    assert w.roles(rid) == {"g0": "active"}
    w.beat("g1", L3, configurations=dict(EXT))
    w.reg.flush()
    w.reg.reconcile()
    assert w.roles(rid) == {"g0": "active", "g1": "standby"}


def test_active_agent_dies_its_standby_is_promoted_and_a_replacement_scheduled():
    w = World()
    gateways(w, 3)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    (was_active,) = active(w, rid)
    (was_standby,) = standby(w, rid)
    spare = ({"g0", "g1", "g2"} - {was_active, was_standby}).pop()
    summary = kill(w, was_active, hosts=("g0", "g1", "g2"))
    assert summary["dead"] == 1 and summary["switched"] == 1
    assert w.roles(rid) == {was_standby: "active", spare: "standby"}
    log = w.reg.moves(resource_id=rid)
    assert [(m["reason"], m["from_host"], m["to_host"]) for m in log] == [
        ("failover", was_active, spare), ("switchover:failover", was_active, was_standby)]
    # the promotion is announced first, then the move of the demoted binding
    assert role_events(w, rid)[-4:] == [
        (was_active, True, "standby"), (was_standby, True, "active"),
        (was_active, False, None), (spare, True, "standby")]
    promoted = w.conns[f"{L3}/{was_standby}"].sent
    assert ("router_updated", [{"router_id": rid, "reason": "ha_state",
                                "ha_state": "active"}]) in promoted


def test_no_preemption_a_returning_agent_keeps_only_a_standby_binding():
    w = World()
    gateways(w, 2)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    (first,) = active(w, rid)
    (second,) = standby(w, rid)
    kill(w, first, hosts=("g0", "g1"))
    # no replacement candidate: the demoted binding stays on the dead agent, standby
    assert w.roles(rid) == {second: "active", first: "standby"}
    w.clock.advance(1)
    beat(w, "g0", "g1")
    for _ in range(3):
        w.clock.advance(3)
        beat(w, "g0", "g1")
        w.reg.monitor_tick()
    assert w.roles(rid) == {second: "active", first: "standby"}
    # the active one dies in turn: the returned agent takes over
    kill(w, second, hosts=("g0", "g1"))
    assert w.roles(rid) == {first: "active", second: "standby"}


def test_without_a_live_standby_the_active_binding_moves_and_stays_active():
    w = World()
    gateways(w, 2)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    assert len(w.roles(rid)) == 2
    w.beat("g2", L3, configurations=dict(EXT))
    w.reg.flush()
    summary = kill(w, "g0", "g1", hosts=("g0", "g1", "g2"))
    assert summary["switched"] == 0
    # g2 is the only live candidate: the active binding went there; the standby waits
    roles = w.roles(rid)
    assert roles["g2"] == "active" and sorted(roles.values()) == ["active", "standby"]


def test_a_standby_that_dies_is_replaced_and_the_active_stays():
    w = World()
    gateways(w, 3)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    (act,) = active(w, rid)
    (stb,) = standby(w, rid)
    summary = kill(w, stb, hosts=("g0", "g1", "g2"))
    assert summary["switched"] == 0 and summary["moved"] == 1
    spare = ({"g0", "g1", "g2"} - {act, stb}).pop()
    assert w.roles(rid) == {act: "active", spare: "standby"}


def test_availability_zone_hints_spread_the_bindings_and_bound_the_replacement():
    w = World(router_scheduler_driver="az_aware")
    gateways(w, 2, prefix="a", az="az1")
    gateways(w, 2, prefix="b", az="az2")
    gateways(w, 2, prefix="c", az="az3")
    rid = w.router(gateway=True, ha=True, hints=("az1", "az2"))
    w.reg.reconcile()
    roles = w.roles(rid)
    assert sorted(h[0] for h in roles) == ["a", "b"]
    (act,) = active(w, rid)
    everyone = ("a0", "a1", "b0", "b1", "c0", "c1")
    kill(w, act, hosts=everyone)
    roles = w.roles(rid)
    assert len(roles) == 2 and act not in roles
    assert all(h[0] in "ab" for h in roles)     # never into az3
    assert sorted(roles.values()) == ["active", "standby"]


def test_gateway_failed_promotes_at_once_and_moves_the_routers_away():
    w = World()
    gateways(w, 3)
    ha = [w.router(gateway=True, ha=True) for _ in range(3)]
    plain = w.router(gateway=True)
    w.reg.reconcile()
    victim = active(w, ha[0])[0]
    victim_id = w.rec(victim, L3).id
    held = sorted(r for r in [*ha, plain] if w.roles(r).get(victim) == "active")
    moved = w.reg.gateway_failed(victim_id, "lease lapsed")
    assert moved == held
    for rid in [*ha, plain]:
        roles = w.roles(rid)
        assert victim not in roles          # the replacement went to the third agent
        assert list(roles.values()).count("active") == 1
    assert {m["reason"] for m in w.reg.moves(agent_id=victim_id)} <= {
        "gateway_failed", "switchover:gateway_failed"}
    # no candidate until it reports again
    late = w.router(gateway=True)
    w.reg.reconcile()
    assert victim not in w.roles(late)
    w.clock.advance(0.5)
    beat(w, victim)
    assert victim_id in {
        c.agent_id for c in w.reg.placement.candidates(L3)}


def test_gateway_failed_does_nothing_when_failover_is_off_or_on_a_follower():
    w = World(allow_automatic_failover=False)
    gateways(w, 2)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    before = w.roles(rid)
    assert w.reg.gateway_failed(w.rec(active(w, rid)[0], L3).id, "test") == []
    assert w.roles(rid) == before


def test_set_active_moves_the_role_and_checks_the_binding_and_liveness():
    w = World()
    gateways(w, 3)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    (act,) = active(w, rid)
    (stb,) = standby(w, rid)
    other = ({"g0", "g1", "g2"} - {act, stb}).pop()
    assert w.reg.set_active(rid, w.rec(stb, L3).id) is True
    assert w.roles(rid) == {stb: "active", act: "standby"}
    assert w.reg.set_active(rid, w.rec(stb, L3).id) is False
    assert w.reg.moves(resource_id=rid)[0]["reason"] == "switchover:manual"
    with pytest.raises(errors.RouterL3AgentBindingNotFound):
        w.reg.set_active(rid, w.rec(other, L3).id)
    with pytest.raises(errors.AgentNotFound):
        w.reg.set_active(rid, "nope")
    w.clock.advance(11)      # everyone silent: the standby is not alive
    with pytest.raises(errors.L3AgentNotAlive):
        w.reg.set_active(rid, w.rec(act, L3).id)


def test_bindings_by_hand_add_standbys_and_removing_the_active_promotes():
    w = World()
    gateways(w, 3)
    rid = w.router(gateway=True, ha=True)
    w.reg.bind(ROUTER, rid, w.rec("g0", L3).id)
    w.reg.bind(ROUTER, rid, w.rec("g1", L3).id)
    w.reg.bind(ROUTER, rid, w.rec("g2", L3).id)     # beyond max_l3_agents_per_router: fine
    assert w.roles(rid) == {"g0": "active", "g1": "standby", "g2": "standby"}
    with pytest.raises(errors.RouterHostedByL3Agent):
        w.reg.bind(ROUTER, rid, w.rec("g1", L3).id)
    w.reg.unbind(ROUTER, rid, w.rec("g0", L3).id)
    roles = w.roles(rid)
    assert sorted(roles.values()) == ["active", "standby"]
    assert w.reg.moves(resource_id=rid)[0]["reason"] == "switchover:manual"
    w.reg.reconcile()                                  # 2 bindings: nothing to add
    assert len(w.roles(rid)) == 2


def test_deleting_the_active_agent_promotes_a_standby():
    w = World()
    gateways(w, 2)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    (act,) = active(w, rid)
    (stb,) = standby(w, rid)
    w.reg.delete_agent(w.rec(act, L3).id)
    assert w.roles(rid) == {stb: "active"}


def test_switching_ha_on_and_off_adds_standbys_and_keeps_only_the_active_one():
    w = World()
    gateways(w, 3)
    rid = w.router(gateway=True)
    w.reg.reconcile()
    (only,) = w.roles(rid)
    with w.db.session() as s:
        s.scalar(select(models.Router).where(models.Router.id == rid)).ha = True
    w.react(RouterChanged(Action.UPDATE, rid, "", ("ha",)))
    assert w.roles(rid)[only] == "active" and len(w.roles(rid)) == 2
    with w.db.session() as s:
        s.scalar(select(models.Router).where(models.Router.id == rid)).ha = False
    w.react(RouterChanged(Action.UPDATE, rid, "", ("ha",)))
    assert w.roles(rid) == {only: "active"}


def test_rebalance_moves_standbys_never_the_active_binding():
    w = World()
    gateways(w, 2)
    routers = [w.router(gateway=True, ha=True) for _ in range(4)]
    w.reg.reconcile()
    before = {r: active(w, r) for r in routers}
    w.beat("g2", L3, configurations=dict(EXT))
    w.beat("g3", L3, configurations=dict(EXT))
    w.reg.flush()
    moves = w.reg.rebalance(L3)
    assert moves
    assert {r: active(w, r) for r in routers} == before
    assert all(sorted(w.roles(r).values()) == ["active", "standby"] for r in routers)


def test_a_link_down_active_gateway_hands_over_to_its_standby():
    w = World()
    gateways(w, 3)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    (act,) = active(w, rid)
    (stb,) = standby(w, rid)
    w.beat(act, L3, configurations={**EXT, "external_link_up": False})
    w.reg.reconcile()
    roles = w.roles(rid)
    assert roles[stb] == "active" and act not in roles and len(roles) == 2
    assert w.reg.moves(resource_id=rid)[-1]["reason"] == "switchover:link_down"


def test_a_router_left_without_an_active_binding_gets_one():
    w = World()
    gateways(w, 2)
    rid = w.router(gateway=True, ha=True)
    w.reg.reconcile()
    with w.db.session() as s:
        s.execute(models.RouterL3AgentBinding.__table__.update().values(ha_state="standby"))
    w.reg.resync()
    assert sorted(w.roles(rid).values()) == ["standby", "standby"]
    w.reg.reconcile()
    assert sorted(w.roles(rid).values()) == ["active", "standby"]
    assert w.reg.moves(resource_id=rid)[0]["reason"] == "switchover:no_active"


# --- never two active, no preemption: random deaths, returns and moves ----------------------

HOSTS = ("g0", "g1", "g2", "g3")
STEP = st.tuples(st.sampled_from(["kill", "revive", "tick", "tick", "tick", "fail", "move"]),
                 st.integers(0, len(HOSTS) - 1), st.integers(0, 7))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(STEP, max_size=40))
def test_random_deaths_and_returns_never_give_two_actives_nor_preempt(steps):
    w = World()
    gateways(w, len(HOSTS))
    routers = [w.router(gateway=True, ha=i < 6) for i in range(8)]
    w.reg.reconcile()
    alive = set(HOSTS)
    for action, agent, router in steps:
        host, rid = HOSTS[agent], routers[router]
        before = {r: active(w, r) for r in routers}
        if action == "kill":
            alive.discard(host)
        elif action == "revive":
            alive.add(host)
        elif action == "fail":
            w.reg.gateway_failed(w.rec(host, L3).id, "test")
        elif action == "move":
            try:
                w.reg.set_active(rid, w.rec(host, L3).id)
            except (errors.RouterL3AgentBindingNotFound, errors.L3AgentNotAlive):
                pass
        else:
            w.clock.advance(4)
            beat(w, *sorted(alive))
            w.reg.monitor_tick()
        for r in routers:
            now_active = active(w, r)              # w.roles checks memory == database
            assert len(now_active) <= 1
            if action == "tick":
                roles = w.roles(r)
                eligible = {c.host for c in w.reg.placement.candidates(L3)}
                if any(h in eligible for h in roles):
                    assert now_active, (r, roles)
                # an active binding on a dead agent only while no live standby can take over
                if now_active and w.rec(now_active[0], L3).judged_dead:
                    assert not any(state == "standby" and h in eligible
                                   for h, state in roles.items()), (r, roles)
                # no preemption: the role only left an agent judged dead
                if before[r] and now_active and now_active != before[r]:
                    assert w.rec(before[r][0], L3).judged_dead, (r, before[r], now_active)


def test_the_operator_status_shows_the_roles_and_counts_one_active_per_ha_router():
    from ryu_sched.observability.collect import _placements

    w = World()
    gateways(w, 2)
    ha = w.router(gateway=True, ha=True)
    plain = w.router(gateway=True)
    w.reg.reconcile()
    placements = {p.id: p for p in _placements(w.reg)}
    assert sorted(placements[ha].ha_states) == ["active", "standby"]
    assert placements[ha].wanted == 2 and not placements[ha].unhosted
    assert placements[plain].ha_states == ()
