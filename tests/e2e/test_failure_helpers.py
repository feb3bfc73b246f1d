"""The gateway failure helpers and probes themselves (tests/topology: Host.vanish/come_back,
kill_switch, cut_external, cut_management, ArpProbe, TcpSession), without a controller.

Two gateway hosts g1 and g2 get hand-made flows: an ARP responder for ``ANSWERED_IP`` on both,
so that every ARP request for it is answered twice, once per gateway, and on g1 a patch between
ext0 and a VM (``203.0.113.20``, on the external segment) that reaches the internet
namespace's echo server. (No NORMAL switching: the fabric and the external bridge would make
a loop through the two gateways.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.topology import (
    VM,
    ArpProbe,
    ArpReport,
    ComeBackOrder,
    Host,
    Outcome,
    TcpSession,
    Topology,
    leftovers,
    require_root_and_ovs,
    unique_prefix,
    wait_until,
)
from tests.topology._run import pid_alive
from tests.topology.host import EXT_OFPORT

pytestmark = pytest.mark.e2e

ANSWERED_IP = "203.0.113.77"
RESPONDER_MAC = "02:00:00:00:00:77"
ECHO_PORT = 7


def arp_responder(ip: str, mac: str) -> str:
    """An OpenFlow 1.3 flow answering ARP requests for ``ip`` with ``mac`` out of IN_PORT."""
    return ("priority=10,arp,arp_op=1,arp_tpa=" + ip + ",actions="
            "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],"
            f"set_field:{mac}->eth_src,set_field:2->arp_op,"
            "move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],"
            f"set_field:{mac}->arp_sha,set_field:{ip}->arp_spa,IN_PORT")


class Lab:
    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.g1 = topo.add_host("g1", gateway=True)
        self.g2 = topo.add_host("g2", gateway=True)
        self.vm: VM = topo.add_vm(self.g1, "ext", "55555555-5555-4555-8555-555555555555",
                                  "fa:16:3e:00:00:20", "203.0.113.20/24", "203.0.113.1")
        for g in (self.g1, self.g2):
            self.program(g)
        self.server = topo.internet.start_server(ECHO_PORT)

    def program(self, g: Host) -> None:
        g.ofctl("add-flow", arp_responder(ANSWERED_IP, RESPONDER_MAC))
        if g is self.g1:
            tap = self.vm.ofport
            g.ofctl("add-flow", f"priority=1,in_port={tap},actions=output:{EXT_OFPORT}")
            g.ofctl("add-flow", f"priority=1,in_port={EXT_OFPORT},actions=output:{tap}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_root_and_ovs()
    prefix = unique_prefix("f")
    workdir: Path = tmp_path_factory.mktemp("failure_helpers")
    with Topology(prefix, workdir) as topo:
        yield Lab(topo)
    assert leftovers(prefix) == []


def window(probe: ArpProbe, requests: int = 15) -> ArpReport:
    """The figures of ``requests`` requests sent from now on (polls until they are in)."""
    since = time.monotonic()
    return wait_until(lambda: (r := probe.report(since=since)).sent >= requests and r,
                      15, 0.05, f"{requests} ARP requests")


def answered_by(report: ArpReport) -> set[str]:
    return {who.split()[0] for who in report.repliers}


def test_arp_probe_counts_both_gateways_and_the_failures_silence_them(lab: Lab) -> None:
    g1, g2 = lab.g1, lab.g2
    probe = ArpProbe.start(lab.topo, ANSWERED_IP)
    try:
        assert probe.ports == ("x-g1", "x-g2")
        # (a gateway's bridge may still be settling when the probe starts)
        wait_until(lambda: window(probe, 5).doubled == 5, 15, 0.0, "both gateways answering")
        both = window(probe)
        assert both.doubled == both.sent and answered_by(both) == {"g1", "g2"}, both.describe()

        g1.vanish()   # frozen and cut off: only g2 answers
        assert g1.vanished and not g1.link_up("ext0") and not g1.link_up("mgmt0")
        only_g2 = window(probe)
        assert only_g2.answered_once == only_g2.sent, only_g2.describe()
        assert answered_by(only_g2) == {"g2"}
        g1.come_back(ComeBackOrder.LINKS_FIRST)   # it kept its flows through the freeze
        assert not g1.vanished and g1.link_up("ext0") and g1.link_up("uplink")
        again = window(probe)
        assert again.doubled == again.sent, again.describe()

        vswitchd = g2.vswitchd_pid
        g2.kill_switch()
        assert vswitchd is not None and not pid_alive(vswitchd)
        only_g1 = window(probe)
        assert only_g1.answered_once == only_g1.sent and answered_by(only_g1) == {"g1"}
        g2.start_vswitchd()   # back without flows (no controller) until programmed again
        lab.program(g2)
        wait_until(lambda: window(probe, 5).doubled == 5, 15, 0.0, "g2 answering again")

        g1.cut_external()
        assert window(probe).doubled == 0
        g1.restore_external()
        wait_until(lambda: window(probe, 5).doubled == 5, 15, 0.0, "g1 answering again")

        g2.cut_management()   # the data plane is untouched
        assert not g2.link_up("mgmt0")
        assert window(probe).doubled > 0
        g2.restore_management()
        assert g2.link_up("mgmt0")
    finally:
        report = probe.stop()
    assert report.sent > 0 and report.send_errors == 0


def test_tcp_session_survives_a_host_that_vanishes_and_comes_back(lab: Lab) -> None:
    g1 = lab.g1
    wait_until(lambda: lab.vm.ping(lab.topo.internet_ip, count=1, timeout=1), 15, 0.1,
               "ext VM -> internet")
    session = TcpSession.start(lab.vm, lab.topo.internet_ip, ECHO_PORT)
    try:
        assert session.wait_echoes(5)
        g1.vanish()
        stalled_at = session.echoed
        # no echo can come while the VM's host is gone
        wait_until(lambda: (session.last_echo() or 0) < time.monotonic() - 0.5, 10, 0.05,
                   "the session stalled")
        assert session.echoed == stalled_at
        g1.come_back()
        assert session.wait_echoes(stalled_at + 5, timeout=30), "no echo after the return"
    finally:
        report = session.stop()
    assert report.outcome is Outcome.SURVIVED, report.describe()
    assert report.echoed == report.sent and report.longest_gap > 0.5, report.describe()
    assert [p.src for p in lab.server.peers("tcp")] == ["203.0.113.20"]
