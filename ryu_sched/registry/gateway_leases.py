"""Gateway leases as the leading controller granted them (docs/ha.md, "Detection and fencing").

An L3 agent renews its gateway lease with ``gateway_keepalive`` every ``fence_interval``; the
agent's lease runs until it sent the keepalive + ``fence_timeout``. The controller records,
per agent, when it answered the last one (always after the agent sent it, so the agent's
lease ends first) and the connection it came over. In memory only: ten keepalives a second
per gateway must cost no database write. The gateway-health monitor (``ryu_sched.gateway``)
listens: every grant, and the close of a connection that carried leases.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any, Protocol


@dataclasses.dataclass
class GrantedLease:
    agent_id: str
    host: str
    granted_at: float          # monotonic seconds: when the last keepalive was answered
    conn: Any                  # the connection the keepalives come over


class LeaseListener(Protocol):
    def lease_granted(self, agent_id: str, at: float) -> None: ...

    def lease_connection_closed(self, agent_id: str, at: float) -> None: ...


class GatewayLeases:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._leases: dict[str, GrantedLease] = {}
        self.listeners: list[LeaseListener] = []
        self.granted = 0

    def grant(self, agent_id: str, host: str, conn: Any) -> float:
        """A keepalive of ``agent_id`` is answered now; the time recorded."""
        now = self.clock()
        lease = self._leases.get(agent_id)
        if lease is None:
            self._leases[agent_id] = GrantedLease(agent_id, host, now, conn)
        else:
            lease.granted_at, lease.conn, lease.host = now, conn, host
        self.granted += 1
        for listener in self.listeners:
            listener.lease_granted(agent_id, now)
        return now

    def last_granted(self, agent_id: str) -> float | None:
        lease = self._leases.get(agent_id)
        return None if lease is None else lease.granted_at

    def get(self, agent_id: str) -> GrantedLease | None:
        return self._leases.get(agent_id)

    def connection_closed(self, conn: Any) -> list[str]:
        """The agents whose keepalives came over ``conn`` (now closed)."""
        now = self.clock()
        closed = [lease.agent_id for lease in self._leases.values() if lease.conn is conn]
        for agent_id in closed:
            self._leases[agent_id].conn = None
            for listener in self.listeners:
                listener.lease_connection_closed(agent_id, now)
        return closed

    def forget(self, agent_id: str) -> None:
        self._leases.pop(agent_id, None)

    def __len__(self) -> int:
        return len(self._leases)
