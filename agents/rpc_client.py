"""MessagePack-RPC client of the controller's agent endpoint (docs/protocol.md).

One TCP connection; a reader thread matches responses to waiting calls and hands server
notifications to a callback. When the connection drops, calls fail fast with
:class:`Disconnected` and :meth:`RpcClient.connect_forever` reconnects with exponential
backoff (capped), calling ``on_connect`` after each new connection so the agent resyncs.
"""

from __future__ import annotations

import itertools
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import msgpack

LOG = logging.getLogger(__name__)

REQUEST, RESPONSE, NOTIFICATION = 0, 1, 2


class RpcCallError(Exception):
    """The server answered with an error."""

    def __init__(self, error: Any) -> None:
        self.error = error
        message = error.get("message") if isinstance(error, dict) else str(error)
        super().__init__(message)

    @property
    def error_type(self) -> str | None:
        """The error's ``type`` (``NotFound``, ``BadParams``, a Neutron name, ...)."""
        value = self.error.get("type") if isinstance(self.error, dict) else None
        return value if isinstance(value, str) else None


class Disconnected(Exception):
    """No connection to the controller (or it dropped while waiting)."""


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: Any = None
        self.result: Any = None
        self.lost = False


class RpcClient:
    def __init__(self, host: str, port: int,
                 on_notification: Callable[[str, list[Any]], None],
                 on_connect: Callable[[], None] | None = None,
                 max_backoff: float = 5.0) -> None:
        self.address = (host, port)
        self.on_notification = on_notification
        self.on_connect = on_connect
        self.max_backoff = max_backoff
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._connected = threading.Event()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # --- connection management ----------------------------------------------------------

    def connect_forever(self) -> None:
        """Run in a thread: keep a connection open until :meth:`close`."""
        backoff = 0.1
        while not self._stop.is_set():
            try:
                sock = socket.create_connection(self.address, timeout=5)
            except OSError as exc:
                LOG.info("controller %s:%s unreachable (%s); retrying in %.1fs",
                         *self.address, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff = 0.1
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._connected.set()
            LOG.info("connected to controller %s:%s", *self.address)
            if self.on_connect is not None:
                threading.Thread(target=self._safe_on_connect, daemon=True).start()
            self._read_loop(sock)
            self._connected.clear()
            self._sock = None
            sock.close()
            self._fail_pending()
            if not self._stop.is_set():
                LOG.warning("lost the controller connection; reconnecting")

    def _safe_on_connect(self) -> None:
        try:
            assert self.on_connect is not None
            self.on_connect()
        except Exception:
            LOG.exception("on_connect handler failed")

    def close(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _read_loop(self, sock: socket.socket) -> None:
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            unpacker.feed(data)
            for message in unpacker:
                self._dispatch(message)

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, list) or not message:
            LOG.warning("ignoring malformed frame from controller: %.200r", message)
            return
        if message[0] == RESPONSE and len(message) == 4:
            pending = self._pending.pop(message[1], None)
            if pending is not None:
                pending.error, pending.result = message[2], message[3]
                pending.done.set()
        elif message[0] == NOTIFICATION and len(message) == 3:
            try:
                self.on_notification(str(message[1]), list(message[2] or []))
            except Exception:
                LOG.exception("notification %s failed", message[1])
        else:
            LOG.warning("ignoring unexpected frame from controller: %.200r", message)

    def _fail_pending(self) -> None:
        for pending in list(self._pending.values()):
            pending.lost = True
            pending.done.set()
        self._pending.clear()

    # --- calls ---------------------------------------------------------------------------

    def _send(self, frame: list[Any]) -> None:
        sock = self._sock
        if sock is None:
            raise Disconnected("not connected to the controller")
        data = msgpack.packb(frame, use_bin_type=True)
        try:
            with self._send_lock:
                sock.sendall(data)
        except OSError as exc:
            raise Disconnected(str(exc)) from exc

    def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        msgid = next(self._ids) & 0xFFFFFFFF
        pending = _Pending()
        self._pending[msgid] = pending
        try:
            self._send([REQUEST, msgid, method, list(params)])
            if not pending.done.wait(timeout):
                raise Disconnected(f"{method}: no answer within {timeout}s")
        finally:
            self._pending.pop(msgid, None)
        if pending.lost:
            raise Disconnected(f"{method}: connection lost")
        if pending.error is not None:
            raise RpcCallError(pending.error)
        return pending.result

    def notify(self, method: str, *params: Any) -> None:
        self._send([NOTIFICATION, method, list(params)])
