"""The TCP side of the agent endpoint: one green thread reading and one writing per connection.

The reader decodes whatever arrived with a streaming ``msgpack.Unpacker``, dispatches every
complete frame and queues the responses of one read as a single write, so pipelining agents
cost one ``recv`` and one ``send`` per batch. Notifications from other green threads go
through the same outbox; a connection whose outbox grows beyond ``max_outbox`` (an agent
that stopped reading) is closed. Bytes that are not MessagePack close that one connection.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Callable
from typing import Any

import eventlet
import eventlet.queue

from ryu_sched.rpc.protocol import Dispatcher, encode_notification, new_unpacker

LOG = logging.getLogger(__name__)

_CLOSE = b""


class Connection:
    def __init__(self, server: RpcServer, sock: Any, peer: Any) -> None:
        self.server = server
        self.sock = sock
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.closed = False
        self.agent_ids: set[str] = set()      # agents that report over this connection
        self._outbox: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self._queued = 0
        self._writer: Any = None

    # --- sending ----------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.closed or not data:
            return
        self._queued += len(data)
        if self._queued > self.server.max_outbox:
            LOG.warning("RPC %s: peer is not reading (%d bytes queued), closing",
                        self.peer, self._queued)
            self.server.stats.connections_closed_slow += 1
            self.close()
            return
        self._outbox.put(data)

    def notify(self, method: str, params: list[Any]) -> None:
        """Send a notification ``[2, method, params]`` (server -> agent)."""
        if self.closed:
            return
        self.server.stats.notifications_sent += 1
        self.send(encode_notification(method, params))

    def _write_loop(self) -> None:
        try:
            while True:
                chunks = [self._outbox.get()]
                while True:
                    try:
                        chunks.append(self._outbox.get_nowait())
                    except eventlet.queue.Empty:
                        break
                if _CLOSE in chunks:
                    chunks = chunks[: chunks.index(_CLOSE)]
                    if chunks:
                        self._sendall(b"".join(chunks))
                    return
                data = b"".join(chunks)
                self._queued -= len(data)
                self._sendall(data)
        except OSError:
            pass
        finally:
            self.close()

    def _sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    # --- receiving --------------------------------------------------------------------

    def run(self) -> None:
        stats = self.server.stats
        dispatcher = self.server.dispatcher
        unpacker = new_unpacker(self.server.max_frame)
        self._writer = eventlet.spawn(self._write_loop)
        try:
            while not self.closed:
                try:
                    data = self.sock.recv(self.server.recv_size)
                except OSError:
                    break
                if not data:
                    break
                out: list[bytes] = []
                try:
                    unpacker.feed(data)
                    for frame in unpacker:
                        response = dispatcher.handle(self, frame)
                        if response is not None:
                            out.append(response)
                except Exception as exc:
                    stats.connections_closed_undecodable += 1
                    dispatcher.log.warning("RPC %s: undecodable stream (%s: %s), closing",
                                           self.peer, type(exc).__name__, exc)
                    if out:
                        self.send(b"".join(out))
                    break
                if out:
                    self.send(b"".join(out))
        finally:
            self.close(flush=True)

    def close(self, flush: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        self.server.forget(self)
        if flush and self._writer is not None:
            self._outbox.put(_CLOSE)
            with eventlet.Timeout(5, False):
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
                 max_frame: int = 16 * 1024 * 1024, max_outbox: int = 64 * 1024 * 1024,
                 recv_size: int = 256 * 1024) -> None:
        self.dispatcher = dispatcher
        self.stats = dispatcher.stats
        self.on_close = on_close
        self.max_frame = max_frame
        self.max_outbox = max_outbox
        self.recv_size = recv_size
        self.socket = eventlet.listen((host, port), backlog=4096)
        self.host, self.port = self.socket.getsockname()[:2]
        self.connections: set[Connection] = set()
        self._acceptor: Any = None
        self._pool = eventlet.GreenPool(100_000)

    def start(self) -> None:
        LOG.info("agent RPC (MessagePack-RPC) listening on %s:%s", self.host, self.port)
        self._acceptor = eventlet.spawn(self._accept_loop)

    def _accept_loop(self) -> None:
        while True:
            try:
                sock, peer = self.socket.accept()
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EINVAL):
                    return
                LOG.warning("RPC accept failed: %s", exc)
                eventlet.sleep(0.05)
                continue
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            conn = Connection(self, sock, peer)
            self.connections.add(conn)
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
        self.connections.discard(conn)
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
        for conn in list(self.connections):
            conn.close()
        LOG.info("agent RPC stopped; counters %s", self.stats.as_dict())
