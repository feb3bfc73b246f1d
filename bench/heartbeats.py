"""Heartbeat ingest: the registry's batched path against a commit-per-heartbeat baseline.

    python bench/heartbeats.py --agents 1000
    python bench/heartbeats.py --agents 10000 --seconds 5

For each mode a server process runs the real RPC endpoint (``ryu_sched.rpc``) on the eventlet
hub, pinned to one CPU, over a SQLite file database:

- ``registry``: the real :class:`RegistryComponent` (heartbeats recorded in memory, flushed in
  one transaction every ``heartbeat_flush_interval``);
- ``baseline``: the same endpoint, but ``report_state`` loads the agent row and commits the
  new heartbeat time for every heartbeat, as the systems we replace do.

The client (this process, pinned to another CPU) keeps every connection busy with pipelined
``report_state`` requests (``--window`` rounds in flight per connection, one request per
agent per round) and counts responses. Figures: heartbeats ingested per second (server
counter over the measured interval), server-side handling latency per frame (decode excluded:
dispatch + registry, sampled), and the client round-trip of one round.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ryu_sched.shared.client import RpcClient  # noqa: E402
from ryu_sched.shared.wire import RESPONSE, encode_request, new_unpacker  # noqa: E402

# --- server side ---------------------------------------------------------------------------

def serve(mode: str, port: int, db_path: str, flush_interval: float) -> None:
    import logging

    import eventlet

    from ryu_sched.config import Settings
    from ryu_sched.db import Database, models
    from ryu_sched.registry.component import RegistryComponent
    from ryu_sched.resources.agent_scheduler import DhcpPorts
    from ryu_sched.rpc import Dispatcher, RpcLimits, RpcServer, RpcStats
    from ryu_sched.services import Services

    logging.basicConfig(level=logging.WARNING)
    settings = Settings(connection=f"sqlite:///{db_path}", rpc_host="127.0.0.1", rpc_port=port,
                        agent_down_time=60, heartbeat_flush_interval=flush_interval)
    db = Database(settings.connection)
    db.create_schema()
    services = Services(settings=settings, db=db)
    samples: list[float] = []
    counter = {"heartbeats": 0}

    class TimedDispatcher(Dispatcher):
        """Samples the handling time of every 16th frame."""

        _n = 0

        def handle(self, conn: Any, frame: Any) -> bytes | None:
            self._n += 1
            if self._n & 15:
                return super().handle(conn, frame)
            started = time.perf_counter()
            result = super().handle(conn, frame)
            samples.append(time.perf_counter() - started)
            return result

    def bench_stats(conn: Any, params: list[Any]) -> dict[str, Any]:
        ordered = sorted(samples)
        samples.clear()

        def pick(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6 if ordered \
                else 0.0

        return {"heartbeats": counter["heartbeats"] + (component.registry.heartbeats
                                                        if component else 0),
                "p50_us": pick(0.50), "p99_us": pick(0.99), "samples": len(ordered)}

    component = None
    if mode == "registry":
        component = RegistryComponent(services, DhcpPorts(services), serve_rpc=False)
        component.start()
        methods = component.agent_rpc.methods()
        on_close = component.registry.connection_closed
    else:
        def report_state_commit(conn: Any, params: list[Any]) -> Any:
            state = params[0]
            now = models.utcnow()
            with db.session() as session:
                row = session.query(models.Agent).filter_by(
                    agent_type=state["agent_type"], host=state["host"]).one_or_none()
                if row is None:
                    row = models.Agent(agent_type=state["agent_type"], host=state["host"],
                                       binary=state.get("binary", ""),
                                       topic=state.get("topic", ""),
                                       configurations=state.get("configurations") or {})
                    session.add(row)
                    status = "registered"
                else:
                    status = "alive"
                    row.configurations = state.get("configurations") or {}
                row.heartbeat_timestamp = now
                session.flush()
                agent_id = row.id
            counter["heartbeats"] += 1
            return {"status": status, "agent_id": agent_id}

        methods = {"report_state": report_state_commit}
        on_close = None
    methods = {**methods, "bench_stats": bench_stats}
    dispatcher = TimedDispatcher(methods, RpcStats())
    # the production limits, except the connection caps: every bench agent is on loopback
    limits = RpcLimits(max_connections=100_000, max_connections_per_peer=100_000)
    server = RpcServer("127.0.0.1", port, dispatcher, on_close=on_close, limits=limits)
    server.start()
    print("READY", flush=True)
    while True:
        eventlet.sleep(3600)


# --- client side ---------------------------------------------------------------------------

class Conn:
    def __init__(self, port: int, agents: list[int]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.agents = agents
        self.unpacker = new_unpacker()
        self.pending = 0           # responses outstanding for the oldest round
        self.sent: collections.deque[float] = collections.deque()
        self.round = b"".join(_frame(i, a, start_flag=False) for i, a in enumerate(agents))
        self.first = b"".join(_frame(i, a, start_flag=True) for i, a in enumerate(agents))


def _frame(msgid: int, agent: int, start_flag: bool) -> bytes:
    dhcp = agent % 2 == 0
    state = {"agent_type": "DHCP agent" if dhcp else "L3 agent",
             "binary": "ryu-sched-dhcp-agent" if dhcp else "ryu-sched-l3-agent",
             "host": f"bench-host-{agent:05d}", "topic": "dhcp_agent" if dhcp else "l3_agent",
             "availability_zone": "nova", "start_flag": start_flag,
             "configurations": {"datapath_id": f"{agent + 1:016x}", "networks": agent % 7,
                                "ports": agent % 31, **({} if dhcp else
                                                        {"external_port": "ext0"})}}
    return encode_request(msgid, "report_state", [state])


def call(port: int, method: str) -> Any:
    client = RpcClient("127.0.0.1", port, name="bench").open(30)
    try:
        return client.call(method, timeout=30)
    finally:
        client.close()


def drive(port: int, agents: int, connections: int, seconds: float,
          window: int) -> dict[str, Any]:
    conns = [Conn(port, list(range(c, agents, connections))) for c in range(connections)]
    # registration round (start_flag), not measured
    for conn in conns:
        conn.sock.sendall(conn.first)
    for conn in conns:
        expected = len(conn.agents)
        while expected > 0:
            conn.unpacker.feed(conn.sock.recv(1 << 20))
            expected -= sum(1 for frame in conn.unpacker if frame[0] == RESPONSE)
    time.sleep(0.2)
    selector = selectors.DefaultSelector()
    for conn in conns:
        selector.register(conn.sock, selectors.EVENT_READ, conn)
    before = call(port, "bench_stats")["heartbeats"]
    started = time.perf_counter()
    end = started + seconds
    for conn in conns:
        now = time.perf_counter()
        for _ in range(window):
            conn.sock.sendall(conn.round)
            conn.sent.append(now)
        conn.pending = len(conn.agents)
    rtts: list[float] = []
    received = 0
    while True:
        now = time.perf_counter()
        if now >= end and all(not c.sent for c in conns):
            break
        if now >= end + 30:
            break
        for key, _ in selector.select(timeout=0.5):
            conn = key.data
            data = conn.sock.recv(1 << 20)
            if not data:
                raise RuntimeError("server closed a connection")
            conn.unpacker.feed(data)
            n = sum(1 for frame in conn.unpacker if frame[0] == RESPONSE)
            received += n
            conn.pending -= n
            now = time.perf_counter()
            while conn.pending <= 0 and conn.sent:
                rtts.append(now - conn.sent.popleft())
                conn.pending += len(conn.agents)
                if now < end:
                    conn.sock.sendall(conn.round)
                    conn.sent.append(now)
            if not conn.sent:
                conn.pending = 0
    elapsed = time.perf_counter() - started
    stats = call(port, "bench_stats")
    for conn in conns:
        conn.sock.close()
    rtts.sort()

    def pct(q: float) -> float:
        return rtts[min(len(rtts) - 1, int(q * len(rtts)))] * 1e3 if rtts else 0.0

    return {"ingested": stats["heartbeats"] - before, "received": received,
            "seconds": elapsed, "rate": (stats["heartbeats"] - before) / elapsed,
            "p50_us": stats["p50_us"], "p99_us": stats["p99_us"],
            "rtt_p50_ms": pct(0.5), "rtt_p99_ms": pct(0.99)}


def run_mode(mode: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from tests.support.controller import free_port

    port = free_port()
    db_path = workdir / f"{mode}.sqlite"
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode, "--port", str(port), "--db", str(db_path),
         "--flush-interval", str(args.flush_interval)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
            cpus = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(server.pid, {cpus[0]})
            os.sched_setaffinity(0, set(cpus[1:]))
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"{mode} server did not start: {line!r}")
        seconds = args.seconds if mode == "registry" else args.baseline_seconds
        # the baseline drains slowly: one round in flight is enough to keep it saturated
        window = args.window if mode == "registry" else 1
        return drive(port, args.agents, min(args.connections, args.agents), seconds, window)
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    faulthandler.dump_traceback_later(600, exit=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=1000,
                        help="TCP connections (agents are spread over them)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=4, help="rounds in flight per connection")
    parser.add_argument("--flush-interval", type=float, default=1.0)
    parser.add_argument("--serve", choices=["registry", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db, args.flush_interval)
        return
    with tempfile.TemporaryDirectory(prefix="ryu-sched-bench-") as tmp:
        print(f"heartbeats: {args.agents} agents over {min(args.connections, args.agents)} "
              f"connections, window {args.window} rounds, server pinned to one CPU, "
              f"SQLite file database")
        results = {}
        for mode in ("registry", "baseline"):
            r = run_mode(mode, args, Path(tmp))
            results[mode] = r
            print(f"  {mode:9s} {r['rate']:>10,.0f} heartbeats/s ingested "
                  f"({r['ingested']:,} in {r['seconds']:.1f}s); handling p50 "
                  f"{r['p50_us']:.1f} us p99 {r['p99_us']:.1f} us; round trip p50 "
                  f"{r['rtt_p50_ms']:.2f} ms p99 {r['rtt_p99_ms']:.2f} ms")
        ratio = results["registry"]["rate"] / max(results["baseline"]["rate"], 1e-9)
        print(f"  ratio registry/baseline: {ratio:.1f}x")


if __name__ == "__main__":
    main()
