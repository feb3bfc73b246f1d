"""The TCP (or mutual TLS) side of the agent endpoint, every resource bounded (see
docs/protocol.md, "Limits").

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

Per connection: a reader green thread; a writer green thread only while there is something
to send (and one second after); a msgpack unpacker (~43 KB) only while bytes wait to be
decoded. Timeouts are deadlines on the connection that one reaper green thread checks a few
times per timeout (a timer per read would cost more than the heartbeat it reads). An idle
connection costs about 12 KB (36 KB with TLS).

Size: over 400 lines on purpose: every resource bound of the endpoint (connections,
frames, deadlines, queued replies, descriptors) lives with the accept and I/O loops it
guards, so that none can be bypassed; the dispatch is pure and apart (protocol.py).
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
import eventlet.event
import eventlet.green.ssl
import eventlet.queue
import msgpack

from ryu_sched.rpc.protocol import Dispatcher, RateLimitedLog
from ryu_sched.shared.tls import peer_identities, server_context
from ryu_sched.shared.wire import encode_notification, new_unpacker

if TYPE_CHECKING:
    import ssl

    from ryu_sched.config import Settings

LOG = logging.getLogger(__name__)

_WRITE_CHUNK = 256 * 1024
_WRITER_LINGER = 1.0   # seconds an idle writer may wait for more before the reaper ends it
_LAST = (b"", 0)       # queued by close(flush=True): send what came before, then end
_SPARE_UNPACKERS = 16  # clean unpackers the server keeps for the next reads
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


class _Expired(Exception):
    """Thrown by the reaper into a green thread whose read or write deadline passed."""


_NEVER = float("inf")


class Connection:
    def __init__(self, server: RpcServer, sock: Any, peer: Any) -> None:
        self.server = server
        self.sock = sock
        self.peer_host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.tls = False
        # Names the peer's verified client certificate vouches for (commonName and DNS
        # subjectAltNames) once the TLS handshake is done; None without TLS (nothing is
        # authenticated, the registry checks no identity). With TLS the registry requires
        # that an agent's reported host is one of them (registry/agent_access.py).
        self.peer_identities: frozenset[str] | None = None
        self.closed = False
        self.agent_ids: set[str] = set()      # agents that report over this connection
        # (bytes, replies they carry). The writer green thread exists while there is work
        # (and _WRITER_LINGER after it): a busy connection keeps it, an idle one holds none.
        self._outbox: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self._queued = 0
        self._unsent = 0                      # replies queued or being written
        self._drained: Any = None             # Event the reader waits on at max_inflight
        self._writer: Any = None
        self._reader: Any = None
        # Deadlines checked by the server's reaper (one green thread for all connections,
        # rather than a timer per read): the reader's while it waits for bytes, the
        # writer's while it waits for the peer to take them; _NEVER otherwise.
        self.read_deadline = _NEVER
        self.write_deadline = _NEVER
        self.writer_idle_since = _NEVER

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
        self._unsent += replies
        self._outbox.put((data, replies))
        if self._writer is None:
            self._writer = eventlet.spawn(self._write_loop)

    def notify(self, method: str, params: list[Any]) -> None:
        """Send a notification ``[2, method, params]`` (server -> agent)."""
        if self.closed:
            return
        self.server.stats.notifications_sent += 1
        self.send(encode_notification(method, params))

    def _write_loop(self) -> None:
        """Send what is queued (the reaper ends it once idle for _WRITER_LINGER seconds)."""
        timeout = self.server.limits.write_timeout
        outbox = self._outbox
        try:
            while True:
                self.writer_idle_since = time.monotonic()
                batch = [outbox.get()]
                self.writer_idle_since = _NEVER
                while outbox.qsize():
                    batch.append(outbox.get_nowait())
                last = _LAST in batch
                if last:
                    batch = batch[:batch.index(_LAST)]
                data = memoryview(b"".join(chunk for chunk, _ in batch))
                # progress, not the whole batch, must come within write_timeout: a large
                # reply to an agent on a slow link is not a peer that stopped reading
                for start in range(0, len(data), _WRITE_CHUNK):
                    self.write_deadline = time.monotonic() + timeout
                    self.sock.sendall(data[start:start + _WRITE_CHUNK])
                self.write_deadline = _NEVER
                self._queued -= len(data)
                self._unsent -= sum(replies for _, replies in batch)
                self._wake_reader()
                if last:
                    return
        except _Expired:
            self.server.log.warning("RPC %s: peer took nothing for %ss, closing", self.peer,
                                    timeout)
            self.server.stats.connections_closed_slow += 1
            self.close()
        except OSError:
            self.close()
        finally:
            if self._writer is eventlet.getcurrent():
                self._writer = None

    # --- receiving --------------------------------------------------------------------

    def run(self) -> None:
        self._reader = eventlet.getcurrent()
        try:
            if self.server.ssl_context is not None:
                self._handshake()
            self._read_loop()
        except _Cut:
            pass
        finally:
            self.close(flush=True)

    def _handshake(self) -> None:
        server = self.server
        assert server.ssl_context is not None
        try:
            self.read_deadline = time.monotonic() + server.limits.read_timeout
            self.sock = server.ssl_context.wrap_socket(
                self.sock, server_side=True, do_handshake_on_connect=False)
            self.sock.do_handshake()
            self.read_deadline = _NEVER
            cert = self.sock.getpeercert()
        except (_Expired, OSError, ValueError) as exc:
            self.read_deadline = _NEVER
            server.stats.refused_tls += 1
            reason = "timed out" if isinstance(exc, _Expired) else exc
            server.log.warning("RPC %s: TLS handshake failed (%s), closing", self.peer, reason)
            raise _Cut from None
        self.tls = True
        self.peer_identities = peer_identities(cert)

    def _recv(self, deadline: float) -> bytes:
        self.read_deadline = deadline
        try:
            return self.sock.recv(self.server.limits.recv_size)  # type: ignore[no-any-return]
        finally:
            self.read_deadline = _NEVER

    def _read_loop(self) -> None:
        server = self.server
        stats, limits, dispatcher = server.stats, server.limits, server.dispatcher
        # A streaming unpacker costs ~43 KB (its parse stack): a connection holds one only
        # while it has bytes to decode, borrowed from the server's spares.
        unpacker: msgpack.Unpacker | None = None
        fed = 0              # bytes fed to the unpacker
        boundary = 0         # where the last complete frame ended
        frame_started = 0.0  # when the first byte of the incomplete frame arrived
        while not self.closed:
            partial = fed > boundary
            if partial:
                deadline = frame_started + limits.read_timeout
            else:
                deadline = time.monotonic() + limits.idle_timeout
            try:
                data = self._recv(deadline)
            except _Expired:
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
            if unpacker is None:
                unpacker = server.take_unpacker()
                fed = boundary = unpacker.tell()
            fed += len(data)
            out: list[bytes] = []
            try:
                unpacker.feed(data)
                for frame in unpacker:
                    boundary = unpacker.tell()
                    response = dispatcher.handle(self, frame)
                    if response is not None:
                        out.append(response)
                        if self._unsent + len(out) >= limits.max_inflight:
                            self._flush(out)
                            self._wait_drained()
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
            if fed == boundary:   # nothing pending: the unpacker is clean, give it back
                server.give_unpacker(unpacker)
                unpacker = None
            elif boundary > fed - len(data):
                frame_started = now   # the incomplete frame left started within this read

    def _flush(self, out: list[bytes]) -> None:
        if out:
            self.send(b"".join(out), replies=len(out))
            out.clear()

    def _wait_drained(self) -> None:
        """Block while max_inflight replies wait to be sent (until the peer takes them, or
        the connection ends)."""
        self.server.stats.inflight_waits += 1
        while self._unsent >= self.server.limits.max_inflight:
            if self.closed:
                raise _Cut
            self._drained = eventlet.event.Event()
            self._drained.wait()

    def _wake_reader(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None:
            drained.send()

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
        self._wake_reader()
        if flush and self._writer is not None:
            self._outbox.put(_LAST)
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
        self._reaper: Any = None
        self._spare_unpackers: list[msgpack.Unpacker] = []

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
        self._reaper = eventlet.spawn(self._reap_loop)

    def take_unpacker(self) -> msgpack.Unpacker:
        if self._spare_unpackers:
            return self._spare_unpackers.pop()
        return new_unpacker(self.limits.max_frame_size, self.limits.recv_size)

    def give_unpacker(self, unpacker: msgpack.Unpacker) -> None:
        """Keep a few clean unpackers (no pending bytes) for the next reads."""
        if len(self._spare_unpackers) < _SPARE_UNPACKERS:
            self._spare_unpackers.append(unpacker)

    def _reap_loop(self) -> None:
        """Throw :class:`_Expired` into every reader or writer past its deadline."""
        limits = self.limits
        interval = max(0.05, min(1.0, limits.idle_timeout / 4, limits.read_timeout / 4,
                                 limits.write_timeout / 4))
        while True:
            eventlet.sleep(interval)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.read_deadline < now and conn._reader is not None:
                    conn.read_deadline = _NEVER
                    eventlet.kill(conn._reader, _Expired)
                if conn._writer is None:
                    continue
                if conn.write_deadline < now:
                    conn.write_deadline = _NEVER
                    eventlet.kill(conn._writer, _Expired)
                elif conn.writer_idle_since < now - _WRITER_LINGER and not conn._outbox.qsize():
                    # waiting for work that does not come: end it (send() starts another)
                    conn.writer_idle_since = _NEVER
                    eventlet.kill(conn._writer)

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
        for thread in (self._acceptor, self._reaper):
            if thread is not None:
                thread.kill()
        self._acceptor = self._reaper = None
        try:
            self.socket.close()
        except OSError:
            pass


def _close_quietly(sock: Any) -> None:
    try:
        sock.close()
    except OSError:
        pass
