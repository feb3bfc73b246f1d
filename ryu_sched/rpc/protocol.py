"""MessagePack-RPC dispatch, free of sockets so that it can be tested alone.

The frames and their encoding are the shared wire module's (``ryu_sched.shared.wire``).
Anything that is not a valid request or notification is malformed: it is counted, logged
(rate limited) and dropped; a request whose msgid is usable still gets an error response.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import msgpack

from ryu_sched.shared.wire import (
    MAX_MSGID,
    NOTIFICATION,
    REQUEST,
    RESPONSE,
    encode_notification,
    new_unpacker,
)

__all__ = ["MAX_MSGID", "BadParams", "Dispatcher", "Method", "NotFound", "RateLimitedLog",
           "RpcError", "RpcStats", "encode_notification", "new_unpacker"]

LOG = logging.getLogger(__name__)


class RpcError(Exception):
    """An error returned to the caller as ``{"type": ..., "message": ...}``."""

    type_name = "RpcError"

    def __init__(self, message: str, type_name: str | None = None) -> None:
        super().__init__(message)
        if type_name:
            self.type_name = type_name

    def as_wire(self) -> dict[str, str]:
        return {"type": self.type_name, "message": str(self)}


class BadParams(RpcError):
    type_name = "BadParams"


class NotFound(RpcError):
    type_name = "NotFound"


@dataclasses.dataclass
class RpcStats:
    """Counters of the endpoint, exposed by the admin API and logged at shutdown."""

    connections_accepted: int = 0
    connections_open: int = 0
    # refused at accept: over rpc_max_connections / rpc_max_connections_per_peer
    refused_connection_limit: int = 0
    refused_peer_limit: int = 0
    # TLS handshake failed or timed out (no or bad client certificate, not TLS at all)
    refused_tls: int = 0
    # accept() failed (out of file descriptors, ...); the listener kept serving
    accept_errors: int = 0
    connections_closed_undecodable: int = 0
    connections_closed_oversize: int = 0       # frame beyond rpc_max_frame_size
    connections_closed_idle: int = 0           # nothing for rpc_idle_timeout
    connections_closed_read_timeout: int = 0   # a frame started, unfinished in time
    connections_closed_slow: int = 0           # not reading: queue full or write timeout
    inflight_waits: int = 0                    # reads paused: rpc_max_inflight replies unsent
    frames: int = 0
    requests: int = 0
    notifications: int = 0
    malformed_frames: int = 0
    unknown_methods: int = 0
    bad_params: int = 0
    handler_errors: int = 0
    notifications_sent: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class RateLimitedLog:
    """At most ``burst`` warnings per second; the rest are summed up in the next one."""

    def __init__(self, logger: logging.Logger, burst: int = 20) -> None:
        self.logger = logger
        self.burst = burst
        self._second = 0
        self._count = 0
        self._suppressed = 0

    def warning(self, fmt: str, *args: Any) -> None:
        second = int(time.monotonic())
        if second != self._second:
            if self._suppressed:
                self.logger.warning("... %d more RPC warnings suppressed", self._suppressed)
            self._second, self._count, self._suppressed = second, 0, 0
        self._count += 1
        if self._count <= self.burst:
            self.logger.warning(fmt, *args)
        else:
            self._suppressed += 1


Method = Callable[[Any, list[Any]], Any]   # (connection, params) -> result


class Dispatcher:
    """Turns one decoded frame into zero or one encoded response."""

    def __init__(self, methods: dict[str, Method], stats: RpcStats | None = None) -> None:
        self.methods = methods
        self.stats = stats or RpcStats()
        self.log = RateLimitedLog(LOG)
        self._packer = msgpack.Packer(use_bin_type=True)

    def handle(self, conn: Any, frame: Any) -> bytes | None:
        stats = self.stats
        stats.frames += 1
        if type(frame) is not list or not frame:
            return self._malformed(conn, frame, "not an array")
        kind = frame[0]
        if kind == REQUEST and type(kind) is int:
            if len(frame) != 4:
                return self._malformed(conn, frame, "request must have 4 elements")
            msgid = frame[1]
            if type(msgid) is not int or not 0 <= msgid <= MAX_MSGID:
                return self._malformed(conn, frame, "msgid must be a uint32")
            stats.requests += 1
            method, params = frame[2], frame[3]
            if type(method) is not str or type(params) is not list:
                stats.malformed_frames += 1
                self.log.warning("RPC %s: malformed request %.200r", _peer(conn), frame)
                return self._response(msgid, BadParams(
                    "method must be a string and params an array").as_wire(), None)
            error, result = self._call(conn, method, params, msgid)
            return self._response(msgid, error, result)
        if kind == NOTIFICATION and type(kind) is int:
            if len(frame) != 3:
                return self._malformed(conn, frame, "notification must have 3 elements")
            method, params = frame[1], frame[2]
            if type(method) is not str or type(params) is not list:
                return self._malformed(conn, frame, "method/params of wrong type")
            stats.notifications += 1
            self._call(conn, method, params, None)
            return None
        if kind == RESPONSE and type(kind) is int:
            # Agents do not answer notifications; a response is unexpected.
            return self._malformed(conn, frame, "unexpected response")
        return self._malformed(conn, frame, "unknown message type")

    def _call(self, conn: Any, method: str, params: list[Any],
              msgid: int | None) -> tuple[Any, Any]:
        handler = self.methods.get(method)
        if handler is None:
            self.stats.unknown_methods += 1
            self.log.warning("RPC %s: unknown method %.80r", _peer(conn), method)
            return RpcError(f"unknown method {method[:80]!r}", "UnknownMethod").as_wire(), None
        try:
            return None, handler(conn, params)
        except BadParams as exc:
            self.stats.bad_params += 1
            self.log.warning("RPC %s: bad params for %s: %s", _peer(conn), method, exc)
            return exc.as_wire(), None
        except RpcError as exc:
            return exc.as_wire(), None
        except Exception as exc:
            self.stats.handler_errors += 1
            LOG.exception("RPC %s: %s failed", _peer(conn), method)
            return RpcError(f"{type(exc).__name__}: {exc}", "InternalError").as_wire(), None

    def _response(self, msgid: int, error: Any, result: Any) -> bytes:
        try:
            return self._packer.pack([RESPONSE, msgid, error, result])
        except Exception as exc:  # a result that does not serialise
            self.stats.handler_errors += 1
            LOG.error("RPC: cannot encode result of msgid %d: %s", msgid, exc)
            self._packer.reset()
            return self._packer.pack([RESPONSE, msgid, RpcError(
                "result could not be encoded", "InternalError").as_wire(), None])

    def _malformed(self, conn: Any, frame: Any, why: str) -> None:
        self.stats.malformed_frames += 1
        self.log.warning("RPC %s: dropped malformed frame (%s): %.200r", _peer(conn), why, frame)
        return None


def _peer(conn: Any) -> str:
    return str(getattr(conn, "peer", "-"))
