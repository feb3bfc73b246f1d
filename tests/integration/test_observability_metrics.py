"""Prometheus metrics of a real controller process with simulated agents over RPC: scraped
from the metrics listener and parsed with prometheus_client's own parser."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import DHCP, L3, Fleet, SimAgent, http, seed_objects

pytestmark = pytest.mark.integration

DOWN = 2
MONITOR = DOWN / 3          # the default monitor period: agent_down_time / 3

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(ctl: ControllerProcess) -> Samples:
    with urllib.request.urlopen(ctl.metrics_url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def by_host(samples: Samples, name: str) -> dict[str, float]:
    return {dict(labels)["host"]: v for (n, labels), v in samples.items() if n == name}


class UnhostedWatch:
    """Scrapes in the background and keeps the largest ``ryu_sched_unhosted`` seen."""

    def __init__(self, ctl: ControllerProcess) -> None:
        self.ctl = ctl
        self.worst: dict[str, float] = {"network": 0.0, "router": 0.0}
        self.scrapes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            samples = scrape(self.ctl)
            for kind in self.worst:
                self.worst[kind] = max(self.worst[kind],
                                       get(samples, "ryu_sched_unhosted", kind=kind) or 0.0)
            self.scrapes += 1
            self._stop.wait(0.05)

    def __enter__(self) -> UnhostedWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path / "ctl", {"agent_down_time": DOWN,
                                              "heartbeat_flush_interval": 0.2}) as proc:
        yield proc


def test_failover_shows_in_agent_up_moves_and_the_failover_histogram(ctl):
    rpc = (ctl.host, ctl.rpc_port)
    agents = [SimAgent(rpc, f"dhcp-{i}", DHCP) for i in range(3)]
    agents += [SimAgent(rpc, f"l3-{i}", L3, dpid=100 + i) for i in range(2)]
    with Fleet(agents, interval=0.3) as fleet:
        nets, routers = seed_objects(f"sqlite:///{ctl.workdir / 'state' / 'ryu_sched.sqlite'}",
                                     networks=6, routers=4)

        def placed() -> Samples | None:
            samples = scrape(ctl)
            hosted = by_host(samples, "ryu_sched_agent_hosted")
            dhcp = sum(v for h, v in hosted.items() if h.startswith("dhcp"))
            l3 = sum(v for h, v in hosted.items() if h.startswith("l3"))
            return samples if (dhcp, l3) == (len(nets), len(routers)) else None

        samples = wait_until(placed, 15, 0.1, "all networks and routers hosted")
        assert set(by_host(samples, "ryu_sched_agent_up").values()) == {1.0}
        assert get(samples, "ryu_sched_unhosted", kind="network") == 0.0
        assert get(samples, "ryu_sched_leader") == 1.0
        assert get(samples, "ryu_sched_rpc_connections") == len(agents)
        assert (get(samples, "ryu_sched_heartbeats_total") or 0) >= len(agents)
        assert get(samples, "ryu_sched_failover_seconds_count") == 0.0
        hosted = by_host(samples, "ryu_sched_agent_hosted")
        victims = [a for a in (agents[0], agents[3]) if hosted[a.host]]
        lost = {a.agent_type: hosted[a.host] for a in victims}
        assert len(victims) == 2

        with UnhostedWatch(ctl) as watch:
            for agent in victims:
                fleet.kill(agent)

            def down() -> Samples | None:
                samples = scrape(ctl)
                up = by_host(samples, "ryu_sched_agent_up")
                return samples if all(up[a.host] == 0.0 for a in victims) else None

            samples = wait_until(down, DOWN + MONITOR + 1.0, 0.05,
                                 "killed agents at ryu_sched_agent_up 0")
            live = by_host(samples, "ryu_sched_agent_up")
            assert sorted(h for h, v in live.items() if v == 1.0) == sorted(
                a.host for a in agents if a not in victims)

            def failed_over() -> Samples | None:
                samples = scrape(ctl)
                return samples if get(samples, "ryu_sched_failover_seconds_count") == 2 \
                    else None

            samples = wait_until(failed_over, 10, 0.1, "two failovers measured")
        assert get(samples, "ryu_sched_moves_total", kind="network",
                   reason="failover") == lost[DHCP]
        assert get(samples, "ryu_sched_moves_total", kind="router",
                   reason="failover") == lost[L3]
        assert get(samples, "ryu_sched_failover_seconds_bucket", le="+Inf") == 2.0
        assert all(by_host(samples, "ryu_sched_agent_hosted")[a.host] == 0 for a in victims)
        assert get(samples, "ryu_sched_rpc_connections") == len(agents) - len(victims)
        # live candidates were there all along: nothing was ever unhosted
        assert watch.scrapes > 0 and watch.worst == {"network": 0.0, "router": 0.0}
        moves = http(f"{ctl.url}/v2.0/agent-scheduler/moves")[1]["moves"]
        assert len(moves) == lost[DHCP] + lost[L3]


def test_unhosted_counts_what_no_live_agent_can_take_and_admin_state_is_exported(ctl):
    rpc = (ctl.host, ctl.rpc_port)
    only = SimAgent(rpc, "dhcp-only", DHCP)
    with Fleet([only], interval=0.3) as fleet:
        _, routers = seed_objects(f"sqlite:///{ctl.workdir / 'state' / 'ryu_sched.sqlite'}",
                                  networks=2, routers=1)
        labels = {"agent_type": DHCP, "host": "dhcp-only", "availability_zone": "nova"}
        # no L3 agent at all: the router is unhosted; the networks are placed
        wait_until(lambda: get(scrape(ctl), "ryu_sched_unhosted", kind="router") == 1.0, 10,
                   0.1, "the router counted unhosted")
        assert get(scrape(ctl), "ryu_sched_unhosted", kind="network") == 0.0
        assert get(scrape(ctl), "ryu_sched_agent_admin_up", **labels) == 1.0
        status, _ = http(f"{ctl.url}/v2.0/agents/{only.agent_id}", "PUT",
                         {"agent": {"admin_state_up": False}})
        assert status == 200
        assert get(scrape(ctl), "ryu_sched_agent_admin_up", **labels) == 0.0
        # the only DHCP agent dies: with no candidate its networks stay, unhosted
        fleet.kill(only)
        wait_until(lambda: get(scrape(ctl), "ryu_sched_unhosted", kind="network") == 2.0,
                   DOWN + MONITOR + 3, 0.1, "networks of the dead agent unhosted")
        assert routers


def test_the_metrics_listener_needs_no_credentials_and_the_api_is_timed(tmp_path):
    tokens = {"adm": {"project_id": "p0", "role": "admin"}}
    with ControllerProcess(tmp_path / "ctl", tokens=tokens) as ctl:
        assert ctl.request("GET", "/v2.0/networks")[0] == 401
        assert ctl.request("GET", "/v2.0/networks", token="adm")[0] == 200
        samples = scrape(ctl)
        assert get(samples, "ryu_sched_api_request_seconds_count", method="GET",
                   resource="networks", status="401") == 1.0
        assert get(samples, "ryu_sched_api_request_seconds_count", method="GET",
                   resource="networks", status="200") == 1.0
        assert ctl.request("GET", "/dashboard/state")[0] == 401
        with urllib.request.urlopen(f"{ctl.url}/dashboard/", timeout=5) as response:
            assert b"dashboard.js" in response.read()
