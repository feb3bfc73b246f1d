"""Several controllers on one PostgreSQL database: what the cluster costs and what it buys.

    python bench/cluster.py                       # every part
    python bench/cluster.py --part relay          # relay, rest, heartbeats, takeover
    python bench/cluster.py --part takeover --runs 5   # needs root + Open vSwitch

Every part runs on a private PostgreSQL server (tests/support/postgres.py), real controller
processes (tests/support/controller.py) and prints figures, not pass/fail:

- ``relay``: the event relay (PostgreSQL LISTEN/NOTIFY, ryu_sched/cluster/relay.py) between
  two relays in one eventlet process, each on its own engine: latency of one event at a time
  (inline payload, and an event too large for NOTIFY that goes through ``cluster_events``),
  and the rate of a burst. Then end to end across three controllers: a network created on
  one follower until its ``network_bound`` notification reaches an agent connected to the
  other follower (the leader scheduled it in between).
- ``rest``: ports created per second by 30 concurrent clients (each its own network, one
  port per POST, keep-alive), against one controller on SQLite, one on PostgreSQL and three
  on PostgreSQL (clients spread over them).
- ``heartbeats``: ``report_state`` notifications from 3 client processes (agents spread
  over 90 connections) to one controller, then to three; heartbeats ingested per second
  (the controllers' own counters), and whether the leader sees every agent alive.
- ``takeover``: the namespace topology (tests/topology) with three controllers, every switch
  listing all three; VM-to-VM ping across two hosts; the leader is SIGKILLed (or SIGSTOPped,
  then SIGCONTed) and the time until every switch reports a new MASTER is measured
  (``ovs-vsctl list controller``), with the pings lost. See :func:`takeover`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.cluster import ControllerCluster  # noqa: E402
from tests.support.controller import ControllerProcess, wait_until  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402

CLIENTS = 30


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def ms(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (f"p50 {statistics.median(values) * 1e3:.2f} ms  p99 {pct(values, 0.99) * 1e3:.2f} ms"
            f"  max {max(values) * 1e3:.2f} ms  ({len(values)} samples)")


# --- relay ----------------------------------------------------------------------------------

def relay_worker(url: str, count: int, burst: int) -> None:
    """In a process of its own, monkey-patched like the controller."""
    import eventlet

    eventlet.monkey_patch()
    import logging

    from ryu_sched.cluster import EventRelay
    from ryu_sched.db import Database
    from ryu_sched.events import Action, EventBus, PortChanged

    logging.basicConfig(level=logging.WARNING)
    sender_db, receiver_db = Database(url), Database(url)
    sender_db.create_schema()
    sender_bus, receiver_bus = EventBus(), EventBus()
    arrived: dict[str, float] = {}
    got = eventlet.queue.LightQueue()

    def on_remote(event: Any) -> None:
        arrived[event.port_id] = time.perf_counter()
        got.put(event.port_id)

    receiver_bus.subscribe_remote(on_remote)
    sender = EventRelay(sender_db, sender_bus, "sender")
    receiver = EventRelay(receiver_db, receiver_bus, "receiver")
    sender.start()
    receiver.start()
    sender.listening.wait()
    receiver.listening.wait()
    eventlet.sleep(0.5)

    def one_at_a_time(n: int, fixed_ips: int) -> list[float]:
        delays = []
        ips = tuple((f"subnet-{i:04d}-0000-0000-0000-000000000000", f"10.{i // 250}.{i % 250}.1")
                    for i in range(fixed_ips))
        for i in range(n):
            port_id = f"p-{fixed_ips}-{i}"
            started = time.perf_counter()
            sender_bus.publish(PortChanged(Action.CREATE, port_id, "net", fixed_ips=ips))
            while got.get(timeout=10) != port_id:
                pass
            delays.append(arrived[port_id] - started)
        return delays

    small = one_at_a_time(count, 1)
    large = one_at_a_time(max(count // 10, 20), 150)
    started = time.perf_counter()
    for i in range(burst):
        sender_bus.publish(PortChanged(Action.UPDATE, f"b-{i}", "net"))
    last = f"b-{burst - 1}"
    while last not in arrived:
        got.get(timeout=30)
    burst_seconds = arrived[last] - started
    print(json.dumps({"small": small, "large": large, "burst": burst,
                      "burst_seconds": burst_seconds,
                      "by_reference": sender.stats.sent_by_reference}), flush=True)
    sender.stop()
    receiver.stop()


def relay(pg: PostgresCluster, workdir: Path, args: argparse.Namespace) -> None:
    url = pg.create_database("relay")
    out = subprocess.run([sys.executable, __file__, "--relay-worker", url,
                          "--count", str(args.count), "--burst", str(args.burst)],
                         capture_output=True, text=True, timeout=600, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print("relay: LISTEN/NOTIFY between two relays (one eventlet process, two engines)")
    print(f"  one event at a time, inline payload:           {ms(result['small'])}")
    print(f"  one event at a time, 150 fixed IPs (by table): {ms(result['large'])} "
          f"({result['by_reference']} sent by reference)")
    print(f"  burst of {result['burst']:,} events: {result['burst_seconds']:.2f}s "
          f"({result['burst'] / result['burst_seconds']:,.0f} events/s)")
    relay_end_to_end(pg, workdir, args)


def relay_end_to_end(pg: PostgresCluster, workdir: Path, args: argparse.Namespace) -> None:
    from tests.support.simagent import DHCP, Fleet, SimAgent

    url = pg.create_database("e2e")
    options = {"leader_lease_time": 3.0, "agent_down_time": 15,
               "dhcp_agents_per_network": 1, "network_scheduler_driver": "chance"}
    with ControllerCluster(workdir / "relay-e2e", url, 3, options) as cluster:
        leader = cluster.wait_leader()
        f1, f2 = cluster.followers(leader)
        agent = SimAgent(("127.0.0.1", f2.rpc_port), "bench-dhcp", DHCP)
        with Fleet([agent], interval=1.0):
            wait_until(lambda: _agents_alive(leader) == 1, 15, 0.1, "agent known to the leader")
            delays = []
            for i in range(args.e2e_runs):
                before = len(agent.notified("network_bound"))
                started = time.perf_counter()
                _status, body = f1.request("POST", "/v2.0/networks",
                                           {"network": {"name": f"n{i}"}})
                f1.request("POST", "/v2.0/subnets", {"subnet": {
                    "network_id": body["network"]["id"], "ip_version": 4,
                    "cidr": f"10.{i // 250}.{i % 250}.0/24"}})
                wait_until(lambda b=before: len(agent.notified("network_bound")) > b, 10,
                           0.001, "network_bound")
                delays.append(time.perf_counter() - started)
    print("  end to end, 3 controllers: POST network + subnet on follower A -> the leader "
          "schedules it ->")
    print(f"  network_bound at an agent on follower B: {ms(delays)}")


def _agents_alive(controller: ControllerProcess) -> int:
    _status, body = controller.request("GET", "/v2.0/agents")
    return sum(1 for a in body["agents"] if a["alive"])


# --- REST writes ----------------------------------------------------------------------------

def _client(address: tuple[str, int], network_id: str, stop: threading.Event,
            counts: list[int], errors: list[int], index: int) -> None:
    conn = http.client.HTTPConnection(*address, timeout=60)
    body = json.dumps({"port": {"network_id": network_id}}).encode()
    headers = {"Content-Type": "application/json"}
    while not stop.is_set():
        try:
            conn.request("POST", "/v2.0/ports", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 201:
                counts[index] += 1
            else:
                errors[index] += 1
        except (OSError, http.client.HTTPException):
            errors[index] += 1
            conn.close()
            conn = http.client.HTTPConnection(*address, timeout=60)
    conn.close()


def write_rate(controllers: list[ControllerProcess], seconds: float) -> tuple[float, int]:
    networks = []
    for i in range(CLIENTS):
        ctl = controllers[i % len(controllers)]
        _status, net = ctl.request("POST", "/v2.0/networks", {"network": {"name": f"w{i}"}})
        network_id = net["network"]["id"]
        status, sub = ctl.request("POST", "/v2.0/subnets", {"subnet": {
            "network_id": network_id, "ip_version": 4, "cidr": f"10.{i}.0.0/16"}})
        assert status == 201, sub
        networks.append((ctl, network_id))
    stop = threading.Event()
    counts, errors = [0] * CLIENTS, [0] * CLIENTS
    threads = [threading.Thread(target=_client, daemon=True, args=(
        (ctl.host, ctl.api_port), network_id, stop, counts, errors, i))
        for i, (ctl, network_id) in enumerate(networks)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)                       # warm up
    before, started = sum(counts), time.perf_counter()
    time.sleep(seconds)
    done, elapsed = sum(counts) - before, time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join(60)
    return done / elapsed, sum(errors)


def rest(pg: PostgresCluster, workdir: Path, args: argparse.Namespace) -> None:
    print(f"rest: ports/s created by {CLIENTS} concurrent clients (one port per POST, "
          f"{args.seconds:g}s measured)")
    with ControllerProcess(workdir / "rest-sqlite") as ctl:
        rate, errors = write_rate([ctl], args.seconds)
    print(f"  {'1 controller, SQLite:':26s}{rate:8.1f} ports/s  ({errors} errors)")
    for n in (1, 3):
        url = pg.create_database(f"rest{n}")
        with ControllerCluster(workdir / f"rest-pg{n}", url, n,
                               {"leader_lease_time": 3.0}) as cluster:
            cluster.wait_leader()
            rate, errors = write_rate(list(cluster), args.seconds)
        label = f"{n} controller{'s' if n > 1 else ''}, PostgreSQL:"
        print(f"  {label:26s}{rate:8.1f} ports/s  ({errors} errors)")


# --- heartbeats -----------------------------------------------------------------------------

def _heartbeat_driver(port: int, hosts: list[str], connections: int, seconds: float) -> None:
    import msgpack

    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    rounds = []
    for c in range(connections):
        frames = b"".join(msgpack.packb([2, "report_state", [{
            "agent_type": "DHCP agent", "binary": "ryu-sched-dhcp-agent", "host": host,
            "topic": "dhcp_agent", "availability_zone": "nova", "start_flag": False,
            "configurations": {"networks": 0}}]]) for host in hosts[c::connections])
        rounds.append(frames)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for sock, frames in zip(socks, rounds, strict=True):
            sock.sendall(frames)
    for sock in socks:
        sock.close()


def _heartbeats(controller: ControllerProcess) -> int:
    _status, body = controller.request("GET", "/v2.0/agent-scheduler/stats", timeout=30)
    return int(body["stats"]["heartbeats"])


def ingest(controllers: list[ControllerProcess], agents: int, seconds: float) -> float:
    """Heartbeats ingested per second: the controllers' counters from before the drivers
    start until they stop growing (the backlog in the sockets drained) after the drivers
    end. Reading counters while the controllers are saturated would be late and skewed."""
    hosts = [f"bench-{i:05d}" for i in range(agents)]
    drivers = 3
    procs = [multiprocessing.Process(target=_heartbeat_driver, args=(
        controllers[d % len(controllers)].rpc_port, hosts[d::drivers], 30, seconds))
        for d in range(drivers)]
    before = sum(_heartbeats(c) for c in controllers)
    started = time.perf_counter()
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(seconds + 60)
    total, last_change = before, time.perf_counter()
    while True:
        now_total = sum(_heartbeats(c) for c in controllers)
        if now_total == total:
            break
        total, last_change = now_total, time.perf_counter()
        time.sleep(0.3)
    return (total - before) / (last_change - started)


def heartbeats(pg: PostgresCluster, workdir: Path, args: argparse.Namespace) -> None:
    print(f"heartbeats: {args.agents:,} agents, report_state notifications as fast as they "
          f"go from 3 client processes over 90 connections for {args.seconds:g}s")
    for n in (1, 3):
        url = pg.create_database(f"hb{n}")
        with ControllerCluster(workdir / f"hb{n}", url, n,
                               {"leader_lease_time": 3.0, "agent_down_time": 60}) as cluster:
            leader = cluster.wait_leader()
            epoch = ControllerCluster.role(leader)["epoch"]  # type: ignore[index]
            rate = ingest(list(cluster), args.agents, args.seconds)
            def all_alive(leader: ControllerProcess = leader) -> int:
                count = _agents_alive(leader)
                return count if count == args.agents else 0

            alive = wait_until(all_alive, 20, 0.2, "every agent alive on the leader")
            terms = max(r["lease_epoch"] for c in cluster if (r := ControllerCluster.role(c)))
        print(f"  {n} controller{'s' if n > 1 else ' '}: {rate:>10,.0f} heartbeats/s "
              f"ingested; the leader sees {alive:,} agents alive; leader terms during the "
              f"flood: {terms - epoch + 1}")


# --- takeover -------------------------------------------------------------------------------

def _role(controller: ControllerProcess) -> dict[str, Any] | None:
    if not controller.alive():
        return None
    try:
        status, body = controller.request("GET", "/v2.0/agent-scheduler/stats", timeout=2)
    except OSError:
        return None
    return dict(body["stats"]["leadership"]) if status == 200 else None


def _openflow(controller: ControllerProcess) -> dict[str, int]:
    if not controller.alive():
        return {}
    try:
        _status, body = controller.request("GET", "/v2.0/agent-scheduler/stats", timeout=2)
    except OSError:
        return {}
    return dict((body or {}).get("stats", {}).get("openflow", {}))


def takeover(pg: PostgresCluster, workdir: Path, args: argparse.Namespace) -> None:
    """Three controllers in the namespace topology; h1 (vm1) and h2 (vm2) on one network,
    vm1 pinging vm2 every 20 ms. Each run signals the leader and polls, every 20 ms, the
    survivors' ``openflow`` stats until one leads and every switch has granted it MASTER
    (the switches' role replies): the takeover time, from the signal; then every switch's
    Controller table (``ovs-vsctl``) until it shows that master (ovs-vswitchd writes roles
    there only on its next connectivity change, see Host.controller_roles). Then the
    killed controller is restarted (the frozen one resumed) and the next run waits until
    it is a slave on every switch again."""
    from tests.support.lab import CloudLab
    from tests.topology import CONTROLLER_IP, leftovers

    url = pg.create_database("takeover")
    lab = CloudLab(workdir / "takeover", {
        "connection": pg.socket_url(url), "leader_lease_time": args.lease_time,
        "agent_down_time": 15, "rpc_host": CONTROLLER_IP, "rpc_allow_insecure": True},
        controllers=3)
    results: dict[str, list[tuple[float, float, int, int]]] = {"SIGKILL": [], "SIGSTOP": []}
    pool = ThreadPoolExecutor(4)
    with lab:
        h1, h2 = lab.add_host("h1"), lab.add_host("h2")
        hosts = [h1, h2]
        lab.wait_connected(*hosts)
        net, _ = lab.create_tenant_network("bench", "net", "10.0.0.0/24")
        vms = []
        for host, name, ip in ((h1, "vm1", "10.0.0.11"), (h2, "vm2", "10.0.0.12")):
            port = lab.create_port(net, ip, project_id="bench")
            vms.append(lab.topo.add_vm(host, name, port.id, port.mac_address, f"{ip}/24"))
        wait_until(lambda: vms[0].ping("10.0.0.12"), 30, 0.2, "vm1 -> vm2")

        def target(c: ControllerProcess) -> str:
            return f"tcp:{CONTROLLER_IP}:{c.of_port}"

        def leader() -> ControllerProcess:
            def one() -> ControllerProcess | None:
                found = [c for c in lab.controllers if (r := _role(c)) and r["leader"]]
                return found[0] if len(found) == 1 else None
            return wait_until(one, 30, 0.1, "one leader")  # type: ignore[no-any-return]

        def all_roles() -> list[dict[str, str]]:
            return list(pool.map(lambda h: h.controller_roles(), hosts))

        def settled(current: ControllerProcess) -> bool:
            roles = all_roles()
            return all(r.get(target(c)) == ("master" if c is current else "slave")
                       for r in roles for c in lab.controllers)

        print(f"takeover: 3 controllers, lease {args.lease_time:g}s, 2 switches, vm1 -> vm2 "
              f"ping every 20 ms")
        for sig in (signal.SIGKILL, signal.SIGSTOP):
            for run in range(args.runs):
                old = leader()
                wait_until(lambda o=old: settled(o), 30, 0.1, "roles settled")
                lab.use(old)
                pinger = vms[0].start_continuous_ping("10.0.0.12", interval=0.02)
                pinger.wait_for_replies(25)
                assert old.proc is not None
                started = time.monotonic()
                if sig == signal.SIGKILL:
                    old.stop(signal.SIGKILL)
                else:
                    old.proc.send_signal(signal.SIGSTOP)

                def confirmed(o: ControllerProcess = old) -> bool:
                    return any(_openflow(c).get("programmed_switches") == len(hosts)
                               and (_role(c) or {}).get("leader")
                               for c in lab.controllers if c is not o)

                def visible(o: ControllerProcess = old) -> bool:
                    masters = [[t for t, r in roles.items() if r == "master"]
                               for roles in all_roles()]
                    return all(len(m) == 1 and m[0] != target(o) for m in masters)

                wait_until(confirmed, 60, 0.02, "a new master on every switch")
                took = time.monotonic() - started
                wait_until(visible, 60, 0.02, "the new master in the Controller tables")
                seen = time.monotonic() - started
                received = pinger.received
                pinger.wait_for_replies(received + 50)
                stats = pinger.stop()
                results[sig.name].append((took, seen, stats.lost, stats.sent))
                print(f"  {sig.name} run {run + 1}: every switch granted MASTER to the new "
                      f"leader after {took:.2f}s (in ovsdb after {seen:.2f}s); ping "
                      f"{stats.lost}/{stats.sent} lost", flush=True)
                if sig == signal.SIGKILL:
                    old.start()
                    for host in hosts:
                        host.kick_target(target(old))
                else:
                    old.proc.send_signal(signal.SIGCONT)
                new = leader()
                wait_until(lambda n=new: settled(n), 30, 0.1, "back to one master, 2 slaves")
    for name, runs in results.items():
        times, seen = [r[0] for r in runs], [r[1] for r in runs]
        print(f"  {name}: takeover median {statistics.median(times):.2f}s max "
              f"{max(times):.2f}s (ovsdb: median {statistics.median(seen):.2f}s max "
              f"{max(seen):.2f}s) over {len(runs)} runs; pings lost "
              f"{sum(r[2] for r in runs)}/{sum(r[3] for r in runs)}")
    left = leftovers(lab.prefix)
    if left:
        print("leftovers: " + "; ".join(left))


PARTS: dict[str, Callable[[PostgresCluster, Path, argparse.Namespace], None]] = {
    "relay": relay, "rest": rest, "heartbeats": heartbeats, "takeover": takeover}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=500, help="relay: events one by one")
    parser.add_argument("--burst", type=int, default=10000, help="relay: events in a burst")
    parser.add_argument("--e2e-runs", type=int, default=50)
    parser.add_argument("--agents", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3, help="takeover: runs per signal")
    parser.add_argument("--lease-time", type=float, default=3.0)
    parser.add_argument("--relay-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relay_worker:
        relay_worker(args.relay_worker, args.count, args.burst)
        return
    parts = list(PARTS) if args.part == "all" else [args.part]
    with tempfile.TemporaryDirectory(prefix="ryu-sched-bench-cluster-") as tmp, \
            PostgresCluster() as pg:
        for part in parts:
            PARTS[part](pg, Path(tmp), args)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
