"""The agent endpoint under floods: memory, refusals and API latency of a real controller.

    python bench/rpc_flood.py                          # this tree's controller
    python bench/rpc_flood.py --controller-tree DIR    # another checkout's controller
    python bench/rpc_flood.py --tls                    # the endpoint on mutual TLS

Three scenarios, each against a fresh controller process (SQLite, defaults otherwise):

- ``idle``: ``--idle`` connections opened and left silent (spread over 127.0.0.0/8 source
  addresses, so that only the total cap applies): the controller's RSS before and after,
  how many were served and how many refused, whether the API still answers;
- ``burst``: ``--calls`` pipelined ``get_network_info`` on a network of ``--ports`` ports,
  read by the client, while a prober times ``GET /`` every 10 ms: the API's worst and median
  latency during the burst;
- ``nonreading``: ``--clients`` connections each pipelining ``--requests`` requests (about
  150-byte replies) and never reading: the controller's peak RSS, and how many were cut.

The client side uses the shared wire module; ``--controller-tree`` only changes the code the
controller process runs (its PYTHONPATH), so a checkout from before the limits can be
measured with the same client.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ryu_sched.shared.tls import client_context  # noqa: E402
from ryu_sched.shared.wire import encode_request, new_unpacker  # noqa: E402
from tests.support.certs import TestPki  # noqa: E402
from tests.support.controller import ControllerProcess, wait_until  # noqa: E402
from tests.support.simagent import seed_objects  # noqa: E402


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def api_ms(url: str, timeout: float = 30.0) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url + "/", timeout=timeout) as response:
        response.read()
    return (time.perf_counter() - started) * 1000


def stats(ctl: ControllerProcess) -> dict[str, Any]:
    import json

    with urllib.request.urlopen(ctl.url + "/v2.0/agent-scheduler/stats", timeout=30) as r:
        return json.loads(r.read())["stats"]["rpc"]  # type: ignore[no-any-return]


TLS: ssl.SSLContext | None = None   # set by --tls: the agents' client context


def connect(ctl: ControllerProcess, i: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((f"127.{1 + i // 60000}.{(i // 200) % 250 + 1}.{i % 200 + 1}", 0))
    sock.connect((ctl.host, ctl.rpc_port))
    if TLS is not None:
        sock.settimeout(30)
        try:
            sock = TLS.wrap_socket(sock, server_hostname=ctl.host)
        except OSError:   # refused at the cap: closed before the handshake (sock is closed)
            return sock
        sock.settimeout(None)
    return sock


def closed(sock: socket.socket) -> bool:
    """Whether the controller closed it (what it had sent before is read and dropped)."""
    try:
        sock.setblocking(False)
        while sock.recv(1 << 20):
            pass
        return True
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True


OPTIONS: dict[str, Any] = {}   # controller options (--tls adds the endpoint's files)


def controller(workdir: Path, name: str, tree: str | None) -> ControllerProcess:
    ctl = ControllerProcess(workdir / name, OPTIONS)
    saved, cwd = os.environ.get("PYTHONPATH"), os.getcwd()
    if tree:   # python -m puts the working directory first on the path
        os.environ["PYTHONPATH"] = tree
        os.chdir(tree)
    try:
        ctl.start(60)
    finally:
        os.chdir(cwd)
        if tree:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
    return ctl


def idle(args: argparse.Namespace, workdir: Path) -> None:
    ctl = controller(workdir, "idle", args.controller_tree)
    held: list[socket.socket] = []
    try:
        assert ctl.proc is not None
        before = rss_mb(ctl.proc.pid)
        started = time.perf_counter()
        for i in range(args.idle):
            held.append(connect(ctl, i))
        opened = time.perf_counter() - started
        # let the controller accept (or refuse) what is in its backlog
        wait_until(lambda: stats(ctl)["connections_accepted"] >= min(args.idle, 4096), 120,
                   0.5, "connections accepted")
        time.sleep(2)
        refused = sum(closed(s) for s in held)
        after = rss_mb(ctl.proc.pid)
        served = args.idle - refused
        latency = api_ms(ctl.url)
        print(f"  idle: {args.idle} connections opened in {opened:.1f}s: {served} served, "
              f"{refused} refused; RSS {before:.0f} -> {after:.0f} MB "
              f"({(after - before) * 1024 / max(served, 1):.1f} KB per served connection); "
              f"GET / {latency:.1f} ms; alive={ctl.alive()}")
    finally:
        for sock in held:
            sock.close()
        ctl.stop()


def _seed_ports(db_url: str, network_id: str, count: int) -> None:
    from ryu_sched.db import Database, models

    db = Database(db_url)
    try:
        with db.session() as session:
            session.add_all(models.Port(network_id=network_id, device_owner="compute:nova",
                                        mac_address=f"fa:16:3e:01:{i // 256:02x}:{i % 256:02x}")
                            for i in range(count))
    finally:
        db.dispose()


def burst(args: argparse.Namespace, workdir: Path) -> None:
    ctl = controller(workdir, "burst", args.controller_tree)
    try:
        db_url = f"sqlite:///{ctl.workdir / 'state' / 'ryu_sched.sqlite'}"
        (network_id,), _ = seed_objects(db_url, networks=1)
        _seed_ports(db_url, network_id, args.ports)
        quiet = [api_ms(ctl.url) for _ in range(20)]
        sock = connect(ctl, 0)
        done = threading.Event()
        latencies: list[float] = []

        def probe() -> None:
            while not done.is_set():
                latencies.append(api_ms(ctl.url))
                done.wait(0.01)

        prober = threading.Thread(target=probe, daemon=True)
        started = time.perf_counter()
        sock.sendall(b"".join(encode_request(i, "get_network_info", [network_id])
                              for i in range(args.calls)))
        prober.start()
        unpacker = new_unpacker()
        answered = 0
        while answered < args.calls:
            data = sock.recv(1 << 20)
            if not data:
                raise RuntimeError("the controller closed the connection")
            unpacker.feed(data)
            answered += sum(1 for _ in unpacker)
        elapsed = time.perf_counter() - started
        done.set()
        prober.join()
        sock.close()
        print(f"  burst: {args.calls} pipelined get_network_info ({args.ports} ports) in "
              f"{elapsed:.2f}s; GET / during it: {len(latencies)} probes, median "
              f"{statistics.median(latencies):.1f} ms, worst {max(latencies):.1f} ms "
              f"(quiet: median {statistics.median(quiet):.1f} ms)")
    finally:
        ctl.stop()


def nonreading(args: argparse.Namespace, workdir: Path) -> None:
    ctl = controller(workdir, "nonreading", args.controller_tree)
    socks: list[socket.socket] = []
    try:
        assert ctl.proc is not None
        before = rss_mb(ctl.proc.pid)
        payload = b"".join(encode_request(i, "x" * 80, []) for i in range(args.requests))
        senders = []
        for i in range(args.clients):
            sock = connect(ctl, i, rcvbuf=4096)
            socks.append(sock)

            def send(sock: socket.socket = sock) -> None:
                try:
                    sock.sendall(payload)
                except OSError:
                    pass

            senders.append(threading.Thread(target=send, daemon=True))
        for sender in senders:
            sender.start()
        peak = before
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(ctl.proc.pid))
            time.sleep(0.1)
        cut = sum(closed(s) for s in socks)
        latency = api_ms(ctl.url)
        print(f"  nonreading: {args.clients} clients x {args.requests} pipelined requests "
              f"({len(payload) / 1e6:.1f} MB each), never reading: RSS {before:.0f} -> peak "
              f"{peak:.0f} MB over {args.seconds:.0f}s; {cut} connections cut; "
              f"GET / {latency:.1f} ms")
    finally:
        for sock in socks:
            sock.close()
        ctl.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--controller-tree", help="PYTHONPATH of the controller process")
    parser.add_argument("--tls", action="store_true", help="mutual TLS between both sides")
    parser.add_argument("--only", choices=["idle", "burst", "nonreading"], action="append")
    parser.add_argument("--idle", type=int, default=8000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--ports", type=int, default=400)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=40_000)
    parser.add_argument("--seconds", type=float, default=25.0,
                        help="how long the non-reading clients are watched")
    args = parser.parse_args()
    global TLS
    print(f"rpc_flood: controller from {args.controller_tree or ROOT}"
          f"{', mutual TLS' if args.tls else ''}")
    with tempfile.TemporaryDirectory(prefix="ryu-sched-bench-") as tmp:
        if args.tls:
            pki = TestPki(Path(tmp) / "pki")
            server = pki.issue("controller", ips=["127.0.0.1"])
            OPTIONS.update(rpc_tls_cert_file=server.cert_file, rpc_tls_key_file=server.key_file,
                           rpc_tls_ca_file=server.ca_file)
            TLS = client_context(pki.issue("bench-agent"))
        for name, scenario in (("idle", idle), ("burst", burst), ("nonreading", nonreading)):
            if not args.only or name in args.only:
                scenario(args, Path(tmp))


if __name__ == "__main__":
    main()
