"""Simulated agents: the real MessagePack-RPC client (``ryu_sched.shared.client``) over TCP or
TLS, for tests and benchmarks.

``SimAgent`` is one agent on its own connection: the client's reader thread completes calls
and collects the server's notifications; ``call()`` sends a request and waits for its
response (``RpcCallError`` for an error answer, ``Disconnected``/``CallTimeout`` otherwise).
``Fleet`` heartbeats many agents from one thread (``report_state`` notifications), so that
hundreds of agents cost hundreds of sockets, not hundreds of heartbeat threads.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterable
from typing import Any

from ryu_sched.shared.client import RpcClient
from ryu_sched.shared.vocabulary import AgentType
from ryu_sched.shared.wire import Disconnected, RpcCallError

__all__ = ["DHCP", "L3", "Disconnected", "Fleet", "RpcCallError", "SimAgent", "http",
           "seed_objects"]

DHCP = AgentType.DHCP.value
L3 = AgentType.L3.value


class SimAgent:
    """One agent on its own connection (:class:`RpcClient`, no reconnect): ``connect()``
    again after ``close()`` to come back."""

    def __init__(self, server: tuple[str, int], host: str, agent_type: str = DHCP,
                 availability_zone: str | None = "nova",
                 configurations: dict[str, Any] | None = None, dpid: int | None = None,
                 first_msgid: int = 1, ssl_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None) -> None:
        self.server = server
        self.host = host
        self.agent_type = agent_type
        self.availability_zone = availability_zone
        conf = dict(configurations or {})
        if dpid is not None:
            conf.setdefault("datapath_id", f"{dpid:016x}")
        self.configurations = conf
        self.agent_id: str | None = None
        self.notifications: list[tuple[str, list[Any]]] = []
        self._cond = threading.Condition()
        self.client = RpcClient(server[0], server[1], on_notification=self._on_notification,
                                ssl_context=ssl_context, server_hostname=server_hostname,
                                first_msgid=first_msgid, name=f"simagent {host}")
        self.started = False   # first heartbeat carries start_flag

    # --- connection ---------------------------------------------------------------------

    def connect(self, timeout: float = 5.0) -> SimAgent:
        self.client.open(timeout)
        return self

    @property
    def connected(self) -> bool:
        return self.client.connected

    def close(self) -> None:
        self.client.close()
        with self._cond:
            self._cond.notify_all()

    def _on_notification(self, method: str, params: list[Any]) -> None:
        with self._cond:
            self.notifications.append((method, params))
            self._cond.notify_all()

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are: the fuzz tests' malformed frames."""
        self.client.send_raw(data)

    # --- calls --------------------------------------------------------------------------

    def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        return self.client.call(method, *params, timeout=timeout)

    def notify(self, method: str, *params: Any) -> None:
        self.client.notify(method, *params)

    def state(self, start_flag: bool | None = None) -> dict[str, Any]:
        if start_flag is None:
            start_flag = not self.started
            self.started = True
        return {"agent_type": self.agent_type, "binary": _binary(self.agent_type),
                "host": self.host, "topic": _topic(self.agent_type),
                "availability_zone": self.availability_zone, "start_flag": start_flag,
                "configurations": self.configurations}

    def report_state(self, start_flag: bool | None = None) -> dict[str, Any]:
        result = self.call("report_state", self.state(start_flag))
        self.agent_id = result["agent_id"]
        return result  # type: ignore[no-any-return]

    def heartbeat(self) -> None:
        """A report_state notification (no response), as a busy agent would send."""
        self.notify("report_state", self.state())

    # --- notifications ------------------------------------------------------------------

    def wait_notification(self, method: str, predicate: Any = None,
                          timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for name, params in self.notifications:
                    if name == method and (predicate is None or predicate(params)):
                        return params
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.host}: no {method} notification; got "
                                       f"{[n for n, _ in self.notifications]}")
                self._cond.wait(remaining)

    def notified(self, method: str) -> list[list[Any]]:
        with self._cond:
            return [params for name, params in self.notifications if name == method]


def _binary(agent_type: str) -> str:
    return "ryu-sched-dhcp-agent" if agent_type == DHCP else "ryu-sched-l3-agent"


def _topic(agent_type: str) -> str:
    return "dhcp_agent" if agent_type == DHCP else "l3_agent"


class Fleet:
    """Heartbeats a set of connected agents every ``interval`` seconds from one thread.
    ``kill(agent)`` stops its heartbeats and closes its connection (the agent "dies");
    ``revive(agent)`` reconnects it and resumes."""

    def __init__(self, agents: Iterable[SimAgent], interval: float = 0.5) -> None:
        self.agents = list(agents)
        self.interval = interval
        self.dead: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fleet")

    def start(self) -> Fleet:
        for agent in self.agents:
            if not agent.connected:
                agent.connect()
            agent.report_state()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                live = [a for a in self.agents if a.host not in self.dead]
            for agent in live:
                try:
                    agent.heartbeat()
                except Disconnected:
                    pass

    def kill(self, agent: SimAgent) -> None:
        with self._lock:
            self.dead.add(agent.host)
        agent.close()

    def revive(self, agent: SimAgent) -> None:
        agent.connect()
        agent.report_state(start_flag=True)
        with self._lock:
            self.dead.discard(agent.host)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for agent in self.agents:
            agent.close()

    def __enter__(self) -> Fleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- helpers for tests driving a controller process -----------------------------------------

def http(url: str, method: str = "GET", body: Any = None,
         timeout: float = 10.0) -> tuple[int, Any]:
    """A JSON request; returns (status, parsed body or None) without raising on 4xx."""
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def seed_objects(db_url: str, networks: int = 0, routers: int = 0,
                 gateway_routers: int = 0, dhcp: bool = True,
                 first_vlan: int = 100) -> tuple[list[str], list[str]]:
    """Insert networks (each with one subnet) and routers straight into the controller's
    database, as another controller would; the registry's reconcile picks them up."""
    from ryu_sched.db import Database, models

    db = Database(db_url)
    net_ids: list[str] = []
    router_ids: list[str] = []
    try:
        with db.session() as session:
            nets = [models.Network(name=f"net{i}", physical_network="physnet1",
                                   segmentation_id=first_vlan + i) for i in range(networks)]
            session.add_all(nets)
            session.flush()
            session.add_all(models.Subnet(network_id=n.id, cidr="10.0.0.0/24",
                                          enable_dhcp=dhcp) for n in nets)
            net_ids = [n.id for n in nets]
            gw_ports: list[str | None] = []
            if gateway_routers:
                ext = models.Network(name="ext", physical_network="physnet1",
                                     segmentation_id=first_vlan + networks,
                                     router_external=True)
                session.add(ext)
                session.flush()
                ports = [models.Port(network_id=ext.id, mac_address=f"fa:16:3e:00:{i // 256:02x}:"
                                     f"{i % 256:02x}", device_owner="network:router_gateway")
                         for i in range(gateway_routers)]
                session.add_all(ports)
                session.flush()
                gw_ports = [p.id for p in ports]
            rtrs = [models.Router(name=f"r{i}", gw_port_id=gw_ports[i] if i < len(gw_ports)
                                  else None) for i in range(routers)]
            session.add_all(rtrs)
            session.flush()
            router_ids = [r.id for r in rtrs]
    finally:
        db.dispose()
    return net_ids, router_ids
