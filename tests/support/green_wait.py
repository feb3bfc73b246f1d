"""Polling with a deadline from a test that runs green threads in its own process: the
wait yields to the eventlet hub (``time.sleep`` in wait_until would starve them)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import eventlet


def green_wait_until(predicate: Callable[[], Any], timeout: float = 10.0,
                     message: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        eventlet.sleep(0.01)
