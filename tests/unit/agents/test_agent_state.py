"""What the agents put in their heartbeat, with the OVS queries faked."""

from __future__ import annotations

from pathlib import Path

from ryu_sched.agents.config import AgentSettings, load_settings
from ryu_sched.agents.dhcp_agent import DhcpAgent
from ryu_sched.agents.l3_agent import L3Agent


class FakeOvs:
    def __init__(self, dpid: str | None, link_up: bool) -> None:
        self.dpid = dpid
        self.up = link_up

    def datapath_id(self) -> str | None:
        return self.dpid

    def link_up(self, name: str) -> bool:
        return self.up and name == "ext0"


def _settings(tmp_path: Path, *extra: str) -> AgentSettings:
    return load_settings(["--agent-host", "gw1", "--agent-state_path", str(tmp_path),
                          "--agent-report_interval", "1", *extra])


def test_l3_agent_reports_datapath_external_port_and_its_link_state(tmp_path: Path) -> None:
    agent = L3Agent(_settings(tmp_path))
    agent.ovs = FakeOvs("00000000000000aa", link_up=True)  # type: ignore[assignment]
    state = agent.agent_state()
    assert state["agent_type"] == "L3 agent" and state["host"] == "gw1"
    assert state["start_flag"] is True
    assert state["configurations"] == {"bridge": "br-int", "datapath_id": "00000000000000aa",
                                       "external_port": "ext0", "external_link_up": True,
                                       "routers": 0}
    agent.ovs.up = False  # type: ignore[attr-defined]
    assert agent.agent_state()["configurations"]["external_link_up"] is False


def test_missing_bridge_reports_no_datapath_id(tmp_path: Path) -> None:
    agent = L3Agent(_settings(tmp_path))
    agent.ovs = FakeOvs(None, link_up=False)  # type: ignore[assignment]
    assert "datapath_id" not in agent.agent_state()["configurations"]


def test_dhcp_agent_reports_its_load(tmp_path: Path) -> None:
    agent = DhcpAgent(_settings(tmp_path))
    agent.ovs = FakeOvs("0000000000000001", link_up=False)  # type: ignore[assignment]
    agent.hosted = {"n1": 3, "n2": 4}
    conf = agent.agent_state()["configurations"]
    assert (conf["networks"], conf["ports"]) == (2, 7)
    assert agent.agent_state()["topic"] == "dhcp_agent"


def test_namespaces_and_dnsmasq_files_use_the_prefix_and_state_path(tmp_path: Path) -> None:
    agent = DhcpAgent(_settings(tmp_path, "--agent-namespace_prefix", "t1g1-"))
    assert agent.namespace("net-1") == "t1g1-qdhcp-net-1"
    dnsmasq = agent.dnsmasq("net-1", "0123456789abcdef")
    assert dnsmasq.conf_dir == tmp_path / "dhcp" / "net-1"
    assert dnsmasq.interface == "ns-0123456789a"
    assert dnsmasq.namespace == "t1g1-qdhcp-net-1"
