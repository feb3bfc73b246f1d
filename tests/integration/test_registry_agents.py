"""Agents register over MessagePack-RPC and appear, alive or dead, in the agents API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import DHCP, L3, Fleet, RpcCallError, SimAgent, http

pytestmark = pytest.mark.integration

DOWN = 2


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path / "ctl", {"agent_down_time": DOWN,
                                              "heartbeat_flush_interval": 0.2}) as proc:
        yield proc


def rpc(ctl: ControllerProcess) -> tuple[str, int]:
    return (ctl.host, ctl.rpc_port)


def test_hundreds_of_agents_appear_in_openstack_agent_list_with_correct_alive(ctl):
    agents = [SimAgent(rpc(ctl), f"host-{i:03d}", DHCP if i % 2 else L3, dpid=i + 1,
                       configurations={"external_port": "ext0"} if i % 4 == 0 else None)
              for i in range(200)]
    with Fleet(agents, interval=0.4) as fleet:
        conn = ctl.sdk()
        listed = wait_until(lambda: [a for a in conn.network.agents() if a.is_alive]
                            if len(list(conn.network.agents())) == 200 else None, 10,
                            0.2, "200 agents listed")
        assert len(listed) == 200
        one = next(a for a in conn.network.agents(host="host-004"))
        assert one.agent_type == L3 and one.configuration["datapath_id"] == "0000000000000005"
        assert one.configuration["external_port"] == "ext0" and one.availability_zone == "nova"
        assert one.binary == "ryu-sched-l3-agent" and one.topic == "l3_agent"
        assert one.created_at and one.started_at and one.last_heartbeat_at
        killed = agents[:20]
        for agent in killed:
            fleet.kill(agent)
        started = time.monotonic()

        def dead_hosts() -> set[str]:
            return {a.host for a in conn.network.agents() if not a.is_alive}

        wait_until(lambda: dead_hosts() == {a.host for a in killed}, DOWN + 3, 0.1,
                   "killed agents dead")
        assert time.monotonic() - started <= DOWN + 2
        assert len(list(conn.network.agents(is_alive=True))) == 180
        fleet.revive(killed[0])
        wait_until(lambda: killed[0].host not in dead_hosts(), 3, 0.1, "revived agent alive")


def test_put_changes_admin_state_and_description_only(ctl):
    agent = SimAgent(rpc(ctl), "h1").connect()
    agent_id = agent.report_state()["agent_id"]
    url = f"{ctl.url}/v2.0/agents/{agent_id}"
    status, body = http(url, "PUT", {"agent": {"admin_state_up": False, "description": "x"}})
    assert status == 200 and body["agent"]["admin_state_up"] is False
    assert body["agent"]["description"] == "x"
    assert http(url, "PUT", {"agent": {"host": "other"}})[0] == 400
    assert http(url, "PUT", {"agent": {"admin_state_up": "maybe"}})[0] == 400
    assert http(url)[1]["agent"]["admin_state_up"] is False
    assert http(f"{ctl.url}/v2.0/agents/nope")[1]["NeutronError"]["type"] == "AgentNotFound"
    agent.close()


def test_delete_removes_an_agent_and_it_registers_again_on_its_next_heartbeat(ctl):
    agent = SimAgent(rpc(ctl), "h1").connect()
    first = agent.report_state()["agent_id"]
    assert http(f"{ctl.url}/v2.0/agents/{first}", "DELETE")[0] == 204
    assert http(f"{ctl.url}/v2.0/agents/{first}")[0] == 404
    second = agent.report_state()
    assert second["status"] == "registered" and second["agent_id"] != first
    agent.close()


def test_start_flag_triggers_a_resync_notification(ctl):
    agent = SimAgent(rpc(ctl), "h1").connect()
    agent.report_state(start_flag=True)
    params = agent.wait_notification("resync", timeout=5)
    assert params[0]["reason"] == "start_flag"
    agent.close()


def test_bad_report_state_is_an_error_response_and_counted(ctl):
    agent = SimAgent(rpc(ctl), "h1").connect()
    with pytest.raises(RpcCallError) as err:
        agent.call("report_state", {"agent_type": "Toaster agent", "host": "h1"})
    assert err.value.type == "BadParams"
    with pytest.raises(RpcCallError) as err:
        agent.call("no_such_method")
    assert err.value.type == "UnknownMethod"
    assert agent.call("ping") == "pong"
    stats = http(f"{ctl.url}/v2.0/agent-scheduler/stats")[1]["stats"]["rpc"]
    assert stats["bad_params"] >= 1 and stats["unknown_methods"] >= 1
    agent.close()
