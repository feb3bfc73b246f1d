"""A real ``dhclient`` run inside a VM namespace, with our own minimal dhclient-script.

Debian's ``/sbin/dhclient-script`` assumes it owns the machine (resolv.conf, hooks); ours only
applies the address and default route to the namespace's interface with ``ip`` and records the
lease as JSON in the VM's work directory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ._run import TopologyError, read_pidfile, terminate_pid, wait_until, which
from .netns import ns_argv

_SCRIPT = r'''#!{python}
"""dhclient-script for a test namespace (written by tests/topology)."""
import ipaddress
import json
import os
import subprocess

IP = {ip!r}
RESULT = {result!r}
EVENTS = {events!r}

env = os.environ
reason = env.get("reason", "")
iface = env.get("interface", "")


def ip(*args):
    subprocess.run([IP, *args], check=False)


with open(EVENTS, "a") as fh:
    fh.write(json.dumps({{k: v for k, v in env.items() if k.startswith(("new_", "old_"))}}
                        | {{"reason": reason}}) + "\n")

if reason in ("PREINIT", "PREINIT6"):
    ip("link", "set", iface, "up")
elif reason in ("BOUND", "RENEW", "REBIND", "REBOOT"):
    addr = env["new_ip_address"]
    mask = env.get("new_subnet_mask", "255.255.255.255")
    plen = ipaddress.IPv4Network("0.0.0.0/" + mask).prefixlen
    old = env.get("old_ip_address")
    if old and old != addr:
        ip("addr", "flush", "dev", iface, "to", old)
    ip("addr", "replace", addr + "/" + str(plen), "dev", iface)
    routers = env.get("new_routers", "").split()
    if routers:
        ip("route", "replace", "default", "via", routers[0], "dev", iface)
    lease = {{
        "reason": reason,
        "ip": addr,
        "prefixlen": plen,
        "routers": routers,
        "dns": env.get("new_domain_name_servers", "").split(),
        "domain": env.get("new_domain_name", ""),
        "server": env.get("new_dhcp_server_identifier", ""),
        "lease_time": int(env.get("new_dhcp_lease_time", "0") or 0),
        "mtu": int(env.get("new_interface_mtu", "0") or 0),
    }}
    tmp = RESULT + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(lease, fh)
    os.replace(tmp, RESULT)
elif reason in ("EXPIRE", "FAIL", "RELEASE"):
    old = env.get("old_ip_address")
    if old:
        ip("addr", "flush", "dev", iface, "to", old)
'''

_CONF = """\
timeout {timeout};
retry 1;
initial-interval 1;
backoff-cutoff 2;
select-timeout 0;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers,
        interface-mtu, dhcp-lease-time, dhcp-server-identifier;
"""


@dataclass(frozen=True)
class DhcpLease:
    """What the DHCP server handed out, as the client applied it."""

    ip: str
    prefixlen: int
    gateway: str | None
    dns: tuple[str, ...]
    server: str
    lease_time: int
    mtu: int
    domain: str

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


def run_dhclient(
    ns: str,
    iface: str,
    workdir: Path,
    env: dict[str, str],
    timeout: float = 20.0,
    keep_running: bool = False,
) -> DhcpLease:
    """Obtain a lease on ``iface`` in namespace ``ns``; raise :class:`TopologyError` on failure.

    ``dhclient -1`` tries once and goes to the background after binding; unless
    ``keep_running`` the daemon is stopped again (the address stays configured).
    """
    dhclient = which("dhclient")
    ip = which("ip")
    if dhclient is None or ip is None:
        raise TopologyError("dhclient or ip is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    result = workdir / "dhclient-lease.json"
    events = workdir / "dhclient-events.jsonl"
    script = workdir / "dhclient-script"
    conf = workdir / "dhclient.conf"
    pidfile = workdir / "dhclient.pid"
    leases = workdir / "dhclient.leases"
    log = workdir / "dhclient.log"
    result.unlink(missing_ok=True)
    script.write_text(
        _SCRIPT.format(python=sys.executable, ip=ip, result=str(result), events=str(events))
    )
    script.chmod(0o755)
    conf.write_text(_CONF.format(timeout=max(1, int(timeout))))
    argv = ns_argv(
        ns,
        [dhclient, "-1", "-v", "-cf", str(conf), "-pf", str(pidfile), "-lf", str(leases),
         "-sf", str(script), iface],
    )
    with open(log, "ab") as logfh:
        proc = subprocess.Popen(argv, env=env, stdout=logfh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is not None, timeout=timeout + 5.0,
                   message=f"dhclient on {ns}/{iface}")
    except TimeoutError as exc:
        proc.kill()
        proc.wait()
        _stop_daemon(pidfile)
        raise TopologyError(f"dhclient in {ns} ran past its deadline; see {log}") from exc
    if proc.returncode != 0 or not result.exists():
        _stop_daemon(pidfile)
        raise TopologyError(
            f"dhclient in {ns} got no lease (exit {proc.returncode}); log:\n{log.read_text()}"
        )
    if not keep_running:
        _stop_daemon(pidfile)
    data = json.loads(result.read_text())
    return DhcpLease(
        ip=data["ip"],
        prefixlen=data["prefixlen"],
        gateway=data["routers"][0] if data["routers"] else None,
        dns=tuple(data["dns"]),
        server=data["server"],
        lease_time=data["lease_time"],
        mtu=data["mtu"],
        domain=data["domain"],
    )


def _stop_daemon(pidfile: Path) -> None:
    pid = read_pidfile(pidfile)
    if pid is not None:
        terminate_pid(pid)
