"""An established TCP session across a failure: does it survive, and how long does it stall?

A client inside a VM namespace connects to an echo server (normally the internet namespace's
:class:`tests.topology.EchoServer`: through the router's SNAT, or from a VM with a floating IP,
through that floating IP), then sends one numbered line every ``interval`` (50 ms) and reads the
echoes. Survival is what the kernel's TCP decides, untouched: retransmissions back off as usual,
no keepalive or user timeout is set.

Two halves in one file: :class:`TcpSession` (the caller's side: starts the client as a
subprocess in the VM namespace, reads its events as they come, and summarises) and
:func:`main` (the client; standard library only, run by path)::

    session = TcpSession.start(vm, topo.internet_ip, 7)
    session.wait_echoes(10)
    ...                                  # break something
    report = session.stop()              # SessionReport: outcome, longest gap, counts

The client writes one line per event, ``C <t> <local ip> <local port>`` once connected,
``E <seq> <t>`` per echoed line, ``X <t> <reason>`` when the connection ends (reset, closed,
error). On SIGTERM it stops sending, waits ``--drain`` seconds for outstanding echoes and
writes ``D <t> <sent> <echoed>``.
"""

from __future__ import annotations

import argparse
import enum
import itertools
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .vm import VM


# --- the subprocess ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a TCP session that reports every echo")
    parser.add_argument("--server", required=True)
    parser.add_argument("--port", type=int, default=7)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--drain", type=float, default=3.0)
    parser.add_argument("--connect-timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def emit(text: str) -> None:
        print(text, flush=True)

    try:
        sock = socket.create_connection((args.server, args.port), timeout=args.connect_timeout)
    except OSError as exc:
        emit(f"X {time.monotonic():.6f} connect:{type(exc).__name__}")
        return 1
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    local_ip, local_port = sock.getsockname()[:2]
    emit(f"C {time.monotonic():.6f} {local_ip} {local_port}")
    seq = 0
    echoed = 0
    pending = b""          # lines not yet accepted by the kernel (its send buffer was full)
    received = b""
    next_send = time.monotonic()
    drain_until: float | None = None
    ended: str | None = None
    while ended is None:
        now = time.monotonic()
        if stop.is_set() and drain_until is None:
            drain_until = now + args.drain
        if drain_until is not None and (now >= drain_until or echoed == seq):
            break
        if drain_until is None and now >= next_send:
            seq += 1
            pending += f"{seq}\n".encode()
            next_send += args.interval
            if next_send < now:
                next_send = now + args.interval
        if pending:
            try:
                pending = pending[sock.send(pending):]
            except BlockingIOError:
                pass
            except OSError as exc:
                ended = f"send:{type(exc).__name__}"
                break
        wake = drain_until if drain_until is not None else next_send
        try:
            ready, _, _ = select.select([sock], [], [], max(0.0, wake - time.monotonic()))
        except InterruptedError:
            continue
        if not ready:
            continue
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            continue
        except OSError as exc:
            ended = f"recv:{type(exc).__name__}"
            break
        if not data:
            ended = "closed"
            break
        received += data
        *lines, received = received.split(b"\n")
        t = time.monotonic()
        for line in lines:
            if line.strip().isdigit():
                echoed += 1
                emit(f"E {int(line)} {t:.6f}")
    if ended is not None:
        emit(f"X {time.monotonic():.6f} {ended}")
    emit(f"D {time.monotonic():.6f} {seq} {echoed}")
    sock.close()
    return 0


# --- the caller's side ---------------------------------------------------------------------


class Outcome(enum.Enum):
    SURVIVED = "survived"            # still open, every line sent was echoed in the end
    STALLED = "stalled"              # still open, but lines sent were never echoed
    RESET = "reset"                  # the connection ended (RST, FIN, error)
    NEVER_CONNECTED = "never connected"


@dataclass(frozen=True)
class SessionReport:
    outcome: Outcome
    local: str                       # "ip:port" inside the VM
    sent: int
    echoed: int
    longest_gap: float               # longest time between consecutive echoes
    ended: str                       # why it ended ("" while open)

    def describe(self) -> str:
        return (f"TCP session from {self.local}: {self.outcome.value}, {self.echoed}/"
                f"{self.sent} echoed, longest gap {self.longest_gap:.2f}s"
                + (f", ended: {self.ended}" if self.ended else ""))


class TcpSession:
    """The client subprocess in a VM namespace (see the module docstring)."""

    def __init__(self, proc: subprocess.Popen[str]):
        self._proc = proc
        self._lock = threading.Lock()
        self._echoes: list[tuple[int, float]] = []
        self._connected = threading.Event()
        self.local = ""
        self.ended = ""
        self._done: tuple[int, int] | None = None
        self._reader = threading.Thread(target=self._read, name="tcp-session", daemon=True)
        self._reader.start()
        self._report: SessionReport | None = None

    @classmethod
    def start(cls, vm: VM, server: str, port: int = 7, interval: float = 0.05,
              connect_timeout: float = 10.0) -> TcpSession:
        """Connect from ``vm`` to ``server:port``; raises when the connection fails."""
        argv = [sys.executable, os.path.abspath(__file__), "--server", server,
                "--port", str(port), "--interval", str(interval)]
        session = cls(vm.popen(argv, stdout=subprocess.PIPE, bufsize=1))
        session._connected.wait(connect_timeout)
        if not session.local:
            session.stop()
            raise RuntimeError(f"TCP session {vm.name} -> {server}:{port} did not connect"
                               f" ({session.ended or 'timeout'})")
        return session

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            parts = line.split()
            if not parts:
                continue
            with self._lock:
                if parts[0] == "C":
                    self.local = f"{parts[2]}:{parts[3]}"
                    self._connected.set()
                elif parts[0] == "E":
                    self._echoes.append((int(parts[1]), float(parts[2])))
                elif parts[0] == "X":
                    self.ended = parts[2]
                    self._connected.set()
                elif parts[0] == "D":
                    self._done = (int(parts[2]), int(parts[3]))
        self._connected.set()

    @property
    def echoed(self) -> int:
        with self._lock:
            return len(self._echoes)

    @property
    def open(self) -> bool:
        return self._proc.poll() is None and not self.ended

    def last_echo(self) -> float | None:
        with self._lock:
            return self._echoes[-1][1] if self._echoes else None

    def wait_echoes(self, count: int, timeout: float = 10.0) -> bool:
        """Until ``count`` echoes in all arrived (True) or the deadline / the end (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.echoed >= count:
                return True
            if not self.open:
                return False
            time.sleep(0.02)
        return self.echoed >= count

    def stop(self, drain: float = 3.0) -> SessionReport:
        """Stop sending, wait for outstanding echoes (``--drain`` s), summarise."""
        if self._report is not None:
            return self._report
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=drain + 10.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5.0)
        self._reader.join(timeout=5.0)
        with self._lock:
            times = [t for _, t in self._echoes]
            done = self._done
        sent, echoed = done if done is not None else (0, len(times))
        gap = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
        if not self.local:
            outcome = Outcome.NEVER_CONNECTED
        elif self.ended:
            outcome = Outcome.RESET
        elif echoed < sent:
            outcome = Outcome.STALLED
        else:
            outcome = Outcome.SURVIVED
        self._report = SessionReport(outcome, self.local, sent, echoed, gap, self.ended)
        return self._report


if __name__ == "__main__":
    sys.exit(main())
