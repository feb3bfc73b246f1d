"""The REST API under load: does one heavy request hold up the others, and what does a page cost?

    python bench/api_load.py [--ports 1000] [--big-mb 60] [--sizes 5000,10000,20000]
    python bench/api_load.py --code /path/to/other/tree     # the controller from another tree

Every figure is taken against the real controller process (SQLite file database). A probe
thread sends ``GET /`` every 10 ms on a keep-alive connection and records its latency; the
figures are its p50/p99/max while something else happens:

- (a) a bulk create of ``--ports`` ports in one POST (they fit in the body limit);
- (b) a ``--big-mb`` MB body sent as fast as the socket takes it, again and again for 3 s:
  refused by the body limit, the sender reports when the 413 arrived and how much it
  managed to send;
- (c) with 5,000 / 10,000 / 20,000 ports inserted into the database before the controller
  starts: ``GET /v2.0/ports?limit=100`` (first page, and a page from a marker halfway), the
  time to page through everything by following ``next`` links, and one unpaged
  ``GET /v2.0/ports`` (with the probe running).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing
import os
import select
import socket
import statistics
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench import code_tree  # noqa: E402
from ryu_sched.db import Database  # noqa: E402
from ryu_sched.db import models as db  # noqa: E402
from tests.support.controller import ControllerProcess  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _probe_loop(host: str, port: int, interval: float, stop: Any, out: Any) -> None:
    samples: list[tuple[float, float]] = []
    failures = 0
    conn = http.client.HTTPConnection(host, port, timeout=60)
    while not stop.is_set():
        start = time.monotonic()
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            failures += response.status != 200
        except (OSError, http.client.HTTPException):
            failures += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
        samples.append((start, time.monotonic() - start))
        stop.wait(interval)
    conn.close()
    out.put((samples, failures))


class Probe:
    """``GET /`` every ``interval`` seconds from another process (so that this one's work,
    such as decoding a large response, does not delay it); latencies with start times."""

    def __init__(self, host: str, port: int, interval: float = 0.01) -> None:
        self._stop = multiprocessing.Event()
        self._out: Any = multiprocessing.Queue()
        self._process = multiprocessing.Process(
            target=_probe_loop, args=(host, port, interval, self._stop, self._out),
            daemon=True)
        self.samples: list[tuple[float, float]] = []
        self.failures = 0

    def start(self) -> None:
        self._process.start()

    def stop(self) -> None:
        self._stop.set()
        self.samples, self.failures = self._out.get(timeout=60)
        self._process.join()

    def between(self, start: float, end: float) -> list[float]:
        return [lat for t, lat in self.samples if start <= t <= end]


def describe(latencies: list[float]) -> str:
    if not latencies:
        return "no samples"
    ms = [x * 1000 for x in latencies]
    return (f"p50 {statistics.median(ms):.1f} ms  p99 {pct(ms, 0.99):.1f} ms  "
            f"max {max(ms):.1f} ms  ({len(ms)} probes)")


def call(ctl: ControllerProcess, method: str, path: str, body: Any = None,
         timeout: float = 600) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(ctl.host, ctl.api_port, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, json.loads(payload) if payload else None


def with_probe(ctl: ControllerProcess, action: Any) -> tuple[Any, float, list[float]]:
    probe = Probe(ctl.host, ctl.api_port)
    probe.start()
    time.sleep(0.3)
    start = time.monotonic()
    result = action()
    end = time.monotonic()
    time.sleep(0.2)
    probe.stop()
    return result, end - start, probe.between(start, end)


# --- (a) bulk create, (b) a huge body ------------------------------------------------------

def bulk_create(ctl: ControllerProcess, count: int) -> None:
    status, net = call(ctl, "POST", "/v2.0/networks", {"network": {"name": "bulk"}})
    assert status == 201, net
    net_id = net["network"]["id"]
    status, sub = call(ctl, "POST", "/v2.0/subnets", {"subnet": {
        "network_id": net_id, "cidr": "10.128.0.0/16", "ip_version": 4}})
    assert status == 201, sub
    body = {"ports": [{"network_id": net_id} for _ in range(count)]}
    size = len(json.dumps(body))
    (status, result), seconds, lat = with_probe(
        ctl, lambda: call(ctl, "POST", "/v2.0/ports", body))
    created = len(result["ports"]) if status == 201 else 0
    print(f"(a) bulk create of {count:,} ports ({size / 1024:.0f} KiB body): status {status}, "
          f"{created:,} created in {seconds:.2f}s")
    print(f"    GET / meanwhile: {describe(lat)}")


def send_huge(ctl: ControllerProcess, size: int) -> str:
    """Send headers and ``size`` bytes as fast as possible, stopping when an answer comes."""
    sock = socket.create_connection((ctl.host, ctl.api_port))
    start = time.monotonic()
    sock.sendall(b"POST /v2.0/networks HTTP/1.1\r\nHost: bench\r\n"
                 b"Content-Type: application/json\r\n"
                 + f"Content-Length: {size}\r\n\r\n".encode())
    piece = b"x" * 65536
    sent = 0
    answer = b""
    answered_after = None
    outcome = "closed"
    sock.setblocking(False)
    try:
        while True:
            readable, writable, _ = select.select([sock], [sock] if sent < size else [], [],
                                                  30)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                if answered_after is None:
                    answered_after = time.monotonic() - start
                answer += data
                continue
            if writable:
                try:
                    sent += sock.send(piece[: size - sent])
                except BlockingIOError:
                    pass
            if not readable and not writable:
                outcome = "timeout"
                break
    except (ConnectionResetError, BrokenPipeError) as exc:
        outcome = type(exc).__name__
    finally:
        sock.close()
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "no answer"
    when = f"{answered_after:.3f}s" if answered_after is not None else "-"
    return (f"{status!r} after {when}, {sent / 1e6:.1f} of {size / 1e6:.0f} MB sent, "
            f"connection {outcome} after {time.monotonic() - start:.2f}s")


def huge_body(ctl: ControllerProcess, megabytes: int, seconds: float = 3.0) -> None:
    """Send the huge body again and again for ``seconds`` (one refusal takes milliseconds)."""
    def repeat() -> tuple[str, int]:
        deadline = time.monotonic() + seconds
        first, count = send_huge(ctl, megabytes * 1_000_000), 1
        while time.monotonic() < deadline:
            send_huge(ctl, megabytes * 1_000_000)
            count += 1
        return first, count

    (outcome, count), _, lat = with_probe(ctl, repeat)
    print(f"(b) {megabytes} MB body: {outcome}")
    print(f"    sent {count} times in a row; GET / meanwhile: {describe(lat)}")


# --- (c) lists ---------------------------------------------------------------------------------

def seed_ports(state: Path, count: int) -> None:
    state.mkdir(parents=True, exist_ok=True)
    database = Database("sqlite:///" + str(state / "ryu_sched.sqlite"))
    database.create_schema()
    net_id, subnet_id = str(uuid.uuid4()), str(uuid.uuid4())
    base = dt.datetime(2024, 1, 1)
    with database.session() as session:
        session.add(db.Network(id=net_id, name="big", physical_network="physnet1",
                               segmentation_id=100))
        session.add(db.Subnet(id=subnet_id, network_id=net_id, cidr="10.0.0.0/16",
                              gateway_ip="10.0.0.1", allocation_pools=[
                                  {"start": "10.0.0.2", "end": "10.0.255.254"}]))
        session.flush()
        ports, allocations = [], []
        for i in range(count):
            port_id = str(uuid.uuid4())
            when = base + dt.timedelta(milliseconds=i)
            ports.append({"id": port_id, "network_id": net_id, "name": f"p{i}",
                          "mac_address": f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:"
                                         f"{i & 255:02x}",
                          "device_owner": "compute:nova", "device_id": str(uuid.uuid4()),
                          "created_at": when, "updated_at": when})
            allocations.append({"port_id": port_id, "subnet_id": subnet_id,
                                "network_id": net_id,
                                "ip_address": f"10.0.{(i + 2) >> 8 & 255}.{(i + 2) & 255}"})
        session.execute(insert(db.Port), ports)
        session.execute(insert(db.IPAllocation), allocations)
    database.dispose()


def timed_get(ctl: ControllerProcess, path: str) -> tuple[float, Any]:
    start = time.monotonic()
    status, body = call(ctl, "GET", path)
    assert status == 200, body
    return time.monotonic() - start, body


def page_everything(ctl: ControllerProcess, limit: int) -> tuple[float, int, int]:
    start = time.monotonic()
    path: str | None = f"/v2.0/ports?limit={limit}"
    seen, pages = 0, 0
    while path:
        _, body = timed_get(ctl, path)
        seen += len(body["ports"])
        pages += 1
        nxt = [link["href"] for link in body.get("ports_links", []) if link["rel"] == "next"]
        path = None
        if nxt:
            parts = urllib.parse.urlsplit(nxt[0])
            path = parts.path + "?" + parts.query
    return time.monotonic() - start, seen, pages


def lists(sizes: list[int], workdir: Path, code: str | None) -> None:
    print("(c) GET /v2.0/ports with N ports in the database")
    print(f"    {'ports':>7} {'first page':>11} {'mid page':>9} {'page all (limit=100)':>22} "
          f"{'per page':>9} {'unpaged':>8}   GET / during unpaged")
    for count in sizes:
        home = workdir / f"list{count}"
        seed_ports(home / "state", count)
        with started(home, code) as ctl:
            firsts = [timed_get(ctl, "/v2.0/ports?limit=100")[0] for _ in range(20)]
            _, body = timed_get(ctl, f"/v2.0/ports?limit={count // 2}&fields=id")
            marker = body["ports"][-1]["id"]
            mids = [timed_get(ctl, f"/v2.0/ports?limit=100&marker={marker}")[0]
                    for _ in range(20)]
            seconds, seen, pages = page_everything(ctl, 100)
            assert seen == count, (seen, count)
            (unpaged, _), _, lat = with_probe(ctl, lambda: timed_get(ctl, "/v2.0/ports"))
            print(f"    {count:>7,} {statistics.median(firsts) * 1000:>8.1f} ms "
                  f"{statistics.median(mids) * 1000:>6.1f} ms {seconds:>9.2f}s ({pages} pages)"
                  f" {seconds / pages * 1000:>6.1f} ms {unpaged:>7.2f}s   {describe(lat)}")


class started:
    """A controller process run from ``code`` (a checkout; default: this tree), stopped on
    exit. ``options`` and ``sections`` as for :class:`ControllerProcess`."""

    def __init__(self, workdir: Path, code: str | None, **kwargs: Any) -> None:
        self.ctl = ControllerProcess(workdir, **kwargs)
        self.tree = Path(code or ROOT).resolve()
        self.scratch = Path(workdir)

    def __enter__(self) -> ControllerProcess:
        saved, cwd = os.environ.get("PYTHONPATH"), os.getcwd()
        # ``python -m`` puts the working directory first on sys.path: start there.
        os.environ.update(code_tree.env_for(self.tree, self.scratch))
        os.chdir(self.tree)
        try:
            self.ctl.start(timeout=120)
        except BaseException:
            self.ctl.stop()
            raise
        finally:
            os.chdir(cwd)
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
        return self.ctl

    def __exit__(self, *exc: object) -> None:
        self.ctl.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ports", type=int, default=1000, help="ports in the bulk create")
    parser.add_argument("--big-mb", type=int, default=60, help="size of the huge body")
    parser.add_argument("--sizes", default="5000,10000,20000",
                        help="port counts for the list figures")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: a,b,c")
    parser.add_argument("--code", default=None,
                        help="PYTHONPATH of the controller process (another tree)")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp:
        workdir = Path(tmp)
        if not {"a", "b"} <= skip:
            with started(workdir / "load", args.code) as ctl:
                _, _, idle = with_probe(ctl, lambda: time.sleep(2))
                print(f"GET / idle: {describe(idle)}")
                if "a" not in skip:
                    bulk_create(ctl, args.ports)
                if "b" not in skip:
                    huge_body(ctl, args.big_mb)
                    _, _, after = with_probe(ctl, lambda: time.sleep(1))
                    print(f"    GET / after it: {describe(after)}")
        if "c" not in skip:
            lists([int(n) for n in args.sizes.split(",") if n], workdir, args.code)


if __name__ == "__main__":
    main()
