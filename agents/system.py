"""Host commands the agents run: ovs-vsctl against the local ovsdb, ovs-ofctl against the
local bridge's management socket, ip netns, veth pairs."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Sequence

LOG = logging.getLogger(__name__)


class CommandFailed(Exception):
    pass


def run(argv: Sequence[str], check: bool = True, timeout: float = 30.0) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise CommandFailed(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


class Ovs:
    def __init__(self, db: str, bridge: str, rundir: str = "/var/run/openvswitch") -> None:
        self.db = db
        self.bridge = bridge
        self.rundir = rundir

    def vsctl(self, *args: str, check: bool = True) -> str:
        return run(["ovs-vsctl", f"--db={self.db}", "--timeout=10", *args], check=check)

    @property
    def bridge_socket(self) -> str:
        """The bridge's OpenFlow management socket (local: not over any network)."""
        return f"unix:{os.path.join(self.rundir, self.bridge + '.mgmt')}"

    def del_flows(self, match: str, timeout: float = 5.0) -> None:
        """``ovs-ofctl -O OpenFlow13 del-flows <bridge> <match>`` over the local socket."""
        run(["ovs-ofctl", "-O", "OpenFlow13", f"--timeout={max(1, int(timeout))}",
             "del-flows", self.bridge_socket, match], timeout=timeout + 1.0)

    def datapath_id(self) -> str | None:
        """The bridge's datapath id as 16 hex digits, None while the bridge is missing."""
        out = self.vsctl("--if-exists", "get", "Bridge", self.bridge, "datapath_id",
                         check=False).strip().strip('"')
        return out if len(out) == 16 else None

    def add_port(self, name: str, external_ids: dict[str, str]) -> None:
        args = ["--may-exist", "add-port", self.bridge, name, "--", "set", "Interface", name]
        args += [f"external_ids:{k}={v}" for k, v in sorted(external_ids.items())]
        self.vsctl(*args)

    def del_port(self, name: str) -> None:
        self.vsctl("--if-exists", "del-port", self.bridge, name)

    def ports(self) -> list[str]:
        return [p for p in self.vsctl("list-ports", self.bridge).split() if p]

    def link_up(self, name: str) -> bool:
        """True when the interface exists on the bridge and its link is up."""
        state = self.vsctl("--if-exists", "get", "Interface", name, "link_state",
                           check=False).strip().strip('"')
        return state == "up"


def namespaces() -> list[str]:
    try:
        return sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []


def add_namespace(name: str) -> None:
    if name not in namespaces():
        run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])


def delete_namespace(name: str) -> None:
    if name in namespaces():
        run(["ip", "netns", "delete", name], check=False)


def link_exists(name: str, namespace: str | None = None) -> bool:
    argv = ["ip"] + (["-n", namespace] if namespace else []) + ["link", "show", name]
    return subprocess.run(argv, capture_output=True).returncode == 0


def ensure_veth(outer: str, inner: str, namespace: str, mac: str, cidrs: Sequence[str],
                mtu: int | None = None) -> None:
    """A veth pair: ``outer`` in this namespace (to go on the bridge), ``inner`` inside
    ``namespace`` with ``mac`` and ``cidrs``. Checksum offload is off on both ends, because
    the userspace datapath forwards veth frames without completing their checksums."""
    if not link_exists(inner, namespace):
        if link_exists(outer):
            run(["ip", "link", "del", outer], check=False)
        run(["ip", "link", "add", outer, "type", "veth", "peer", "name", inner,
             "netns", namespace])
    run(["ethtool", "-K", outer, "tx", "off"], check=False)
    run(["ip", "netns", "exec", namespace, "ethtool", "-K", inner, "tx", "off"], check=False)
    run(["ip", "-n", namespace, "link", "set", inner, "address", mac])
    if mtu:
        run(["ip", "link", "set", outer, "mtu", str(mtu)], check=False)
        run(["ip", "-n", namespace, "link", "set", inner, "mtu", str(mtu)], check=False)
    current = set(run(["ip", "-n", namespace, "-4", "-o", "addr", "show", "dev", inner]
                      ).split())
    for cidr in cidrs:
        if cidr not in current:
            run(["ip", "-n", namespace, "addr", "add", cidr, "dev", inner], check=False)
    run(["ip", "link", "set", outer, "up"])
    run(["ip", "-n", namespace, "link", "set", inner, "up"])


def delete_link(name: str) -> None:
    if link_exists(name):
        run(["ip", "link", "del", name], check=False)
