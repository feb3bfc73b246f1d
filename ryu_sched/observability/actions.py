"""What the operator page shows and does, over the running controller's components."""

from __future__ import annotations

from typing import Any

from ryu_sched import errors
from ryu_sched.observability.collect import build_status, timeline
from ryu_sched.observability.status import Status
from ryu_sched.resources import agent_scheduler
from ryu_sched.resources.context import Context
from ryu_sched.shared.vocabulary import HostedKind


class ControllerActions:
    """:class:`~ryu_sched.observability.web.OperatorActions` of one controller: status and
    timeline from memory, drain and move through the agent-scheduler service (which checks
    the context is admin, as for any API call)."""

    def __init__(self, services: Any) -> None:
        self.services = services

    def status(self) -> Status:
        return build_status(self.services)

    def timeline(self, limit: int) -> list[dict[str, Any]]:
        return timeline(self.services, limit)

    def drain(self, context: Context, agent_id: str) -> list[dict[str, Any]]:
        return agent_scheduler.drain(self.services, context, agent_id)

    def move(self, context: Context, kind: str, object_id: str, from_agent_id: str,
             to_agent_id: str) -> dict[str, Any]:
        try:
            hosted = HostedKind(kind)
        except ValueError:
            raise errors.HTTPBadRequest(
                msg=f"'kind' must be one of {[k.value for k in HostedKind]}") from None
        return agent_scheduler.move(self.services, context, hosted, object_id, from_agent_id,
                                    to_agent_id)
