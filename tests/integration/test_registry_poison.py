"""The attack on failover, against a real controller: heartbeats whose `configurations`
cannot be stored (binary, 1,000 levels deep, 512 KB, 100,000 items) are refused on receipt
and counted, a 10 MB one is cut by the endpoint's frame limit, the agents API keeps
answering, and a dead agent's networks still move."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import (
    DHCP,
    Disconnected,
    Fleet,
    RpcCallError,
    SimAgent,
    http,
    seed_objects,
)

pytestmark = pytest.mark.integration

DOWN = 2


@pytest.fixture
def ctl(tmp_path: Path) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path / "ctl", {"agent_down_time": DOWN,
                                              "heartbeat_flush_interval": 0.2}) as proc:
        yield proc


def deep_report_frame(host: str, levels: int, msgid: int) -> bytes:
    """A report_state request whose configurations nest ``levels`` deep (msgpack's own
    packer refuses to build it, so the bytes are spliced in)."""
    marker = "@@deep@@"
    frame = msgpack.packb([0, msgid, "report_state", [{
        "agent_type": DHCP, "host": host, "configurations": {"x": marker}}]],
        use_bin_type=True)
    deep = b"\x91" * levels + b"\xc0"          # [[[...[nil]...]]]
    packed_marker = msgpack.packb(marker)
    assert frame.count(packed_marker) == 1
    return frame.replace(packed_marker, deep)


def hosts_of(ctl: ControllerProcess, net_id: str) -> list[str]:
    return [a["host"] for a in
            http(f"{ctl.url}/v2.0/networks/{net_id}/dhcp-agents")[1]["agents"]]


def test_poisoned_heartbeats_are_refused_and_failover_keeps_working(ctl):
    rpc = (ctl.host, ctl.rpc_port)
    a, b = SimAgent(rpc, "dhcp-a", DHCP), SimAgent(rpc, "dhcp-b", DHCP)
    with Fleet([a, b], interval=0.4) as fleet:
        db_url = f"sqlite:///{ctl.workdir / 'state' / 'ryu_sched.sqlite'}"
        nets, _ = seed_objects(db_url, networks=4)
        wait_until(lambda: all(hosts_of(ctl, n) for n in nets), 10, 0.1, "networks hosted")

        evil = SimAgent(rpc, "evil", DHCP).connect()
        # 10 MB never gets past the endpoint's frame limit: the connection is cut
        with pytest.raises(Disconnected):
            evil.call("report_state", {**evil.state(),
                                       "configurations": {"x": "a" * (10 * 1024 * 1024)}},
                      timeout=30)
        evil = SimAgent(rpc, "evil", DHCP).connect()
        # what fits in a frame but is no agent state is refused by the registry, counted
        poisons = [{"blob": b"\x00\x01"}, {"x": "a" * (512 * 1024)},
                   {"x": list(range(100_000))}]
        for conf in poisons:
            with pytest.raises(RpcCallError) as err:
                evil.call("report_state", {**evil.state(), "configurations": conf}, timeout=30)
            assert err.value.type == "BadParams"
        with pytest.raises(RpcCallError) as err:       # a known agent turns bad
            a.call("report_state", {**a.state(), "configurations": {"blob": b"\xff"}})
        assert err.value.type == "BadParams"
        evil.send_raw(deep_report_frame("evil-deep", 1000, msgid=4_000_000_001))
        assert evil.call("ping") == "pong"

        status, body = http(f"{ctl.url}/v2.0/agents")
        assert status == 200
        assert {x["host"] for x in body["agents"]} == {"dhcp-a", "dhcp-b"}

        # the agent hosting networks dies: they all end up on the survivor
        victim = a if any(hosts_of(ctl, n) == ["dhcp-a"] for n in nets) else b
        survivor = b if victim is a else a
        fleet.kill(victim)
        wait_until(lambda: all(hosts_of(ctl, n) == [survivor.host] for n in nets),
                   DOWN + 5, 0.1, "failover after the poisoned heartbeats")

        stats = http(f"{ctl.url}/v2.0/agent-scheduler/stats")[1]["stats"]
        assert stats["refused_reports"] >= 5 and stats["rpc"]["bad_params"] >= 5
        assert stats["rpc"]["connections_closed_oversize"] == 1
        assert stats["dropped_agent_writes"] == 0
        assert stats["rpc"]["handler_errors"] == 0, ctl.log_text()[-3000:]
        evil.close()
    assert "heartbeat flush failed" not in ctl.log_text()
