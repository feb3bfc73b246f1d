"""The gateway-health monitor driven by hand: echo rounds, leases, port states, the fence and
the registry's fast path (a fake registry: ``gateway_failed`` lives in another branch)."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

from ryu_sched.gateway.component import gateways_of
from ryu_sched.gateway.echo import EchoProber, payload
from ryu_sched.gateway.health import GatewayState, HealthConfig, Reason
from ryu_sched.gateway.monitor import Gateway, GatewayMonitor

CONFIG = HealthConfig(fence_timeout=0.4, fence_margin=0.15, echo_misses=3, fence_retry=0.5)
G1 = Gateway("agent-1", 0x11, "ext0")
G2 = Gateway("agent-2", 0x22, "ext0")


class FakeRegistry:
    def __init__(self) -> None:
        self.failed: list[tuple[str, str]] = []

    def gateway_failed(self, agent_id: str, reason: str) -> list[str]:
        self.failed.append((agent_id, reason))
        return ["router-1"]


class FakeFencer:
    def __init__(self) -> None:
        self.asked: list[int] = []
        self.callbacks: list[Callable[[], None]] = []
        self.reachable = True
        self.fenced_asked: list[int] = []
        self.lifted: list[int] = []

    def lift(self, dpid: int) -> None:
        self.lifted.append(dpid)

    def agent_fenced(self, dpid: int) -> bool:
        self.fenced_asked.append(dpid)
        return True

    def fence_switch(self, dpid: int, on_done: Callable[[], None]) -> bool:
        self.asked.append(dpid)
        if self.reachable:
            self.callbacks.append(on_done)
        return self.reachable


class Lab:
    def __init__(self) -> None:
        self.now = 0.0
        self.registry = FakeRegistry()
        self.fencer = FakeFencer()
        self.echoes: list[tuple[int, bytes]] = []
        self.leading = True
        self.gateways = [G1, G2]
        self.dropped: list[int] = []
        self.monitor = GatewayMonitor(CONFIG, lambda: self.gateways, self.registry,
                                      self.fencer, self.send, lambda: self.leading,
                                      clock=lambda: self.now, drop_channel=self.dropped.append)
        self.answering = {G1.dpid, G2.dpid}

    def send(self, dpid: int, data: bytes) -> bool:
        self.echoes.append((dpid, data))
        return True

    def round(self, renew: tuple[Gateway, ...] = (G1, G2)) -> None:
        """0.1 s later: a tick (echo round), the switches that answer do, keepalives."""
        self.now = round(self.now + 0.1, 6)
        sent = len(self.echoes)
        self.monitor.tick()
        for dpid, data in self.echoes[sent:]:
            if dpid in self.answering:
                self.monitor.echo_reply(dpid, data)
        for gateway in renew:
            self.monitor.lease_granted(gateway.agent_id, self.now)

    def state(self, gateway: Gateway) -> GatewayState:
        return self.monitor.states()[gateway.agent_id]


def healthy_lab() -> Lab:
    lab = Lab()
    lab.monitor.switch_connected(G1.dpid)
    lab.monitor.switch_connected(G2.dpid)
    lab.monitor.port_state(G1.dpid, "ext0", True)
    for _ in range(3):
        lab.round()
    return lab


def test_healthy_gateways_get_echoes_and_nothing_happens() -> None:
    lab = healthy_lab()
    for _ in range(20):
        lab.round()
    assert lab.monitor.states() == {G1.agent_id: GatewayState.HEALTHY,
                                    G2.agent_id: GatewayState.HEALTHY}
    assert {d for d, _ in lab.echoes} == {G1.dpid, G2.dpid}
    assert lab.registry.failed == [] and lab.fencer.asked == []


def test_a_cut_gateway_is_failed_over_through_the_registry_after_the_lease() -> None:
    lab = healthy_lab()
    lab.answering.discard(G1.dpid)
    for _ in range(5):
        lab.round(renew=(G2,))
    assert lab.state(G1) is GatewayState.CONTROL_LOST and lab.registry.failed == []
    lab.round(renew=(G2,))
    assert lab.state(G1) is GatewayState.SILENT
    assert lab.registry.failed == [(G1.agent_id, Reason.LEASE_LAPSED)]
    assert lab.state(G2) is GatewayState.HEALTHY


def test_external_link_down_fences_over_openflow_then_fails_over() -> None:
    lab = healthy_lab()
    lab.monitor.port_state(G1.dpid, "ext0", False)
    assert lab.fencer.asked == [G1.dpid] and lab.registry.failed == []
    lab.fencer.callbacks.pop()()              # the barrier came back
    assert lab.registry.failed == [(G1.agent_id, Reason.EXT_LINK_FENCED)]
    lab.monitor.port_state(G1.dpid, "other", False)   # not its external port
    assert len(lab.fencer.asked) == 1


def test_both_connections_closed_fail_over_at_once() -> None:
    lab = healthy_lab()
    lab.monitor.switch_disconnected(G1.dpid)
    lab.monitor.lease_connection_closed(G1.agent_id, lab.now)
    assert lab.registry.failed == [(G1.agent_id, Reason.PROCESSES_DIED)]


def test_a_switch_the_fence_cannot_reach_is_asked_again() -> None:
    lab = healthy_lab()
    lab.fencer.reachable = False
    lab.monitor.port_state(G1.dpid, "ext0", False)
    for _ in range(6):
        lab.round()
    assert lab.fencer.asked == [G1.dpid, G1.dpid]
    assert lab.registry.failed == []


def test_a_follower_forgets_everything_and_acts_on_nothing() -> None:
    lab = healthy_lab()
    lab.leading = False
    lab.round()
    assert lab.monitor.states() == {}
    lab.answering.clear()
    for _ in range(20):
        lab.round(renew=())
    lab.monitor.port_state(G1.dpid, "ext0", False)
    assert lab.registry.failed == [] and lab.fencer.asked == []


def test_a_new_leader_judges_leases_only_once_it_granted_one() -> None:
    lab = Lab()
    lab.monitor.switch_connected(G1.dpid)
    for _ in range(50):                         # 5 s: no keepalive (agents without leases)
        lab.round(renew=())
    assert lab.registry.failed == [] and lab.fencer.asked == []
    lab.round(renew=(G1,))                      # G1's agent holds one from now on
    for _ in range(5):
        lab.round(renew=())
    assert lab.fencer.asked == [G1.dpid]        # lapsed, switch reachable: fenced over OF
    assert lab.registry.failed == []


def test_a_gateway_whose_switch_changed_starts_afresh() -> None:
    lab = healthy_lab()
    lab.gateways = [Gateway(G1.agent_id, 0x33, "ext0"), G2]
    lab.round()
    assert lab.monitor.tracked[G1.agent_id].gateway.dpid == 0x33
    lab.gateways = [G2]
    lab.round()
    assert set(lab.monitor.states()) == {G2.agent_id}


def test_a_registry_without_the_fast_path_is_logged_not_fatal() -> None:
    lab = healthy_lab()
    lab.monitor.registry = object()             # type: ignore[assignment]
    lab.monitor.switch_disconnected(G1.dpid)
    lab.monitor.lease_connection_closed(G1.agent_id, lab.now)
    assert list(lab.monitor.failed_over) == [(G1.agent_id, Reason.PROCESSES_DIED)]


def test_echo_rounds_count_misses_and_ignore_stale_or_foreign_replies() -> None:
    sent: list[tuple[int, bytes]] = []
    prober = EchoProber(lambda dpid, data: sent.append((dpid, data)) is None)
    assert prober.round([1, 2]) == []
    first = dict(sent)
    assert prober.reply(1, first[1])
    assert not prober.reply(1, first[1])        # answered already
    assert not prober.reply(2, b"someone else's echo")
    assert prober.round([1, 2]) == [2]
    assert not prober.reply(2, first[2])        # late: a newer request is awaited
    assert prober.round([1]) == [1] and 2 not in prober.outstanding
    assert not prober.reply(3, payload(1))


def test_gateways_are_the_l3_agents_that_reported_a_switch() -> None:
    def rec(agent_id: str, agent_type: str, conf: dict) -> SimpleNamespace:
        return SimpleNamespace(id=agent_id, agent_type=agent_type, configurations=conf,
                               datapath_id=conf.get("datapath_id"))

    agents = [rec("a", "L3 agent", {"datapath_id": "00000000000000aa",
                                    "external_port": "ext1"}),
              rec("b", "L3 agent", {}),
              rec("c", "DHCP agent", {"datapath_id": "0000000000000001"}),
              rec("d", "L3 agent", {"datapath_id": "zz"})]
    assert list(gateways_of(agents)) == [Gateway("a", 0xAA, "ext1")]


def test_an_agent_that_fenced_gets_its_switch_synced_again() -> None:
    lab = healthy_lab()
    lab.monitor.agent_fenced(G1.agent_id)
    assert lab.fencer.fenced_asked == [G1.dpid]
    lab.monitor.agent_fenced("unknown-agent")
    assert lab.fencer.fenced_asked == [G1.dpid]


def test_the_fence_is_lifted_once_the_gateway_is_healthy_again() -> None:
    lab = healthy_lab()
    lab.monitor.port_state(G1.dpid, "ext0", False)          # external link cut: fenced
    assert lab.fencer.asked == [G1.dpid]
    lab.fencer.lifted.clear()
    lab.round()
    assert G1.dpid not in lab.fencer.lifted                 # not while it is down
    lab.monitor.port_state(G1.dpid, "ext0", True)
    lab.round()
    assert G1.dpid in lab.fencer.lifted


def test_a_lost_control_channel_is_closed_once() -> None:
    """Unanswered echoes pile up in the connection and its retransmissions back off: the
    connection is closed once, when the misses reach the threshold."""
    lab = healthy_lab()
    lab.answering.discard(G1.dpid)
    for _ in range(6):
        lab.round()
    assert lab.dropped == [G1.dpid]
