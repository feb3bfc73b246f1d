"""The ARP probe's pure parts: frames it sends and accepts, and how replies are counted."""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

from tests.topology import arp_probe
from tests.topology.arp_probe import ArpProbe, probe_mac

TARGET = socket.inet_aton("203.0.113.10")
SENDER = socket.inet_aton(arp_probe.PROBE_IP)
ROUTER_MAC = bytes.fromhex("fa163e000001")


def reply_to(request: bytes, sha: bytes = ROUTER_MAC) -> bytes:
    """What a gateway's ARP responder makes of ``request`` (answered in place)."""
    requester = request[6:12]
    eth = requester + sha + struct.pack("!H", arp_probe.ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, arp_probe.ARP_REPLY, sha, TARGET,
                      requester, SENDER)
    return eth + arp


def test_request_asks_for_the_target_from_its_own_mac() -> None:
    frame = arp_probe._request_frame(1029, 7, SENDER, TARGET)
    assert frame[:6] == b"\xff" * 6
    assert frame[6:12] == probe_mac(1029, 7) == bytes.fromhex("02a99b070005")
    assert frame[22:28] == probe_mac(1029, 7)   # sender hardware address
    assert frame[28:32] == SENDER and frame[38:42] == TARGET


def test_a_reply_is_matched_to_its_request_slot_and_tag() -> None:
    request = arp_probe._request_frame(1029, 7, SENDER, TARGET)
    assert arp_probe._parse_reply(reply_to(request), 7, SENDER, TARGET) == (5, ROUTER_MAC)
    assert arp_probe._parse_reply(reply_to(request), 8, SENDER, TARGET) is None  # another probe
    assert arp_probe._parse_reply(request, 7, SENDER, TARGET) is None            # not a reply


class FakeProc:
    """The probe subprocess's finished output (pure logic: no process)."""

    def __init__(self, lines: list[str]):
        self.stdout = io.StringIO("".join(f"{line}\n" for line in lines))

    def poll(self) -> int:
        return 0


def probe_from(lines: list[str]) -> ArpProbe:
    fake: Any = FakeProc(["READY x-g1,x-g2", *lines])
    probe = ArpProbe(topo=None, target="203.0.113.10", interval=0.02, proc=fake)  # type: ignore[arg-type]
    probe._reader.join(5.0)
    return probe


def test_report_counts_unanswered_single_and_double_replies_per_request() -> None:
    probe = probe_from([
        "S 1 10.00", "R 1 10.001 fa:16:3e:00:00:01 x-g1",
        "S 2 10.02",
        "S 3 10.04",
        "S 4 10.06", "R 4 10.061 fa:16:3e:00:00:01 x-g1", "R 4 10.062 fa:16:3e:00:00:01 x-g2",
        "S 5 10.08", "R 5 10.50 fa:16:3e:00:00:01 x-g2",   # late, still request 5's
    ])
    report = probe.report()
    assert (report.sent, report.unanswered, report.answered_once, report.doubled) == (5, 2, 2, 1)
    assert report.doubles == ((4, 10.06, ("g1", "g2")),)
    assert report.repliers == {"g1 fa:16:3e:00:00:01": 2, "g2 fa:16:3e:00:00:01": 2}
    assert abs(report.longest_silence - 0.04) < 1e-9   # requests 2 and 3: 10.02 to 10.06
    assert probe.ports == ("x-g1", "x-g2")
    assert probe.report(since=10.05).sent == 2
