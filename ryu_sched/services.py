"""The bundle of long-lived components that API handlers, RPC and the app share."""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from ryu_sched.config import Settings
from ryu_sched.db import Database
from ryu_sched.events import EventBus
from ryu_sched.leadership.role import Leadership, SoleLeadership


class MetricsSink(Protocol):
    """The event hooks components call (``ryu_sched.observability.metrics.Metrics``)."""

    def moved(self, kind: str, reason: str, count: int = 1) -> None: ...

    def failed_over(self, seconds: float) -> None: ...

    def sent_flow_mods(self, dpid: int, count: int) -> None: ...

    def synced_switch(self, seconds: float) -> None: ...

    def packet_in(self, reason: str) -> None: ...


class NoMetrics:
    """A sink that drops everything: components work without an observability layer."""

    def moved(self, kind: str, reason: str, count: int = 1) -> None:
        pass

    def failed_over(self, seconds: float) -> None:
        pass

    def sent_flow_mods(self, dpid: int, count: int) -> None:
        pass

    def synced_switch(self, seconds: float) -> None:
        pass

    def packet_in(self, reason: str) -> None:
        pass


@dataclasses.dataclass
class Services:
    settings: Settings
    db: Database
    bus: EventBus = dataclasses.field(default_factory=EventBus)
    # Whether this controller leads (always, alone on its database; else by the lease).
    leadership: Leadership = dataclasses.field(
        default_factory=lambda: SoleLeadership(leading=True))
    # Filled in by the app at start; typed loosely to keep this module free of cycles.
    registry: Any = None
    programmer: Any = None
    # The app puts the controller's Metrics here; hooks are one call, never a None check.
    metrics: MetricsSink = dataclasses.field(default_factory=NoMetrics)
