"""The agents' connection to the controller: the shared client (``ryu_sched.shared.client``),
configured from the ``[agent]`` options (address or addresses, mutual TLS, reconnect
backoff)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ryu_sched.shared.client import RpcClient
from ryu_sched.shared.tls import client_context
from ryu_sched.shared.wire import CallTimeout, Disconnected, RpcCallError

from .config import AgentSettings

__all__ = ["CallTimeout", "Disconnected", "RpcCallError", "RpcClient", "controller_client",
           "lease_client"]


def controller_client(settings: AgentSettings,
                      on_notification: Callable[[str, list[Any]], None],
                      on_connect: Callable[[], None]) -> RpcClient:
    """A client for the controller's agent endpoint (or for the first of several, moving to
    the next when one dies). Reconnect attempts back off up to one heartbeat period (5 s at
    most): after a controller restart every agent must be back well within agent_down_time."""
    files = settings.tls
    (host, port), *others = settings.controllers
    return RpcClient(host, port, alternates=others,
                     on_notification=on_notification, on_connect=on_connect,
                     ssl_context=client_context(files) if files is not None else None,
                     server_hostname=settings.tls_server_name or None,
                     max_backoff=min(5.0, max(settings.report_interval, 0.2)))


def lease_client(settings: AgentSettings) -> RpcClient:
    """The L3 agent's own connection for gateway keepalives, to the same controllers: it
    moves to the next one when the one it talks to does not lead, and reconnects fast (a
    gateway without a lease has fenced itself)."""
    files = settings.tls
    (host, port), *others = settings.controllers
    return RpcClient(host, port, alternates=others, name="controller (gateway lease)",
                     ssl_context=client_context(files) if files is not None else None,
                     server_hostname=settings.tls_server_name or None,
                     max_backoff=0.25, connect_timeout=1.0)
