"""The L3 agent's gateway lease and fence, with a fake clock and a fake controller client (the
real processes and OVS: tests/integration/test_gateway_fence.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ryu_sched.agents.config import load_settings
from ryu_sched.agents.gateway_lease import GatewayFence, Lease, fence_command
from ryu_sched.agents.rpc_client import CallTimeout, Disconnected, RpcCallError
from ryu_sched.agents.system import Ovs
from ryu_sched.shared.vocabulary import ROUTER_ACTIVE_COOKIE_MATCH, GatewayRpc


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeClient:
    """Answers keepalives as told: None (renew), or an exception to raise."""

    def __init__(self, clock: Clock, latency: float = 0.0) -> None:
        self.clock = clock
        self.latency = latency
        self.connected = True
        self.answer: BaseException | None = None
        self.calls: list[tuple[str, tuple[Any, ...], float]] = []
        self.drops = 0
        self.address = ("127.0.0.1", 9697)
        self.reply: dict[str, Any] = {"lease": True}

    def call(self, method: str, *params: Any, timeout: float) -> Any:
        self.calls.append((method, params, timeout))
        self.clock.now += self.latency
        if self.answer is not None:
            raise self.answer
        return self.reply

    def drop(self) -> None:
        self.drops += 1


def _fence(clock: Clock, client: FakeClient) -> tuple[GatewayFence, list[float]]:
    fenced: list[float] = []
    gateway = GatewayFence("gw1", client, lambda: fenced.append(clock.now),  # type: ignore[arg-type]
                           interval=0.1, timeout=0.4, stopping=threading.Event(), clock=clock)
    return gateway, fenced


def test_the_lease_runs_from_when_the_keepalive_was_sent() -> None:
    clock = Clock()
    client = FakeClient(clock, latency=0.05)
    gateway, _ = _fence(clock, client)
    assert gateway.keepalive_once()
    assert client.calls == [(GatewayRpc.KEEPALIVE, ("gw1", 0), 0.2)]   # no fence yet
    assert gateway.lease.expires == 100.4         # sent at 100.0, answered at 100.05
    assert gateway.lease.held(100.39) and not gateway.lease.held(100.4)


def test_an_agent_fences_at_start_then_once_per_lapse() -> None:
    clock = Clock()
    client = FakeClient(clock)
    gateway, fenced = _fence(clock, client)
    gateway.check()                  # no lease yet: whatever a previous life left goes
    gateway.check()
    assert fenced == [100.0]
    gateway.keepalive_once()
    assert abs(gateway.check() - 0.1) < 1e-9   # held: look again in an interval
    clock.now = 100.4
    gateway.check()
    clock.now = 100.5
    gateway.check()                  # still the same lapse: nothing more to do
    assert fenced == [100.0, 100.4]
    gateway.keepalive_once()         # regained ...
    clock.now = 101.0
    gateway.check()                  # ... and lost again: fenced again
    assert fenced == [100.0, 100.4, 101.0]
    assert gateway.fences == 3


def test_a_late_answer_does_not_regain_a_lapsed_lease() -> None:
    clock = Clock()
    client = FakeClient(clock, latency=0.5)      # answered after the lease it would give
    gateway, fenced = _fence(clock, client)
    gateway.check()
    assert not gateway.keepalive_once() or not gateway.lease.held()
    assert not gateway.lease.held() and gateway.lease.term == 0
    gateway.check()
    assert fenced == [100.0]


def test_a_controller_that_does_not_lead_is_left_for_the_next() -> None:
    clock = Clock()
    client = FakeClient(clock)
    gateway, _ = _fence(clock, client)
    client.answer = RpcCallError({"type": GatewayRpc.NOT_LEADING, "message": "follower"})
    assert not gateway.keepalive_once()
    assert client.drops == 1 and not gateway.lease.held()


def test_other_refusals_keep_the_connection() -> None:
    clock = Clock()
    client = FakeClient(clock)
    gateway, _ = _fence(clock, client)
    client.answer = RpcCallError({"type": "NotFound", "message": "no L3 agent on gw1"})
    assert not gateway.keepalive_once()
    assert client.drops == 0


def test_an_unanswered_keepalive_moves_on_only_once_the_lease_is_gone() -> None:
    clock = Clock()
    client = FakeClient(clock)
    gateway, _ = _fence(clock, client)
    gateway.keepalive_once()
    client.answer = CallTimeout("no answer")
    client.latency = 0.2
    gateway.keepalive_once()                     # lease still held at the timeout
    assert client.drops == 0
    gateway.keepalive_once()                     # now it is not
    assert client.drops == 1


def test_no_keepalive_while_disconnected_and_a_lost_call_is_no_renewal() -> None:
    clock = Clock()
    client = FakeClient(clock)
    gateway, _ = _fence(clock, client)
    client.connected = False
    assert not gateway.keepalive_once() and client.calls == []
    client.connected = True
    client.answer = Disconnected("lost")
    assert not gateway.keepalive_once() and not gateway.lease.held()


def test_a_failed_fence_is_tried_again_while_lapsed() -> None:
    clock = Clock()
    calls: list[float] = []

    def fence() -> None:
        calls.append(clock.now)
        if len(calls) == 1:
            raise RuntimeError("vswitchd restarting")

    gateway = GatewayFence("gw1", FakeClient(clock), fence, 0.1, 0.4,  # type: ignore[arg-type]
                           threading.Event(), clock)
    assert gateway.check() == 0.1
    clock.now += 0.1
    gateway.check()
    clock.now += 0.1
    gateway.check()
    assert calls == [100.0, 100.1] and gateway.fences == 1


def test_lease_term_counts_regains_only() -> None:
    clock = Clock()
    lease = Lease(0.4, clock)
    assert lease.renew(100.0) and lease.term == 1
    assert not lease.renew(100.1) and lease.term == 1
    clock.now = 101.0
    assert lease.renew(100.9) and lease.term == 2


def test_the_fence_deletes_router_active_flows_over_the_bridge_socket(tmp_path: Path,
                                                                      monkeypatch: Any) -> None:
    settings = load_settings(["--agent-ovsdb", f"unix:{tmp_path}/db.sock",
                              "--agent-bridge", "br-x"])
    assert settings.ovs_socket_dir == str(tmp_path)
    assert (settings.fence_interval, settings.fence_timeout) == (0.1, 0.4)
    ovs = Ovs(settings.ovsdb, settings.bridge, settings.ovs_socket_dir)
    seen: list[list[str]] = []
    monkeypatch.setattr("ryu_sched.agents.system.run",
                        lambda argv, **kw: seen.append(list(argv)) or "")
    fence_command(ovs.del_flows)()
    assert seen == [["ovs-ofctl", "-O", "OpenFlow13", "--timeout=5", "del-flows",
                     f"unix:{tmp_path}/br-x.mgmt", ROUTER_ACTIVE_COOKIE_MATCH]]
    assert ROUTER_ACTIVE_COOKIE_MATCH == "cookie=0x0800000000000000/0xff00000000000000"


def test_rundir_option_and_default() -> None:
    assert load_settings(["--agent-ovsdb", "tcp:127.0.0.1:6640"]).ovs_socket_dir == \
        "/var/run/openvswitch"
    assert load_settings(["--agent-ovs_rundir", "/run/x"]).ovs_socket_dir == "/run/x"


def test_clean_refusals_keep_the_lease_until_the_hold_silence_does_not() -> None:
    """A controller that restarts (connection reset, refused) or an election (NotLeading)
    cannot be promoting a standby: the lease lasts until the hold the controller gave. A
    keepalive that goes unanswered means silence: the strict end applies at once."""
    clock = Clock()
    client = FakeClient(clock)
    client.reply = {"agent_id": "a", "hold": 1.5}
    gateway, fenced = _fence(clock, client)
    gateway.check()                                # the fence at start
    assert gateway.keepalive_once()
    client.answer = Disconnected("reset by peer")  # the controller process went away
    clock.now = 100.1
    assert not gateway.keepalive_once()
    clock.now = 100.45
    gateway.check()
    assert fenced == [100.0] and gateway.lease.held()   # past the strict end: still held
    clock.now = 101.5
    gateway.check()
    assert fenced == [100.0, 101.5]                # the hold ran out: fenced
    # renewed again; then a keepalive is not answered: strict from then on
    client.answer = None
    assert gateway.keepalive_once()
    client.answer = CallTimeout("no answer")
    clock.now = 101.6
    gateway.keepalive_once()
    clock.now = 101.9
    gateway.check()
    assert fenced == [100.0, 101.5, 101.9]         # 101.5 + 0.4: the strict end


def test_a_frozen_agent_counts_as_silence() -> None:
    clock = Clock()
    client = FakeClient(clock)
    client.reply = {"agent_id": "a", "hold": 1.5}
    gateway, _ = _fence(clock, client)
    assert gateway.keepalive_once()
    gateway.lease.went_silent()                    # what the watchdog does after a freeze
    assert not gateway.lease.held(100.4) and gateway.lease.held(100.39)
