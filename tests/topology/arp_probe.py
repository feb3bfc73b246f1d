"""ARP double-reply probe: how many gateways answer one ARP request for a router's address.

From the internet namespace, an ARP request for ``target`` (a router's external IP, a floating
IP) is sent every ``interval`` (20 ms by default) through a raw ``AF_PACKET`` socket, and every
reply is matched to the request it answers. A healthy setup gives exactly one reply per request;
two or more mean two gateways answer for the router at once (the failure HA must rule out);
none means the address is unreachable (a failover gap).

Matching is exact, not by timing: request *n* is sent from its own MAC address (one of a pool of
1,024, ``02:a9:9b:<prefix byte>:<n mod 1024>``) and a gateway answers to the MAC that asked, so
a late reply (a switch that was frozen and works off its queue) still counts for the request it
answers. The probe owns a veth pair in the internet namespace, ``ap0`` (its socket) and
``ap0b`` (a port of the ``extnet`` bridge), so the bridge learns the probe MACs on its own port
and replies to them go nowhere else. Every gateway answers with the router's MAC, so replies
are read where they enter the bridge, on the gateways' ports ``x-<host>`` (an ``ETH_P_ALL``
tap on each), which tells which gateway answered. Requests carry sender IP ``PROBE_IP``
(203.0.113.250, out of the external allocation pool), so a gateway that learns from requests
learns nothing that matters.

Two halves in one file: :class:`ArpProbe` (the test or bench side, which starts the probe as a
subprocess inside the namespace and reads its events as they come) and :func:`main` (that
subprocess: standard library only, run by path)::

    probe = ArpProbe.start(topo, "203.0.113.10")
    ...                                   # break something
    report = probe.stop()                 # ArpReport: sent, with 0, 1, 2+ replies, doubles
    assert report.doubled == 0, report.describe()

The subprocess writes one line per event on stdout, ``S <seq> <t>`` for a request and
``R <seq> <t> <mac> <port>`` for a reply (``t`` is ``time.monotonic()``, comparable with the
caller's), and exits on SIGTERM/SIGINT after ``--linger`` seconds of listening for late replies.
"""

from __future__ import annotations

import argparse
import itertools
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .topology import Topology

ETH_P_ARP = 0x0806
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
GATEWAY_PORT_PREFIX = "x-"    # the gateways' ports on the internet namespace's bridge
ARP_REQUEST = 1
ARP_REPLY = 2
PROBE_IP = "203.0.113.250"
PROBE_IFACE = "ap0"
PROBE_BRIDGE_PORT = "ap0b"
POOL = 1024                # distinct requester MACs; a reply later than POOL * interval is lost
MAC_PREFIX = b"\x02\xa9\x9b"


def probe_mac(seq: int, tag: int) -> bytes:
    """The requester MAC of request ``seq`` (``tag``: one byte that tells probes apart)."""
    slot = seq % POOL
    return MAC_PREFIX + bytes([tag & 0xFF, slot >> 8, slot & 0xFF])


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


# --- the subprocess ------------------------------------------------------------------------


def _request_frame(seq: int, tag: int, sender_ip: bytes, target_ip: bytes) -> bytes:
    mac = probe_mac(seq, tag)
    eth = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, ARP_REQUEST, mac, sender_ip,
                      b"\x00" * 6, target_ip)
    return eth + arp


def _parse_reply(frame: bytes, tag: int, sender_ip: bytes, target_ip: bytes
                 ) -> tuple[int, bytes] | None:
    """``(pool slot, replying MAC)`` when ``frame`` is a reply to one of our requests."""
    if len(frame) < 42 or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    _htype, _ptype, _hlen, _plen, op, sha, spa, tha, tpa = struct.unpack(
        "!HHBBH6s4s6s4s", frame[14:42])
    if op != ARP_REPLY or spa != target_ip or tpa != sender_ip:
        return None
    if tha[:3] != MAC_PREFIX or tha[3] != tag & 0xFF:
        return None
    return (tha[4] << 8) | tha[5], sha


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="send ARP requests, report every reply")
    parser.add_argument("--iface", default=PROBE_IFACE)
    parser.add_argument("--listen-prefix", default=GATEWAY_PORT_PREFIX,
                        help="listen for replies on every link whose name starts with this "
                             "(the gateways' bridge ports), to tell which gateway answered")
    parser.add_argument("--target", required=True, help="the IP whose owners we count")
    parser.add_argument("--sender-ip", default=PROBE_IP)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--tag", type=int, default=0)
    parser.add_argument("--linger", type=float, default=0.3,
                        help="seconds to keep listening after the stop signal")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sender_ip = socket.inet_aton(args.sender_ip)
    target_ip = socket.inet_aton(args.target)
    sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sender.bind((args.iface, 0))
    # A reply is seen where it enters the bridge: an ETH_P_ALL tap on each gateway's bridge
    # port sees the frame before the bridge takes it (a protocol tap would not). Without such
    # ports, the replies are read where they are delivered, on the probe's own link.
    ports = [name for _index, name in socket.if_nameindex()
             if args.listen_prefix and name.startswith(args.listen_prefix)]
    listeners: dict[socket.socket, str] = {}
    for port in ports or [args.iface]:
        tap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        tap.bind((port, 0))
        tap.setblocking(False)
        listeners[tap] = port
    out = sys.stdout
    last_sent: dict[int, int] = {}   # pool slot -> the last seq sent from it
    seq = 0
    next_send = time.monotonic()
    stop_at: float | None = None
    print("READY " + ",".join(listeners.values()), flush=True)
    while True:
        now = time.monotonic()
        if stop.is_set() and stop_at is None:
            stop_at = now + args.linger
        if stop_at is not None and now >= stop_at:
            break
        if stop_at is None and now >= next_send:
            seq += 1
            try:
                sender.send(_request_frame(seq, args.tag, sender_ip, target_ip))
            except OSError as exc:        # e.g. the link is down: the request is not sent
                print(f"E {seq} {now:.6f} {exc.errno}", file=out, flush=True)
            else:
                last_sent[seq % POOL] = seq
                print(f"S {seq} {now:.6f}", file=out, flush=True)
            next_send += args.interval
            if next_send < now:           # we were descheduled: do not send a burst
                next_send = now + args.interval
        deadline = stop_at if stop_at is not None else next_send
        try:
            ready, _, _ = select.select(list(listeners), [], [],
                                        max(0.0, deadline - time.monotonic()))
        except InterruptedError:
            continue
        for tap in ready:
            while True:
                try:
                    frame, address = tap.recvfrom(2048)
                except (BlockingIOError, InterruptedError):
                    break
                if address[2] == PACKET_OUTGOING:   # our requests, flooded to the gateways
                    continue
                got = _parse_reply(frame, args.tag, sender_ip, target_ip)
                if got is None:
                    continue
                slot, sha = got
                if slot in last_sent:
                    print(f"R {last_sent[slot]} {time.monotonic():.6f} {mac_text(sha)} "
                          f"{listeners[tap]}", file=out, flush=True)
    return 0


# --- the caller's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    seq: int
    at: float          # time.monotonic() when the probe received it
    mac: str
    port: str          # where it entered the bridge: ``x-<gateway host>``
    delay: float       # since its request was sent

    @property
    def source(self) -> str:
        """Which gateway answered: the bridge port name without ``x-`` (or the MAC)."""
        if self.port.startswith(GATEWAY_PORT_PREFIX):
            return self.port[len(GATEWAY_PORT_PREFIX):]
        return self.mac


@dataclass(frozen=True)
class ArpReport:
    target: str
    sent: int
    unanswered: int                          # requests with no reply
    answered_once: int
    doubled: int                             # requests with two or more replies
    doubles: tuple[tuple[int, float, tuple[str, ...]], ...]   # (seq, sent at, repliers)
    #: replies per replier: the gateway host whose bridge port it came in on, and its MAC
    repliers: dict[str, int] = field(default_factory=dict)
    longest_silence: float = 0.0             # longest run of unanswered requests, in seconds
    send_errors: int = 0

    def describe(self) -> str:
        text = (f"ARP for {self.target}: {self.sent} requests, {self.unanswered} unanswered, "
                f"{self.answered_once} answered once, {self.doubled} answered twice or more; "
                f"replies by {self.repliers}; longest silence {self.longest_silence:.2f}s")
        if self.doubles:
            shown = ", ".join(f"#{seq} at {at:.3f} by {'+'.join(who)}"
                              for seq, at, who in self.doubles[:10])
            text += f"; doubles: {shown}" + (" ..." if len(self.doubles) > 10 else "")
        return text


class ArpProbe:
    """The probe subprocess in the internet namespace (see the module docstring)."""

    _tags = itertools.count()

    def __init__(self, topo: Topology, target: str, interval: float, proc: subprocess.Popen[str]):
        self.topo = topo
        self.target = target
        self.interval = interval
        self._proc = proc
        self._lock = threading.Lock()
        self._sent: dict[int, float] = {}
        self._replies: list[Reply] = []
        self._errors = 0
        self.ports: tuple[str, ...] = ()   # where the probe listens for replies
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, name="arp-probe", daemon=True)
        self._reader.start()
        self._report: ArpReport | None = None

    @classmethod
    def start(cls, topo: Topology, target: str, interval: float = 0.02) -> ArpProbe:
        """Start probing ``target`` from the internet namespace every ``interval`` seconds."""
        ensure_probe_port(topo)
        argv = [sys.executable, os.path.abspath(__file__), "--target", target,
                "--interval", str(interval), "--tag", str(next(cls._tags) % 255 + 1)]
        proc = topo.popen(topo.inet_ns, argv, stdout=subprocess.PIPE, bufsize=1)
        probe = cls(topo, target, interval, proc)
        if not probe._ready.wait(10.0):
            probe._proc.kill()
            raise RuntimeError(f"ARP probe for {target} did not start")
        return probe

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            parts = line.split()
            if not parts:
                continue
            with self._lock:
                if parts[0] == "READY":
                    self.ports = tuple(parts[1].split(",")) if len(parts) > 1 else ()
                    self._ready.set()
                elif parts[0] == "S":
                    self._sent[int(parts[1])] = float(parts[2])
                elif parts[0] == "R":
                    seq, at = int(parts[1]), float(parts[2])
                    sent = self._sent.get(seq, at)
                    port = parts[4] if len(parts) > 4 else ""
                    self._replies.append(Reply(seq, at, parts[3], port, at - sent))
                elif parts[0] == "E":
                    self._errors += 1
        self._ready.set()

    def replies(self, since: float | None = None) -> list[Reply]:
        with self._lock:
            return [r for r in self._replies if since is None or r.at >= since]

    def report(self, since: float | None = None, until: float | None = None) -> ArpReport:
        """Figures for the requests sent in ``[since, until]`` (all by default). Requests sent
        in the last 0.3 s before now are left out while the probe runs (their replies may be
        on the way)."""
        if self._report is not None and since is None and until is None:
            return self._report
        with self._lock:
            sent = dict(self._sent)
            replies = list(self._replies)
            errors = self._errors
        if self._proc.poll() is None:
            horizon = time.monotonic() - 0.3
            until = horizon if until is None else min(until, horizon)
        chosen = {seq: at for seq, at in sent.items()
                  if (since is None or at >= since) and (until is None or at <= until)}
        by_seq: dict[int, list[Reply]] = {seq: [] for seq in chosen}
        repliers: dict[str, int] = {}
        for reply in replies:
            if reply.seq in by_seq:
                by_seq[reply.seq].append(reply)
                who = f"{reply.source} {reply.mac}"
                repliers[who] = repliers.get(who, 0) + 1
        counts = {seq: len(rs) for seq, rs in by_seq.items()}
        doubles = tuple((seq, chosen[seq], tuple(r.source for r in by_seq[seq]))
                        for seq in sorted(by_seq) if counts[seq] >= 2)
        longest = 0.0
        run_start: float | None = None
        for seq in sorted(chosen):
            if counts[seq] == 0:
                run_start = chosen[seq] if run_start is None else run_start
                longest = max(longest, chosen[seq] - run_start + self.interval)
            else:
                run_start = None
        return ArpReport(
            target=self.target, sent=len(chosen),
            unanswered=sum(1 for c in counts.values() if c == 0),
            answered_once=sum(1 for c in counts.values() if c == 1),
            doubled=len(doubles), doubles=doubles, repliers=repliers, longest_silence=longest,
            send_errors=errors)

    def stop(self) -> ArpReport:
        """Stop sending, wait for late replies, return the figures of the whole run."""
        if self._report is not None:
            return self._report
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5.0)
        self._reader.join(timeout=5.0)
        self._report = self.report()
        return self._report


def ensure_probe_port(topo: Topology) -> None:
    """The probe's veth pair in the internet namespace (made once per topology)."""
    links = topo.exec(topo.inet_ns, ["ip", "-o", "link", "show"]).stdout
    if f" {PROBE_IFACE}@" in links:
        return
    topo.veth(topo.inet_ns, PROBE_IFACE, topo.inet_ns, PROBE_BRIDGE_PORT, master="extnet")


if __name__ == "__main__":
    sys.exit(main())
