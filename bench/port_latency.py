"""Port up -> flows: how long a new VM's tap waits for its flows, at 3,000 and 30,000 ports.

    python bench/port_latency.py [--sizes 3000,30000] [--samples 50] [--budget 150]
                                 [--taps 3000] [--code TREE [--code OTHER_TREE]]
    python bench/port_latency.py --quick          # 300 ports, 10 samples: a smoke run

Set up as a user has it, for each size (and each ``--code`` tree, default this one):

- the real controller process (``python -m ryu_sched.launcher``, SQLite file, defaults but
  a VLAN range wide enough for the networks);
- networks (one per 6 ports, at most 4,000: the VLAN range), each with a /24 subnet, and the
  ports (``compute:nova``), all created through the REST API: bulk POSTs of 400 ports from
  4 concurrent clients;
- 6 switches, one private ``ovs-vswitchd`` each as on 6 hosts (port names are per daemon, and
  every switch has its ``uplink``), ``--enable-dummy=override``, bridges ``datapath_type=
  netdev``, the ports' taps present from the start as ``type=dummy`` ports named
  ``tap_name(port_id)`` (the cloud at its size); then the controller is set on each and
  the bench waits until every port is ACTIVE and the controller idle (CPU).
  ``--taps`` (default 3,000: 500 a switch) ports are plugged there; the others
  (``compute:elsewhere``) are VMs on hypervisors the bench does not run: they are in the
  model, their addresses in every switch's security-group flows, but have no tap. A
  bridge of 5,000 dummy ports makes OVS itself take 16 s per ``add-port``.

Then ``--samples`` times (or until ``--budget`` seconds of sampling have passed: a
controller that recomputes everything per event takes minutes per sample at 30,000 ports):
a new port is created through the API (one POST), the bench waits until the controller is
idle (so that the port's creation is not measured with it), adds the port's tap to a
switch (round robin, ``ovs-vsctl add-port ... type=dummy``) and times, from the start of
that command:

- *flows*: the last flow carrying the port's cookie (``cookie_for(CookieKind.PORT, id)``)
  added or modified on its switch; the moment comes from an ``ovs-ofctl monitor`` on
  every bridge (the switch's flow-monitor stream, no polling). Its flows are committed in
  one bundle, so the first flow of the port is its last too; the figure takes the last one
  seen before the controller went idle again, and checks the count is not zero;
- *all switches*: the same over every bridge (the flows the port owns on the other
  switches: delivery to it, its address in its security group);
- *ACTIVE*: the port's status in the API (``GET /v2.0/ports/ID`` every 5 ms once its
  flows showed up; the controller records ACTIVE after the switch acknowledged them).

``port status`` is the switch's own OFPT_PORT_STATUS for the tap (same monitor): the
``add-port`` command's share (ovsdb, vswitchd reconfiguring a bridge of thousands of ports)
can be read from it. Targets (issue 10): p50 <= 50 ms, p99 <= 200 ms at both sizes, and
p50(30,000) / p50(3,000) <= 1.5.

Needs root and Open vSwitch. Everything it starts (controller, ovsdb-server and
ovs-vswitchd per switch, monitors, a network namespace) is stopped by its own pid, also on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import code_tree  # noqa: E402

code_tree.use(ROOT)

from bench.api_load import call, pct, started  # noqa: E402
from bench.programmer import BRIDGE, Cloud, Ovs, in_namespace, start_switches  # noqa: E402
from ryu_sched.flows.cookies import CookieKind, cookie_for, kind_of  # noqa: E402
from ryu_sched.shared.vocabulary import tap_name  # noqa: E402
from tests.support.controller import ControllerProcess, wait_until  # noqa: E402

SWITCHES = 6
PORTS_PER_NETWORK = 6
MAX_NETWORKS = 4000  # VLAN ids: CONTROLLER_OPTIONS
BULK = 400          # ports per bulk POST (well under the 112 KiB body limit)
CLIENTS = 4         # concurrent clients creating the cloud
OWNER = "compute:nova"
OWNER_ELSEWHERE = "compute:elsewhere"
#: Taps on each switch at most. ovs-vswitchd reconfigures a bridge in time proportional to
#: its ports on every ovsdb transaction: with 5,000 dummy ports a bridge took 114 s to build
#: and one more ``add-port`` 16.5 s (OVS 3.1 here), which would time OVS, not the controller.
TAPS_PER_SWITCH = 500
CONTROLLER_OPTIONS = {"network_vlan_ranges": "physnet1:1:4094"}


# --- the cloud through the REST API ------------------------------------------------------

def created(ctl: ControllerProcess, plural: str, items: list[dict[str, Any]]) -> list[Any]:
    status, body = call(ctl, "POST", f"/v2.0/{plural}", {plural: items})
    if status != 201:
        raise RuntimeError(f"POST /v2.0/{plural}: {status} {body}")
    return list(body[plural])


def in_chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def bulk(ctl: ControllerProcess, plural: str, items: list[dict[str, Any]],
         size: int = BULK, clients: int = CLIENTS) -> list[Any]:
    with ThreadPoolExecutor(max_workers=clients) as pool:
        return [x for chunk in pool.map(lambda c: created(ctl, plural, c),
                                         in_chunks(items, size)) for x in chunk]


def networks_for(ports: int) -> int:
    return max(1, min(MAX_NETWORKS, ports // PORTS_PER_NETWORK))


def subnet_cidr(index: int) -> str:
    return f"10.{index // 256}.{index % 256}.0/24"


@dataclass
class UserCloud:
    """Networks and ports created, and where each port's tap is: ``bench/programmer.py``'s
    layout (switch dpids 1..6, the ports of each)."""

    networks: list[str]
    layout: Cloud
    note: str


def create_cloud(ctl: ControllerProcess, ports: int, networks: int, taps: int) -> UserCloud:
    """Everything through the REST API; the first ``taps`` ports are the VMs on the
    bench's switches (``compute:nova``), the others are on hypervisors the bench does not
    run (``compute:elsewhere``: no tap, DOWN)."""
    t0 = time.perf_counter()
    nets = [n["id"] for n in bulk(ctl, "networks",
                                  [{"name": f"net-{i}"} for i in range(networks)], 200, 1)]
    bulk(ctl, "subnets", [{"network_id": net, "cidr": subnet_cidr(i), "ip_version": 4}
                          for i, net in enumerate(nets)], 200, 1)
    t1 = time.perf_counter()
    made = bulk(ctl, "ports", [{"network_id": nets[k % len(nets)],
                                "device_owner": OWNER if k < taps else OWNER_ELSEWHERE,
                                "device_id": f"vm-{k}", "name": f"vm-{k}"}
                               for k in range(ports)])
    t2 = time.perf_counter()
    layout = Cloud(compute_dpids=list(range(1, SWITCHES + 1)), gateway_dpids=[])
    for k, port in enumerate(made[:taps]):
        layout.ports_by_host.setdefault(1 + k % SWITCHES, []).append(port["id"])
    return UserCloud(nets, layout, (
        f"{networks:,} networks + subnets in {t1 - t0:.1f}s, {ports:,} ports in "
        f"{t2 - t1:.1f}s through the API ({ports / max(t2 - t1, 1e-9):.0f} ports/s, bulk "
        f"POSTs of {BULK} from {CLIENTS} clients); {min(ports, taps):,} of them with a tap"))


@contextlib.contextmanager
def controller_with_cloud(workdir: Path, code: str | None, ports: int,
                          taps: int) -> Iterator[tuple[ControllerProcess, UserCloud]]:
    """The controller (from ``code``) with its cloud of ``ports`` ports, ``taps`` of them
    plugged."""
    with started(workdir / "controller", code, options=CONTROLLER_OPTIONS) as ctl:
        yield ctl, create_cloud(ctl, ports, networks_for(ports), taps)


# --- the controller: idle, statuses ----------------------------------------------------------

def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def wait_idle(ctl: ControllerProcess, timeout: float = 900.0, window: float = 0.3,
              ticks: int = 2) -> float:
    """Wait until the controller used at most ``ticks`` clock ticks of CPU over ``window``
    seconds; returns the seconds waited."""
    assert ctl.proc is not None
    pid, start = ctl.proc.pid, time.perf_counter()
    deadline = start + timeout
    before = cpu_ticks(pid)
    while True:
        time.sleep(window)  # sampling the CPU counter over a window, not synchronising
        now = cpu_ticks(pid)
        if now - before <= ticks:
            return time.perf_counter() - start
        if time.perf_counter() > deadline:
            raise TimeoutError(f"controller not idle after {timeout}s")
        before = now


def any_down(ctl: ControllerProcess, owner: str = OWNER) -> bool:
    """Whether a port of ``owner`` is still DOWN (one page of one id: cheap at any size)."""
    status, body = call(ctl, "GET", f"/v2.0/ports?device_owner={owner}&status=DOWN"
                                    "&fields=id&limit=1")
    assert status == 200, body
    return bool(body["ports"])


def port_status(ctl: ControllerProcess, port_id: str) -> str:
    status, body = call(ctl, "GET", f"/v2.0/ports/{port_id}?fields=status", timeout=30)
    assert status == 200, body
    return str(body["port"]["status"])


# --- the switches -----------------------------------------------------------------------------

class Monitor:
    """``ovs-ofctl monitor`` of one bridge: when each port-owned flow was added, modified or
    deleted, and when each port appeared (OFPT_PORT_STATUS), as this process read them."""

    FLOW = re.compile(r"event=(ADDED|MODIFIED|DELETED) .*?cookie=(0x[0-9a-f]+)")
    PORT = re.compile(r"OFPT_PORT_STATUS .*: ADD: \d+\((\S+)\)")

    def __init__(self, ovs: Ovs, bridge: str = BRIDGE) -> None:
        self.log = open(ovs.root / "monitor.log", "w")
        self.events: dict[int, list[tuple[float, str]]] = {}
        self.ports_added: dict[str, float] = {}
        self.proc = subprocess.Popen(
            ["ovs-ofctl", "-O", "OpenFlow13", "monitor", f"unix:{ovs.root}/{bridge}.mgmt",
             "65535", "watch:!initial"],
            # stderr to /dev/null makes ovs-ofctl 3.1 print nothing after its first reply
            env=ovs.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.perf_counter()
            self.log.write(f"{now:.6f} {line}")
            if "FLOW_MONITOR reply" in line:
                self.ready.set()
            flow = self.FLOW.search(line)
            if flow:
                cookie = int(flow.group(2), 16)
                if cookie >> 56 == CookieKind.PORT:
                    self.events.setdefault(cookie, []).append((now, flow.group(1)))
                continue
            port = self.PORT.search(line)
            if port:
                self.ports_added[port.group(1)] = now

    def last_change(self, cookie: int) -> float | None:
        changes = [t for t, kind in self.events.get(cookie, []) if kind != "DELETED"]
        return max(changes) if changes else None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(5)
        self.log.close()


def port_flows(ovs: Ovs, cookie: int) -> int:
    text = ovs.ofctl(BRIDGE, "dump-flows", f"cookie={cookie:#x}/-1")
    return sum(1 for line in text.splitlines() if "cookie=" in line)


def add_tap(ovs: Ovs, port_id: str) -> None:
    name = tap_name(port_id)
    ovs.vsctl("add-port", BRIDGE, name, "--", "set", "interface", name, "type=dummy")


@contextlib.contextmanager
def switches_for(workdir: Path, cloud: UserCloud,
                 env: dict[str, str]) -> Iterator[dict[int, Ovs]]:
    """The 6 switches with their taps, stopped (by their pidfiles) afterwards, whatever
    happened while starting them."""
    layout = cloud.layout
    try:
        yield start_switches(workdir, layout, layout.compute_dpids, env)
    finally:
        for dpid in layout.compute_dpids:
            Ovs(workdir / f"ovs-{dpid}", env).stop()


@contextlib.contextmanager
def monitors_for(switches: dict[int, Ovs]) -> Iterator[dict[int, Monitor]]:
    monitors: dict[int, Monitor] = {}
    try:
        for dpid, ovs in switches.items():
            monitors[dpid] = Monitor(ovs)
        for monitor in monitors.values():
            if not monitor.ready.wait(10):
                raise RuntimeError("ovs-ofctl monitor did not start")
        yield monitors
    finally:
        for monitor in monitors.values():
            monitor.stop()


def connect(ctl: ControllerProcess, switches: dict[int, Ovs]) -> str:
    """Point every switch at the controller; wait until every port is ACTIVE, every switch
    has flows and the controller is idle."""
    t0 = time.perf_counter()
    for ovs in switches.values():
        ovs.set_controller(BRIDGE, f"tcp:127.0.0.1:{ctl.of_port}")
    wait_until(lambda: all(o.flow_count(BRIDGE) > 0 for o in switches.values()), 900, 0.2,
               "flows on every switch")
    wait_until(lambda: not any_down(ctl), 900, 0.5, "every port ACTIVE")
    wait_idle(ctl)
    flows = sum(o.flow_count(BRIDGE) for o in switches.values())
    return (f"{len(switches)} switches connected: every port ACTIVE, {flows:,} flows "
            f"installed and the controller idle after {time.perf_counter() - t0:.1f}s")


# --- one size ---------------------------------------------------------------------------------

@dataclass
class Sample:
    add_port: float          # the ovs-vsctl add-port command
    port_status: float       # the switch's OFPT_PORT_STATUS, read by the monitor
    local: float             # last flow of the port on its switch
    everywhere: float        # last flow of the port on any switch
    active: float            # ACTIVE in the API
    flows: int               # flows of the port on its switch


def measure_one(ctl: ControllerProcess, switches: dict[int, Ovs],
                monitors: dict[int, Monitor], network: str, dpid: int, index: int,
                timeout: float = 900.0) -> Sample:
    port = created(ctl, "ports", [{"network_id": network, "device_owner": OWNER,
                                   "device_id": f"new-vm-{index}", "name": f"new-{index}"}])[0]
    cookie = cookie_for(CookieKind.PORT, port["id"])
    assert kind_of(cookie) is CookieKind.PORT
    wait_idle(ctl)
    monitor = monitors[dpid]
    t0 = time.perf_counter()
    add_tap(switches[dpid], port["id"])
    t_cmd = time.perf_counter()
    wait_until(lambda: monitor.last_change(cookie) is not None, timeout, 0.001,
               f"flows of port {port['id']}")
    wait_until(lambda: port_status(ctl, port["id"]) == "ACTIVE", timeout, 0.005,
               f"port {port['id']} ACTIVE")
    t_active = time.perf_counter()
    wait_idle(ctl)
    local = monitor.last_change(cookie)
    everywhere = max(t for m in monitors.values() if (t := m.last_change(cookie)) is not None)
    seen = monitor.ports_added.get(tap_name(port["id"]), t_cmd)
    assert local is not None
    return Sample(add_port=t_cmd - t0, port_status=seen - t0, local=local - t0,
                  everywhere=everywhere - t0, active=t_active - t0,
                  flows=port_flows(switches[dpid], cookie))


def interrupt_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so that everything started is stopped."""
    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def describe(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"p50 {statistics.median(ms):8.1f} ms  p99 {pct(ms, 0.99):8.1f} ms  "
            f"max {max(ms):8.1f} ms")


@dataclass
class Result:
    ports: int
    samples: list[Sample]


def run_size(args: argparse.Namespace, ports: int, code: str | None, workdir: Path,
             env: dict[str, str]) -> Result:
    print(f"\n{ports:,} ports, {networks_for(ports):,} networks, {SWITCHES} switches; "
          f"controller from {code or 'this tree'}", flush=True)
    with controller_with_cloud(workdir, code, ports, args.taps) as (ctl, cloud):
        print(f"  setup: {cloud.note}", flush=True)
        t0 = time.perf_counter()
        with switches_for(workdir, cloud, env) as switches:
            print(f"  setup: {SWITCHES} switches with {min(ports, args.taps):,} taps in "
                  f"{time.perf_counter() - t0:.1f}s", flush=True)
            print(f"  setup: {connect(ctl, switches)}", flush=True)
            samples: list[Sample] = []
            deadline = time.perf_counter() + args.budget
            with monitors_for(switches) as monitors:
                for i in range(args.samples):
                    if samples and time.perf_counter() > deadline:
                        print(f"  sampling stopped after {args.budget:.0f}s (--budget)")
                        break
                    samples.append(measure_one(ctl, switches, monitors,
                                               cloud.networks[i % len(cloud.networks)],
                                               1 + i % SWITCHES, i))
            report(samples)
            return Result(ports, samples)


def report(samples: list[Sample]) -> None:
    print(f"  {len(samples)} new ports, times from the start of `ovs-vsctl add-port`:")
    for label, values in (
            ("add-port command", [s.add_port for s in samples]),
            ("switch port status", [s.port_status for s in samples]),
            ("flows on its switch", [s.local for s in samples]),
            ("flows on every switch", [s.everywhere for s in samples]),
            ("ACTIVE in the API", [s.active for s in samples]),
            ("flows, from port status", [s.local - s.port_status for s in samples])):
        print(f"    {label:24} {describe(values)}")
    counts = sorted({s.flows for s in samples})
    print(f"    flows per new port on its switch: {', '.join(map(str, counts))}")


def compare(results: list[Result]) -> None:
    if len(results) < 2:
        return
    base = results[0]
    for other in results[1:]:
        for label, get in (("flows on its switch", lambda s: s.local),
                           ("ACTIVE in the API", lambda s: s.active)):
            ratio_50 = (statistics.median(get(s) for s in other.samples)
                        / statistics.median(get(s) for s in base.samples))
            ratio_99 = (pct([get(s) for s in other.samples], 0.99)
                        / pct([get(s) for s in base.samples], 0.99))
            print(f"  ratio {other.ports:,} / {base.ports:,} ports, {label}: "
                  f"p50 {ratio_50:.2f}x, p99 {ratio_99:.2f}x")


def run_tree(args: argparse.Namespace, code: str | None, workdir: Path,
             env: dict[str, str]) -> None:
    results = []
    for ports in args.sizes:
        results.append(run_size(args, ports, code, workdir / f"{ports}", env))
    print(f"\nport-up -> flows, controller from {code or 'this tree'} "
          f"(targets: p50 <= 50 ms, p99 <= 200 ms, ratio <= 1.5)")
    for result in results:
        flows = [s.local for s in result.samples]
        print(f"  {result.ports:>7,} ports: flows on its switch {describe(flows)}")
    compare(results)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="3000,30000",
                    help="comma-separated port counts, measured one after the other")
    ap.add_argument("--samples", type=int, default=50, help="new ports timed per size")
    ap.add_argument("--code", action="append", default=None,
                    help="run the controller from this checkout (repeat to compare trees)")
    ap.add_argument("--budget", type=float, default=150.0,
                    help="seconds of sampling per size at most (a sample started is finished)")
    ap.add_argument("--taps", type=int, default=TAPS_PER_SWITCH * SWITCHES,
                    help="ports plugged on the switches (the others: on hypervisors not run)")
    ap.add_argument("--quick", action="store_true", help="300 ports, 10 samples")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.samples = "300", 10
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    run_each_tree(run_tree, args, "bench-port-latency-")


def run_each_tree(run: Callable[..., object], args: argparse.Namespace, prefix: str) -> None:
    """``run(args, code, workdir)`` in a network namespace of its own for each ``--code``
    tree (or this one), in a work directory removed afterwards unless ``--keep``."""
    interrupt_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    started_at = time.perf_counter()
    try:
        for index, code in enumerate(args.code or [None]):
            in_namespace(run, args, code, workdir / f"tree{index}")
    finally:
        print(f"\n(wall time {time.perf_counter() - started_at:.0f}s)")
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
