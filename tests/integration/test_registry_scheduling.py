"""Scheduling, N-way DHCP, failover without flapping, and the agent-scheduler API."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import DHCP, L3, Fleet, SimAgent, http, seed_objects

pytestmark = pytest.mark.integration

DOWN = 2


def start(tmp_path: Path, **options) -> ControllerProcess:
    proc = ControllerProcess(tmp_path / "ctl", {"agent_down_time": DOWN,
                                               "heartbeat_flush_interval": 0.2, **options})
    proc.start()
    return proc


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[ControllerProcess]:
    proc = start(tmp_path)
    yield proc
    proc.stop()


def db_url(ctl: ControllerProcess) -> str:
    return f"sqlite:///{ctl.workdir / 'state' / 'ryu_sched.sqlite'}"


def fleet_of(ctl: ControllerProcess, dhcp: int, l3: int, ext_every: int = 1) -> Fleet:
    agents = [SimAgent((ctl.host, ctl.rpc_port), f"dhcp-{i:03d}", DHCP) for i in range(dhcp)]
    agents += [SimAgent((ctl.host, ctl.rpc_port), f"l3-{i:03d}", L3, dpid=1000 + i,
                        configurations={"external_port": "ext0"} if i % ext_every == 0 else {})
               for i in range(l3)]
    return Fleet(agents, interval=0.4)


def agents_by_host(ctl: ControllerProcess) -> dict[str, dict]:
    return {a["host"]: a for a in http(f"{ctl.url}/v2.0/agents")[1]["agents"]}


def network_hosts(ctl: ControllerProcess, net_id: str) -> list[str]:
    return [a["host"] for a in http(f"{ctl.url}/v2.0/networks/{net_id}/dhcp-agents")[1]["agents"]]


def router_hosts(ctl: ControllerProcess, router_id: str) -> list[str]:
    return [a["host"] for a in http(f"{ctl.url}/v2.0/routers/{router_id}/l3-agents")[1]["agents"]]


def all_bindings(ctl: ControllerProcess) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    nets: dict[str, list[str]] = {}
    rtrs: dict[str, list[str]] = {}
    for agent in http(f"{ctl.url}/v2.0/agents")[1]["agents"]:
        if agent["agent_type"] == DHCP:
            for net in http(f"{ctl.url}/v2.0/agents/{agent['id']}/dhcp-networks")[1]["networks"]:
                nets.setdefault(net["id"], []).append(agent["host"])
        else:
            for rtr in http(f"{ctl.url}/v2.0/agents/{agent['id']}/l3-routers")[1]["routers"]:
                rtrs.setdefault(rtr["id"], []).append(agent["host"])
    return nets, rtrs


def test_objects_are_auto_scheduled_through_the_api_events(ctl):
    with fleet_of(ctl, dhcp=2, l3=2, ext_every=2) as fleet:
        wait_until(lambda: len(agents_by_host(ctl)) == 4, 5)
        conn = ctl.sdk()
        net = conn.network.create_network(name="n1")
        conn.network.create_subnet(network_id=net.id, cidr="10.1.0.0/24", ip_version=4)
        hosts = wait_until(lambda: network_hosts(ctl, net.id), 5, 0.1, "network scheduled")
        assert len(hosts) == 1
        agent = next(a for a in fleet.agents if a.host == hosts[0])
        agent.wait_notification("network_bound", lambda p: p[0]["network_id"] == net.id, 5)
        info = agent.call("get_network_info", net.id)
        assert [s["cidr"] for s in info["subnets"]] == ["10.1.0.0/24"]
        assert net.id in agent.call("get_hosted_networks", agent.host)
        router = conn.network.create_router(name="r1")
        assert wait_until(lambda: router_hosts(ctl, router.id), 5, 0.1, "router scheduled")


def test_every_network_gets_dhcp_agents_per_network_distinct_agents(tmp_path):
    ctl = start(tmp_path, dhcp_agents_per_network=3)
    try:
        with fleet_of(ctl, dhcp=6, l3=0):
            wait_until(lambda: len(agents_by_host(ctl)) == 6, 5)
            nets, _ = seed_objects(db_url(ctl), networks=30)
            no_dhcp, _ = seed_objects(db_url(ctl), networks=2, dhcp=False, first_vlan=500)
            wait_until(lambda: len(all_bindings(ctl)[0]) == 30, 10, 0.2, "30 networks hosted")
            hosted, _ = all_bindings(ctl)
            assert all(len(set(hosted[n])) == 3 for n in nets)
            assert not set(no_dhcp) & set(hosted)
            loads = Counter(h for hosts in hosted.values() for h in hosts)
            assert max(loads.values()) - min(loads.values()) <= 1
    finally:
        ctl.stop()


def test_killed_agents_objects_move_to_live_agents_and_do_not_come_back(ctl):
    with fleet_of(ctl, dhcp=40, l3=40, ext_every=2) as fleet:
        wait_until(lambda: len(agents_by_host(ctl)) == 80, 10)
        _, rtrs = seed_objects(db_url(ctl), networks=200, routers=120, gateway_routers=40)
        wait_until(lambda: [len(x) for x in all_bindings(ctl)] == [200, 120], 15, 0.2,
                   "everything hosted")
        victims = [a for a in fleet.agents if a.host.endswith(("0", "5"))]  # 16 agents
        before_nets, before_rtrs = all_bindings(ctl)
        victim_hosts = {v.host for v in victims}
        moving = {n for n, hosts in before_nets.items() if victim_hosts & set(hosts)} | {
            r for r, hosts in before_rtrs.items() if victim_hosts & set(hosts)}
        assert moving
        for victim in victims:
            fleet.kill(victim)
        killed_at = time.monotonic()
        monitor = DOWN / 3

        def settled() -> bool:
            n, r = all_bindings(ctl)
            return (len(n) == 200 and len(r) == 120 and
                    not any(victim_hosts & set(h) for h in [*n.values(), *r.values()]))

        wait_until(settled, DOWN + monitor + 5, 0.1, "failover")
        elapsed = time.monotonic() - killed_at
        assert elapsed <= DOWN + monitor + 1.5, elapsed
        after_nets, after_rtrs = all_bindings(ctl)
        assert all(len(h) == 1 for h in [*after_nets.values(), *after_rtrs.values()])
        gw = {a["host"] for a in agents_by_host(ctl).values()
              if a["configurations"].get("external_port")}
        gw_routers = rtrs[:40]
        assert all(after_rtrs[r][0] in gw for r in gw_routers)
        moves = http(f"{ctl.url}/v2.0/agent-scheduler/moves")[1]["moves"]
        assert {m["resource_id"] for m in moves} == moving
        assert {m["reason"] for m in moves} == {"failover"}
        assert {m["from_host"] for m in moves} <= victim_hosts
        # the victims come back: they get nothing back
        for victim in victims:
            fleet.revive(victim)
        wait_until(lambda: all(agents_by_host(ctl)[v.host]["alive"] for v in victims), 5)
        # let three monitor periods pass, then check that nothing moved back
        ticks = http(f"{ctl.url}/v2.0/agent-scheduler/stats")[1]["stats"]["monitor_ticks"]
        wait_until(lambda: http(f"{ctl.url}/v2.0/agent-scheduler/stats")[1]["stats"]
                   ["monitor_ticks"] >= ticks + 3, DOWN + 5, 0.1, "three monitor periods")
        final_nets, final_rtrs = all_bindings(ctl)
        assert (final_nets, final_rtrs) == (after_nets, after_rtrs)
        assert all(agents_by_host(ctl)[v.host]["load"] == 0 for v in victims)
        # an explicit rebalance evens things out again
        status, body = http(f"{ctl.url}/v2.0/agent-scheduler/rebalance", "POST",
                            {"agent_type": DHCP})
        assert status == 200 and body["moves"]
        loads = [a["load"] for a in agents_by_host(ctl).values() if a["agent_type"] == DHCP]
        assert max(loads) - min(loads) <= 1


@pytest.fixture
def manual_ctl(tmp_path: Path) -> Iterator[ControllerProcess]:
    """Auto-scheduling off: bindings are made by hand only."""
    proc = start(tmp_path, network_auto_schedule=False, router_auto_schedule=False)
    yield proc
    proc.stop()


def test_manual_binding_and_its_errors(manual_ctl):
    ctl = manual_ctl
    with fleet_of(ctl, dhcp=2, l3=2, ext_every=2):
        agents = wait_until(lambda: agents_by_host(ctl) if len(agents_by_host(ctl)) == 4
                            else None, 5)
        d0, d1 = agents["dhcp-000"]["id"], agents["dhcp-001"]["id"]
        l0, l1 = agents["l3-000"]["id"], agents["l3-001"]["id"]
        nets, rtrs = seed_objects(db_url(ctl), networks=1, routers=1)
        _, gw_rtrs = seed_objects(db_url(ctl), routers=1, gateway_routers=1, first_vlan=700)
        net, rtr, gw_rtr = nets[0], rtrs[0], gw_rtrs[0]

        def post(agent_id: str, what: str, body: dict) -> tuple[int, dict]:
            return http(f"{ctl.url}/v2.0/agents/{agent_id}/{what}", "POST", body)

        def err(result: tuple[int, dict]) -> tuple[int, str]:
            return result[0], (result[1] or {}).get("NeutronError", {}).get("type", "")

        assert post(d0, "dhcp-networks", {"network_id": net})[0] == 201
        assert network_hosts(ctl, net) == ["dhcp-000"]
        assert err(post(d0, "dhcp-networks", {"network_id": net})) == (
            409, "NetworkHostedByDHCPAgent")
        assert err(post(l0, "dhcp-networks", {"network_id": net})) == (404, "InvalidDHCPAgent")
        assert err(post("nope", "dhcp-networks", {"network_id": net})) == (404, "AgentNotFound")
        assert err(post(d0, "dhcp-networks", {"network_id": "nope"})) == (404, "NetworkNotFound")
        assert post(d0, "dhcp-networks", {})[0] == 400
        http(f"{ctl.url}/v2.0/agents/{d1}", "PUT", {"agent": {"admin_state_up": False}})
        assert err(post(d1, "dhcp-networks", {"network_id": net})) == (404, "InvalidDHCPAgent")
        http(f"{ctl.url}/v2.0/agents/{d1}", "PUT", {"agent": {"admin_state_up": True}})
        assert post(d1, "dhcp-networks", {"network_id": net})[0] == 201   # N-way by hand
        assert sorted(network_hosts(ctl, net)) == ["dhcp-000", "dhcp-001"]
        assert http(f"{ctl.url}/v2.0/agents/{d1}/dhcp-networks/{net}", "DELETE")[0] == 204
        assert err(http(f"{ctl.url}/v2.0/agents/{d1}/dhcp-networks/{net}", "DELETE")) == (
            409, "NetworkNotHostedByDhcpAgent")
        listed = http(f"{ctl.url}/v2.0/agents/{d0}/dhcp-networks")[1]["networks"]
        assert [n["id"] for n in listed] == [net]
        assert err(http(f"{ctl.url}/v2.0/networks/nope/dhcp-agents")) == (404, "NetworkNotFound")

        assert err(post(d0, "l3-routers", {"router_id": rtr})) == (404, "InvalidL3Agent")
        assert post(l1, "l3-routers", {"router_id": rtr})[0] == 201
        assert err(post(l0, "l3-routers", {"router_id": rtr})) == (409, "RouterHostedByL3Agent")
        assert err(post(l1, "l3-routers", {"router_id": gw_rtr})) == (404, "InvalidL3Agent")
        assert post(l0, "l3-routers", {"router_id": gw_rtr})[0] == 201
        assert err(post(l0, "l3-routers", {"router_id": "nope"})) == (404, "RouterNotFound")
        listed = http(f"{ctl.url}/v2.0/agents/{l1}/l3-routers")[1]["routers"]
        assert [r["id"] for r in listed] == [rtr]
        assert err(http(f"{ctl.url}/v2.0/agents/{l0}/l3-routers/{rtr}", "DELETE")) == (
            409, "RouterNotHostedByL3Agent")
        assert http(f"{ctl.url}/v2.0/agents/{l1}/l3-routers/{rtr}", "DELETE")[0] == 204
        assert router_hosts(ctl, rtr) == []
        assert err(http(f"{ctl.url}/v2.0/routers/nope/l3-agents")) == (404, "RouterNotFound")


def test_parallel_bind_race_leaves_one_binding(manual_ctl):
    ctl = manual_ctl
    with fleet_of(ctl, dhcp=1, l3=1):
        agents = wait_until(lambda: agents_by_host(ctl) if len(agents_by_host(ctl)) == 2
                            else None, 5)
        nets, rtrs = seed_objects(db_url(ctl), networks=5, routers=5)
        cases = [(agents["dhcp-000"]["id"], "dhcp-networks", "network_id", n) for n in nets]
        cases += [(agents["l3-000"]["id"], "l3-routers", "router_id", r) for r in rtrs]
        for agent_id, path, key, obj_id in cases:
            statuses: list[int] = []
            barrier = threading.Barrier(16)

            def fire(agent_id: str = agent_id, path: str = path, key: str = key,
                     obj_id: str = obj_id, barrier: threading.Barrier = barrier,
                     statuses: list[int] = statuses) -> None:
                barrier.wait()
                statuses.append(http(f"{ctl.url}/v2.0/agents/{agent_id}/{path}", "POST",
                                     {key: obj_id})[0])

            threads = [threading.Thread(target=fire) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(statuses) == [201] + [409] * 15
        hosted, routed = all_bindings(ctl)
        assert all(hosted[n] == ["dhcp-000"] for n in nets)
        assert all(routed[r] == ["l3-000"] for r in rtrs)
