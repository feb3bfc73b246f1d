"""The TCP (or mutual TLS) side of the agent endpoint: a reader and a writer green thread per
connection, every resource bounded (see docs/protocol.md, "Limits").

- Accept: over ``max_connections`` (total, lowered to leave a quarter of the file descriptor
  limit to the rest of the process) or ``max_connections_per_peer`` a connection is accepted
  and closed at once, counted. ``accept()`` errors (EMFILE, ENFILE, ...) back off and retry:
  the listener is never closed.
- TLS: the handshake runs in the connection's green thread within ``read_timeout``; a peer
  without a certificate signed by the CA is refused. The verified certificate's commonName
  and DNS subjectAltNames are :attr:`Connection.peer_identities`.
- Reading: ``idle_timeout`` without a byte closes the connection; a frame (or the handshake)
  must arrive within ``read_timeout`` of its first byte; a frame larger than
  ``max_frame_size`` closes it; so do bytes that are not MessagePack.
- Fairness: the reader dispatches one frame at a time and yields to the hub at least every
  ``slice_seconds`` (so a burst of expensive requests cannot freeze the API or the other
  agents), and stops reading while ``max_inflight`` of its replies wait to be sent.
- Writing: replies and notifications queue for the writer; a connection whose peer does not
  read (queue beyond ``max_queued_bytes``, or no progress for ``write_timeout``) is closed,
  not buffered.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import resource
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import eventlet
import eventlet.green.ssl
import eventlet.queue
import eventlet.semaphore
import msgpack

from ryu_sched.rpc.protocol import Dispatcher, RateLimitedLog
from ryu_sched.shared.tls import peer_identities, server_context
from ryu_sched.shared.wire import encode_notification, new_unpacker

if TYPE_CHECKING:
    import ssl

    from ryu_sched.config import Settings

LOG = logging.getLogger(__name__)

_CLOSE = (b"", 0)
_OUT_OF_FDS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


@dataclasses.dataclass(frozen=True)
class RpcLimits:
    """Per-endpoint and per-connection bounds (the ``rpc_*`` options)."""

    max_connections: int = 4096
    max_connections_per_peer: int = 256
    idle_timeout: float = 60.0
    read_timeout: float = 10.0
    write_timeout: float = 10.0
    max_inflight: int = 32
    max_queued_bytes: int = 32 * 1024 * 1024
    max_frame_size: int = 1024 * 1024
    recv_size: int = 64 * 1024
    slice_seconds: float = 0.002

    @classmethod
    def from_settings(cls, settings: Settings) -> RpcLimits:
        return cls(max_connections=settings.rpc_max_connections,
                   max_connections_per_peer=settings.rpc_max_connections_per_peer,
                   idle_timeout=settings.rpc_idle_timeout,
                   read_timeout=settings.rpc_read_timeout,
                   write_timeout=settings.rpc_write_timeout,
                   max_inflight=settings.rpc_max_inflight,
                   max_queued_bytes=settings.rpc_max_queued_bytes,
                   max_frame_size=settings.rpc_max_frame_size)


def fd_budget(configured: int) -> int:
    """``configured`` connections at most, leaving a quarter of the file descriptor limit
    (64 at least) to the API, the switches, the database and the accept that refuses."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - max(64, soft // 4)))


class _Cut(Exception):
    """End this connection (already counted and logged)."""


class Connection:
    def __init__(self, server: RpcServer, sock: Any, peer: Any) -> None:
        self.server = server
        self.sock = sock
        self.peer_host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.tls = False
        # Names the peer's verified client certificate vouches for (commonName and DNS
        # subjectAltNames); empty without TLS. The registry may require that an agent's
        # reported host is one of them.
        self.peer_identities: frozenset[str] = frozenset()
        self.closed = False
        self.agent_ids: set[str] = set()      # agents that report over this connection
        self._outbox: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self._queued = 0
        self._slots = eventlet.semaphore.Semaphore(server.limits.max_inflight)
        self._writer: Any = None

    # --- sending ----------------------------------------------------------------------

    def send(self, data: bytes, replies: int = 0) -> None:
        """Queue bytes for the writer (``replies``: how many responses they carry)."""
        if self.closed or not data:
            return
        self._queued += len(data)
        if self._queued > self.server.limits.max_queued_bytes:
            self.server.log.warning("RPC %s: peer is not reading (%d bytes queued), closing",
                                    self.peer, self._queued)
            self.server.stats.connections_closed_slow += 1
            self.close()
            return
        self._outbox.put((data, replies))

    def notify(self, method: str, params: list[Any]) -> None:
        """Send a notification ``[2, method, params]`` (server -> agent)."""
        if self.closed:
            return
        self.server.stats.notifications_sent += 1
        self.send(encode_notification(method, params))

    def _write_loop(self) -> None:
        timeout = self.server.limits.write_timeout
        try:
            while True:
                items = [self._outbox.get()]
                while True:
                    try:
                        items.append(self._outbox.get_nowait())
                    except eventlet.queue.Empty:
                        break
                last = items.index(_CLOSE) if _CLOSE in items else None
                batch = items if last is None else items[:last]
                if batch:
                    data = b"".join(chunk for chunk, _ in batch)
                    with eventlet.Timeout(timeout):
                        self.sock.sendall(data)
                    self._queued -= len(data)
                    for _ in range(sum(replies for _, replies in batch)):
                        self._slots.release()
                if last is not None:
                    return
        except eventlet.Timeout:
            self.server.log.warning("RPC %s: peer took nothing for %ss, closing", self.peer,
                                    timeout)
            self.server.stats.connections_closed_slow += 1
        except OSError:
            pass
        finally:
            self.close()

    # --- receiving --------------------------------------------------------------------

    def run(self) -> None:
        try:
            if self.server.ssl_context is not None:
                self._handshake()
            self._writer = eventlet.spawn(self._write_loop)
            self._read_loop()
        except _Cut:
            pass
        finally:
            self.close(flush=True)

    def _handshake(self) -> None:
        server = self.server
        assert server.ssl_context is not None
        try:
            with eventlet.Timeout(server.limits.read_timeout):
                self.sock = server.ssl_context.wrap_socket(
                    self.sock, server_side=True, do_handshake_on_connect=False)
                self.sock.do_handshake()
            cert = self.sock.getpeercert()
        except (eventlet.Timeout, OSError, ValueError) as exc:
            server.stats.refused_tls += 1
            reason = "timed out" if isinstance(exc, eventlet.Timeout) else exc
            server.log.warning("RPC %s: TLS handshake failed (%s), closing", self.peer, reason)
            raise _Cut from None
        self.tls = True
        self.peer_identities = peer_identities(cert)

    def _recv(self, timeout: float) -> bytes:
        with eventlet.Timeout(timeout):
            return self.sock.recv(self.server.limits.recv_size)  # type: ignore[no-any-return]

    def _read_loop(self) -> None:
        server = self.server
        stats, limits, dispatcher = server.stats, server.limits, server.dispatcher
        unpacker = new_unpacker(limits.max_frame_size, limits.recv_size)
        fed = 0              # bytes fed to the unpacker
        boundary = 0         # where the last complete frame ended
        frame_started = 0.0  # when the first byte of the incomplete frame arrived
        slice_end = time.monotonic() + limits.slice_seconds
        while not self.closed:
            partial = fed > boundary
            if partial:
                timeout = frame_started + limits.read_timeout - time.monotonic()
            else:
                timeout = limits.idle_timeout
            try:
                data = self._recv(max(timeout, 0.0))
            except eventlet.Timeout:
                if partial:
                    stats.connections_closed_read_timeout += 1
                    server.log.warning("RPC %s: frame incomplete after %ss, closing",
                                       self.peer, limits.read_timeout)
                else:
                    stats.connections_closed_idle += 1
                    LOG.info("RPC %s: idle for %ss, closing", self.peer, limits.idle_timeout)
                return
            except OSError:
                return
            if not data:
                return
            now = time.monotonic()
            if not partial:
                frame_started = now
            slice_end = now + limits.slice_seconds
            fed += len(data)
            out: list[bytes] = []
            try:
                unpacker.feed(data)
                for frame in unpacker:
                    boundary = unpacker.tell()
                    response = dispatcher.handle(self, frame)
                    if response is not None:
                        if not self._slots.acquire(blocking=False):
                            self._flush(out)
                            self._wait_slot()
                        out.append(response)
                    if time.monotonic() >= slice_end:
                        self._flush(out)
                        eventlet.sleep(0)
                        if self.closed:
                            return
                        slice_end = time.monotonic() + limits.slice_seconds
            except msgpack.BufferFull:
                self._flush(out)
                self._oversize(fed - boundary)
            except _Cut:
                raise
            except Exception as exc:
                self._flush(out)
                if isinstance(exc, ValueError) and "exceeds max_" in str(exc):
                    self._oversize(None, str(exc))
                stats.connections_closed_undecodable += 1
                server.log.warning("RPC %s: undecodable stream (%s: %s), closing",
                                   self.peer, type(exc).__name__, exc)
                return
            self._flush(out)
            if fed - boundary > limits.max_frame_size:
                self._oversize(fed - boundary)
            if boundary > fed - len(data):
                frame_started = now   # any incomplete frame left started within this read

    def _flush(self, out: list[bytes]) -> None:
        if out:
            self.send(b"".join(out), replies=len(out))
            out.clear()

    def _wait_slot(self) -> None:
        """Block until the writer sent a reply (the peer is reading) or the connection ends."""
        self.server.stats.inflight_waits += 1
        while not self._slots.acquire(timeout=1.0):
            if self.closed:
                raise _Cut

    def _oversize(self, size: int | None, detail: str = "") -> None:
        self.server.stats.connections_closed_oversize += 1
        what = f"{size} bytes" if size is not None else detail
        self.server.log.warning("RPC %s: frame beyond %d bytes (%s), closing", self.peer,
                                self.server.limits.max_frame_size, what)
        raise _Cut

    def close(self, flush: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.server.forget(self)
        if flush and self._writer is not None:
            self._outbox.put(_CLOSE)
            with eventlet.Timeout(min(5.0, self.server.limits.write_timeout), False):
                try:
                    self._writer.wait()
                except Exception:
                    LOG.debug("RPC %s: writer ended with an error", self.peer)
        elif self._writer is not None and self._writer is not eventlet.getcurrent():
            self._writer.kill()
        try:
            self.sock.close()
        except OSError:
            pass


class RpcServer:
    """Accepts agent connections; ``on_close(conn)`` tells the registry one went away."""

    def __init__(self, host: str, port: int, dispatcher: Dispatcher,
                 on_close: Callable[[Connection], None] | None = None,
                 limits: RpcLimits | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.dispatcher = dispatcher
        self.stats = dispatcher.stats
        self.log = RateLimitedLog(LOG)
        self.on_close = on_close
        self.limits = limits or RpcLimits()
        self.max_connections = fd_budget(self.limits.max_connections)
        self.ssl_context = ssl_context
        self.socket = eventlet.listen((host, port), backlog=1024)
        self.host, self.port = self.socket.getsockname()[:2]
        self.connections: set[Connection] = set()
        self._per_peer: dict[str, int] = {}
        self._acceptor: Any = None
        self._pool = eventlet.GreenPool(self.max_connections + 16)

    @classmethod
    def from_settings(cls, settings: Settings, dispatcher: Dispatcher,
                      on_close: Callable[[Connection], None] | None = None) -> RpcServer:
        """The endpoint as configured: address, limits and, when set, mutual TLS (raises
        :class:`ryu_sched.shared.tls.TlsConfigError` for unusable TLS files)."""
        files = settings.rpc_tls
        context = None if files is None else server_context(
            files, context_class=eventlet.green.ssl.GreenSSLContext)
        return cls(settings.rpc_host, settings.rpc_port, dispatcher, on_close=on_close,
                   limits=RpcLimits.from_settings(settings), ssl_context=context)

    def start(self) -> None:
        limits = self.limits
        if self.max_connections < limits.max_connections:
            LOG.warning("agent RPC: at most %d connections (rpc_max_connections %d lowered "
                        "to fit the file descriptor limit)", self.max_connections,
                        limits.max_connections)
        LOG.info("agent RPC (MessagePack-RPC%s) listening on %s:%s; at most %d connections, "
                 "%d per peer", " over mutual TLS" if self.ssl_context else "", self.host,
                 self.port, self.max_connections, limits.max_connections_per_peer)
        self._acceptor = eventlet.spawn(self._accept_loop)

    def _accept_loop(self) -> None:
        backoff = 0.01
        while True:
            try:
                sock, peer = self.socket.accept()
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EINVAL):   # listener closed by stop()
                    return
                self.stats.accept_errors += 1
                if exc.errno in _OUT_OF_FDS:
                    backoff = min(backoff * 2, 1.0)
                self.log.warning("RPC accept failed (%s); retrying in %.2fs", exc, backoff)
                eventlet.sleep(backoff)
                continue
            backoff = 0.01
            host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
            if len(self.connections) >= self.max_connections:
                self.stats.refused_connection_limit += 1
                self.log.warning("RPC %s: refused, %d connections open", host,
                                 len(self.connections))
                _close_quietly(sock)
                continue
            if self._per_peer.get(host, 0) >= self.limits.max_connections_per_peer:
                self.stats.refused_peer_limit += 1
                self.log.warning("RPC %s: refused, %d connections open from that address",
                                 host, self._per_peer[host])
                _close_quietly(sock)
                continue
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = Connection(self, sock, peer)
            self.connections.add(conn)
            self._per_peer[host] = self._per_peer.get(host, 0) + 1
            self.stats.connections_accepted += 1
            self.stats.connections_open = len(self.connections)
            self._pool.spawn_n(self._serve, conn)

    def _serve(self, conn: Connection) -> None:
        try:
            conn.run()
        except Exception:
            LOG.exception("RPC %s: connection handler crashed", conn.peer)
            conn.close()

    def forget(self, conn: Connection) -> None:
        if conn not in self.connections:
            return
        self.connections.discard(conn)
        left = self._per_peer.get(conn.peer_host, 1) - 1
        if left > 0:
            self._per_peer[conn.peer_host] = left
        else:
            self._per_peer.pop(conn.peer_host, None)
        self.stats.connections_open = len(self.connections)
        if self.on_close is not None:
            try:
                self.on_close(conn)
            except Exception:
                LOG.exception("RPC on_close callback failed")

    def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.kill()
            self._acceptor = None
        try:
            self.socket.close()
        except OSError:
            pass


def _close_quietly(sock: Any) -> None:
    try:
        sock.close()
    except OSError:
        pass
