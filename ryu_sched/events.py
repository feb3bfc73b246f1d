"""In-process notification of committed model changes.

The service layer publishes a :class:`ModelEvent` after its transaction commits; the
OpenFlow programmer and the agent notifier subscribe. Subscribers must be quick (mark work,
wake a worker): they run in the publisher's green thread.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ModelEvent:
    resource: str          # "network", "subnet", "port", "router", "floatingip", "agent", ...
    action: str            # "create", "update", "delete", "bind", "unbind", ...
    resource_id: str
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


Subscriber = Callable[[ModelEvent], None]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, callback: Subscriber) -> None:
        self._subscribers.append(callback)

    def publish(self, event: ModelEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # a broken subscriber must not fail the API call
                LOG.exception("event subscriber %r failed on %s", callback, event)
