"""The bundle of long-lived components that API handlers, RPC and the app share."""

from __future__ import annotations

import dataclasses
from typing import Any

from ryu_sched.config import Settings
from ryu_sched.db import Database
from ryu_sched.events import EventBus


@dataclasses.dataclass
class Services:
    settings: Settings
    db: Database
    bus: EventBus = dataclasses.field(default_factory=EventBus)
    # Filled in by the app at start; typed loosely to keep this module free of cycles.
    registry: Any = None
    programmer: Any = None
