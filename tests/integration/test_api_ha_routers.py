"""HA routers through the API of a real controller with simulated L3 agents: the ``ha``
attribute (admin only, the admin-state-down rule, ``l3_ha``), ``ha_state`` in the hosting
lists, the admin move of the active role, bindings by hand, and a killed active agent whose
standby takes over."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import L3, Fleet, SimAgent

pytestmark = pytest.mark.integration

DOWN = 2
ADMIN, MEMBER = "admin-token", "member-token"
TOKENS = {ADMIN: {"project_id": "admin-project", "role": "admin"},
          MEMBER: {"project_id": "p1", "role": "member"}}


def start(tmp_path: Path, **options: Any) -> ControllerProcess:
    proc = ControllerProcess(tmp_path / "ctl", {"agent_down_time": DOWN,
                                               "heartbeat_flush_interval": 0.2, **options},
                             tokens=TOKENS)
    proc.start()
    return proc


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[ControllerProcess]:
    proc = start(tmp_path)
    yield proc
    proc.stop()


def gateways(ctl: ControllerProcess, n: int) -> Fleet:
    return Fleet([SimAgent((ctl.host, ctl.rpc_port), f"gw-{i}", L3, dpid=100 + i,
                           configurations={"external_port": "ext0"}) for i in range(n)],
                 interval=0.3)


def call(ctl: ControllerProcess, method: str, path: str, body: Any = None,
         token: str = ADMIN) -> tuple[int, Any]:
    return ctl.request(method, path, body, token=token)


def error(result: tuple[int, Any]) -> tuple[int, str]:
    return result[0], (result[1] or {}).get("NeutronError", {}).get("type", "")


def agent_ids(ctl: ControllerProcess) -> dict[str, str]:
    return {a["host"]: a["id"] for a in call(ctl, "GET", "/v2.0/agents")[1]["agents"]}


def roles(ctl: ControllerProcess, router_id: str) -> dict[str, str]:
    """``{host: ha_state}`` from ``GET /v2.0/routers/{id}/l3-agents``."""
    agents = call(ctl, "GET", f"/v2.0/routers/{router_id}/l3-agents")[1]["agents"]
    return {a["host"]: a["ha_state"] for a in agents}


def active_host(ctl: ControllerProcess, router_id: str) -> str | None:
    return next((h for h, s in roles(ctl, router_id).items() if s == "active"), None)


def create_router(ctl: ControllerProcess, token: str = ADMIN, **attrs: Any) -> dict[str, Any]:
    status, body = call(ctl, "POST", "/v2.0/routers", {"router": {"name": "r", **attrs}},
                        token)
    assert status == 201, body
    return body["router"]  # type: ignore[no-any-return]


def test_the_ha_attribute_is_admin_only_and_changes_only_while_the_router_is_down(ctl):
    aliases = {e["alias"] for e in call(ctl, "GET", "/v2.0/extensions")[1]["extensions"]}
    assert {"l3-ha", "router-admin-state-down-before-update"} <= aliases
    ha = create_router(ctl, ha=True)
    assert ha["ha"] is True
    assert call(ctl, "GET", f"/v2.0/routers/{ha['id']}")[1]["router"]["ha"] is True
    listed = {r["id"]: r["ha"] for r in call(ctl, "GET", "/v2.0/routers")[1]["routers"]}
    assert listed[ha["id"]] is True
    create_router(ctl, ha=False)
    assert [r["id"] for r in call(ctl, "GET", "/v2.0/routers?ha=true")[1]["routers"]] == [
        ha["id"]]

    # a member may neither set nor see it; its routers are not HA (l3_ha is false)
    assert error(call(ctl, "POST", "/v2.0/routers", {"router": {"ha": True}}, MEMBER)) == (
        403, "PolicyNotAuthorized")
    mine = create_router(ctl, MEMBER)
    assert "ha" not in mine
    assert call(ctl, "GET", f"/v2.0/routers/{mine['id']}")[1]["router"]["ha"] is False
    assert error(call(ctl, "PUT", f"/v2.0/routers/{mine['id']}",
                      {"router": {"ha": True}}, MEMBER)) == (403, "PolicyNotAuthorized")
    assert error(call(ctl, "POST", "/v2.0/routers", {"router": {"ha": "maybe"}}))[0] == 400

    # Neutron's rule: admin_state_up false first
    path = f"/v2.0/routers/{mine['id']}"
    assert error(call(ctl, "PUT", path, {"router": {"ha": True}})) == (400, "BadRequest")
    assert call(ctl, "PUT", path, {"router": {"ha": False}})[0] == 200   # no change: fine
    assert call(ctl, "PUT", path, {"router": {"admin_state_up": False}})[0] == 200
    status, body = call(ctl, "PUT", path, {"router": {"ha": True}})
    assert status == 200 and body["router"]["ha"] is True
    assert call(ctl, "PUT", path, {"router": {"admin_state_up": True}})[0] == 200


def test_l3_ha_makes_new_routers_ha_by_default(tmp_path):
    ctl = start(tmp_path, l3_ha=True)
    try:
        assert create_router(ctl)["ha"] is True
        assert create_router(ctl, ha=False)["ha"] is False
        mine = create_router(ctl, MEMBER)
        assert call(ctl, "GET", f"/v2.0/routers/{mine['id']}")[1]["router"]["ha"] is True
    finally:
        ctl.stop()


def test_ha_state_in_the_hosting_lists_and_the_admin_move(ctl):
    with gateways(ctl, 3) as fleet:
        wait_until(lambda: len(agent_ids(ctl)) == 3, 5)
        ids = agent_ids(ctl)
        ha = create_router(ctl, ha=True)["id"]
        plain = create_router(ctl)["id"]
        wait_until(lambda: len(roles(ctl, ha)) == 2 and roles(ctl, plain), 5, 0.1,
                   "routers scheduled")
        assert sorted(roles(ctl, ha).values()) == ["active", "standby"]
        assert list(roles(ctl, plain).values()) == ["active"]
        before = roles(ctl, ha)
        act = next(h for h, s in before.items() if s == "active")
        stb = next(h for h, s in before.items() if s == "standby")
        spare = next(h for h in ids if h not in before)
        hosted = call(ctl, "GET", f"/v2.0/agents/{ids[stb]}/l3-routers")[1]["routers"]
        assert {r["id"]: r["ha_state"] for r in hosted}[ha] == "standby"

        # the admin move
        path = f"/v2.0/routers/{ha}/l3-agents/{ids[stb]}"
        status, body = call(ctl, "PUT", path, {"ha_state": "active"})
        assert status == 200 and (body["agent"]["host"], body["agent"]["ha_state"]) == (
            stb, "active")
        assert roles(ctl, ha) == {stb: "active", act: "standby"}
        assert call(ctl, "PUT", path, {"ha_state": "active"})[0] == 200     # idempotent
        moves = call(ctl, "GET", f"/v2.0/agent-scheduler/moves?resource_id={ha}")[1]["moves"]
        assert moves[0]["reason"] == "switchover:manual"
        assert error(call(ctl, "PUT", path, {"ha_state": "standby"})) == (400, "InvalidInput")
        assert error(call(ctl, "PUT", path, {"ha_state": "active", "x": 1}))[0] == 400
        assert error(call(ctl, "PUT", path, [1]))[0] == 400
        assert error(call(ctl, "PUT", f"/v2.0/routers/{ha}/l3-agents/{ids[spare]}",
                          {"ha_state": "active"})) == (404, "RouterL3AgentBindingNotFound")
        assert error(call(ctl, "PUT", f"/v2.0/routers/{ha}/l3-agents/nope",
                          {"ha_state": "active"})) == (404, "AgentNotFound")
        assert error(call(ctl, "PUT", f"/v2.0/routers/nope/l3-agents/{ids[stb]}",
                          {"ha_state": "active"})) == (404, "RouterNotFound")
        assert error(call(ctl, "PUT", path, {"ha_state": "active"}, MEMBER)) == (
            403, "PolicyNotAuthorized")

        # by hand: a third binding is a standby; removing the active one promotes
        assert call(ctl, "POST", f"/v2.0/agents/{ids[spare]}/l3-routers",
                    {"router_id": ha})[0] == 201
        assert roles(ctl, ha)[spare] == "standby"
        assert error(call(ctl, "POST", f"/v2.0/agents/{ids[spare]}/l3-routers",
                          {"router_id": ha})) == (409, "RouterHostedByL3Agent")
        assert error(call(ctl, "POST", f"/v2.0/agents/{ids[spare]}/l3-routers",
                          {"router_id": plain}))[0] == 409
        assert call(ctl, "DELETE", f"/v2.0/agents/{ids[stb]}/l3-routers/{ha}")[0] == 204
        after = roles(ctl, ha)
        assert stb not in after and sorted(after.values()) == ["active", "standby"]

        # a dead agent cannot take the role
        now_standby = next(h for h, s in after.items() if s == "standby")
        victim = next(a for a in fleet.agents if a.host == now_standby)
        fleet.kill(victim)
        wait_until(lambda: not next(a for a in call(ctl, "GET", "/v2.0/agents")[1]["agents"]
                                    if a["host"] == now_standby)["alive"], DOWN + 3, 0.1)
        status, body = call(ctl, "PUT", f"/v2.0/routers/{ha}/l3-agents/{ids[now_standby]}",
                            {"ha_state": "active"})
        # 409 while its binding is still there; 404 once failover moved it away
        assert error((status, body)) in {(409, "L3AgentNotAlive"),
                                         (404, "RouterL3AgentBindingNotFound")}


def test_a_killed_active_agent_hands_over_to_its_standby_and_does_not_take_it_back(ctl):
    with gateways(ctl, 3) as fleet:
        wait_until(lambda: len(agent_ids(ctl)) == 3, 5)
        ha = create_router(ctl, ha=True)["id"]
        wait_until(lambda: len(roles(ctl, ha)) == 2, 5, 0.1, "router scheduled")
        before = roles(ctl, ha)
        act = next(h for h, s in before.items() if s == "active")
        stb = next(h for h, s in before.items() if s == "standby")
        victim = next(a for a in fleet.agents if a.host == act)
        promoted = next(a for a in fleet.agents if a.host == stb)
        fleet.kill(victim)
        wait_until(lambda: active_host(ctl, ha) == stb and len(roles(ctl, ha)) == 2
                   and act not in roles(ctl, ha), DOWN + 5, 0.1, "standby promoted")
        promoted.wait_notification(
            "router_updated", lambda p: p[0] == {"router_id": ha, "reason": "ha_state",
                                                 "ha_state": "active"}, 5)
        info = promoted.call("get_router_info", ha)
        assert info["ha"] is True
        assert {a["host"]: a["ha_state"] for a in info["l3_agents"]}[stb] == "active"
        reasons = [m["reason"] for m in call(
            ctl, "GET", f"/v2.0/agent-scheduler/moves?resource_id={ha}")[1]["moves"]]
        assert sorted(reasons) == ["failover", "switchover:failover"]
        # the old active agent comes back: no preemption
        fleet.revive(victim)
        wait_until(lambda: next(a for a in call(ctl, "GET", "/v2.0/agents")[1]["agents"]
                                if a["host"] == act)["alive"], 5, 0.1)
        ticks = call(ctl, "GET", "/v2.0/agent-scheduler/stats")[1]["stats"]["monitor_ticks"]
        wait_until(lambda: call(ctl, "GET", "/v2.0/agent-scheduler/stats")[1]["stats"]
                   ["monitor_ticks"] >= ticks + 3, DOWN + 5, 0.1, "three monitor periods")
        assert active_host(ctl, ha) == stb
