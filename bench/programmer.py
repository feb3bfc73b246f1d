"""The programmer at scale: snapshot, flow compilation and real switches brought to state.

    python bench/programmer.py [--networks 1000 --ports 5000 --hosts 10 --routers 100 ...]

A SQLite file is filled through the ORM models (bulk inserts): ``--networks`` VLAN networks
with one /24 subnet each, ``--ports`` VM ports (``compute:nova``, one fixed IP) spread over
the networks and over ``--hosts`` compute switches at random (fixed seed), ``--routers``
routers with ``--interfaces`` subnets each, a gateway on a flat external network, SNAT and
``--fips`` floating IPs each, hosted by ``--gateways`` L3 agents whose configurations carry
``datapath_id`` and ``external_port``; the upstream gateway's MAC is already learnt. Every
port's recorded location (``bound_dpid``) is its compute switch. Figures:

(a) ``build_snapshot`` from the database (what a model change costs);
(b) for compute switch 1 (its share of the ports) and gateway switch 1 (its share of the
    routers): ``desired_flows``, canonical forms of the desired flows, flow mods built by
    the framework (what ``wire.py`` replaces);
(c) a freshly connected switch brought to its desired table by the real controller
    (``python -m ryu_sched.launcher``, the same manager as production) against a real
    ``ovs-vswitchd`` 3.x (userspace datapath, private ovsdb-server and run directory, in a
    private network namespace). The bridge's taps are ``dummy`` ports (``--enable-dummy=
    override``, no kernel devices: creating thousands of veths would measure the kernel, not
    the controller; OpenFlow sees ordinary ports with the ``tap...`` names). Timed from the
    moment the controller is set on the bridge (``ovs-vsctl set-controller`` issued) until
    the switch answers the barrier after the bundle (the programmer logs it: "its table is
    in place"; this process follows the log every 2 ms), the same event that ends
    ``ovs-ofctl --bundle add-flows`` in (f); then ``ovs-ofctl dump-aggregate`` must report
    the desired flow count and the installed cookies are compared with the desired ones; the
    programmer's own figure (flows sent, seconds after the connection) comes from its log;
(d) the same switch reconnecting, and the controller restarted (switches parked on a dead
    target meanwhile, so that they reconnect when told), with nothing changed: seconds until
    the programmer reports the switch in sync, its own "after connect" figure, and the
    flow-mods it sent (must be 0; every flow's OVS duration proves none was re-added);
(f) the bundle floor: ``ovs-ofctl --bundle add-flows`` of the same flows (``to_ofctl()``
    text) into the emptied bridge of the same switch;
(e) baseline: this process speaks OpenFlow to the same switch itself and does what a naive
    controller does on every connect: snapshot + desired flows, delete all, add everything,
    barrier (framework-built FlowMods);
(g) ``--many`` switches (default 50, ``--gateways`` of them gateways; one ovs-vswitchd each,
    dummy ports) connecting to a fresh controller all at once, then reconnecting all at once
    to a restarted one: time until every switch is in sync (and every flow verified
    installed), flow-mods, per-switch times, and the latency of API GETs meanwhile.

Needs root and Open vSwitch for (c)-(g); ``--no-ovs`` runs (a) and (b) only.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from ryu_sched import compat  # noqa: E402
from ryu_sched.db import Database  # noqa: E402
from ryu_sched.db import models as db  # noqa: E402
from ryu_sched.db.models import LearnedNeighbor  # noqa: E402
from ryu_sched.flows.model import (  # noqa: E402
    OWNER_FLOATINGIP,
    OWNER_ROUTER_GATEWAY,
    OWNER_ROUTER_INTERFACE,
    Snapshot,
    tap_name,
)
from ryu_sched.flows.pipeline import desired_flows  # noqa: E402
from ryu_sched.flows.spec import FlowSpec  # noqa: E402
from ryu_sched.programmer import canonical, messages, readback, wire  # noqa: E402
from ryu_sched.programmer.snapshot import build_snapshot  # noqa: E402
from tests.support.ovs_sandbox import OvsSandbox  # noqa: E402

LOG = logging.getLogger("bench.programmer")

UPLINKS = {"physnet1": "uplink"}
EXT_PORT = "ext0"
EXT_CIDR = ipaddress.ip_network("100.64.0.0/16")
UPSTREAM_MAC = "52:54:00:ff:00:01"
FIRST_VLAN = 100
GATEWAY_DPID_BASE = 0x1000
BRIDGE = "br-int"
PARKED = "tcp:127.0.0.1:9"  # nothing listens there


@dataclass
class Cloud:
    """What was inserted, as far as the benchmark needs it."""

    compute_dpids: list[int]
    gateway_dpids: list[int]
    ports_by_host: dict[int, list[str]] = field(default_factory=dict)
    routers_by_gateway: dict[int, int] = field(default_factory=dict)
    rows: int = 0

    def switch_ports(self, dpid: int) -> dict[str, int]:
        """The interfaces a switch reports: uplink 1, ext0 2 on gateways, taps from 10."""
        ports = {"uplink": 1}
        if dpid in self.gateway_dpids:
            ports[EXT_PORT] = 2
        for i, port_id in enumerate(self.ports_by_host.get(dpid, [])):
            ports[tap_name(port_id)] = 10 + i
        return ports


def mac(kind: int, index: int) -> str:
    return f"fa:16:3e:{kind:02x}:{(index >> 8) & 0xFF:02x}:{index & 0xFF:02x}"


def populate(database: Database, args: argparse.Namespace) -> Cloud:
    """Fill the database with one cloud (bulk inserts, one transaction)."""
    if args.networks > 4094 - FIRST_VLAN:
        raise SystemExit(f"--networks: at most {4094 - FIRST_VLAN} VLAN networks")
    rng = random.Random(args.seed)
    cloud = Cloud(compute_dpids=list(range(1, args.hosts + 1)),
                  gateway_dpids=[GATEWAY_DPID_BASE + g for g in range(1, args.gateways + 1)])
    networks: list[dict[str, Any]] = []
    subnets: list[dict[str, Any]] = []
    ports: list[dict[str, Any]] = []
    ips: list[dict[str, Any]] = []
    for n in range(args.networks):
        net_id, subnet_id = str(uuid.UUID(int=rng.getrandbits(128))), f"subnet-{n}"
        project = f"project-{n // 4}"
        networks.append(dict(id=net_id, project_id=project, name=f"net-{n}",
                             network_type="vlan", physical_network="physnet1",
                             segmentation_id=FIRST_VLAN + n))
        subnets.append(dict(id=subnet_id, project_id=project, network_id=net_id,
                            cidr=f"10.{n // 256}.{n % 256}.0/24",
                            gateway_ip=f"10.{n // 256}.{n % 256}.1"))
    ext_id, ext_subnet = str(uuid.UUID(int=rng.getrandbits(128))), "subnet-ext"
    networks.append(dict(id=ext_id, name="public", network_type="flat",
                         physical_network="extnet", router_external=True))
    upstream = str(EXT_CIDR.network_address + 1)
    subnets.append(dict(id=ext_subnet, network_id=ext_id, cidr=str(EXT_CIDR),
                        gateway_ip=upstream))
    ext_ips = (str(EXT_CIDR.network_address + 10 + i) for i in range(EXT_CIDR.num_addresses))

    # VM ports: network round-robin, host at random; fixed IPs from .10 up.
    vm_ports: list[tuple[str, int, str]] = []  # (port id, network index, ip)
    for p in range(args.ports):
        n = p % args.networks
        host = rng.choice(cloud.compute_dpids)
        port_id = str(uuid.UUID(int=rng.getrandbits(128)))
        ip = f"10.{n // 256}.{n % 256}.{10 + p // args.networks}"
        ports.append(dict(id=port_id, project_id=networks[n]["project_id"],
                          network_id=networks[n]["id"], mac_address=mac(0, p),
                          device_owner="compute:nova", device_id=f"vm-{p}",
                          status="ACTIVE", bound_dpid=host))
        ips.append(dict(port_id=port_id, subnet_id=f"subnet-{n}",
                        network_id=networks[n]["id"], ip_address=ip))
        cloud.ports_by_host.setdefault(host, []).append(port_id)
        vm_ports.append((port_id, n, ip))

    routers: list[dict[str, Any]] = []
    router_ports: list[dict[str, Any]] = []
    fips: list[dict[str, Any]] = []
    agents: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for g, dpid in enumerate(cloud.gateway_dpids):
        agents.append(dict(id=f"l3-agent-{g}", agent_type="L3 agent", host=f"gateway-{g}",
                           binary="ryu-sched-l3-agent",
                           configurations={"datapath_id": f"{dpid:016x}",
                                           "external_port": EXT_PORT}))
    routed = min(args.networks, args.routers * args.interfaces)
    ports_of_network: dict[int, list[tuple[str, str]]] = {}
    for port_id, n, ip in vm_ports:
        ports_of_network.setdefault(n, []).append((port_id, ip))
    for r in range(args.routers):
        router_id = str(uuid.UUID(int=rng.getrandbits(128)))
        gw_port = str(uuid.UUID(int=rng.getrandbits(128)))
        routers.append(dict(id=router_id, project_id=f"project-{r}", name=f"router-{r}",
                            gw_port_id=gw_port, enable_snat=True))
        gateway = cloud.gateway_dpids[r % len(cloud.gateway_dpids)]
        cloud.routers_by_gateway[gateway] = cloud.routers_by_gateway.get(gateway, 0) + 1
        bindings.append(dict(router_id=router_id, l3_agent_id=f"l3-agent-{r % args.gateways}"))
        ports.append(dict(id=gw_port, network_id=ext_id, mac_address=mac(1, r),
                          device_owner=OWNER_ROUTER_GATEWAY, device_id=router_id,
                          status="ACTIVE"))
        ips.append(dict(port_id=gw_port, subnet_id=ext_subnet, network_id=ext_id,
                        ip_address=next(ext_ips)))
        router_ports.append(dict(router_id=router_id, port_id=gw_port,
                                 port_type=OWNER_ROUTER_GATEWAY))
        for n in range(r * args.interfaces, min(routed, (r + 1) * args.interfaces)):
            iface = str(uuid.UUID(int=rng.getrandbits(128)))
            ports.append(dict(id=iface, network_id=networks[n]["id"], mac_address=mac(2, n),
                              device_owner=OWNER_ROUTER_INTERFACE, device_id=router_id,
                              status="ACTIVE"))
            ips.append(dict(port_id=iface, subnet_id=f"subnet-{n}",
                            network_id=networks[n]["id"], ip_address=subnets[n]["gateway_ip"]))
            router_ports.append(dict(router_id=router_id, port_id=iface,
                                     port_type=OWNER_ROUTER_INTERFACE))
        behind = [p for n in range(r * args.interfaces, min(routed, (r + 1) * args.interfaces))
                  for p in ports_of_network.get(n, [])]
        for f, (port_id, ip) in enumerate(behind[:args.fips]):
            fip_port = str(uuid.UUID(int=rng.getrandbits(128)))
            address = next(ext_ips)
            ports.append(dict(id=fip_port, network_id=ext_id, mac_address=mac(3, r * 16 + f),
                              device_owner=OWNER_FLOATINGIP, device_id=f"fip-{r}-{f}",
                              status="ACTIVE"))
            ips.append(dict(port_id=fip_port, subnet_id=ext_subnet, network_id=ext_id,
                            ip_address=address))
            fips.append(dict(floating_network_id=ext_id, floating_port_id=fip_port,
                             floating_ip_address=address, fixed_port_id=port_id,
                             fixed_ip_address=ip, router_id=router_id, status="ACTIVE"))

    with database.session() as session:
        for model, rows in ((db.Network, networks), (db.Subnet, subnets), (db.Port, ports),
                            (db.IPAllocation, ips), (db.Router, routers),
                            (db.RouterPort, router_ports), (db.FloatingIP, fips),
                            (db.Agent, agents), (db.RouterL3AgentBinding, bindings)):
            if rows:
                session.execute(insert(model), rows)
            cloud.rows += len(rows)
        session.execute(insert(LearnedNeighbor),
                        [dict(ip_address=upstream, mac_address=UPSTREAM_MAC)])
    return cloud


def take_snapshot(database: Database, cloud: Cloud, connected: list[int]) -> Snapshot:
    with database.session() as session:
        neighbors = {row.ip_address: row.mac_address
                     for row in session.query(LearnedNeighbor).all()}
        return build_snapshot(session, {d: cloud.switch_ports(d) for d in connected},
                              UPLINKS, neighbors)


FRAMEWORK_STATS = compat.ofproto_v1_3_parser.OFPFlowStats


def stats_entry(spec: FlowSpec) -> bytes:
    """The flow-stats entry a switch reports for ``spec`` once installed."""
    return readback.installed_entry(wire.flow_add(1, spec))


def timed(fn: Any, *args: Any, repeat: int = 3) -> tuple[float, Any]:
    """Best of ``repeat`` runs: (seconds, result of the last run)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


def flows_by_table(flows: list[FlowSpec]) -> str:
    counts = Counter(f.table for f in flows)
    return " ".join(f"t{t}:{counts[t]}" for t in sorted(counts))


# --- a private Open vSwitch ------------------------------------------------------------------

class Ovs(OvsSandbox):
    """A private ovsdb-server + ovs-vswitchd (tests/support/ovs_sandbox.py), run from the
    calling thread's network namespace, whose ports are all dummy ports."""

    #: Ports added per ovsdb transaction: ovs-vswitchd takes one pass over the bridge per
    #: transaction, and thousands of ports in one can outlast ``ovs-vsctl``'s timeout.
    PORTS_PER_TRANSACTION = 500

    def add_bridge(self, name: str, dpid: int, ports: dict[str, int]) -> None:
        """A secure-mode bridge with ``ports`` and no controller yet."""
        args = ["add-br", name, "--", "set", "bridge", name, "datapath_type=netdev",
                "protocols=OpenFlow13", "fail_mode=secure",
                f"other-config:datapath-id={dpid:016x}", "other-config:disable-in-band=true"]
        ordered = sorted(ports.items(), key=lambda item: item[1])
        for start in range(0, max(1, len(ordered)), self.PORTS_PER_TRANSACTION):
            for port, ofport in ordered[start:start + self.PORTS_PER_TRANSACTION]:
                args += ["--", "add-port", name, port, "--", "set", "interface", port,
                         "type=dummy", f"ofport_request={ofport}"]
            self.vsctl(*args)
            args = []

    def set_controller(self, bridge: str, target: str) -> None:
        self.vsctl("set-controller", bridge, target)

    def flow_count(self, bridge: str) -> int:
        match = re.search(r"flow_count=(\d+)", self.ofctl(bridge, "dump-aggregate"))
        return int(match.group(1)) if match else -1

    def flows(self, bridge: str) -> list[tuple[int, float]]:
        """(cookie, duration in seconds) of every installed flow."""
        result = []
        for line in self.ofctl(bridge, "dump-flows").splitlines():
            cookie = re.search(r"cookie=(0x[0-9a-f]+)", line)
            duration = re.search(r"duration=([0-9.]+)s", line)
            if cookie and duration:
                result.append((int(cookie.group(1), 16), float(duration.group(1))))
        return result


def park(switches: Any) -> None:
    """Point every switch at a port where nothing listens (they keep their flows: secure fail
    mode, never controller-less), so that a restarted controller sees them all connect when
    the benchmark sets the real target, not whenever their reconnection back-off ends."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda ovs: ovs.set_controller(BRIDGE, PARKED), list(switches)))


def respelled(target: str) -> str:
    """``tcp:1.2.3.4:6653`` <-> ``tcp:[1.2.3.4]:6653``: a new target makes OVS reconnect now
    (OVS 3.1 otherwise backs off up to 8 s) without ever leaving the bridge controller-less,
    which would flush its flows."""
    kind, _, rest = target.partition(":")
    host, _, port = rest.rpartition(":")
    return f"{kind}:{host[1:-1]}:{port}" if host.startswith("[") else f"{kind}:[{host}]:{port}"


class ControllerLog:
    """The programmer's per-switch sync lines in the controller log."""

    LINE = re.compile(r"switch ([0-9a-f]{16}): (?:(\d+) flow-mods(?: in (\d+) bundle\(s\))?"
                      r"|in sync, nothing sent) \((\d+) desired\) in ([0-9.]+)s, "
                      r"([0-9.]+)s after connect")

    def __init__(self, path: Path) -> None:
        self.path = path

    def all_syncs(self) -> dict[int, list[Sync]]:
        try:
            text = self.path.read_text(errors="replace")
        except FileNotFoundError:
            return {}
        result: dict[int, list[Sync]] = {}
        for m in self.LINE.finditer(text):
            result.setdefault(int(m.group(1), 16), []).append(Sync(
                flow_mods=int(m.group(2) or 0), bundles=int(m.group(3) or 0),
                desired=int(m.group(4)), seconds=float(m.group(5)),
                after_connect=float(m.group(6))))
        return result

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def wait_in_place(self, dpid: int, offset: int, timeout: float) -> tuple[float, float]:
        """When (this process's clock) the programmer logged, after byte ``offset``, that
        switch ``dpid`` connected, and that it answered the barrier after its first flow
        mods: the switch has its table in place. The log is followed every 2 ms, reading only
        what was added."""
        connected = f"switch {dpid:016x} connected".encode()
        in_place = f"switch {dpid:016x}: its table is in place".encode()
        deadline = time.monotonic() + timeout
        seen = b""
        connected_at = None
        with open(self.path, "rb") as log:
            log.seek(offset)
            while time.monotonic() < deadline:
                chunk = log.read()
                if not chunk:
                    time.sleep(0.002)
                    continue
                seen = seen[-len(in_place):] + chunk
                now = time.perf_counter()
                if connected_at is None and connected in seen:
                    connected_at = now
                if in_place in seen:
                    return connected_at or now, now
        raise TimeoutError(f"switch {dpid:016x}'s table never in place ({self.path})")

    def syncs(self, dpid: int) -> list[Sync]:
        return self.all_syncs().get(dpid, [])

    def wait_sync(self, dpid: int, seen: int, timeout: float) -> tuple[float, Sync]:
        """Wait for sync line number ``seen`` + 1 of ``dpid``: (when, that line)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.syncs(dpid)
            if len(lines) > seen:
                return time.perf_counter(), lines[seen]
            time.sleep(0.01)
        raise TimeoutError(f"no sync of switch {dpid:016x} in the controller log ({self.path})")


@dataclass(frozen=True)
class Sync:
    flow_mods: int
    bundles: int
    desired: int
    seconds: float  # the programmer's own time for the diff and the sending
    after_connect: float  # from the switch's connection to the end of that sync


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> float:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return time.perf_counter()


# --- the naive baseline: one OpenFlow connection spoken by this process ------------------------

OFPT_HELLO, OFPT_ERROR, OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY = 0, 1, 2, 3
OFPT_BARRIER_REPLY = 21


class NaiveController:
    """Delete every flow and add every desired one, then a barrier: what a controller without
    a diff does whenever a switch connects."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.errors = 0

    def accept(self, timeout: float) -> socket.socket:
        self.listener.settimeout(timeout)
        conn, _ = self.listener.accept()
        conn.settimeout(timeout)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.sendall(struct.pack("!BBHI", 4, OFPT_HELLO, 8, 1))
        self._read_until(conn, {OFPT_HELLO})
        return conn

    def _read_until(self, conn: socket.socket, wanted: set[int]) -> None:
        buf = b""
        while True:
            while len(buf) < 8 or len(buf) < struct.unpack_from("!H", buf, 2)[0]:
                chunk = conn.recv(65536)
                if not chunk:
                    raise ConnectionError("switch closed the connection")
                buf += chunk
            _version, kind, length, xid = struct.unpack_from("!BBHI", buf)
            body, buf = buf[8:length], buf[length:]
            if kind == OFPT_ECHO_REQUEST:
                conn.sendall(struct.pack("!BBHI", 4, OFPT_ECHO_REPLY, 8 + len(body), xid) + body)
            elif kind == OFPT_ERROR:
                self.errors += 1
            if kind in wanted:
                return

    def program(self, conn: socket.socket, dpid: int, desired: list[FlowSpec]) -> None:
        ofp, parser = messages.ofp, messages.parser
        datapath = SimpleNamespace(id=dpid, ofproto=ofp, ofproto_parser=parser)
        msgs = [parser.OFPFlowMod(datapath, table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                                  out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                                  match=parser.OFPMatch())]
        msgs += [messages.flow_add(datapath, spec) for spec in desired]
        msgs.append(parser.OFPBarrierRequest(datapath))
        out = bytearray()
        for xid, msg in enumerate(msgs, start=2):
            msg.set_xid(xid)
            msg.serialize()
            out += msg.buf
        conn.sendall(out)
        self._read_until(conn, {OFPT_BARRIER_REPLY})

    def close(self) -> None:
        self.listener.close()


# --- (c) - (f): real switches -----------------------------------------------------------------

@dataclass
class Figure:
    label: str
    switch: str
    flows: int
    seconds: float
    flow_mods: int
    note: str = ""
    #: (c): seconds from the switch's connection (as the programmer logged it) to its table
    #: in place, leaving out how long Open vSwitch took to connect after set-controller
    connected: float | None = None


def in_namespace(fn: Any, *args: Any) -> Any:
    """Run ``fn(*args, env)`` in a private network namespace (removed afterwards)."""
    from tests.topology import cleanup, netns, unique_prefix
    from tests.topology._run import child_env
    from tests.topology.netns import add_netns

    prefix = unique_prefix("b")
    ns = prefix + "ovs"
    add_netns(ns)
    try:
        with netns(ns):
            return fn(*args, child_env(prefix))
    finally:
        cleanup(prefix)


def start_switches(workdir: Path, cloud: Cloud, dpids: list[int], env: dict[str, str],
                   name: Any = str) -> dict[int, Ovs]:
    """One ovs-vswitchd per switch, as one per host in production (port names are per
    daemon), each with its bridge and dummy ports; started in parallel."""
    switches = {dpid: Ovs(workdir / f"ovs-{name(dpid)}", env) for dpid in dpids}

    def start(dpid: int) -> None:
        ovs = switches[dpid]
        ovs.root.mkdir(parents=True)
        ovs.start()
        ovs.add_bridge(BRIDGE, dpid, cloud.switch_ports(dpid))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(start, dpids))
    return switches


def controller_for(workdir: Path, database: Database) -> Any:
    from tests.support.controller import ControllerProcess

    return ControllerProcess(workdir, options={
        "connection": f"sqlite:///{database.engine.url.database}",
        "allow_automatic_failover": False, "network_auto_schedule": False,
        "router_auto_schedule": False})


def bundle_floor(ovs: Ovs, flows: list[FlowSpec], path: Path) -> float:
    """Seconds for ``ovs-ofctl --bundle add-flows`` of ``flows`` into the emptied bridge."""
    path.write_text("".join(f.to_ofctl() + "\n" for f in flows))
    target = f"unix:{ovs.root}/{BRIDGE}.mgmt"
    ovs.run("ovs-ofctl", "-O", "OpenFlow13", "del-flows", target)
    started = time.perf_counter()
    ovs.run("ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows", target, str(path))
    seconds = time.perf_counter() - started
    if ovs.flow_count(BRIDGE) != len(flows):
        raise RuntimeError("ovs-ofctl --bundle add-flows did not install every flow")
    return seconds


def bench_switches(args: argparse.Namespace, workdir: Path, database: Database, cloud: Cloud,
                   env: dict[str, str]) -> list[Figure]:
    compute, gateway = cloud.compute_dpids[0], cloud.gateway_dpids[0]
    labels = {compute: "compute", gateway: "gateway"}
    started = time.perf_counter()
    switches = start_switches(workdir, cloud, list(labels), env, labels.get)
    version = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True,
                             text=True, check=False).stdout.split("\n")[0].split()[-1]
    built = ", ".join(f"{labels[d]} {len(cloud.switch_ports(d))}" for d in switches)
    print(f"    OVS {version}, one daemon per switch, dummy ports ({built}) ready in "
          f"{time.perf_counter() - started:.2f}s")
    controller = controller_for(workdir / "controller", database)
    figures: list[Figure] = []
    try:
        started = time.perf_counter()
        controller.start(timeout=60)
        print(f"    controller process up (API answers) in "
              f"{time.perf_counter() - started:.2f}s")
        log = ControllerLog(controller.log_path)
        target = {d: f"tcp:127.0.0.1:{controller.of_port}" for d in switches}

        # (c) fresh connect, one switch after the other
        connected: list[int] = []
        expected: dict[int, list[FlowSpec]] = {}
        for dpid, ovs in switches.items():
            connected.append(dpid)
            expected[dpid] = desired_flows(take_snapshot(database, cloud, connected), dpid)
            want = len(expected[dpid])
            seen = len(log.syncs(dpid))
            offset = log.size()
            t0 = time.perf_counter()
            ovs.set_controller(BRIDGE, target[dpid])
            connected_at, t1 = log.wait_in_place(dpid, offset, 90)
            wait_for(lambda ovs=ovs, want=want: ovs.flow_count(BRIDGE) == want, 30,
                     f"{want} flows on the {labels[dpid]} switch")
            _when, sync = log.wait_sync(dpid, seen, 30)
            cookies = Counter(cookie for cookie, _ in ovs.flows(BRIDGE))
            same = cookies == Counter(f.cookie for f in expected[dpid])
            figures.append(Figure("(c) fresh connect", labels[dpid], want, t1 - t0,
                                  sync.flow_mods, connected=t1 - connected_at, note=
                                  f"{sync.bundles} bundle; connected after "
                                  f"{connected_at - t0:.2f}s, sent {sync.after_connect:.2f}s "
                                  f"after that; cookies {'match' if same else 'DIFFER'}"))

        # (d) the compute switch reconnects; then the controller restarts
        for _ in range(0 if args.fresh_only else args.repeat):
            seen = len(log.syncs(compute))
            t0 = time.perf_counter()
            target[compute] = respelled(target[compute])
            switches[compute].set_controller(BRIDGE, target[compute])
            t1, sync = log.wait_sync(compute, seen, 60)
            figures.append(Figure("(d) switch reconnect", "compute", sync.desired, t1 - t0,
                                  sync.flow_mods, f"in sync {sync.after_connect:.3f}s after "
                                  "connect"))
        for _ in range(0 if args.fresh_only else args.repeat):
            park(switches.values())
            controller.stop()
            controller.start(timeout=60)
            seen_by = {d: len(log.syncs(d)) for d in switches}
            t0 = time.perf_counter()
            for dpid, ovs in switches.items():
                ovs.set_controller(BRIDGE, target[dpid])
            for dpid, ovs in switches.items():
                t1, sync = log.wait_sync(dpid, seen_by[dpid], 60)
                since = time.perf_counter() - t0
                readded = sum(1 for _c, age in ovs.flows(BRIDGE) if age < since)
                figures.append(Figure("(d) controller restart", labels[dpid], sync.desired,
                                      t1 - t0, sync.flow_mods,
                                      f"in sync {sync.after_connect:.3f}s after connect; "
                                      f"{readded} flows younger than the restart"))
        controller.stop()

        # (f) the bundle floor: ovs-ofctl --bundle add-flows of the same flows, same switch
        for dpid, ovs in switches.items():
            seconds = min(bundle_floor(ovs, expected[dpid], workdir / "flows.txt")
                          for _ in range(args.repeat))
            figures.append(Figure("(f) ovs-ofctl --bundle", labels[dpid], len(expected[dpid]),
                                  seconds, len(expected[dpid]),
                                  f"best of {args.repeat}; parses text, one bundle"))

        # (e) the naive controller on the same switches, from this process
        for dpid, ovs in ({} if args.fresh_only else switches).items():
            naive = NaiveController()
            try:
                t0 = time.perf_counter()
                ovs.set_controller(BRIDGE, f"tcp:127.0.0.1:{naive.port}")
                conn = naive.accept(30)
                snap_started = time.perf_counter()
                desired = desired_flows(take_snapshot(database, cloud, list(switches)), dpid)
                gap_started = time.perf_counter()
                naive.program(conn, dpid, desired)
                t1 = time.perf_counter()
                conn.close()
            finally:
                naive.close()
            count = ovs.flow_count(BRIDGE)
            figures.append(Figure("(e) naive delete+add", labels[dpid], len(desired), t1 - t0,
                                  len(desired) + 1,
                                  f"compile {gap_started - snap_started:.2f}s; table empty "
                                  f"or partial for {t1 - gap_started:.2f}s; {count} installed"
                                  + (f"; {naive.errors} errors" if naive.errors else "")))
    finally:
        controller.stop()
        for ovs in switches.values():
            ovs.stop()
    return figures


def print_table(figures: list[Figure]) -> None:
    print(f"{'':24} {'switch':8} {'flows':>7} {'seconds':>8} {'flow-mods':>10}  notes")
    for f in figures:
        print(f"{f.label:24} {f.switch:8} {f.flows:7,} {f.seconds:8.2f} {f.flow_mods:10,}  "
              f"{f.note}")
    by: dict[tuple[str, str], list[Figure]] = {}
    for f in figures:
        by.setdefault((f.label, f.switch), []).append(f)
    for switch in ("compute", "gateway"):
        floor = by.get(("(f) ovs-ofctl --bundle", switch))
        fresh = by.get(("(c) fresh connect", switch))
        if floor and fresh:
            since = fresh[0].connected
            print(f"fresh connect / bundle floor ({switch}): "
                  f"{fresh[0].seconds / floor[0].seconds:.2f}x"
                  + ("" if since is None else f" (from the switch's connection: "
                     f"{since:.3f}s, {since / floor[0].seconds:.2f}x)"))


# --- (g): many switches at once ---------------------------------------------------------------

class ApiProbe:
    """Times GET requests to the controller's API in a thread while something else runs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ApiProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=30) as response:
                    response.read()
                self.latencies.append(time.perf_counter() - started)
            except OSError:
                self.errors += 1
            self._stop.wait(0.05)

    def summary(self) -> str:
        if not self.latencies:
            return f"API: no answer ({self.errors} errors)"
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2]
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (f"API GET during it: {len(ordered)} requests, p50 {p50 * 1000:.0f} ms, "
                f"p99 {p99 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
                + (f", {self.errors} errors" if self.errors else ""))


def bench_many(args: argparse.Namespace, workdir: Path, env: dict[str, str]) -> None:
    many = argparse.Namespace(**{**vars(args), "hosts": args.many - args.gateways})
    database = Database(f"sqlite:///{workdir / 'many.sqlite'}")
    database.create_schema()
    cloud = populate(database, many)
    dpids = cloud.compute_dpids + cloud.gateway_dpids
    snapshot = take_snapshot(database, cloud, dpids)
    database.dispose()   # the controller needs the file to itself (its sole-use lock)
    want = {d: len(desired_flows(snapshot, d)) for d in dpids}
    started = time.perf_counter()
    switches = start_switches(workdir / "many", cloud, dpids, env, lambda d: f"{d:x}")
    print(f"(g) {len(dpids)} switches ({sum(want.values()):,} flows, "
          f"{min(want.values()):,}-{max(want.values()):,} each), one ovs-vswitchd each, "
          f"ready in {time.perf_counter() - started:.1f}s")
    controller = controller_for(workdir / "many" / "controller", database)
    ext_id = take_snapshot(database, cloud, []).networks[-1].id
    try:
        controller.start(timeout=60)
        log = ControllerLog(controller.log_path)
        target = f"tcp:127.0.0.1:{controller.of_port}"

        def connect_all(label: str, spelling: str) -> None:
            seen = {d: len(v) for d, v in log.all_syncs().items()}
            with ApiProbe(f"{controller.url}/v2.0/networks/{ext_id}") as probe, \
                    ThreadPoolExecutor(max_workers=16) as pool:
                t0 = time.perf_counter()
                list(pool.map(lambda d: switches[d].set_controller(BRIDGE, spelling), dpids))
                wait_for(lambda: all(len(log.syncs(d)) > seen.get(d, 0) for d in dpids), 300,
                         f"{len(dpids)} switches synced", interval=0.05)
                t_synced = time.perf_counter() - t0
                wait_for(lambda: all(switches[d].flow_count(BRIDGE) == want[d] for d in dpids),
                         300, "every switch at its desired flow count", interval=0.2)
                t_installed = time.perf_counter() - t0
            syncs = {d: log.syncs(d)[seen.get(d, 0)] for d in dpids}
            after = sorted(s.after_connect for s in syncs.values())
            mods = sum(s.flow_mods for s in syncs.values())
            print(f"    {label}: all {len(dpids)} in sync {t_synced:.2f}s after the first "
                  f"set-controller (all flows verified installed {t_installed:.2f}s); "
                  f"{mods:,} flow-mods; per switch after its connect: "
                  f"min {after[0]:.2f}s median {after[len(after) // 2]:.2f}s "
                  f"max {after[-1]:.2f}s")
            print(f"    {probe.summary()}")

        connect_all("fresh connect, all at once", target)
        park(switches.values())
        controller.stop()
        controller.start(timeout=60)
        connect_all("controller restart, all reconnect at once", target)
    finally:
        controller.stop()
        for ovs in switches.values():
            ovs.stop()
        database.dispose()


# --- main ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", type=int, default=1000)
    ap.add_argument("--ports", type=int, default=5000)
    ap.add_argument("--hosts", type=int, default=10, help="compute switches")
    ap.add_argument("--routers", type=int, default=100)
    ap.add_argument("--interfaces", type=int, default=2, help="subnets per router")
    ap.add_argument("--fips", type=int, default=2, help="floating IPs per router")
    ap.add_argument("--gateways", type=int, default=2, help="gateway switches (L3 agents)")
    ap.add_argument("--many", type=int, default=50,
                    help="switches for (g), gateways included (0: skip (g))")
    ap.add_argument("--repeat", type=int, default=3, help="runs of (d) and (f)")
    ap.add_argument("--many-only", action="store_true", help="only (g)")
    ap.add_argument("--fresh-only", action="store_true", help="of (c)-(f) only (c) and (f)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-ovs", action="store_true", help="only (a) and (b)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    workdir = Path(tempfile.mkdtemp(prefix="bench-programmer-"))
    db_path = workdir / "ryu_sched.sqlite"
    database = Database(f"sqlite:///{db_path}")
    database.create_schema()
    started = time.perf_counter()
    cloud = populate(database, args)
    print(f"programmer bench: {args.networks:,} networks, {args.ports:,} ports on "
          f"{args.hosts} compute switches, {args.routers} routers x {args.interfaces} "
          f"subnets + {args.fips} floating IPs on {args.gateways} gateway switches "
          f"({cloud.rows:,} rows inserted in {time.perf_counter() - started:.2f}s)")

    compute, gateway = cloud.compute_dpids[0], cloud.gateway_dpids[0]
    connected = [compute, gateway]
    snap_s, snapshot = timed(take_snapshot, database, cloud, connected)
    print(f"(a) snapshot from the database: {snap_s:.3f}s ({len(snapshot.ports):,} ports, "
          f"{len(snapshot.networks):,} networks, {len(snapshot.routers)} routers)")
    desired: dict[int, list[FlowSpec]] = {}
    for label, dpid in (("compute", compute), ("gateway", gateway)):
        seconds, desired[dpid] = timed(desired_flows, snapshot, dpid)
        canon_s, _ = timed(lambda fl: [canonical.of_spec(f) for f in fl], desired[dpid])
        mods_s, _ = timed(lambda fl: [messages.flow_add(None, f) for f in fl], desired[dpid])
        entries = [stats_entry(f) for f in desired[dpid]]
        framework_s, _ = timed(lambda es: [FRAMEWORK_STATS.parser(e, 0) for e in es], entries)
        readback_s, _ = timed(lambda es: [readback.decode(e) for e in es], entries)
        extra = (f"{len(cloud.ports_by_host.get(dpid, []))} ports bound" if label == "compute"
                 else f"{cloud.routers_by_gateway.get(dpid, 0)} routers hosted")
        print(f"(b) {label} switch {dpid:#x} ({extra}): desired_flows {seconds:.3f}s, "
              f"{len(desired[dpid]):,} flows [{flows_by_table(desired[dpid])}]; "
              f"canonical forms {canon_s:.3f}s; flow mods built {mods_s:.3f}s; "
              f"flow stats read back: the framework's parser {framework_s:.3f}s, "
              f"readback {readback_s:.3f}s")
    # the controller process needs the database to itself (the sole-use lock of SQLite);
    # the bench still reads through its engine's new connections
    database.dispose()
    if not args.no_ovs:
        if not args.many_only:
            print("(c)-(f) real Open vSwitch, real controller process:")
            print_table(in_namespace(bench_switches, args, workdir, database, cloud))
        if args.many:
            in_namespace(bench_many, args, workdir)
    database.dispose()
    if args.keep:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
