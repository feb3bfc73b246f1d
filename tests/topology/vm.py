"""A VM: a namespace whose ``eth0`` is a veth to a ``tap<port id>`` port on its host's br-int."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._run import run
from .dhcp_client import DhcpLease, run_dhclient
from .netns import netns, ns_argv
from .ping import ContinuousPing

if TYPE_CHECKING:
    from .host import Host
    from .topology import Topology


def tap_name(port_id: str) -> str:
    """Neutron's OVS interface name for a port: ``tap`` + the first 11 chars of its id."""
    return "tap" + port_id[:11]


class VM:
    """Built by :meth:`tests.topology.Topology.add_vm`."""

    def __init__(self, topo: Topology, host: Host, name: str, port_id: str, mac: str):
        self.topo = topo
        self.host = host
        self.name = name
        self.port_id = port_id
        self.mac = mac.lower()
        self.ns = topo.prefix + name
        self.tap = tap_name(port_id)
        self.iface = "eth0"
        self.workdir = topo.workdir / name
        self.env = topo.env
        self.lease: DhcpLease | None = None

    @property
    def ofport(self) -> int:
        return self.host.ofport(self.tap)

    def exec(self, argv: Sequence[str], timeout: float = 30.0, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the VM namespace."""
        return run(ns_argv(self.ns, list(argv)), env=self.env, timeout=timeout, check=check)

    def popen(self, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
        """Start ``argv`` inside the VM namespace; stopped at topology exit."""
        return self.topo.popen(self.ns, argv, **kwargs)

    def set_ip(self, ip_cidr: str, gateway: str | None = None) -> None:
        self.exec(["ip", "addr", "replace", ip_cidr, "dev", self.iface])
        if gateway:
            self.exec(["ip", "route", "replace", "default", "via", gateway])

    def flush_ip(self) -> None:
        self.exec(["ip", "addr", "flush", "dev", self.iface])

    def addresses(self) -> list[str]:
        """IPv4 addresses (CIDR) on eth0."""
        out = self.exec(["ip", "-4", "-o", "addr", "show", "dev", self.iface]).stdout
        return [line.split()[3] for line in out.splitlines() if " inet " in line]

    def ping(self, ip: str, count: int = 1, timeout: float = 1.0,
             interval: float | None = None) -> bool:
        """True when at least one of ``count`` echo requests got a reply within ``timeout``."""
        argv = ["ping", "-n", "-q", "-c", str(count), "-W", f"{timeout:g}"]
        if interval is not None:
            argv += ["-i", f"{interval:g}"]
        deadline = timeout + count * (interval if interval is not None else 1.0) + 5.0
        return self.exec([*argv, ip], timeout=deadline, check=False).returncode == 0

    def start_continuous_ping(self, ip: str, interval: float = 0.1) -> ContinuousPing:
        """Ping ``ip`` every ``interval`` s until ``.stop()``; stopped at topology exit."""
        argv = ns_argv(self.ns, ["ping", "-n", "-D", "-O", "-i", f"{interval:g}", ip])
        pinger = ContinuousPing(argv, self.env)
        self.topo.track_pinger(pinger)
        return pinger

    def dhclient(self, timeout: float = 20.0, keep_running: bool = False) -> DhcpLease:
        """Run a real ``dhclient`` on eth0 and return the lease it applied.

        Raises :class:`tests.topology.TopologyError` when no lease came within ``timeout``.
        """
        self.lease = run_dhclient(self.ns, self.iface, self.workdir / "dhclient", self.env,
                                  timeout=timeout, keep_running=keep_running)
        return self.lease

    def udp_request(self, ip: str, port: int, payload: bytes = b"ping",
                    timeout: float = 2.0) -> bytes | None:
        """Send one UDP datagram from this VM; return the first reply, ``None`` on timeout."""
        with netns(self.ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.settimeout(timeout)
            sock.sendto(payload, (ip, port))
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                return None
            return data

    def tcp_request(self, ip: str, port: int, payload: bytes = b"ping",
                    timeout: float = 2.0) -> bytes | None:
        """Connect over TCP from this VM, send ``payload``, return what came back."""
        with netns(self.ns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        with sock:
            sock.settimeout(timeout)
            try:
                sock.connect((ip, port))
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                chunks = []
                while chunk := sock.recv(65535):
                    chunks.append(chunk)
            except OSError:
                return None
            return b"".join(chunks)

    def __repr__(self) -> str:
        return f"VM({self.name!r}, host={self.host.name!r}, tap={self.tap!r}, mac={self.mac!r})"
