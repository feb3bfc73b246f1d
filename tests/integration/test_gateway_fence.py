"""The gateway lease end to end: a real L3 agent process holds its lease from the real
controller; when the controller freezes (SIGSTOP) the lease lapses and the agent deletes every
ROUTER_ACTIVE flow from its real Open vSwitch bridge, and only those; once the controller runs
again the lease is held again, and a new lapse is fenced again.

A private ovsdb-server + ovs-vswitchd (``tests/support/ovs_sandbox.py``) in this namespace, the
controller on loopback. Needs root and OVS (a failure under CI=true without them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ryu_sched.shared.vocabulary import ROUTER_ACTIVE_COOKIE
from tests.support import ovs_sandbox
from tests.support.controller import ControllerProcess, wait_until

pytestmark = pytest.mark.integration

BRIDGE = "br-gw"
ACTIVE_COOKIE = ROUTER_ACTIVE_COOKIE | 0x00C0FFEE
OTHER_COOKIE = 0x0400000000ABCDEF          # a router's ordinary flow (kind ROUTER)
HELD = "gateway lease held"
LAPSED = "gateway lease lapsed"


@pytest.fixture
def sandbox() -> Iterator[ovs_sandbox.OvsSandbox]:
    with ovs_sandbox.running(ovs_sandbox.OvsSandbox, "fence-it-ovs-") as box:
        box.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev",
                  "protocols=OpenFlow13", "fail_mode=secure",
                  "other-config:datapath-id=00000000000000f1")
        yield box


class L3AgentProcess:
    def __init__(self, workdir: Path, sandbox: ovs_sandbox.OvsSandbox,
                 ctl: ControllerProcess) -> None:
        self.log_path = workdir / "l3-agent.log"
        self.argv = [sys.executable, "-m", "ryu_sched.agents.l3_agent",
                     "--agent-host", "gw1", "--agent-bridge", BRIDGE,
                     "--agent-ovsdb", sandbox.db,
                     "--agent-controller_host", ctl.host,
                     "--agent-controller_port", str(ctl.rpc_port),
                     "--agent-report_interval", "1",
                     "--agent-state_path", str(workdir / "state")]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def cookies(sandbox: ovs_sandbox.OvsSandbox) -> set[int]:
    out = sandbox.ofctl(BRIDGE, "dump-flows")
    return {int(part.split("=", 1)[1].rstrip(","), 16) for line in out.splitlines()
            for part in line.split() if part.startswith("cookie=")}


def add_flows(sandbox: ovs_sandbox.OvsSandbox) -> None:
    sandbox.ofctl(BRIDGE, "add-flow",
                  f"table=0,priority=500,cookie={ACTIVE_COOKIE:#x},arp,actions=drop")
    sandbox.ofctl(BRIDGE, "add-flow",
                  f"table=3,priority=100,cookie={OTHER_COOKIE:#x},ip,actions=drop")


def test_a_lapsed_lease_fences_the_bridge_and_keeps_the_other_flows(
        tmp_path: Path, sandbox: ovs_sandbox.OvsSandbox) -> None:
    with ControllerProcess(tmp_path / "ctl", {"agent_down_time": 5}) as ctl:
        agent = L3AgentProcess(tmp_path, sandbox, ctl)
        agent.start()
        frozen = False
        try:
            wait_until(lambda: HELD in agent.log(), 30, 0.05, "the agent holds its lease")
            assert f"{LAPSED} (never held since start)" in agent.log()   # fenced at start
            add_flows(sandbox)
            assert cookies(sandbox) == {ACTIVE_COOKIE, OTHER_COOKIE}

            assert ctl.proc is not None
            ctl.proc.send_signal(signal.SIGSTOP)          # frozen: sockets stay open
            frozen = True
            wait_until(lambda: ACTIVE_COOKIE not in cookies(sandbox), 10, 0.05,
                       "the agent deleted the ROUTER_ACTIVE flow")
            assert cookies(sandbox) == {OTHER_COOKIE}
            assert agent.log().count(LAPSED) == 2

            ctl.proc.send_signal(signal.SIGCONT)
            frozen = False
            wait_until(lambda: agent.log().count(HELD) >= 2, 30, 0.05,
                       "the lease is held again")
            add_flows(sandbox)
            ctl.proc.send_signal(signal.SIGSTOP)          # a new lapse: fenced again
            frozen = True
            wait_until(lambda: ACTIVE_COOKIE not in cookies(sandbox), 10, 0.05,
                       "the agent fenced again")
            assert cookies(sandbox) == {OTHER_COOKIE}
        finally:
            if frozen and ctl.proc is not None:
                ctl.proc.send_signal(signal.SIGCONT)
            agent.stop()
