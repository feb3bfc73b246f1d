"""The agent endpoint under attack, against the real controller process.

Each test is the attack: connection floods beyond the caps and beyond the file descriptor
limit, a client that pipelines and never reads, oversize frames, idle and slow connections,
agents without (valid) client certificates, and configurations that would expose the endpoint.
The REST API must keep answering throughout, and every refusal is counted.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ryu_sched.shared.tls import TlsFiles, client_context
from ryu_sched.shared.wire import RESPONSE, encode_request, new_unpacker
from tests.support.certs import TestPki
from tests.support.controller import ControllerProcess, wait_until
from tests.support.simagent import Disconnected, Fleet, SimAgent, http, seed_objects

pytestmark = pytest.mark.integration


# --- helpers ---------------------------------------------------------------------------------

def rpc_stats(ctl: ControllerProcess) -> dict[str, int]:
    status, body = http(f"{ctl.url}/v2.0/agent-scheduler/stats")
    assert status == 200, body
    return body["stats"]["rpc"]  # type: ignore[no-any-return]


def api_answers(ctl: ControllerProcess) -> None:
    status, body = http(ctl.url + "/", timeout=10)
    assert status == 200 and body["versions"][0]["id"] == "v2.0"


def raw_connection(ctl: ControllerProcess, source: str = "127.0.0.1",
                   rcvbuf: int | None = None) -> socket.socket:
    """A TCP connection from ``source`` (any 127.0.0.0/8 address is this machine)."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.connect((ctl.host, ctl.rpc_port))
    return sock


def closed_by_server(sock: socket.socket, timeout: float = 15.0) -> bool:
    """Read (and drop) until the server closes: True, or False if still open at timeout."""
    sock.settimeout(timeout)
    try:
        while sock.recv(1 << 20):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    except TimeoutError:
        return False
    return True


def answers_ping(sock: socket.socket, msgid: int = 1) -> bool:
    sock.sendall(encode_request(msgid, "ping", []))
    sock.settimeout(10)
    unpacker = new_unpacker()
    while True:
        data = sock.recv(65536)
        if not data:
            return False
        unpacker.feed(data)
        for frame in unpacker:
            if frame[0] == RESPONSE and frame[1] == msgid:
                return bool(frame[3] == "pong")


def rpc(ctl: ControllerProcess) -> tuple[str, int]:
    return (ctl.host, ctl.rpc_port)


@contextlib.contextmanager
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    try:
        yield held
    finally:
        for sock in held:
            sock.close()


# --- connection caps -------------------------------------------------------------------------

def test_connections_beyond_the_caps_are_refused_while_the_api_answers(tmp_path: Path) -> None:
    options = {"rpc_max_connections": 30, "rpc_max_connections_per_peer": 20}
    with ControllerProcess(tmp_path / "ctl", options) as ctl, sockets() as held:
        held += [raw_connection(ctl, "127.0.0.2") for _ in range(20)]
        wait_until(lambda: rpc_stats(ctl)["connections_open"] == 20, 10)
        # one address at its cap: the next connection from it is closed at once ...
        extra = raw_connection(ctl, "127.0.0.2")
        assert closed_by_server(extra)
        assert rpc_stats(ctl)["refused_peer_limit"] == 1
        # ... while other addresses are served
        agent = SimAgent(rpc(ctl), "survivor").connect()
        assert agent.report_state()["status"] == "registered"
        held += [raw_connection(ctl, "127.0.0.3") for _ in range(9)]
        wait_until(lambda: rpc_stats(ctl)["connections_open"] == 30, 10)
        # the endpoint is full: a new agent is refused, and knows it
        with pytest.raises(Disconnected, match="refused"):
            SimAgent(rpc(ctl), "latecomer").connect()
        # a flood beyond the cap: every connection closed at once, the API keeps answering
        for _ in range(3):
            flood = [raw_connection(ctl, "127.0.0.4") for _ in range(100)]
            api_answers(ctl)
            assert all(closed_by_server(sock) for sock in flood)
            for sock in flood:
                sock.close()
        stats = rpc_stats(ctl)
        assert stats["refused_connection_limit"] >= 301
        assert stats["connections_open"] == 30
        # the established agent was never disturbed
        assert agent.report_state()["status"] == "alive"
        for sock in held:
            sock.close()
        held.clear()
        wait_until(lambda: rpc_stats(ctl)["connections_open"] == 1, 10)
        late = SimAgent(rpc(ctl), "latecomer").connect()
        assert late.report_state()["status"] == "registered"
        late.close()
        agent.close()


def test_a_low_fd_limit_and_a_flood_leave_api_and_rpc_answering(tmp_path: Path) -> None:
    """At 200 descriptors the endpoint keeps 64 for the rest of the process: a flood of 400
    connections fills the RPC side only, and the API's listener survives."""
    with ControllerProcess(tmp_path / "ctl", {"rpc_max_connections": 4096},
                           nofile=200) as ctl, sockets() as flood:
        assert "at most 136 connections" in ctl.log_text()
        agent = SimAgent(rpc(ctl), "survivor").connect()
        agent.report_state()
        flood += [raw_connection(ctl, f"127.0.1.{1 + i // 100}") for i in range(400)]
        wait_until(lambda: rpc_stats(ctl)["connections_open"] == 136, 15)
        for _ in range(20):
            api_answers(ctl)
        assert agent.report_state()["status"] == "alive"
        assert rpc_stats(ctl)["refused_connection_limit"] >= 400 - 135
        for sock in flood:
            sock.close()
        flood.clear()
        wait_until(lambda: rpc_stats(ctl)["connections_open"] == 1, 15)
        api_answers(ctl)
        fresh = SimAgent(rpc(ctl), "after-the-flood").connect()
        assert fresh.report_state()["status"] == "registered"
        fresh.close()
        agent.close()
        assert ctl.alive()


FD_SERVER = """
import os, resource, sys
import eventlet
from ryu_sched.rpc import Dispatcher, RpcServer, RpcStats

resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
stats = RpcStats()
hogs = []

def hog(conn, params):
    while True:
        try:
            hogs.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            return len(hogs)

def free(conn, params):
    while hogs:
        os.close(hogs.pop())
    return True

methods = {"ping": lambda c, p: "pong", "stats": lambda c, p: stats.as_dict(),
           "hog": hog, "free": free}
server = RpcServer("127.0.0.1", 0, Dispatcher(methods, stats))
server.start()
print(server.port, flush=True)
while True:
    eventlet.sleep(3600)
"""


def test_accept_errors_out_of_descriptors_back_off_and_the_listener_stays(
        tmp_path: Path) -> None:
    """The endpoint alone, its process out of descriptors (held by something else): accept
    fails with EMFILE, is counted and retried; once descriptors are free the waiting
    connection is served."""
    proc = subprocess.Popen([sys.executable, "-c", FD_SERVER], stdout=subprocess.PIPE,
                            stderr=open(tmp_path / "server.log", "wb"), text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                [str(Path(__file__).resolve().parents[2]),
                                 os.environ.get("PYTHONPATH", "")])})
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        control = SimAgent(("127.0.0.1", port), "control").connect()
        assert control.call("hog") > 0
        waiting = socket.create_connection(("127.0.0.1", port))   # in the backlog
        wait_until(lambda: control.call("stats")["accept_errors"] >= 3, 15,
                   message="accept errors counted")
        assert control.call("ping") == "pong"      # established connections still served
        assert control.call("free") is True
        assert answers_ping(waiting)
        assert control.call("stats")["connections_accepted"] == 2
        waiting.close()
        control.close()
        assert "EMFILE" in (tmp_path / "server.log").read_text() or \
            "Too many open files" in (tmp_path / "server.log").read_text()
    finally:
        proc.kill()
        proc.wait()


# --- slow, silent, oversize ----------------------------------------------------------------

def test_a_client_that_pipelines_and_never_reads_is_cut(tmp_path: Path) -> None:
    options = {"rpc_write_timeout": 1.0, "rpc_max_inflight": 8}
    with ControllerProcess(tmp_path / "ctl", options) as ctl:
        agent = SimAgent(rpc(ctl), "bystander").connect()
        agent.report_state()
        # ~150-byte error replies to 100-byte requests: 6 MB of replies fill the kernel's
        # buffers several times over; the client's receive window is kept small
        method = "x" * 80
        burst = b"".join(encode_request(i, method, []) for i in range(40_000))
        sock = raw_connection(ctl, rcvbuf=4096)
        sender_done = threading.Event()

        def send() -> None:
            try:
                sock.sendall(burst)
            except OSError:
                pass
            sender_done.set()

        threading.Thread(target=send, daemon=True).start()
        wait_until(lambda: rpc_stats(ctl)["connections_closed_slow"] == 1, 30,
                   message="the non-reading client cut")
        assert sender_done.wait(15)       # the server stopped reading it, then closed it
        stats = rpc_stats(ctl)
        assert stats["inflight_waits"] >= 1
        assert stats["unknown_methods"] < 40_000   # it was not read to the end
        assert closed_by_server(sock)
        sock.close()
        api_answers(ctl)
        assert agent.report_state()["status"] == "alive"
        agent.close()


def test_an_oversize_frame_closes_its_connection(tmp_path: Path) -> None:
    with ControllerProcess(tmp_path / "ctl", {"rpc_max_frame_size": 65536}) as ctl:
        fits = raw_connection(ctl)
        fits.sendall(encode_request(1, "get_hosted_networks", ["h" * 60_000]))
        unpacker = new_unpacker()
        fits.settimeout(10)
        while not (frames := list(unpacker)):
            unpacker.feed(fits.recv(65536))
        assert frames[0][:3] == [RESPONSE, 1, None]
        fits.close()
        for size in (70_000, 10_000_000):
            sock = raw_connection(ctl)
            try:
                sock.sendall(encode_request(2, "get_hosted_networks", ["h" * size]))
            except OSError:
                pass      # closed while sending
            assert closed_by_server(sock)
            sock.close()
        stats = rpc_stats(ctl)
        assert stats["connections_closed_oversize"] == 2
        assert stats["connections_closed_undecodable"] == 0


def test_idle_and_slow_connections_are_closed_heartbeating_agents_are_not(
        tmp_path: Path) -> None:
    options = {"rpc_idle_timeout": 1.0, "rpc_read_timeout": 1.0, "agent_down_time": 5}
    with ControllerProcess(tmp_path / "ctl", options) as ctl:
        agents = [SimAgent(rpc(ctl), f"busy-{i}") for i in range(3)]
        with Fleet(agents, interval=0.2):
            silent = raw_connection(ctl)
            assert closed_by_server(silent)
            silent.close()
            # a frame that never completes, even though bytes keep coming (slowloris)
            slow = raw_connection(ctl)
            frame = encode_request(1, "ping", ["p" * 1000])
            slow.sendall(frame[:10])
            slow.settimeout(0.2)
            sent, closed = 10, False

            def trickle() -> bool:
                nonlocal sent, closed
                try:
                    if not slow.recv(100):
                        closed = True
                        return True
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    closed = True
                    return True
                try:
                    slow.sendall(frame[sent:sent + 1])
                except OSError:
                    closed = True
                    return True
                sent += 1
                return False

            wait_until(trickle, 15, 0.0, "the slow frame's connection closed")
            assert closed and sent < len(frame)
            slow.close()
            stats = rpc_stats(ctl)
            assert stats["connections_closed_idle"] == 1
            assert stats["connections_closed_read_timeout"] == 1
            assert all(a.connected for a in agents)
            assert all(a.report_state()["status"] == "alive" for a in agents)


# --- mutual TLS ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_ctl(pki: TestPki, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ControllerProcess]:
    server = pki.issue("controller", dns=["localhost"], ips=["127.0.0.1"])
    options = {"rpc_tls_cert_file": server.cert_file, "rpc_tls_key_file": server.key_file,
               "rpc_tls_ca_file": server.ca_file, "agent_down_time": 5}
    with ControllerProcess(tmp_path_factory.mktemp("tls") / "ctl", options) as proc:
        yield proc


def test_an_agent_with_a_valid_certificate_heartbeats(pki: TestPki,
                                                      tls_ctl: ControllerProcess) -> None:
    files = pki.issue("tls-host-1")
    agent = SimAgent(rpc(tls_ctl), "tls-host-1", ssl_context=client_context(files)).connect()
    try:
        assert agent.report_state()["status"] == "registered"
        status, body = http(f"{tls_ctl.url}/v2.0/agents?host=tls-host-1")
        assert status == 200 and body["agents"][0]["alive"] is True
        with Fleet([agent], interval=0.2):   # heartbeats as notifications, then closes
            wait_until(lambda: rpc_stats(tls_ctl)["notifications"] >= 3, 10)
            assert agent.report_state()["status"] == "alive"
    finally:
        agent.close()


def _no_certificate_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca_file)
    return context


@pytest.mark.parametrize("client", ["no certificate", "other CA", "plain TCP"])
def test_agents_without_a_valid_client_certificate_cannot_connect(
        client: str, pki: TestPki, tls_ctl: ControllerProcess, tmp_path: Path) -> None:
    before = rpc_stats(tls_ctl)["refused_tls"]
    context: Any
    if client == "no certificate":
        context = _no_certificate_context(pki.ca_cert.as_posix())
    elif client == "other CA":
        rogue = TestPki(tmp_path / "rogue", name="rogue CA").issue("tls-host-1")
        # trusts the real CA (so the server's certificate passes), presents a rogue one
        context = client_context(TlsFiles(rogue.cert_file, rogue.key_file,
                                          pki.ca_cert.as_posix()))
    else:
        context = None
    agent = SimAgent(rpc(tls_ctl), "intruder", ssl_context=context)
    with pytest.raises(Disconnected):
        agent.connect(timeout=2.0)
    agent.close()
    wait_until(lambda: rpc_stats(tls_ctl)["refused_tls"] == before + 1, 15,
               message="the handshake refused and counted")
    status, body = http(f"{tls_ctl.url}/v2.0/agents?host=intruder")
    assert status == 200 and body["agents"] == []


def test_an_agent_refuses_a_controller_its_ca_did_not_sign(
        tls_ctl: ControllerProcess, tmp_path: Path) -> None:
    rogue = TestPki(tmp_path / "rogue", name="rogue CA").issue("tls-host-2")
    agent = SimAgent(rpc(tls_ctl), "tls-host-2", ssl_context=client_context(rogue))
    with pytest.raises(Disconnected, match="certificate verify failed"):
        agent.connect(timeout=2.0)
    agent.close()


# --- configurations that would expose the endpoint -----------------------------------------

@pytest.mark.parametrize(("options", "message"), [
    ({"rpc_host": "0.0.0.0"}, "is not a loopback address"),
    ({"rpc_tls_cert_file": "/nonexistent.pem"}, "missing: rpc_tls_key_file, rpc_tls_ca_file"),
])
def test_the_controller_refuses_to_start_with_an_exposed_or_broken_endpoint(
        tmp_path: Path, options: dict[str, Any], message: str) -> None:
    ctl = ControllerProcess(tmp_path / "ctl", options)
    with pytest.raises(RuntimeError, match="controller exited"):
        ctl.start(timeout=30)
    assert message in ctl.log_text()
    ctl.stop()


def test_unreadable_tls_files_are_reported_at_start(tmp_path: Path, pki: TestPki) -> None:
    server = pki.issue("controller-2")
    ctl = ControllerProcess(tmp_path / "ctl", {
        "rpc_tls_cert_file": server.cert_file, "rpc_tls_key_file": "/nonexistent.key",
        "rpc_tls_ca_file": server.ca_file})
    with pytest.raises(RuntimeError, match="controller exited"):
        ctl.start(timeout=30)
    assert "cannot load certificate" in ctl.log_text()
    ctl.stop()


# --- a burst of expensive calls does not freeze the process ---------------------------------

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


def test_a_pipelined_burst_of_expensive_calls_leaves_room_for_the_api(tmp_path: Path) -> None:
    """300 pipelined get_network_info on a 400-port network take seconds of work: the API
    must be served in between (the stats it returns show the burst half done), not after."""
    with ControllerProcess(tmp_path / "ctl") as ctl:
        db_url = f"sqlite:///{ctl.workdir / 'state' / 'ryu_sched.sqlite'}"
        (network_id,), _ = seed_objects(db_url, networks=1)
        _seed_ports(db_url, network_id, 400)
        calls = 300
        base = rpc_stats(ctl)["requests"]
        sock = raw_connection(ctl)
        answers: list[Any] = []

        def read() -> None:
            unpacker = new_unpacker()
            sock.settimeout(120)
            while len(answers) < calls:
                data = sock.recv(1 << 20)
                if not data:
                    return
                unpacker.feed(data)
                answers.extend(unpacker)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        sock.sendall(b"".join(encode_request(i, "get_network_info", [network_id])
                              for i in range(calls)))
        seen = wait_until(lambda: [n for n in [rpc_stats(ctl)["requests"] - base] if n > 0],
                          60, 0.01, "the burst started")
        assert seen[0] < calls, "the API was only served once the whole burst was done"
        reader.join(120)
        assert len(answers) == calls
        assert all(a[0] == RESPONSE and a[2] is None and len(a[3]["ports"]) == 400
                   for a in answers)
        sock.close()
