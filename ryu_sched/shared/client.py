"""The one MessagePack-RPC client of the agent protocol: agents, test support and bench use it.

One connection at a time, read by its own thread: responses complete the pending calls,
notifications go to ``on_notification(method, params)``. ``call`` blocks for its response,
``notify`` sends and returns. Two ways to connect:

- :meth:`RpcClient.open`: one connection now, raising :class:`Disconnected` if it cannot be
  made; no reconnect (test agents that "die" by closing it);
- :meth:`RpcClient.connect_forever` (or :meth:`RpcClient.start`, which runs it in a thread):
  reconnect after every loss, backing off exponentially up to ``max_backoff`` while the
  controller is unreachable or refuses; ``on_connect()`` runs (in a thread) on every new
  connection, so the caller can heartbeat and resync at once.

Several controllers (``alternates``: the other addresses, any of which serves agents): the
client talks to one at a time. After a lost connection it tries the next address first (the
one it lost may be dead), and it goes round the list without waiting; it backs off only
after a whole round failed. A controller that stops answering without closing the
connection (frozen, cut off) is the caller's to notice (a call times out): :meth:`drop`
ends that connection, and the client moves on to the next address.

A connection only counts once the server has answered a first ``ping`` (any answer, even an
error): a server at its connection limit, or one that rejects the client certificate (TLS 1.3
tells the client only after its handshake returned), is a failed attempt that backs off, not
a connection. While disconnected, calls fail at once with :class:`Disconnected`; calls waiting
when the connection drops fail then, not at their timeout.

With an ``ssl_context`` (``ryu_sched.shared.tls.client_context``) the connection is TLS. An
SSL object must never be used by two threads at once, so the socket is non-blocking and every
read and write happens under one lock; threads wait for readiness outside it.

Size: just over 400 lines: the one client of the agent protocol (connect, TLS, calls,
notifications, reconnect with backoff, several controllers) used by the agents, the test
support and the benches alike.
"""

from __future__ import annotations

import itertools
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ryu_sched.shared.wire import (
    CLIENT_MAX_FRAME,
    MAX_MSGID,
    RECV_SIZE,
    CallTimeout,
    Disconnected,
    Notification,
    Response,
    RpcCallError,
    encode_notification,
    encode_request,
    new_unpacker,
    parse_from_server,
)

LOG = logging.getLogger(__name__)

NotificationHandler = Callable[[str, list[Any]], None]

_RETRY_READ = (ssl.SSLWantReadError, BlockingIOError, InterruptedError)
_RETRY_WRITE = (ssl.SSLWantWriteError,)


class _Link:
    """One open connection: a non-blocking socket, all I/O under ``_io``."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.tls = isinstance(sock, ssl.SSLSocket)
        self._io = threading.Lock()
        self._send_lock = threading.Lock()   # one frame at a time
        self.closed = False
        self.error: BaseException | None = None   # why the reader stopped
        self.ended = threading.Event()             # the reader stopped, the socket is closed

    def _wait(self, events: int, timeout: float | None) -> bool:
        poller = select.poll()
        try:
            poller.register(self.sock.fileno(), events)
        except ValueError:   # already closed
            return True
        return bool(poller.poll(None if timeout is None else max(timeout, 0.0) * 1000))

    def recv(self, size: int) -> bytes:
        """The next bytes; ``b""`` at the end of the stream or once shut down."""
        while True:
            with self._io:
                if self.closed:
                    return b""
                try:
                    return self.sock.recv(size)
                except _RETRY_READ:
                    events = select.POLLIN
                except _RETRY_WRITE:
                    events = select.POLLOUT
            self._wait(events, None)

    def sendall(self, data: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        with self._send_lock:
            while view:
                with self._io:
                    if self.closed:
                        raise Disconnected("connection closed")
                    try:
                        view = view[self.sock.send(view):]
                        continue
                    except (ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
                        events = select.POLLOUT
                    except ssl.SSLWantReadError:
                        events = select.POLLIN
                    except OSError as exc:
                        raise Disconnected(f"send failed: {exc}") from exc
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._wait(events, remaining):
                    # part of a frame may be out: the stream cannot be used any more
                    self.shutdown()
                    raise Disconnected(f"the server did not take the data within {timeout}s")

    def shutdown(self) -> None:
        """Stop the connection; the reader sees the end of the stream and closes it."""
        with self._io:
            if self.closed:
                return
            self.closed = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def finish(self) -> None:
        """Reader side, when it stops: mark closed, close the socket."""
        with self._io:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass
        self.ended.set()


class _Pending:
    __slots__ = ("done", "error", "link", "lost", "result")

    def __init__(self, link: _Link) -> None:
        self.link = link
        self.done = threading.Event()
        self.error: Any = None
        self.result: Any = None
        self.lost = False


class RpcClient:
    def __init__(self, host: str, port: int,
                 on_notification: NotificationHandler | None = None,
                 on_connect: Callable[[], None] | None = None, *,
                 ssl_context: ssl.SSLContext | None = None,
                 server_hostname: str | None = None,
                 max_backoff: float = 5.0, initial_backoff: float = 0.1,
                 connect_timeout: float = 5.0, send_timeout: float = 10.0,
                 hello: str | None = "ping", first_msgid: int = 1,
                 max_frame: int = CLIENT_MAX_FRAME, name: str = "controller",
                 alternates: Sequence[tuple[str, int]] = ()) -> None:
        self.addresses: tuple[tuple[str, int], ...] = ((host, port), *alternates)
        self._index = 0                       # the address in use, or tried next
        self.on_notification = on_notification
        self.on_connect = on_connect
        self.ssl_context = ssl_context
        # The name the server's certificate must carry: given, or each address's host.
        self._server_hostname = server_hostname
        self.max_backoff = max_backoff
        self.initial_backoff = min(initial_backoff, max_backoff)
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.hello = hello
        self.max_frame = max_frame
        self.name = name
        self._link: _Link | None = None      # the connection calls go over, once confirmed
        self._state = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(first_msgid)
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<RpcClient {self.name} {self.address[0]}:{self.address[1]}>"

    @property
    def address(self) -> tuple[str, int]:
        """The address connected to (or tried next)."""
        return self.addresses[self._index]

    @property
    def server_hostname(self) -> str:
        return self._server_hostname or self.address[0]

    def _next_address(self) -> None:
        self._index = (self._index + 1) % len(self.addresses)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # --- connecting -----------------------------------------------------------------------

    def open(self, timeout: float | None = None) -> RpcClient:
        """Connect once (no reconnect). Raises :class:`Disconnected` when that fails."""
        self._stop.clear()
        self._up(self._connect(self.connect_timeout if timeout is None else timeout))
        return self

    def start(self) -> RpcClient:
        """Run :meth:`connect_forever` in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.connect_forever, daemon=True,
                                        name=f"rpc-{self.name}")
        self._thread.start()
        return self

    def connect_forever(self) -> None:
        """Keep a connection open until :meth:`close` (blocks; run it in a thread)."""
        backoff = self.initial_backoff
        failed = 0                            # attempts failed since the last connection
        while not self._stop.is_set():
            try:
                link = self._connect(self.connect_timeout)
                self._up(link)
            except Disconnected as exc:
                if self._stop.is_set():
                    return
                self._next_address()
                failed += 1
                if failed % len(self.addresses):
                    LOG.info("%s; trying %s:%s", exc, *self.address)
                    continue
                LOG.info("%s; retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            backoff, failed = self.initial_backoff, 0
            link.ended.wait()
            if not self._stop.is_set():
                if len(self.addresses) > 1:
                    self._next_address()
                LOG.warning("lost the %s connection (%s); reconnecting%s", self.name,
                            link.error or "closed by the peer",
                            f" to {self.address[0]}:{self.address[1]}"
                            if len(self.addresses) > 1 else "")

    def drop(self) -> None:
        """End the current connection (its controller does not answer); with
        :meth:`connect_forever` running, the client connects to the next address."""
        link = self._link
        if link is not None:
            link.error = link.error or Disconnected("dropped: the controller did not answer")
            link.shutdown()

    def close(self) -> None:
        """Stop reconnecting and close the connection (its pending calls fail)."""
        with self._state:
            self._stop.set()
            link = self._link
        if link is not None:
            link.shutdown()
            link.ended.wait(5.0)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)
            self._thread = None

    def _describe(self) -> str:
        tls = " (TLS)" if self.ssl_context is not None else ""
        return f"{self.name} {self.address[0]}:{self.address[1]}{tls}"

    def _connect(self, timeout: float) -> _Link:
        try:
            sock = socket.create_connection(self.address, timeout=timeout)
        except OSError as exc:
            raise Disconnected(f"{self._describe()} unreachable ({exc})") from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.server_hostname)
        except (OSError, ValueError) as exc:   # ssl.SSLError and certificate errors
            sock.close()
            raise Disconnected(f"{self._describe()}: TLS handshake failed ({exc})") from exc
        link = _Link(sock)
        threading.Thread(target=self._read_loop, args=(link,), daemon=True,
                         name=f"rpc-reader-{self.name}").start()
        if self.hello:
            try:
                self._call_on(link, self.hello, (), timeout)
            except RpcCallError:
                pass   # an error answer still proves that the server took the connection
            except Disconnected as exc:
                link.shutdown()
                link.ended.wait(timeout)
                reason = link.error or exc
                raise Disconnected(f"{self._describe()} refused the connection "
                                   f"({reason})") from exc
        return link

    def _up(self, link: _Link) -> None:
        with self._state:
            if link.closed or self._stop.is_set():
                link.shutdown()
                raise Disconnected(f"{self._describe()}: connection closed at once")
            self._link = link
            self._connected.set()
        LOG.info("connected to %s", self._describe())
        if self.on_connect is not None:
            threading.Thread(target=self._safe_on_connect, daemon=True,
                             name=f"rpc-on-connect-{self.name}").start()

    def _safe_on_connect(self) -> None:
        try:
            assert self.on_connect is not None
            self.on_connect()
        except Exception:
            LOG.exception("on_connect handler failed")

    # --- receiving ------------------------------------------------------------------------

    def _read_loop(self, link: _Link) -> None:
        unpacker = new_unpacker(self.max_frame)
        try:
            while True:
                data = link.recv(RECV_SIZE)
                if not data:
                    break
                unpacker.feed(data)
                for frame in unpacker:
                    self._dispatch(frame)
        except Exception as exc:   # OSError (TLS alerts too) or an undecodable stream
            link.error = exc
        finally:
            with self._state:
                link.closed = True
                if self._link is link:
                    self._link = None
                    self._connected.clear()
            for msgid, pending in list(self._pending.items()):
                if pending.link is link:
                    pending.lost = True
                    self._pending.pop(msgid, None)
                    pending.done.set()
            link.finish()

    def _dispatch(self, frame: Any) -> None:
        message = parse_from_server(frame)
        if isinstance(message, Response):
            pending = self._pending.pop(message.msgid, None)
            if pending is not None:
                pending.error, pending.result = message.error, message.result
                pending.done.set()
        elif isinstance(message, Notification):
            if self.on_notification is not None:
                try:
                    self.on_notification(message.method, message.params)
                except Exception:
                    LOG.exception("notification %s failed", message.method)
        else:
            LOG.warning("ignoring malformed frame from the %s: %.200r", self.name, frame)

    # --- calls ----------------------------------------------------------------------------

    def _current(self) -> _Link:
        link = self._link
        if link is None:
            raise Disconnected(f"not connected to the {self.name}")
        return link

    def _call_on(self, link: _Link, method: str, params: tuple[Any, ...] | list[Any],
                 timeout: float) -> Any:
        msgid = next(self._ids) & MAX_MSGID
        pending = _Pending(link)
        self._pending[msgid] = pending
        try:
            link.sendall(encode_request(msgid, method, list(params)),
                         min(timeout, self.send_timeout))
            if not pending.done.wait(timeout):
                raise CallTimeout(f"{method}: no answer within {timeout}s")
        finally:
            self._pending.pop(msgid, None)
        if pending.lost:
            raise Disconnected(f"{method}: connection lost ({link.error or 'closed'})")
        if pending.error is not None:
            raise RpcCallError(pending.error)
        return pending.result

    def call(self, method: str, *params: Any, timeout: float = 10.0) -> Any:
        """Send a request and wait for its response: the result, or :class:`RpcCallError`
        (error answer), :class:`CallTimeout`, :class:`Disconnected`."""
        return self._call_on(self._current(), method, params, timeout)

    def notify(self, method: str, *params: Any) -> None:
        """Send a notification (no response)."""
        self._current().sendall(encode_notification(method, list(params)), self.send_timeout)

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are (tests sending malformed frames on purpose)."""
        self._current().sendall(data, self.send_timeout)
