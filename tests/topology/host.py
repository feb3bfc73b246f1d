"""A simulated switch host: a namespace with its own ovsdb-server and ovs-vswitchd."""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._run import (
    TopologyError,
    child_env,
    ovs_schema,
    pid_alive,
    read_pidfile,
    run,
    terminate_pid,
    wait_until,
)
from .netns import ns_argv

if TYPE_CHECKING:
    from .topology import Topology

BRIDGE = "br-int"
UPLINK = "uplink"
EXT = "ext0"
MGMT = "mgmt0"
UPLINK_OFPORT = 1
EXT_OFPORT = 2


class ComeBackOrder(enum.Enum):
    """What :meth:`Host.come_back` restores first."""

    #: SIGCONT the frozen processes while the host is still cut off, then bring the links
    #: up: the host wakes (its clock jumped, its connections are stale) before anyone can
    #: reach it, as a host whose freeze ends before its network path heals. A gateway
    #: agent gets the chance to notice its lapsed lease before the first packet arrives.
    PROCESSES_FIRST = "processes-first"
    #: Links up, then SIGCONT: packets reach the frozen ovs-vswitchd's sockets first and
    #: are forwarded with whatever flows it had the moment it wakes (the harsh case: a
    #: returning switch works off its queue before its agent runs).
    LINKS_FIRST = "links-first"


class Host:
    """One switch host. Built by :meth:`tests.topology.Topology.add_host`."""

    def __init__(
        self,
        topo: Topology,
        name: str,
        index: int,
        gateway: bool,
        of_port: int,
        dpid: int,
        more_of_ports: Sequence[int] = (),
    ):
        self.topo = topo
        self.name = name
        self.index = index
        self.gateway = gateway
        self.of_port = of_port
        #: every controller's OpenFlow port (several controllers: the switch lists them all)
        self.of_ports = (of_port, *more_of_ports)
        self.dpid = dpid
        self.ns = topo.prefix + name
        self.mgmt_ip = f"198.18.0.{10 + index}"
        self.workdir = topo.workdir / name
        self.rundir = self.workdir / "run"
        self.dbdir = self.workdir / "db"
        self.logdir = self.workdir / "log"
        self._frozen: list[int] = []   # processes SIGSTOPped by vanish()
        self.env: dict[str, str] = child_env(
            topo.prefix,
            {
                "OVS_RUNDIR": str(self.rundir),
                "OVS_DBDIR": str(self.dbdir),
                "OVS_LOGDIR": str(self.logdir),
                "OVS_SYSCONFDIR": str(self.workdir / "etc"),
            },
        )

    # --- paths -------------------------------------------------------------------------

    @property
    def db_sock(self) -> str:
        return f"unix:{self.rundir / 'db.sock'}"

    @property
    def ofctl_target(self) -> str:
        return f"unix:{self.rundir / (BRIDGE + '.mgmt')}"

    @property
    def dpid_hex(self) -> str:
        return f"{self.dpid:016x}"

    @property
    def controller_target(self) -> str:
        return f"tcp:{self.topo.controller_ip}:{self.of_port}"

    @property
    def controller_targets(self) -> tuple[str, ...]:
        return tuple(f"tcp:{self.topo.controller_ip}:{port}" for port in self.of_ports)

    # --- commands ----------------------------------------------------------------------

    def exec(self, argv: Sequence[str], timeout: float = 30.0, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the host namespace with this host's OVS environment."""
        return run(ns_argv(self.ns, list(argv)), env=self.env, timeout=timeout, check=check)

    def vsctl(self, *args: str, timeout: float = 10.0) -> str:
        """``ovs-vsctl`` against this host's ovsdb-server; waits for vswitchd to apply."""
        return run(
            ["ovs-vsctl", f"--db={self.db_sock}", f"--timeout={int(timeout)}", *args],
            env=self.env, timeout=timeout + 5.0,
        ).stdout

    def ofctl(self, command: str, *args: str, timeout: float = 10.0) -> str:
        """``ovs-ofctl -O OpenFlow13 <command> <br-int> args...`` against this host's vswitchd.

        Options go before the command: ``host.ofctl("--no-stats", ...)`` is not supported;
        use ``ofctl_raw`` for that.
        """
        return self.ofctl_raw([command, self.ofctl_target, *args], timeout=timeout)

    def ofctl_raw(self, argv: Sequence[str], timeout: float = 10.0) -> str:
        """``ovs-ofctl -O OpenFlow13 argv...``: the caller places the bridge target itself."""
        return run(["ovs-ofctl", "-O", "OpenFlow13", *argv], env=self.env,
                   timeout=timeout).stdout

    def appctl(self, *args: str, timeout: float = 10.0) -> str:
        """``ovs-appctl -t ovs-vswitchd args...`` (e.g. ``ofproto/trace``, ``fdb/show``)."""
        return run(["ovs-appctl", f"--timeout={int(timeout)}", "-t", "ovs-vswitchd", *args],
                   env=self.env, timeout=timeout + 5.0).stdout

    def dump_flows(self, table: int | None = None, stats: bool = False) -> list[str]:
        """Installed flows of br-int, one string each, without statistics by default."""
        argv = [] if stats else ["--no-stats"]
        argv += ["dump-flows", self.ofctl_target]
        if table is not None:
            argv.append(f"table={table}")
        out = self.ofctl_raw(argv)
        return [line.strip() for line in out.splitlines()
                if line.strip() and not line.startswith(("NXST_FLOW", "OFPST_FLOW"))]

    def dump_flows_by_cookie(self, cookie: int, mask: int = (1 << 64) - 1) -> list[str]:
        """Installed flows of br-int whose cookie matches ``cookie``/``mask``."""
        out = self.ofctl_raw(["--no-stats", "dump-flows", self.ofctl_target,
                              f"cookie={cookie:#x}/{mask:#x}"])
        return [line.strip() for line in out.splitlines()
                if line.strip() and not line.startswith(("NXST_FLOW", "OFPST_FLOW"))]

    def ofport(self, iface: str) -> int:
        """OpenFlow port number of interface ``iface`` (after vswitchd attached it)."""
        value = self.vsctl("get", "Interface", iface, "ofport").strip()
        return int(value)

    def set_controller(self, *targets: str, max_backoff_ms: int = 1000,
                       inactivity_probe_ms: int | None = None) -> None:
        """Point br-int at ``targets`` (default: ``tcp:198.18.0.1:<of_port>`` for each of
        the host's controllers).

        ``max_backoff`` is lowered to one second so that a switch finds a controller that
        started (or restarted) late quickly. Use :meth:`del_controller` for none.
        """
        targets = targets or self.controller_targets
        args: list[str] = []
        refs: list[str] = []
        for i, target in enumerate(targets):
            ref = f"@c{i}"
            refs.append(ref)
            create = ["--", f"--id={ref}", "create", "Controller", f'target="{target}"',
                      f"max_backoff={max_backoff_ms}"]
            if inactivity_probe_ms is not None:
                create.append(f"inactivity_probe={inactivity_probe_ms}")
            args += create
        self.vsctl(*args, "--", "set", "Bridge", BRIDGE, f"controller=[{','.join(refs)}]")

    def del_controller(self) -> None:
        """Remove every controller. ovs-vswitchd then flushes br-int's flows."""
        self.vsctl("del-controller", BRIDGE)

    def kick_controller(self) -> None:
        """Make br-int try its controller(s) now instead of after its reconnect backoff.

        OVS 3.1 ignores ``Controller.max_backoff`` for active (``tcp:``) controllers: a switch
        whose controller is absent, or went away, retries after 1, 2, 4 and then every 8 s. A
        changed target starts a fresh connection attempt at once, so each target is respelled
        (``tcp:[ip]:port``) and then restored, in two transactions. Neither removes every
        controller, which would make ovs-vswitchd flush the flow table. A live connection is
        dropped and re-made, so kick only switches that are not connected.
        """
        targets = self.vsctl("get-controller", BRIDGE).split()
        if not targets:
            return
        self.set_controller(*(_respell(t) for t in targets))
        self.set_controller(*targets)

    def wait_controller_connected(self, timeout: float = 15.0, kick_every: float = 1.0) -> None:
        """Poll until br-int reports its controller(s) connected.

        While not connected the switch is kicked (:meth:`kick_controller`) every ``kick_every``
        seconds, so a controller that starts or restarts is found within about that time.
        """
        deadline = time.monotonic() + timeout
        last_kick = 0.0
        while not self.controller_connected():
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"{self.name}/br-int not connected to its controller after "
                                   f"{timeout:.1f}s: {self.vsctl('list', 'Controller')}")
            if now - last_kick >= kick_every:
                self.kick_controller()
                last_kick = time.monotonic()
            time.sleep(0.05)

    def controller_connected(self) -> bool:
        """True when every controller of br-int reports ``is_connected``."""
        out = self.vsctl("--columns=is_connected", "--format=csv", "--no-headings",
                         "list", "Controller").split()
        return bool(out) and all(v == "true" for v in out)

    def controller_roles(self, refresh: bool = True) -> dict[str, str]:
        """``{target: role}`` of br-int's controllers as ovs-vswitchd reports them:
        ``master``, ``slave``, ``other`` (OpenFlow's EQUAL), or ``""`` while not connected.

        ovs-vswitchd writes its status columns (the role included) only when some
        connectivity changes, not when a role does; with ``refresh`` this call first makes
        such a change that touches nothing else (:meth:`_status_probe`, without waiting for
        it), so the figures are at most one call old."""
        if refresh:
            self._status_probe()
        out = self.vsctl("--columns=target,is_connected,role", "--format=csv",
                         "--no-headings", "list", "Controller")
        roles = {}
        for line in out.splitlines():
            target, connected, role = (field.strip('"') for field in line.split(","))
            roles[target] = role if connected == "true" else ""
        return roles

    def _status_probe(self) -> None:
        """A connectivity change that disturbs nothing: the MAC of an internal port of its
        own (``rprobe``, no traffic) changes, which makes ovs-vswitchd refresh the status
        columns of the whole database."""
        self._probe_flip = not getattr(self, "_probe_flip", False)
        mac = "02:00:00:00:00:0" + ("1" if self._probe_flip else "2")
        self.vsctl("--no-wait", "--may-exist", "add-port", BRIDGE, "rprobe", "--", "set",
                   "Interface", "rprobe", "type=internal", f'mac="{mac}"')

    def kick_target(self, target: str) -> None:
        """Make br-int try one of its controllers now (see :meth:`kick_controller`), without
        touching its connections to the others."""
        uuid = self.vsctl("--columns=_uuid", "--format=csv", "--no-headings", "find",
                          "Controller", f'target="{target}"').strip()
        if uuid:
            self.vsctl("set", "Controller", uuid, f'target="{_respell(target)}"')
            self.vsctl("set", "Controller", uuid, f'target="{target}"')

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Create the database, start both daemons, build br-int and the host's links."""
        for d in (self.rundir, self.dbdir, self.logdir, self.workdir / "etc"):
            d.mkdir(parents=True, exist_ok=True)
        topo = self.topo
        # Links first, so the controller address is reachable when vswitchd first connects.
        # management: host ns mgmt0 <-> ctl ns bridge "mgmt"
        topo.veth(self.ns, MGMT, topo.ctl_ns, f"m-{self.name}", master="mgmt")
        self.exec(["ip", "addr", "add", f"{self.mgmt_ip}/24", "dev", MGMT])
        # uplink: host ns "uplink" (on br-int) <-> fabric ns bridge "fabric"
        topo.veth(self.ns, UPLINK, topo.fab_ns, f"u-{self.name}", master="fabric")
        if self.gateway:
            # ext0 (on br-int) <-> inet ns bridge "extnet"
            topo.veth(self.ns, EXT, topo.inet_ns, f"x-{self.name}", master="extnet")
        schema = ovs_schema()
        if schema is None:
            raise TopologyError("vswitch.ovsschema not found")
        db = self.dbdir / "conf.db"
        db.unlink(missing_ok=True)  # a fresh switch every time, even in a reused workdir
        run(["ovsdb-tool", "create", str(db), str(schema)], env=self.env)
        self.exec([
            "ovsdb-server", str(db),
            f"--remote=punix:{self.rundir / 'db.sock'}",
            "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
            f"--pidfile={self.rundir / 'ovsdb-server.pid'}",
            f"--log-file={self.logdir / 'ovsdb-server.log'}",
            "--detach",
        ])
        self.vsctl("--no-wait", "init")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".",
                   f"external_ids:system-id={self.name}", f"external_ids:hostname={self.name}",
                   "other_config:n-revalidator-threads=1", "other_config:n-handler-threads=1")
        self.start_vswitchd()
        self.vsctl(
            "--may-exist", "add-br", BRIDGE, "--",
            "set", "Bridge", BRIDGE, "datapath_type=netdev", "fail_mode=secure",
            "protocols=OpenFlow13", f"other-config:datapath-id={self.dpid_hex}",
            "other-config:disable-in-band=true",
        )
        self.set_controller()
        self.add_port(UPLINK, ofport=UPLINK_OFPORT)
        if self.gateway:
            self.add_port(EXT, ofport=EXT_OFPORT)

    def add_port(self, iface: str, ofport: int | None = None,
                 settings: Sequence[str] = ()) -> int:
        """Add existing interface ``iface`` (in the host ns) to br-int; return its ofport.

        ``settings`` are extra ``column=value`` pairs for its Interface row.
        """
        args = ["--may-exist", "add-port", BRIDGE, iface]
        extra = list(settings)
        if ofport is not None:
            extra.append(f"ofport_request={ofport}")
        if extra:
            args += ["--", "set", "Interface", iface, *extra]
        self.vsctl(*args)
        port = wait_until(lambda: self._attached_ofport(iface), timeout=10.0,
                          message=f"{iface} attached to {self.name}/br-int")
        return port

    def _attached_ofport(self, iface: str) -> int | None:
        value = self.vsctl("get", "Interface", iface, "ofport").strip()
        if value.lstrip("-").isdigit() and int(value) > 0:
            return int(value)
        error = self.vsctl("get", "Interface", iface, "error").strip()
        if error not in ("[]", ""):
            raise TopologyError(f"{self.name}: interface {iface} failed: {error}")
        return None

    def start_vswitchd(self) -> None:
        """Start ovs-vswitchd (again) inside the host namespace and wait until it is up."""
        if self.vswitchd_running():
            return
        self.exec([
            "ovs-vswitchd", self.db_sock,
            f"--pidfile={self.rundir / 'ovs-vswitchd.pid'}",
            f"--log-file={self.logdir / 'ovs-vswitchd.log'}",
            "--detach",
        ])
        wait_until(lambda: self.appctl("version"), timeout=10.0,
                   message=f"ovs-vswitchd of {self.name}")

    def vswitchd_running(self) -> bool:
        pid = read_pidfile(self.rundir / "ovs-vswitchd.pid")
        return pid is not None and pid_alive(pid)

    def stop_vswitchd(self) -> None:
        """Kill ovs-vswitchd (ports and flows are gone, OVSDB config stays)."""
        pid = read_pidfile(self.rundir / "ovs-vswitchd.pid")
        if pid is not None:
            terminate_pid(pid)

    # --- failures (gateway failover tests and bench/failover.py) -------------------------

    @property
    def vswitchd_pid(self) -> int | None:
        return read_pidfile(self.rundir / "ovs-vswitchd.pid")

    @property
    def ovsdb_pid(self) -> int | None:
        return read_pidfile(self.rundir / "ovsdb-server.pid")

    @property
    def links(self) -> tuple[str, ...]:
        """The host's own links: management, uplink and (gateways) external."""
        return (MGMT, UPLINK, EXT) if self.gateway else (MGMT, UPLINK)

    def set_links(self, up: bool, *links: str) -> None:
        """``ip link set <link> up|down`` for each of ``links`` (host side), in one
        ``ip -batch`` so that they change together. A link set down on the host side takes
        the carrier of its peer (the bridge port in the fabric, internet or controller
        namespace) down with it; the interface keeps its address, and its connected route
        comes back when it is set up again."""
        state = "up" if up else "down"
        script = "".join(f"link set dev {link} {state}\n" for link in links)
        run(ns_argv(self.ns, ["ip", "-batch", "-"]), env=self.env, input=script)

    def link_up(self, link: str) -> bool:
        out = self.exec(["ip", "-o", "link", "show", "dev", link]).stdout
        flags = out.split("<", 1)[1].split(">", 1)[0].split(",") if "<" in out else []
        return "UP" in flags

    def cut_external(self) -> None:
        """The external link (``ext0``) down: the gateway cannot reach the external segment;
        ovs-vswitchd sees the port's link go down (OFPT_PORT_STATUS) and the L3 agent
        reports ``external_link_up: false`` in its next heartbeat."""
        self._require_gateway("cut_external")
        self.set_links(False, EXT)

    def restore_external(self) -> None:
        self.set_links(True, EXT)

    def cut_management(self) -> None:
        """The management link (``mgmt0``) down: the switch and its agents lose the
        controller (no TCP reset: their connections just go silent), while the data plane
        (uplink, external link) and its flows stay as they were."""
        self.set_links(False, MGMT)

    def restore_management(self) -> None:
        """``mgmt0`` up again. ovs-vswitchd reconnects after its backoff (up to 8 s); call
        :meth:`wait_controller_connected` (which kicks it) to make that immediate."""
        self.set_links(True, MGMT)

    def kill_switch(self) -> None:
        """SIGKILL ovs-vswitchd (a crash): its OpenFlow connection closes at once (the
        kernel resets it), nothing is forwarded, every flow is gone. ovsdb-server lives on.
        :meth:`start_vswitchd` brings it back (empty flow table until re-programmed)."""
        pid = self.vswitchd_pid
        if pid is None or not pid_alive(pid):
            raise TopologyError(f"{self.name}: ovs-vswitchd is not running")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), timeout=10.0, interval=0.01,
                   message=f"ovs-vswitchd of {self.name} gone")

    def vanish(self, *pids: int) -> None:
        """The host disappears at once: its processes freeze, then its links go down.

        ovs-vswitchd, ovsdb-server and ``pids`` (e.g. the host's L3 agent) and all their
        descendants get SIGSTOP first, so nothing on the host notices or says anything (no
        FIN, no reset: the kernel's sockets stay open with nobody reading them); then the
        management link, the uplink and the external link go down together. To everyone
        else the host is simply silent. :meth:`come_back` undoes it.
        """
        if self._frozen:
            raise TopologyError(f"{self.name} has already vanished")
        roots = [p for p in (self.vswitchd_pid, self.ovsdb_pid, *pids) if p is not None]
        frozen: list[int] = []
        for root in roots:
            for pid in (root, *_descendants(root)):
                if pid not in frozen and pid_alive(pid):
                    try:
                        os.kill(pid, signal.SIGSTOP)
                    except ProcessLookupError:
                        continue
                    frozen.append(pid)
        self._frozen = frozen
        self.set_links(False, *self.links)

    def come_back(self, order: ComeBackOrder = ComeBackOrder.PROCESSES_FIRST) -> None:
        """Undo :meth:`vanish`: SIGCONT the frozen processes and bring the links up, in
        ``order`` (see :class:`ComeBackOrder`; by default the processes first). Nothing
        else is done for the host: ovs-vswitchd reconnects to its controller after its own
        backoff (up to 8 s; :meth:`wait_controller_connected` kicks it), and its flows are
        whatever it had when it froze until someone changes them."""
        frozen = self._frozen
        if order is ComeBackOrder.LINKS_FIRST:
            self.set_links(True, *self.links)
        self._resume(frozen)
        if order is ComeBackOrder.PROCESSES_FIRST:
            self.set_links(True, *self.links)

    @property
    def vanished(self) -> bool:
        return bool(self._frozen)

    def _resume(self, pids: Sequence[int]) -> None:
        # the last frozen first: the host's agent, then ovsdb-server and ovs-vswitchd, so
        # that what the agent does on waking (its fence) is queued on the switch's socket
        # before the switch runs again
        for pid in reversed(pids):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                continue
        self._frozen = []

    def _require_gateway(self, what: str) -> None:
        if not self.gateway:
            raise TopologyError(f"{what}: {self.name} is not a gateway host")

    def stop(self) -> None:
        """Stop both daemons (by their pidfiles); a vanished host's processes are resumed
        first so that they can be stopped."""
        self._resume(self._frozen)
        self.stop_vswitchd()
        pid = read_pidfile(self.rundir / "ovsdb-server.pid")
        if pid is not None:
            terminate_pid(pid)

    def __repr__(self) -> str:
        return f"Host({self.name!r}, ns={self.ns!r}, dpid={self.dpid_hex})"


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                ppid = int(fh.read().rsplit(")", 1)[-1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop(0)
        found.append(child)
        todo.extend(children.get(child, []))
    return found


def _respell(target: str) -> str:
    """``tcp:1.2.3.4:6653`` <-> ``tcp:[1.2.3.4]:6653``: same endpoint, different string."""
    kind, _, rest = target.partition(":")
    host, _, port = rest.rpartition(":")
    if host.startswith("["):
        return f"{kind}:{host[1:-1]}:{port}"
    return f"{kind}:[{host}]:{port}"
