"""A simulated agent for end-to-end tests: sends ``report_state`` over MessagePack-RPC.

It is the real RPC client (``ryu_sched.shared.client``: a TCP or TLS connection, msgpack
frames) in a thread of the test process. The first report carries ``start_flag``; the client
reconnects when the controller restarts.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any

from ryu_sched.shared.client import RpcClient
from ryu_sched.shared.vocabulary import AgentType
from ryu_sched.shared.wire import Disconnected, RpcCallError


class HeartbeatAgent:
    def __init__(self, address: tuple[str, int], host: str, agent_type: str, binary: str,
                 configurations: dict[str, Any], interval: float = 1.0,
                 availability_zone: str = "nova",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.state = {
            "agent_type": agent_type, "binary": binary, "host": host,
            "topic": "l3_agent" if agent_type == AgentType.L3 else "dhcp_agent",
            "availability_zone": availability_zone, "start_flag": True,
            "configurations": dict(configurations),
        }
        self.interval = interval
        self.sent = 0
        self.notifications: list[Any] = []
        self.client = RpcClient(address[0], address[1], on_notification=self._notified,
                                ssl_context=ssl_context, max_backoff=0.2,
                                name=f"heartbeat {host}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"heartbeat-{host}")

    def start(self) -> None:
        self.client.start()
        self._thread.start()

    def stop(self) -> None:
        """Stop heartbeating (the agent 'dies'); the connection is closed."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()

    def _notified(self, method: str, params: list[Any]) -> None:
        self.notifications.append([2, method, params])

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.client.wait_connected(0.2):
                try:
                    self.client.call("report_state", self.state,
                                     timeout=max(self.interval, 2.0))
                    self.sent += 1
                    self.state["start_flag"] = False
                except (Disconnected, RpcCallError):
                    self._stop.wait(0.2)
                    continue
                self._stop.wait(self.interval)
