"""The agent's fence over its standing OpenFlow connection, on a real Open vSwitch: it removes
every ROUTER_ACTIVE flow (all tables) and nothing else; written while ovs-vswitchd is frozen,
the delete is applied as soon as the switch runs again. Needs root and OVS (a failure under
CI=true without them)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest

from ryu_sched.agents.openflow_fence import OpenFlowFence
from ryu_sched.shared.vocabulary import COOKIE_KIND_MASK, ROUTER_ACTIVE_COOKIE
from tests.support import ovs_sandbox
from tests.support.controller import wait_until

BRIDGE = "br-fence"


@pytest.fixture(scope="module")
def box() -> Iterator[ovs_sandbox.OvsSandbox]:
    with ovs_sandbox.running(ovs_sandbox.OvsSandbox, "agent-fence-") as sandbox:
        sandbox.vsctl("add-br", BRIDGE, "--", "set", "Bridge", BRIDGE,
                      "datapath_type=dummy", "protocols=OpenFlow13", "fail_mode=secure")
        yield sandbox


def _cookies(box: ovs_sandbox.OvsSandbox) -> list[int]:
    lines = box.ofctl(BRIDGE, "dump-flows").splitlines()
    return sorted(int(part.split("=")[1].rstrip(","), 16) for line in lines
                  for part in line.split() if part.startswith("cookie="))


def _install(box: ovs_sandbox.OvsSandbox) -> tuple[list[int], int]:
    active = [ROUTER_ACTIVE_COOKIE | 0x12, ROUTER_ACTIVE_COOKIE | 0x34]
    other = (0x04 << 56) | 0x12                      # a ROUTER flow: stays
    for table, priority, cookie in ((0, 100, active[0]), (7, 100, active[1]),
                                    (0, 200, other)):
        box.ofctl(BRIDGE, "add-flow",
                  f"table={table},priority={priority},cookie={cookie:#x},arp,actions=drop")
    return active, other


def _fence(box: ovs_sandbox.OvsSandbox) -> OpenFlowFence:
    fallback_used: list[bool] = []
    fence = OpenFlowFence(f"{box.root}/{BRIDGE}.mgmt", ROUTER_ACTIVE_COOKIE, COOKIE_KIND_MASK,
                          fallback=lambda: fallback_used.append(True))
    assert fence.connect()
    fence.fallback_used = fallback_used  # type: ignore[attr-defined]
    return fence


def test_the_fence_removes_only_router_active_flows(box: ovs_sandbox.OvsSandbox) -> None:
    active, other = _install(box)
    assert set(active) <= set(_cookies(box))
    fence = _fence(box)
    try:
        fence()
        assert _cookies(box) == [other]
        assert fence.sent == 1 and fence.fallback_used == []  # type: ignore[attr-defined]
    finally:
        fence.close()
        box.ofctl(BRIDGE, "del-flows")


def test_a_fence_written_while_the_switch_is_frozen_applies_when_it_resumes(
        box: ovs_sandbox.OvsSandbox) -> None:
    _active, other = _install(box)
    fence = _fence(box)
    pid = box.pid("vswitchd")
    assert pid is not None
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fence()
        except BaseException as exc:
            errors.append(exc)

    os.kill(pid, signal.SIGSTOP)
    try:
        thread = threading.Thread(target=run)
        thread.start()
        wait_until(lambda: fence.sent == 1, 5, 0.01, "the delete written to the socket")
        assert thread.is_alive()                # no barrier reply from a frozen switch
    finally:
        os.kill(pid, signal.SIGCONT)
    thread.join(5)
    assert not thread.is_alive() and errors == []
    assert _cookies(box) == [other]
    fence.close()
    box.ofctl(BRIDGE, "del-flows")
