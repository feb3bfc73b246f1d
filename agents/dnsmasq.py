"""One dnsmasq per network: static leases generated from the network's ports.

Files live in ``<state_path>/dhcp/<network_id>/``: ``host`` (MAC -> IP, name), ``opts``
(router, DNS servers, classless routes, MTU per subnet), ``pid``, ``args`` (the command line it
was started with) and ``dnsmasq.log`` (its log: every DHCP transaction). Changes of ports or subnets
rewrite the files and send SIGHUP, which makes dnsmasq re-read both without a restart.
dnsmasq's DNS service is off (``--port=0``): clients get the subnet's ``dns_nameservers``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

from ryu_sched.shared.vocabulary import DeviceOwner

LOG = logging.getLogger(__name__)


def _write_if_changed(path: Path, content: str) -> bool:
    try:
        if path.read_text() == content:
            return False
    except FileNotFoundError:
        pass
    tmp = path.with_suffix(".tmp")
    tmp.write_text(content)
    os.replace(tmp, path)
    return True


def dhcp_subnets(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in info.get("subnets", [])
            if s.get("enable_dhcp", True) and s.get("ip_version", 4) == 4]


def render_hosts(info: dict[str, Any]) -> str:
    subnets = {s["id"] for s in dhcp_subnets(info)}
    lines = []
    for port in sorted(info.get("ports", []), key=lambda p: p["id"]):
        if port.get("device_owner") == DeviceOwner.DHCP:
            continue
        for fixed in port.get("fixed_ips", []):
            if fixed.get("subnet_id") in subnets:
                ip = fixed["ip_address"]
                name = "host-" + ip.replace(".", "-")
                lines.append(f"{port['mac_address']},{name},{ip}")
    return "".join(line + "\n" for line in lines)


def render_opts(info: dict[str, Any]) -> str:
    mtu = info.get("mtu")
    lines = []
    for index, subnet in enumerate(dhcp_subnets(info)):
        tag = f"tag:subnet{index}"
        gateway = subnet.get("gateway_ip")
        lines.append(f"{tag},option:router" + (f",{gateway}" if gateway else ""))
        dns = subnet.get("dns_nameservers") or []
        if dns:
            lines.append(f"{tag},option:dns-server," + ",".join(dns))
        routes = []
        if gateway and ipaddress.IPv4Address(gateway) not in ipaddress.IPv4Network(
                subnet["cidr"], strict=False):
            # A gateway outside the subnet is on-link: a host route to it first (RFC 3442
            # clients ignore option:router when classless routes are given).
            routes.append(f"{gateway}/32,0.0.0.0")
        for route in subnet.get("host_routes") or []:
            routes.append(f"{route['destination']},{route['nexthop']}")
        if routes:
            if gateway:
                routes.append(f"0.0.0.0/0,{gateway}")
            lines.append(f"{tag},option:classless-static-route," + ",".join(routes))
        if mtu:
            lines.append(f"{tag},option:mtu,{mtu}")
    return "".join(line + "\n" for line in lines)


def dhcp_ranges(info: dict[str, Any], lease_time: int) -> list[str]:
    ranges = []
    for index, subnet in enumerate(dhcp_subnets(info)):
        net = ipaddress.IPv4Network(subnet["cidr"])
        ranges.append(f"--dhcp-range=set:subnet{index},{net.network_address},static,"
                      f"{net.netmask},{lease_time}s")
    return ranges


def traversable_by_others(path: Path) -> bool:
    """True when every existing directory from ``path`` up to ``/`` lets other users in.

    dnsmasq drops root for an unprivileged user after start-up and re-reads its hosts and
    options files as that user on SIGHUP: under a private directory (a 0700 temporary
    directory, say) the reload would fail silently and new ports would get no answer.
    """
    for directory in (path, *path.parents):
        try:
            mode = directory.stat().st_mode
        except FileNotFoundError:
            continue
        if not mode & stat.S_IXOTH:
            return False
    return True


class Dnsmasq:
    def __init__(self, binary: str, conf_dir: Path, namespace: str, interface: str,
                 lease_time: int, user: str | None = None) -> None:
        self.binary = binary
        self.conf_dir = conf_dir
        self.namespace = namespace
        self.interface = interface
        self.lease_time = lease_time
        self.user = user
        self.hosts_file = conf_dir / "host"
        self.opts_file = conf_dir / "opts"
        self.pid_file = conf_dir / "pid"
        self.args_file = conf_dir / "args"
        self.log_file = conf_dir / "dnsmasq.log"

    def pid(self) -> int | None:
        """The pid of our dnsmasq when it runs (checked against its command line)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ValueError, ProcessLookupError, OSError):
            return None
        return pid if str(self.pid_file) in cmdline else None

    def argv(self, info: dict[str, Any]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, self.binary,
                "--conf-file=/dev/null", "--no-hosts", "--no-resolv", "--port=0",
                "--bind-interfaces", f"--interface={self.interface}",
                "--except-interface=lo", f"--pid-file={self.pid_file}",
                f"--dhcp-hostsfile={self.hosts_file}", f"--dhcp-optsfile={self.opts_file}",
                "--leasefile-ro", "--dhcp-authoritative", "--dhcp-lease-max=65535",
                f"--log-facility={self.log_file}",
                *([f"--user={self.user}"] if self.user else []),
                *dhcp_ranges(info, self.lease_time)]

    def apply(self, info: dict[str, Any]) -> str:
        """Write the files and start or reload dnsmasq; returns what it did."""
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        changed = _write_if_changed(self.hosts_file, render_hosts(info))
        changed |= _write_if_changed(self.opts_file, render_opts(info))
        argv = self.argv(info)
        args_changed = _write_if_changed(self.args_file, "\n".join(argv) + "\n")
        pid = self.pid()
        if pid is not None and args_changed:
            # subnets changed: dhcp-range is a command-line option, so restart
            self.stop()
            pid = None
        if pid is None:
            subprocess.run(argv, check=True, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
            LOG.info("started dnsmasq for %s in %s", self.conf_dir.name, self.namespace)
            return "started"
        if changed:
            os.kill(pid, signal.SIGHUP)
            LOG.info("reloaded dnsmasq %d for %s", pid, self.conf_dir.name)
            return "reloaded"
        return "unchanged"

    def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.02)  # poll for the exit, 2 s at most
        else:
            os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.conf_dir, ignore_errors=True)
