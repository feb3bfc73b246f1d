"""Keeps Python's cyclic garbage collector off while bulk work is in progress.

Reading a switch's flow table makes the framework parse thousands of flow-stats entries into
long-lived objects, and a sync builds thousands of flow specs: each such burst of allocations
triggers collections that re-scan everything allocated so far (measured: about a third of the
time of a 5,000-flow read). Reference counting still frees what is no longer used; cycles are
collected once the burst is over. A holder that never releases (a switch that stops answering
mid-read) is dropped by :meth:`GcPause.expire`.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Hashable, Iterator

#: A hold older than this is considered abandoned.
MAX_HOLD_SECONDS = 30.0


class GcPause:
    def __init__(self) -> None:
        self._holders: dict[Hashable, float] = {}
        self._disabled = False

    def hold(self, holder: Hashable) -> None:
        self._holders.setdefault(holder, time.monotonic())
        if not self._disabled and gc.isenabled():
            gc.disable()
            self._disabled = True

    def release(self, holder: Hashable) -> None:
        self._holders.pop(holder, None)
        if not self._holders and self._disabled:
            self._disabled = False
            gc.enable()

    @contextlib.contextmanager
    def held(self, holder: Hashable) -> Iterator[None]:
        self.hold(holder)
        try:
            yield
        finally:
            self.release(holder)

    def expire(self, max_age: float = MAX_HOLD_SECONDS) -> None:
        now = time.monotonic()
        for holder, since in list(self._holders.items()):
            if now - since > max_age:
                self.release(holder)

    @property
    def holding(self) -> bool:
        return bool(self._holders)
