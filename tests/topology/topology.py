"""The test topology: controller, fabric and internet namespaces, switch hosts and VMs."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType

from ._run import (
    TopologyError,
    child_env,
    cmdline,
    marked_pids,
    pids_in_netns,
    run,
    stop_popen,
    terminate_pid,
)
from .host import Host
from .internet import EchoServer, Internet
from .netns import add_netns, delete_netns, list_netns, netns, netns_inode, ns_argv
from .ping import ContinuousPing
from .vm import VM, tap_name

CONTROLLER_IP = "198.18.0.1"
MGMT_PREFIXLEN = 24
EXT_GATEWAY_IP = "203.0.113.1"
EXT_PREFIXLEN = 24
INTERNET_IP = "198.51.100.1"

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,5}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_RESERVED = ("ctl", "fab", "inet")
_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def unique_prefix(letter: str = "t") -> str:
    """A fresh 5-character prefix (``letter`` + 4 hex digits) not in use on this machine.

    Fixed length matters: prefixes used at the same time must not be prefixes of each other.
    """
    for _ in range(100):
        prefix = letter + secrets.token_hex(2)
        if not leftovers(prefix):
            return prefix
    raise TopologyError("no free topology prefix")


def leftovers(prefix: str) -> list[str]:
    """What a topology with ``prefix`` left behind: namespaces, processes, root-ns links.

    Processes are found by the ``RYU_SCHED_TOPO=<prefix>`` environment marker every process
    started by the topology carries, and by living in one of the prefix's namespaces.
    """
    found = [f"netns {name}" for name in list_netns(prefix)]
    inodes = [i for name in list_netns(prefix) if (i := netns_inode(name)) is not None]
    pids = sorted(set(marked_pids(prefix)) | set(pids_in_netns(inodes)))
    found += [f"process {pid}: {cmdline(pid)}" for pid in pids]
    try:
        links = os.listdir("/sys/class/net")
    except OSError:
        links = []
    found += [f"root-namespace link {link}" for link in links if link.startswith(prefix)]
    return found


def cleanup(prefix: str) -> None:
    """Kill every process and delete every namespace that belongs to ``prefix``.

    Used by :meth:`Topology.close` and usable by hand after a crashed run.
    """
    names = list_netns(prefix)
    inodes = [i for name in names if (i := netns_inode(name)) is not None]
    for _ in range(3):  # a killed daemon's children may show up late
        pids = sorted(set(marked_pids(prefix)) | set(pids_in_netns(inodes)))
        if not pids:
            break
        for pid in pids:
            terminate_pid(pid)
    for name in names:
        delete_netns(name)


class Topology(AbstractContextManager["Topology"]):
    """Namespaces + Open vSwitch hosts for end-to-end tests. See the package docstring."""

    def __init__(self, prefix: str, workdir: Path):
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"prefix {prefix!r} must match {_PREFIX_RE.pattern}")
        self.prefix = prefix
        self.workdir = Path(workdir).resolve()
        self.controller_ip = CONTROLLER_IP
        self.internet_ip = INTERNET_IP
        self.ext_gateway_ip = EXT_GATEWAY_IP
        self.ext_cidr = f"{EXT_GATEWAY_IP.rsplit('.', 1)[0]}.0/{EXT_PREFIXLEN}"
        self.ctl_ns = prefix + "ctl"
        self.fab_ns = prefix + "fab"
        self.inet_ns = prefix + "inet"
        self.env: dict[str, str] = child_env(prefix)
        self.hosts: dict[str, Host] = {}
        self.vms: dict[str, VM] = {}
        self.bare_namespaces: set[str] = set()   # bare namespaces (add_namespace), by name
        self.internet = Internet(self)
        self._popens: list[subprocess.Popen[str]] = []
        self._pingers: list[ContinuousPing] = []
        self._servers: list[EchoServer] = []
        self._started = False

    # --- context manager ---------------------------------------------------------------

    def __enter__(self) -> Topology:
        stale = leftovers(self.prefix)
        if stale:
            raise TopologyError(
                f"prefix {self.prefix!r} is in use (run tests.topology.cleanup on it if it is "
                "a crashed run's): " + "; ".join(stale)
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._started = True
        try:
            self._build_core()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop everything we started and delete every namespace of the prefix."""
        if not self._started:
            return
        errors: list[BaseException] = []
        for pinger in self._pingers:
            try:
                pinger.kill()
            except Exception as exc:
                errors.append(exc)
        for server in self._servers:
            server.stop()
        for proc in self._popens:
            try:
                stop_popen(proc)
            except Exception as exc:
                errors.append(exc)
        for host in self.hosts.values():
            try:
                host.stop()
            except Exception as exc:
                errors.append(exc)
        cleanup(self.prefix)
        self._started = False
        if errors:
            raise TopologyError(f"cleanup of {self.prefix!r} had errors: {errors}")

    # --- core namespaces ---------------------------------------------------------------

    def _build_core(self) -> None:
        for ns in (self.ctl_ns, self.fab_ns, self.inet_ns):
            add_netns(ns)
        self._bridge(self.ctl_ns, "mgmt", f"{CONTROLLER_IP}/{MGMT_PREFIXLEN}")
        self._bridge(self.fab_ns, "fabric", None)
        self._bridge(self.inet_ns, "extnet", f"{EXT_GATEWAY_IP}/{EXT_PREFIXLEN}")
        self.exec(self.inet_ns, ["ip", "addr", "add", f"{INTERNET_IP}/32", "dev", "lo"])
        self.exec(self.inet_ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"])

    def _bridge(self, ns: str, name: str, cidr: str | None) -> None:
        # vlan_filtering stays at its default 0, so VLAN-tagged tenant frames cross the fabric
        # untouched (naming the option fails on kernels without CONFIG_BRIDGE_VLAN_FILTERING).
        # stp off and forward_delay 0: ports forward at once; no IGMP snooping surprises.
        self.exec(ns, ["ip", "link", "add", name, "type", "bridge", "stp_state", "0",
                       "forward_delay", "0", "mcast_snooping", "0"])
        # A fixed MAC: otherwise the bridge takes the lowest MAC of its ports and changes it
        # when a port joins, which leaves stale ARP entries for the bridge's own address.
        mac = "02:" + ":".join(f"{b:02x}" for b in os.urandom(5))
        self.exec(ns, ["ip", "link", "set", name, "address", mac])
        if cidr:
            self.exec(ns, ["ip", "addr", "add", cidr, "dev", name])
        self.exec(ns, ["ip", "link", "set", name, "up"])

    def veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str, *,
             master: str | None = None, mac_b: str | None = None) -> None:
        """A veth pair created directly between two of our namespaces (never the root ns).

        ``name_b`` is enslaved to bridge ``master`` in ``ns_b`` when given. TX checksum
        offload is disabled on both ends (see the package docstring).
        """
        peer = ["peer", "name", name_b]
        if mac_b:
            peer += ["address", mac_b]
        self.exec(ns_a, ["ip", "link", "add", name_a, "type", "veth", *peer, "netns", ns_b])
        for ns, name in ((ns_a, name_a), (ns_b, name_b)):
            self.exec(ns, ["ethtool", "-K", name, "tx", "off"])
        if master:
            self.exec(ns_b, ["ip", "link", "set", name_b, "master", master])
        self.exec(ns_a, ["ip", "link", "set", name_a, "up"])
        self.exec(ns_b, ["ip", "link", "set", name_b, "up"])

    # --- hosts and VMs -----------------------------------------------------------------

    def _check_name(self, name: str) -> None:
        if not _NAME_RE.match(name) or name in _RESERVED:
            raise ValueError(f"name {name!r} must match {_NAME_RE.pattern} and not be "
                             f"one of {_RESERVED}")
        if name in self.hosts or name in self.vms or name in self.bare_namespaces:
            raise ValueError(f"name {name!r} is taken")

    def add_host(self, name: str, gateway: bool = False, of_port: int | Sequence[int] = 6653,
                 dpid: int | None = None) -> Host:
        """A switch host ``<prefix><name>`` with br-int, mgmt0, uplink (and ext0); its
        bridge lists a controller on each of ``of_port`` (one port, or several)."""
        self._check_name(name)
        index = len(self.hosts) + 1
        if index > 200:
            raise TopologyError("at most 200 hosts")
        ports = (of_port,) if isinstance(of_port, int) else tuple(of_port)
        host = Host(self, name, index, gateway, ports[0], dpid if dpid is not None else index,
                    ports[1:])
        self.hosts[name] = host  # registered first: a half-built host is still cleaned up
        add_netns(host.ns)
        host.start()
        return host

    def add_vm(self, host: Host, name: str, port_id: str, mac: str,
               ip_cidr: str | None = None, gateway: str | None = None) -> VM:
        """A VM ``<prefix><name>`` whose eth0 (``mac``) is port ``tap<port_id[:11]>``."""
        self._check_name(name)
        mac = mac.lower()
        if not _MAC_RE.match(mac):
            raise ValueError(f"bad MAC {mac!r}")
        vm = VM(self, host, name, port_id, mac)
        self.vms[name] = vm
        vm.workdir.mkdir(parents=True, exist_ok=True)
        add_netns(vm.ns)
        self.veth(host.ns, vm.tap, vm.ns, vm.iface, mac_b=mac)
        host.add_port(vm.tap, settings=(
            f"external_ids:iface-id={port_id}",
            f"external_ids:attached-mac={mac}",
            "external_ids:iface-status=active",
        ))
        if ip_cidr:
            vm.set_ip(ip_cidr, gateway)
        return vm

    def add_namespace(self, name: str) -> str:
        """A bare namespace ``<prefix><name>`` (no switch port: e.g. a network behind a VM
        that routes, linked to it with :meth:`veth`); deleted with the topology."""
        self._check_name(name)
        ns = self.prefix + name
        self.bare_namespaces.add(name)
        add_netns(ns)
        return ns

    # --- running things ----------------------------------------------------------------

    def _ns_name(self, ns: str | Host | VM | Internet) -> str:
        name = ns if isinstance(ns, str) else ns.ns
        if not name.startswith(self.prefix):
            raise ValueError(f"namespace {name!r} is not one of this topology's")
        return name

    def exec(self, ns: str | Host | VM | Internet, argv: Sequence[str], timeout: float = 30.0,
             check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to completion inside namespace ``ns`` (via ``ip netns exec``)."""
        return run(ns_argv(self._ns_name(ns), list(argv)), env=self.env, timeout=timeout,
                   check=check)

    def popen(self, ns: str | Host | VM | Internet, argv: Sequence[str],
              **kwargs: object) -> subprocess.Popen[str]:
        """Start ``argv`` inside namespace ``ns``; it is stopped when the topology closes.

        Keyword arguments go to :class:`subprocess.Popen` (``env`` is merged into ours).
        """
        env = dict(self.env)
        env.update(kwargs.pop("env", None) or {})  # type: ignore[arg-type]
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("text", True)
        proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            ns_argv(self._ns_name(ns), list(argv)), env=env, **kwargs
        )
        self._popens.append(proc)
        return proc

    def netns(self, ns: str | Host | VM | Internet) -> AbstractContextManager[None]:
        """Move the calling thread into ``ns`` for the body (see :func:`tests.topology.netns`)."""
        return netns(self._ns_name(ns))

    def start_server(self, ns: str | Host | VM | Internet, port: int = 7) -> EchoServer:
        """An in-process UDP/TCP echo + ICMP watcher in ``ns`` recording its peers."""
        server = EchoServer(self._ns_name(ns), port)
        self._servers.append(server)
        return server

    def track_pinger(self, pinger: ContinuousPing) -> None:
        self._pingers.append(pinger)

    def namespaces(self) -> Iterator[str]:
        yield from list_netns(self.prefix)

    def tap_name(self, port_id: str) -> str:
        return tap_name(port_id)
