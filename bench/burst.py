"""A burst of new VMs: 500 ports created by 20 concurrent clients, their taps plugged at once.

    python bench/burst.py [--ports 3000] [--burst 500] [--clients 20] [--code TREE ...]
    python bench/burst.py --quick          # 300 ports in the cloud, a burst of 100

The cloud is set up as in ``bench/port_latency.py`` (same code): the real controller, ``--ports``
ports on their networks created through the REST API, 6 switches (one private
``ovs-vswitchd`` each, dummy taps) connected, every port ACTIVE, the controller idle. Then
``--clients`` threads create ``--burst`` ports, one ``POST /v2.0/ports`` each, as fast as
the API answers; as each port is created its tap is added to its switch (round robin) by
that switch's own plugging thread (one per host, as Nova's compute service plugs a VIF
once the port exists). Figures, from the first POST:

- the API's rate: ports created per second, and the POSTs' latency;
- *flows on their switches*: until the last flow carrying a burst port's cookie was added
  on that port's switch (``ovs-ofctl monitor`` of every bridge; checked afterwards that every
  burst port has flows there), and on every switch;
- *every port ACTIVE*: until the API lists none of them DOWN (polled every 50 ms);
- per port, from its own ``add-port`` to its flows on its switch (p50/p99), and from the
  switch's own port status for the tap (the monitor's OFPT_PORT_STATUS: OVS's share left
  out) to its flows: the controller's share;
- the ``add-port`` commands' own duration (OVS), and the controller's CPU seconds from the
  first POST until every port is ACTIVE.

``--api-only``: only the POSTs, no switch connected (the REST path's own rate and CPU a port).
``--profile FILE``: py-spy samples of the controller during the burst (collapsed stacks).

Needs root and Open vSwitch; stops everything it started by its own pid, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import code_tree  # noqa: E402

code_tree.use(ROOT)

from bench.port_latency import (  # noqa: E402
    OWNER,
    SWITCHES,
    Monitor,
    add_tap,
    any_down,
    connect,
    controller_with_cloud,
    cpu_ticks,
    created,
    describe,
    monitors_for,
    networks_for,
    run_each_tree,
    switches_for,
    wait_idle,
)
from bench.programmer import BRIDGE, Ovs  # noqa: E402
from ryu_sched.flows.cookies import CookieKind, cookie_for  # noqa: E402
from ryu_sched.shared.vocabulary import tap_name  # noqa: E402
from tests.support.controller import ControllerProcess, wait_until  # noqa: E402


def run_queue_wait(pid: int) -> float:
    """Seconds the process's threads were ready to run but waited for a CPU (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def installed_cookies(ovs: Ovs) -> Counter[int]:
    counts: Counter[int] = Counter()
    for line in ovs.ofctl(BRIDGE, "dump-flows").splitlines():
        start = line.find("cookie=")
        if start >= 0:
            counts[int(line[start + 7:].split(",", 1)[0], 16)] += 1
    return counts


def burst(ctl: ControllerProcess, switches: dict[int, Ovs], monitors: dict[int, Monitor],
          networks: list[str], count: int, clients: int, profile: str | None = None) -> None:
    plug: dict[int, queue.Queue[str | None]] = {d: queue.Queue() for d in switches}
    plugged: dict[str, tuple[int, float]] = {}   # port id -> (switch, when add-port started)
    commands: list[float] = []                     # add-port durations
    posts: list[float] = []
    errors: list[BaseException] = []

    def plugger(dpid: int) -> None:
        while (port_id := plug[dpid].get()) is not None:
            try:
                begin = time.perf_counter()
                plugged[port_id] = (dpid, begin)
                add_tap(switches[dpid], port_id)
                commands.append(time.perf_counter() - begin)
            except Exception as exc:   # reported below, the burst goes on
                errors.append(exc)

    def create(index: int) -> None:
        started_at = time.perf_counter()
        port = created(ctl, "ports", [{"network_id": networks[index % len(networks)],
                                       "device_owner": OWNER, "device_id": f"burst-vm-{index}",
                                       "name": f"burst-{index}"}])[0]
        posts.append(time.perf_counter() - started_at)
        plug[1 + index % SWITCHES].put(port["id"])

    threads = [threading.Thread(target=plugger, args=(d,), daemon=True) for d in switches]
    for thread in threads:
        thread.start()
    assert ctl.proc is not None
    ticks = os.sysconf("SC_CLK_TCK")
    spy = None if profile is None else subprocess.Popen(
        ["py-spy", "record", "--pid", str(ctl.proc.pid), "--rate", "200", "--nonblocking",
         "--format", "raw",
         "--output", profile], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cpu0 = cpu_ticks(ctl.proc.pid)
    waited0 = run_queue_wait(ctl.proc.pid)
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(create, range(count)))
        t_api = time.perf_counter()
    finally:
        for q in plug.values():
            q.put(None)
        for thread in threads:
            thread.join()
    t_plugged = time.perf_counter()
    if errors:
        raise RuntimeError(f"{len(errors)} add-port failures, first: {errors[0]}")
    cookies = {port_id: cookie_for(CookieKind.PORT, port_id) for port_id in plugged}

    def all_flows_seen() -> bool:
        return all(monitors[dpid].last_change(cookies[p]) is not None
                   for p, (dpid, _) in plugged.items())

    wait_until(all_flows_seen, 600, 0.01, f"flows of {count} burst ports")
    wait_until(lambda: not any_down(ctl), 600, 0.05, f"{count} burst ports ACTIVE")
    t_active = time.perf_counter()
    cpu = (cpu_ticks(ctl.proc.pid) - cpu0) / ticks
    waited = run_queue_wait(ctl.proc.pid) - waited0
    if spy is not None:
        spy.send_signal(signal.SIGINT)   # py-spy writes its samples on SIGINT
        spy.wait(60)
    wait_idle(ctl)
    local = {p: monitors[dpid].last_change(cookies[p]) for p, (dpid, _) in plugged.items()}
    everywhere = max(t for m in monitors.values() for c in cookies.values()
                     if (t := m.last_change(c)) is not None)
    installed = {dpid: installed_cookies(ovs) for dpid, ovs in switches.items()}
    missing = [p for p, (dpid, _) in plugged.items() if not installed[dpid][cookies[p]]]
    per_port = [local[p] - when for p, (_, when) in plugged.items()]  # type: ignore[operator]
    from_status = [local[p] - seen for p, (dpid, _) in plugged.items()  # type: ignore[operator]
                   if (seen := monitors[dpid].ports_added.get(tap_name(p))) is not None]
    last_local = max(t for t in local.values() if t is not None)

    print(f"  burst: {count} ports by {clients} concurrent clients (one POST each), taps "
          f"plugged as they were created")
    print(f"    API: {count} ports in {t_api - t0:.2f}s = {count / (t_api - t0):.1f} ports/s; "
          f"POST {describe(posts)}")
    print(f"    last tap plugged        {t_plugged - t0:7.2f}s after the first POST")
    print(f"    flows on their switches {last_local - t0:7.2f}s"
          + (f"  ({len(missing)} ports WITHOUT flows at the end)" if missing else
             "  (every burst port has its flows)"))
    print(f"    flows on every switch   {everywhere - t0:7.2f}s")
    print(f"    every port ACTIVE       {t_active - t0:7.2f}s (API polled every 50 ms)")
    print(f"    per port, its add-port -> its flows: {describe(per_port)}; "
          f"mean {statistics.mean(per_port) * 1000:.0f} ms")
    if from_status:
        print(f"    per port, its switch's port status -> its flows: {describe(from_status)}"
              f" ({len(from_status)} ports)")
    print(f"    add-port commands (OVS): {describe(commands)}")
    print(f"    controller CPU from the first POST to every port ACTIVE: {cpu:.1f} s "
          f"({cpu / (t_active - t0) * 100:.0f}% of one core); ready but waiting for a CPU "
          f"{waited:.1f} s")


def api_only(ctl: ControllerProcess, networks: list[str], count: int, clients: int) -> None:
    """The POSTs alone (no switch connected): the REST path's own rate and CPU."""
    assert ctl.proc is not None
    posts: list[float] = []

    def create(index: int) -> None:
        started_at = time.perf_counter()
        created(ctl, "ports", [{"network_id": networks[index % len(networks)],
                                "device_owner": OWNER, "device_id": f"burst-vm-{index}",
                                "name": f"burst-{index}"}])
        posts.append(time.perf_counter() - started_at)

    cpu0 = cpu_ticks(ctl.proc.pid)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(create, range(count)))
    elapsed = time.perf_counter() - t0
    cpu = (cpu_ticks(ctl.proc.pid) - cpu0) / os.sysconf("SC_CLK_TCK")
    print(f"  API only (no switch): {count} ports by {clients} clients in {elapsed:.2f}s = "
          f"{count / elapsed:.1f} ports/s; POST {describe(posts)}; controller CPU "
          f"{cpu * 1000 / count:.1f} ms a port")


def run_tree(args: argparse.Namespace, code: str | None, workdir: Path,
             env: dict[str, str]) -> None:
    print(f"\nburst on a cloud of {args.ports:,} ports, {networks_for(args.ports):,} "
          f"networks, {SWITCHES} switches; controller from {code or 'this tree'}", flush=True)
    with controller_with_cloud(workdir, code, args.ports, args.ports) as (ctl, cloud):
        print(f"  setup: {cloud.note}", flush=True)
        if args.api_only:
            wait_idle(ctl)
            api_only(ctl, cloud.networks, args.burst, args.clients)
            return
        with switches_for(workdir, cloud, env) as switches:
            print(f"  setup: {connect(ctl, switches)}", flush=True)
            with monitors_for(switches) as monitors:
                burst(ctl, switches, monitors, cloud.networks, args.burst, args.clients,
                      args.profile)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ports", type=int, default=3000, help="ports in the cloud before")
    ap.add_argument("--burst", type=int, default=500, help="ports created in the burst")
    ap.add_argument("--clients", type=int, default=20, help="concurrent API clients")
    ap.add_argument("--code", action="append", default=None,
                    help="run the controller from this checkout (repeat to compare trees)")
    ap.add_argument("--quick", action="store_true", help="300 ports, a burst of 100")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--api-only", action="store_true",
                    help="only the POSTs, no switch: the REST path's rate and CPU a port")
    ap.add_argument("--profile", metavar="FILE",
                    help="sample the controller with py-spy during the burst (collapsed "
                         "stacks to FILE)")
    args = ap.parse_args(argv)
    if args.quick:
        args.ports, args.burst = 300, 100
    run_each_tree(run_tree, args, "bench-burst-")


if __name__ == "__main__":
    main()
