"""The bundle of long-lived components that API handlers, RPC and the app share."""

from __future__ import annotations

import dataclasses
from typing import Any

from ryu_sched.config import Settings
from ryu_sched.db import Database
from ryu_sched.events import EventBus
from ryu_sched.leadership.role import Leadership, SoleLeadership


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
