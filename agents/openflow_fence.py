"""The fence over a standing OpenFlow connection to the local bridge's management socket.

``ovs-ofctl del-flows`` forks a process, negotiates a connection and only then sends the
delete: a few milliseconds during which a gateway that just woke up (its host frozen, then
resumed) may still answer for routers that are active elsewhere by now. This connection is
opened (and its version negotiated) ahead of time; the fence is then one ``sendall`` of a
flow-mod that deletes every ROUTER_ACTIVE flow plus a barrier. Written while ovs-vswitchd is
still frozen, the delete waits in the switch's socket and is handled in its first round after
it resumes, before anything it forwards on links that come up after it.

Four OpenFlow 1.3 messages only (HELLO, ECHO_REQUEST/REPLY, FLOW_MOD delete, BARRIER), in
the standard library: agents depend on nothing but ``ryu_sched.shared``. Falls back to
``ovs-ofctl`` (the caller's) while the socket cannot be reached.
"""

from __future__ import annotations

import itertools
import logging
import socket
import struct
import threading
from collections.abc import Callable

LOG = logging.getLogger(__name__)

OFP_VERSION = 0x04                  # OpenFlow 1.3
OFPT_HELLO, OFPT_ERROR, OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY = 0, 1, 2, 3
OFPT_FLOW_MOD, OFPT_BARRIER_REQUEST, OFPT_BARRIER_REPLY = 14, 20, 21
OFPFC_DELETE = 3
OFPTT_ALL = 0xFF
OFP_NO_BUFFER = OFPP_ANY = OFPG_ANY = 0xFFFFFFFF
OFPMT_OXM = 1
_HEADER = struct.Struct("!BBHI")


def header(msg_type: int, length: int, xid: int) -> bytes:
    return _HEADER.pack(OFP_VERSION, msg_type, length, xid)


def delete_by_cookie(cookie: int, mask: int, xid: int) -> bytes:
    """FLOW_MOD: delete, in every table, every flow whose cookie matches under ``mask``."""
    body = struct.pack("!QQBBHHHIIIH2x", cookie, mask, OFPTT_ALL, OFPFC_DELETE, 0, 0, 0,
                       OFP_NO_BUFFER, OFPP_ANY, OFPG_ANY, 0)
    match = struct.pack("!HH4x", OFPMT_OXM, 4)          # an empty match, padded to 8
    return header(OFPT_FLOW_MOD, _HEADER.size + len(body) + len(match), xid) + body + match


def barrier(xid: int) -> bytes:
    return header(OFPT_BARRIER_REQUEST, _HEADER.size, xid)


class OpenFlowFence:
    """A standing connection to ``path`` (``<rundir>/<bridge>.mgmt``) that deletes the
    flows of one cookie kind on demand."""

    def __init__(self, path: str, cookie: int, mask: int, fallback: Callable[[], None],
                 timeout: float = 2.0) -> None:
        self.path = path
        self.cookie = cookie
        self.mask = mask
        self.fallback = fallback
        self.timeout = timeout
        self._xids = itertools.count(1)
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._barriers: dict[int, threading.Event] = {}
        self.sent = 0             # fences sent over the standing connection (tests, logs)

    # --- the connection ---------------------------------------------------------------

    def connect(self) -> bool:
        """Open and negotiate the connection (once; again after it broke). True when up."""
        with self._lock:
            if self._sock is not None:
                return True
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.path)
                sock.sendall(header(OFPT_HELLO, _HEADER.size, next(self._xids)))
                version, msg_type, length, _xid = _HEADER.unpack(_read(sock, _HEADER.size))
                _read(sock, length - _HEADER.size)
                if msg_type != OFPT_HELLO or version < OFP_VERSION:
                    raise OSError(f"no OpenFlow 1.3 hello from {self.path} (type {msg_type},"
                                  f" version {version})")
                sock.settimeout(None)
            except OSError as exc:
                LOG.warning("fence connection to %s: %s; using ovs-ofctl meanwhile",
                            self.path, exc)
                return False
            self._sock = sock
        threading.Thread(target=self._reader, args=(sock,), daemon=True,
                         name="fence-openflow").start()
        LOG.info("fence connection to %s open", self.path)
        return True

    def close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _reader(self, sock: socket.socket) -> None:
        """Answer echo requests (the switch drops a silent connection), note barrier replies,
        log errors; on EOF forget the connection (the next fence opens another)."""
        try:
            while True:
                _version, msg_type, length, xid = _HEADER.unpack(_read(sock, _HEADER.size))
                body = _read(sock, length - _HEADER.size)
                if msg_type == OFPT_ECHO_REQUEST:
                    with self._lock:
                        sock.sendall(header(OFPT_ECHO_REPLY, length, xid) + body)
                elif msg_type == OFPT_BARRIER_REPLY:
                    event = self._barriers.pop(xid, None)
                    if event is not None:
                        event.set()
                elif msg_type == OFPT_ERROR:
                    LOG.error("fence connection: the switch reported an error %s",
                              body[:4].hex())
        except OSError:
            pass
        with self._lock:
            if self._sock is sock:
                self._sock = None
        sock.close()

    # --- the fence ----------------------------------------------------------------------

    def __call__(self) -> None:
        """Delete the flows; return once the switch confirmed (its barrier reply). The
        delete is written before waiting: a frozen switch handles it first thing when it
        resumes. Raises when it cannot be done (the watchdog tries again)."""
        if not self.connect():
            self.fallback()
            return
        flow_xid, barrier_xid = next(self._xids), next(self._xids)
        done = threading.Event()
        self._barriers[barrier_xid] = done
        try:
            with self._lock:
                if self._sock is None:
                    raise OSError("fence connection lost")
                self._sock.sendall(delete_by_cookie(self.cookie, self.mask, flow_xid)
                                   + barrier(barrier_xid))
            self.sent += 1
            if not done.wait(self.timeout):
                raise TimeoutError(f"no barrier reply from {self.path} in {self.timeout}s")
        except OSError:
            self._barriers.pop(barrier_xid, None)
            self.close()
            raise
        finally:
            self._barriers.pop(barrier_xid, None)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionResetError("closed by the switch")
        data += chunk
    return data
