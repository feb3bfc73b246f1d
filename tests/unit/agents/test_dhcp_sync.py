"""The DHCP agent's reconcile loop with the RPC and the host faked: what it serves, what it
tears down, and that one broken network does not hold up the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ryu_sched.agents.base import SyncIncomplete
from ryu_sched.agents.config import load_settings
from ryu_sched.agents.dhcp_agent import DhcpAgent
from ryu_sched.agents.rpc_client import RpcCallError
from ryu_sched.agents.system import CommandFailed

SUBNET = {"id": "s", "cidr": "10.0.0.0/24", "enable_dhcp": True, "ip_version": 4}


class FakeRpc:
    def __init__(self, hosted: list[str], infos: dict[str, Any]) -> None:
        self.hosted = hosted
        self.infos = infos

    def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        if method == "get_hosted_networks":
            return self.hosted
        info = self.infos[params[0]]
        if isinstance(info, Exception):
            raise info
        return info


class Harness(DhcpAgent):
    def __init__(self, tmp_path: Path, rpc: FakeRpc, local: list[str]) -> None:
        super().__init__(load_settings(["--agent-host", "h", "--agent-state_path",
                                        str(tmp_path)]))
        self.rpc = rpc  # type: ignore[assignment]
        self.local = list(local)
        self.ensured: list[str] = []
        self.torn_down: list[str] = []
        self.broken: set[str] = set()

    def local_networks(self) -> list[str]:
        return list(self.local)

    def ensure(self, network_id: str, info: dict[str, Any]) -> int:
        if network_id in self.broken:
            raise CommandFailed("ip link add: exit 2")
        self.ensured.append(network_id)
        if network_id not in self.local:
            self.local.append(network_id)
        return len(info.get("ports", []))

    def teardown(self, network_id: str) -> None:
        self.torn_down.append(network_id)
        if network_id in self.local:
            self.local.remove(network_id)


def test_serves_hosted_networks_and_tears_down_the_rest(tmp_path: Path) -> None:
    rpc = FakeRpc(["a", "b", "nodhcp"], {
        "a": {"subnets": [SUBNET], "ports": [{}, {}]},
        "b": {"subnets": [SUBNET], "ports": []},
        "nodhcp": {"subnets": [{**SUBNET, "enable_dhcp": False}]},
    })
    agent = Harness(tmp_path, rpc, local=["a", "gone"])
    agent.sync()
    assert agent.ensured == ["a", "b"]
    assert sorted(agent.torn_down) == ["gone", "nodhcp"]
    assert agent.hosted == {"a": 2, "b": 0}
    assert agent.configurations() == {"networks": 2, "ports": 2}


def test_network_deleted_meanwhile_is_torn_down(tmp_path: Path) -> None:
    rpc = FakeRpc(["a"], {"a": RpcCallError({"type": "NotFound", "message": "no"})})
    agent = Harness(tmp_path, rpc, local=["a"])
    agent.sync()
    assert agent.torn_down == ["a"] and agent.hosted == {}


def test_one_failing_network_does_not_hold_up_the_others(tmp_path: Path) -> None:
    rpc = FakeRpc(["a", "b", "c"], {
        "a": {"subnets": [SUBNET], "ports": [{}]},
        "b": RpcCallError({"type": "IpAddressGenerationFailure", "message": "full"}),
        "c": {"subnets": [SUBNET], "ports": [{}]},
    })
    agent = Harness(tmp_path, rpc, local=["b"])
    agent.hosted = {"b": 5}
    agent.broken = {"c"}
    with pytest.raises(SyncIncomplete):
        agent.sync()
    assert agent.ensured == ["a"]
    assert agent.torn_down == []          # b and c are kept as they are, retried later
    assert agent.hosted == {"a": 1, "b": 5, "c": 0}
