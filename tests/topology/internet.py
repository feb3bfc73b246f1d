"""The "internet" namespace and a server that records who talked to it.

:class:`EchoServer` runs in a thread of the test process, with sockets created inside a
namespace (normally the internet one): a UDP and a TCP echo service on one port, and a raw ICMP
socket that sees every ICMP packet arriving in the namespace. Each contact is recorded as a
:class:`Peer`, which answers "which source address does the internet observe" (SNAT, floating
IPs).
"""

from __future__ import annotations

import selectors
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._run import run, wait_until
from .netns import netns, ns_argv

if TYPE_CHECKING:
    from .topology import Topology

ICMP_ECHO_REQUEST = 8
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; Python < 3.12 lacks the name


@dataclass(frozen=True)
class Peer:
    proto: str  # "udp" | "tcp" | "icmp"
    src: str
    src_port: int  # 0 for icmp
    dst: str
    at: float  # time.monotonic()


class EchoServer:
    """Started by :meth:`Internet.start_server` or :meth:`tests.topology.Topology.start_server`;
    stopped by :meth:`stop` or at topology exit."""

    def __init__(self, ns: str, port: int = 7):
        self.port = port
        self._peers: list[Peer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        with netns(ns):
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            self._udp.setsockopt(socket.SOL_IP, IP_PKTINFO, 1)
            self._udp.bind(("0.0.0.0", port))
            self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._tcp.bind(("0.0.0.0", port))
            self._tcp.listen(16)
        except OSError:
            for sock in (self._udp, self._tcp, self._icmp):
                sock.close()
            raise
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._udp, selectors.EVENT_READ, "udp")
        self._sel.register(self._tcp, selectors.EVENT_READ, "accept")
        self._sel.register(self._icmp, selectors.EVENT_READ, "icmp")
        self._thread = threading.Thread(target=self._serve, name=f"echo-server-{ns}", daemon=True)
        self._thread.start()

    def _record(self, proto: str, src: str, src_port: int, dst: str) -> None:
        with self._lock:
            self._peers.append(Peer(proto, src, src_port, dst, time.monotonic()))

    def _serve(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._sel.select(timeout=0.05):
                try:
                    self._handle(key)
                except OSError:
                    continue

    def _handle(self, key: selectors.SelectorKey) -> None:
        sock: socket.socket = key.fileobj  # type: ignore[assignment]
        if key.data == "udp":
            data, ancdata, _, addr = sock.recvmsg(65535, socket.CMSG_SPACE(12))
            dst = ""
            for level, kind, value in ancdata:
                if level == socket.SOL_IP and kind == IP_PKTINFO:
                    dst = socket.inet_ntoa(value[8:12])  # ipi_addr: header destination
            self._record("udp", addr[0], addr[1], dst)
            # Answer from the address that was asked (like ICMP echo does), not from the
            # outgoing interface's primary address: NAT return traffic depends on it.
            pktinfo = struct.pack("=I4s4s", 0, socket.inet_aton(dst or "0.0.0.0"), bytes(4))
            sock.sendmsg([data], [(socket.SOL_IP, IP_PKTINFO, pktinfo)], 0, addr)
        elif key.data == "accept":
            conn, addr = sock.accept()
            self._record("tcp", addr[0], addr[1], conn.getsockname()[0])
            conn.setblocking(False)
            self._sel.register(conn, selectors.EVENT_READ, "conn")
        elif key.data == "conn":
            try:
                data = sock.recv(65535)
            except OSError:
                data = b""
            if data:
                sock.setblocking(True)
                sock.sendall(data)
                sock.setblocking(False)
            else:
                self._sel.unregister(sock)
                sock.close()
        elif key.data == "icmp":
            packet = sock.recv(65535)
            ihl = (packet[0] & 0x0F) * 4
            if len(packet) > ihl and packet[ihl] == ICMP_ECHO_REQUEST:
                self._record("icmp", socket.inet_ntoa(packet[12:16]), 0,
                             socket.inet_ntoa(packet[16:20]))

    def peers(self, proto: str | None = None) -> list[Peer]:
        with self._lock:
            return [p for p in self._peers if proto is None or p.proto == proto]

    def sources(self, proto: str | None = None) -> list[str]:
        """Source addresses seen so far (ICMP: echo requests only), in arrival order."""
        return [p.src for p in self.peers(proto)]

    def wait_for_peer(self, proto: str | None = None, timeout: float = 5.0,
                      since: float | None = None) -> Peer:
        """The first contact (after ``since``, a ``time.monotonic()`` value) of ``proto``."""

        def first() -> Peer | None:
            for p in self.peers(proto):
                if since is None or p.at >= since:
                    return p
            return None

        return wait_until(first, timeout=timeout, message=f"a {proto or 'any'} peer")

    def clear(self) -> None:
        with self._lock:
            self._peers.clear()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._sel.close()


class Internet:
    """The upstream router (203.0.113.1 on ``extnet``) and the internet server 198.51.100.1."""

    def __init__(self, topo: Topology):
        self.topo = topo
        self.ns = topo.inet_ns
        self.router_ip = topo.ext_gateway_ip
        self.server_ip = topo.internet_ip

    def exec(self, argv: Sequence[str], timeout: float = 30.0, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
        return run(ns_argv(self.ns, list(argv)), env=self.topo.env, timeout=timeout, check=check)

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
        return self.topo.popen(self.ns, argv, **kwargs)

    def ping(self, ip: str, count: int = 1, timeout: float = 1.0) -> bool:
        argv = ["ping", "-n", "-q", "-c", str(count), "-W", f"{timeout:g}", ip]
        return self.exec(argv, timeout=timeout + count + 5.0, check=False).returncode == 0

    def start_server(self, port: int = 7) -> EchoServer:
        """UDP+TCP echo on ``port`` and an ICMP watcher, all recording their peers."""
        return self.topo.start_server(self.ns, port)
