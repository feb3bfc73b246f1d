"""A simulated agent for end-to-end tests: sends ``report_state`` over MessagePack-RPC.

It is a real RPC client (a TCP connection, msgpack frames) in a thread of the test process.
The first report carries ``start_flag``; the thread reconnects when the controller restarts.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import msgpack

REQUEST, RESPONSE, NOTIFY = 0, 1, 2


class HeartbeatAgent:
    def __init__(self, address: tuple[str, int], host: str, agent_type: str, binary: str,
                 configurations: dict[str, Any], interval: float = 1.0,
                 availability_zone: str = "nova") -> None:
        self.address = address
        self.state = {
            "agent_type": agent_type, "binary": binary, "host": host,
            "topic": "l3_agent" if agent_type == "L3 agent" else "dhcp_agent",
            "availability_zone": availability_zone, "start_flag": True,
            "configurations": dict(configurations),
        }
        self.interval = interval
        self.sent = 0
        self.notifications: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"heartbeat-{host}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop heartbeating (the agent 'dies'); the connection is closed."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        msgid = 0
        while not self._stop.is_set():
            try:
                with socket.create_connection(self.address, timeout=2) as sock:
                    sock.settimeout(0.2)
                    unpacker = msgpack.Unpacker(raw=False)
                    while not self._stop.is_set():
                        msgid += 1
                        sock.sendall(msgpack.packb([REQUEST, msgid, "report_state",
                                                    [self.state]]))
                        self.sent += 1
                        self.state["start_flag"] = False
                        self._drain(sock, unpacker)
            except OSError:
                self._stop.wait(0.2)

    def _drain(self, sock: socket.socket, unpacker: msgpack.Unpacker) -> None:
        """Read replies and notifications until the next heartbeat is due."""
        deadline = threading.Event()
        timer = threading.Timer(self.interval, deadline.set)
        timer.start()
        try:
            while not deadline.is_set() and not self._stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    raise ConnectionResetError("controller closed the connection")
                unpacker.feed(data)
                for message in unpacker:
                    if isinstance(message, list) and message and message[0] == NOTIFY:
                        self.notifications.append(message)
        finally:
            timer.cancel()
