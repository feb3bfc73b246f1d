"""A continuous ``ping -D -O`` whose output is parsed into loss and longest-gap figures.

Only packets whose fate was known while ping ran are counted: a packet is *sent* once a reply
or ping's "no answer yet" line (printed when the next packet leaves) was seen for it. The packet
in flight at the moment of :meth:`ContinuousPing.stop` is reported as ``in_flight``, not as lost,
so that a clean run reports exactly zero loss.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from ._run import stop_popen, wait_until

_REPLY = re.compile(r"^\[(\d+\.\d+)\] \d+ bytes from .*icmp_seq=(\d+)")
_NO_ANSWER = re.compile(r"^\[(\d+\.\d+)\] no answer yet for icmp_seq=(\d+)")
_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")


@dataclass(frozen=True)
class PingStats:
    sent: int
    received: int
    lost: int
    longest_gap: float  # seconds between consecutive replies (0.0 with fewer than two)
    in_flight: int  # transmitted by ping but unanswered when it stopped; not counted as lost
    lost_seqs: tuple[int, ...]
    #: seconds from the last reply (or the start) until these figures were taken: a gap
    #: that has not ended (yet) is not in ``longest_gap``
    trailing_gap: float = 0.0


class ContinuousPing:
    """Started by :meth:`tests.topology.VM.start_continuous_ping`; call :meth:`stop` once."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.argv = argv
        self._lock = threading.Lock()
        self._replies: dict[int, float] = {}
        self._no_answer: set[int] = set()
        self._lines: list[str] = []
        self._transmitted: int | None = None
        self._proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, name="continuous-ping", daemon=True)
        self._reader.start()
        self._stats: PingStats | None = None
        self._started = time.time()   # ping -D stamps its lines with the wall clock

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            line = line.rstrip("\n")
            with self._lock:
                self._lines.append(line)
                if m := _REPLY.match(line):
                    self._replies.setdefault(int(m.group(2)), float(m.group(1)))
                elif m := _NO_ANSWER.match(line):
                    self._no_answer.add(int(m.group(2)))
                elif m := _SUMMARY.search(line):
                    self._transmitted = int(m.group(1))

    @property
    def running(self) -> bool:
        return self._proc.poll() is None

    @property
    def received(self) -> int:
        with self._lock:
            return len(self._replies)

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def wait_for_replies(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least ``count`` replies arrived (e.g. before breaking something)."""
        wait_until(lambda: self.received >= count, timeout=timeout,
                   message=f"{count} ping replies; output so far:\n{self.output}")

    def stats(self) -> PingStats:
        """Figures so far (or final ones after :meth:`stop`)."""
        if self._stats is not None:
            return self._stats
        with self._lock:
            replies = dict(self._replies)
            decided = set(replies) | self._no_answer
            transmitted = self._transmitted
        last = max(decided, default=0)
        lost = tuple(sorted(s for s in range(1, last + 1) if s not in replies))
        times = sorted(replies.values())
        gap = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
        in_flight = max(0, (transmitted or last) - last)
        received = sum(1 for s in replies if s <= last)
        trailing = max(0.0, time.time() - (times[-1] if times else self._started))
        return PingStats(sent=last, received=received, lost=len(lost), longest_gap=gap,
                         in_flight=in_flight, lost_seqs=lost, trailing_gap=trailing)

    def stop(self) -> PingStats:
        """Interrupt ping (SIGINT, so it prints its summary) and return the final figures."""
        if self._stats is not None:
            return self._stats
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                stop_popen(self._proc)
        self._reader.join(timeout=5.0)
        self._stats = self.stats()
        return self._stats

    def kill(self) -> None:
        """Cleanup path: stop without caring about figures."""
        stop_popen(self._proc)
        self._reader.join(timeout=5.0)
