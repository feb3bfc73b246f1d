"""Three controller processes on one PostgreSQL database: one leader, followers that serve
agents and the API from what the leader decides, a leader killed or frozen.

One cluster for the module (starting controllers costs seconds); the tests run in file order
and build on each other like the steps of one scenario. Agents are simulated (real RPC
clients) and each reports to one follower, so that everything the leader decides about them
travels through the database and the event relay.

Deadlines are generous bounds for polling, not measurements (those are in bench/cluster.py).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from ryu_sched.db import models
from tests.support.cluster import ControllerCluster
from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import DHCP, Fleet, SimAgent

pytestmark = pytest.mark.integration

LEASE_TIME = 1.0
AGENT_DOWN_TIME = 3
TAKEOVER_DEADLINE = 15.0


class Scenario:
    def __init__(self, cluster: ControllerCluster, engine: Engine) -> None:
        self.cluster = cluster
        self.engine = engine
        self.leader = cluster.wait_leader()
        self.f1, self.f2 = cluster.followers(self.leader)
        # each agent reports to a follower, never to the leader
        self.a1 = SimAgent(("127.0.0.1", self.f1.rpc_port), "host-a1", DHCP)
        self.a2 = SimAgent(("127.0.0.1", self.f2.rpc_port), "host-a2", DHCP)
        self.fleet = Fleet([self.a1, self.a2], interval=0.3)
        self.networks: list[str] = []

    def agent(self, host: str) -> SimAgent:
        return self.a1 if host == self.a1.host else self.a2

    def dhcp_hosts(self, controller: ControllerProcess, network_id: str) -> list[str]:
        _status, body = controller.request("GET", f"/v2.0/networks/{network_id}/dhcp-agents")
        return sorted(a["host"] for a in (body or {}).get("agents", []))

    def create_network(self, controller: ControllerProcess, name: str) -> str:
        status, body = controller.request("POST", "/v2.0/networks", {"network": {"name": name}})
        assert status == 201, body
        network_id = str(body["network"]["id"])
        status, body = controller.request("POST", "/v2.0/subnets", {"subnet": {
            "network_id": network_id, "ip_version": 4, "enable_dhcp": True,
            "cidr": f"10.{len(self.networks)}.0.0/24"}})
        assert status == 201, body
        self.networks.append(network_id)
        return network_id

    def bindings_per_network(self) -> dict[str, int]:
        table = models.NetworkDhcpAgentBinding
        with self.engine.connect() as conn:
            rows = conn.execute(select(table.network_id, func.count())
                                .group_by(table.network_id)).all()
        return {network_id: count for network_id, count in rows}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory,
             postgres_cluster: Any) -> Iterator[Scenario]:
    url = postgres_cluster.create_database("cluster")
    workdir = Path(tmp_path_factory.mktemp("cluster"))
    options = {"leader_lease_time": LEASE_TIME, "agent_down_time": AGENT_DOWN_TIME,
               "heartbeat_flush_interval": 0.2, "dhcp_agents_per_network": 1}
    engine = create_engine(url)
    try:
        with ControllerCluster(workdir, url, 3, options) as cluster:
            built = Scenario(cluster, engine)
            built.fleet.start()
            try:
                yield built
            finally:
                built.fleet.stop()
    finally:
        engine.dispose()
        postgres_cluster.drop_database(url)


def test_one_leader_and_every_controller_serves_the_api(scenario: Scenario) -> None:
    cluster = scenario.cluster
    assert cluster.leaders() == [scenario.leader]
    roles = [cluster.role(c) for c in cluster]
    assert len({r["lease_epoch"] for r in roles if r}) == 1
    for controller in cluster:
        status, _body = controller.request("GET", "/v2.0/networks")
        assert status == 200


def test_agents_on_followers_get_what_the_leader_schedules(scenario: Scenario) -> None:
    network_id = scenario.create_network(scenario.f2, "net-1")
    # the leader scheduled it; every controller shows it (each on the event relayed to it),
    # the agent hears it from its own
    hosts = wait_until(lambda: scenario.dhcp_hosts(scenario.leader, network_id), 10, 0.1,
                       "the leader scheduled it")
    wait_until(lambda: all(scenario.dhcp_hosts(c, network_id) == hosts
                           for c in scenario.cluster), 10, 0.1, "binding seen everywhere")
    bound = scenario.agent(hosts[0])
    bound.wait_notification("network_bound", lambda p: p[0]["network_id"] == network_id)
    assert bound.call("get_hosted_networks", bound.host) == [network_id]
    other = scenario.a2 if bound is scenario.a1 else scenario.a1
    assert other.call("get_hosted_networks", other.host) == []


def test_heartbeats_received_by_followers_keep_agents_alive_on_the_leader(
        scenario: Scenario) -> None:
    leader = scenario.leader
    until = time.monotonic() + AGENT_DOWN_TIME + 2

    def alive_throughout() -> bool:
        _status, body = leader.request("GET", "/v2.0/agents")
        assert [a["alive"] for a in body["agents"]] == [True, True], body
        return time.monotonic() >= until

    wait_until(alive_throughout, AGENT_DOWN_TIME + 10, 0.2, "a window past agent_down_time")
    _status, body = leader.request("GET", "/v2.0/agent-scheduler/moves")
    assert body["moves"] == []


def test_failover_by_the_leader_reaches_the_agent_on_a_follower(scenario: Scenario) -> None:
    network_id = scenario.networks[0]
    (host,) = scenario.dhcp_hosts(scenario.leader, network_id)
    dead = scenario.agent(host)
    survivor = scenario.a2 if dead is scenario.a1 else scenario.a1
    scenario.fleet.kill(dead)
    wait_until(lambda: scenario.dhcp_hosts(scenario.f1, network_id) == [survivor.host],
               AGENT_DOWN_TIME + 10, 0.1, "network moved to the live agent")
    survivor.wait_notification("network_bound", lambda p: p[0]["network_id"] == network_id)
    assert survivor.call("get_hosted_networks", survivor.host) == [network_id]
    assert scenario.bindings_per_network() == {network_id: 1}
    scenario.fleet.revive(dead)


def test_killed_leader_is_replaced_and_the_new_one_schedules(scenario: Scenario) -> None:
    cluster, old = scenario.cluster, scenario.leader
    epoch = cluster.role(old)["epoch"]   # type: ignore[index]
    old.stop(signal.SIGKILL)
    new = cluster.wait_leader(cluster.followers(old), TAKEOVER_DEADLINE)
    assert cluster.role(new)["epoch"] > epoch   # type: ignore[index]
    network_id = scenario.create_network(new, "net-2")
    wait_until(lambda: scenario.dhcp_hosts(new, network_id), 10, 0.1, "net-2 scheduled")
    assert set(scenario.bindings_per_network().values()) == {1}
    # the killed controller comes back as a follower
    old.start()
    wait_until(lambda: cluster.role(old), 10, 0.1, "restarted controller answers")
    assert cluster.leaders() == [new]
    assert scenario.dhcp_hosts(old, network_id) == scenario.dhcp_hosts(new, network_id)
    scenario.leader = new
    scenario.f1, scenario.f2 = cluster.followers(new)


def test_frozen_leader_resumes_as_a_follower_and_writes_nothing(scenario: Scenario) -> None:
    cluster, frozen = scenario.cluster, scenario.leader
    others = cluster.followers(frozen)
    assert frozen.proc is not None
    frozen.proc.send_signal(signal.SIGSTOP)
    try:
        new = cluster.wait_leader(others, TAKEOVER_DEADLINE)
        network_id = scenario.create_network(new, "net-3")
        wait_until(lambda: scenario.dhcp_hosts(new, network_id), 10, 0.1, "net-3 scheduled")
    finally:
        frozen.proc.send_signal(signal.SIGCONT)
    log_offset = len(frozen.log_text())
    wait_until(lambda: (cluster.role(frozen) or {}).get("leader") is False, 10, 0.1,
               "the resumed controller knows it follows")
    # a window of several lease times: it never leads again, nothing is bound twice
    until = time.monotonic() + 4 * LEASE_TIME

    def quiet() -> bool:
        assert cluster.leaders() == [new]
        assert set(scenario.bindings_per_network().values()) == {1}
        return time.monotonic() >= until

    wait_until(quiet, 20, 0.2, "the watched window")
    # what was decided while it was frozen reaches it (relayed events, or a resync)
    wait_until(lambda: scenario.dhcp_hosts(frozen, network_id)
               == scenario.dhcp_hosts(new, network_id), 10, 0.1, "the resumed one caught up")
    assert "elected leader" not in frozen.log_text()[log_offset:]
