"""The agents' MessagePack-RPC client against a small in-thread server on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest

from ryu_sched.agents.rpc_client import CallTimeout, Disconnected, RpcCallError, RpcClient
from tests.topology import wait_until


class TinyServer:
    """Answers ``echo`` (and everything else but ``silent`` with an error); can push
    notifications and drop connections."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.accepted = 0
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            unpacker.feed(data)
            for _kind, msgid, method, params in unpacker:
                if method == "echo":
                    reply = [1, msgid, None, params]
                elif method == "silent":
                    continue
                else:
                    reply = [1, msgid, {"type": "Boom", "message": "it failed"}, None]
                conn.sendall(msgpack.packb(reply))

    def notify(self, method: str, payload: Any) -> None:
        """Push a notification on the newest connection."""
        self.conns[-1].sendall(msgpack.packb([2, method, [payload]]))

    def drop_connections(self) -> None:
        """Drop the connections open now (not one the client makes meanwhile)."""
        conns, self.conns = self.conns, []
        for conn in conns:
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        self.drop_connections()


@pytest.fixture
def server() -> Iterator[TinyServer]:
    srv = TinyServer()
    yield srv
    srv.close()


def _client(server: TinyServer, **kwargs: Any) -> tuple[RpcClient, list[Any], list[int]]:
    notes: list[Any] = []
    connects: list[int] = []
    client = RpcClient("127.0.0.1", server.port,
                       on_notification=lambda m, p: notes.append((m, p)),
                       on_connect=lambda: connects.append(1), **kwargs)
    threading.Thread(target=client.connect_forever, daemon=True).start()
    assert client.wait_connected(5)
    return client, notes, connects


def test_calls_return_results_and_errors(server: TinyServer) -> None:
    client, _, _ = _client(server)
    try:
        assert client.call("echo", 1, "a") == [1, "a"]
        with pytest.raises(RpcCallError, match="it failed"):
            client.call("nope")
        with pytest.raises(Disconnected, match="no answer"):
            client.call("silent", timeout=0.2)
    finally:
        client.close()


def test_notifications_reach_the_callback(server: TinyServer) -> None:
    client, notes, _ = _client(server)
    try:
        wait_until(lambda: server.conns, 5)
        server.notify("network_bound", {"network_id": "n1"})
        wait_until(lambda: notes, 5)
        assert notes == [("network_bound", [{"network_id": "n1"}])]
    finally:
        client.close()


def test_dropped_connection_fails_fast_then_reconnects_and_calls_on_connect(
        server: TinyServer) -> None:
    client, _, connects = _client(server, max_backoff=0.2)
    try:
        wait_until(lambda: connects == [1] and server.conns, 5)   # both ends see it
        server.drop_connections()
        wait_until(lambda: server.accepted == 2 and server.conns and client.connected, 5,
                   0.01, "reconnected")
        wait_until(lambda: connects == [1, 1], 5, message="on_connect called again")
        assert client.call("echo", "again") == ["again"]
        assert server.accepted == 2  # one reconnect, no storm
    finally:
        client.close()


def test_calls_without_a_connection_raise_disconnected() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = RpcClient("127.0.0.1", port, on_notification=lambda m, p: None)
    with pytest.raises(Disconnected):
        client.call("echo", timeout=0.1)
    with pytest.raises(Disconnected):
        client.notify("report_state", {})


def test_a_call_waiting_when_the_connection_drops_fails_then(server: TinyServer) -> None:
    client, _, _ = _client(server)
    outcome: list[BaseException] = []

    def wait_silent() -> None:
        try:
            client.call("silent", timeout=60)
        except BaseException as exc:
            outcome.append(exc)

    try:
        waiter = threading.Thread(target=wait_silent, daemon=True)
        waiter.start()
        wait_until(lambda: client._pending, 5, message="call sent")
        server.drop_connections()
        wait_until(lambda: outcome, 5, message="the waiting call failed")
        assert isinstance(outcome[0], Disconnected)
        assert not isinstance(outcome[0], CallTimeout)
    finally:
        client.close()


def test_a_server_that_closes_at_once_is_a_refusal_not_a_connection() -> None:
    """As at the controller's connection limit: accepted, then closed unanswered."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def refuse() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=refuse, daemon=True).start()
    connects: list[int] = []
    client = RpcClient("127.0.0.1", port, on_notification=lambda m, p: None,
                       on_connect=lambda: connects.append(1))
    try:
        with pytest.raises(Disconnected, match="refused"):
            client.open(2)
        assert not client.connected and connects == []
    finally:
        client.close()
        listener.close()


# --- several controllers ---------------------------------------------------------------

def _following(first: int, *others: int, **kwargs: Any) -> tuple[RpcClient, list[int]]:
    connects: list[int] = []
    client = RpcClient("127.0.0.1", first, alternates=[("127.0.0.1", p) for p in others],
                       on_notification=lambda m, p: None,
                       on_connect=lambda: connects.append(1), **kwargs)
    threading.Thread(target=client.connect_forever, daemon=True).start()
    return client, connects


def test_when_its_controller_goes_the_client_moves_to_the_next(server: TinyServer) -> None:
    other = TinyServer()
    client, connects = _following(server.port, other.port, max_backoff=0.2)
    try:
        assert client.wait_connected(5)
        assert client.address == ("127.0.0.1", server.port)
        server.close()                        # the first controller dies
        wait_until(lambda: other.accepted and client.connected, 5, 0.01, "moved on")
        assert client.address == ("127.0.0.1", other.port)
        assert client.call("echo", "there") == ["there"]
        wait_until(lambda: len(connects) == 2, 5, message="on_connect again")
    finally:
        client.close()
        other.close()


def test_an_unreachable_controller_is_skipped_without_backing_off(server: TinyServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    # a whole round must fail before the client waits (here: a minute)
    client, _ = _following(dead, server.port, initial_backoff=60, max_backoff=60)
    try:
        assert client.wait_connected(5)
        assert client.address == ("127.0.0.1", server.port)
    finally:
        client.close()


def test_a_controller_that_stops_answering_is_dropped_for_the_next(server: TinyServer) -> None:
    other = TinyServer()
    client, _ = _following(server.port, other.port, max_backoff=0.2)
    try:
        assert client.wait_connected(5)
        with pytest.raises(CallTimeout):      # as a heartbeat to a frozen controller
            client.call("silent", timeout=0.2)
        client.drop()
        wait_until(lambda: client.connected and client.address[1] == other.port, 5, 0.01,
                   "moved to the next controller")
        assert client.call("echo", 2) == [2]
    finally:
        client.close()
        other.close()


def test_controller_endpoints_from_the_agent_options() -> None:
    from ryu_sched.agents.config import load_settings, parse_endpoint

    assert parse_endpoint("10.0.0.1:9000", 9697) == ("10.0.0.1", 9000)
    assert parse_endpoint("ctl-b", 9697) == ("ctl-b", 9697)
    assert parse_endpoint("[fd00::3]:9001", 9697) == ("fd00::3", 9001)
    assert parse_endpoint("fd00::3", 9697) == ("fd00::3", 9697)
    for bad in ("", ":9000", "h:0", "h:x", "[fd00::3]x"):
        with pytest.raises(ValueError):
            parse_endpoint(bad, 9697)
    one = load_settings(["--agent-controller_host", "10.0.0.9"])
    assert one.controllers == [("10.0.0.9", 9697)]
    three = load_settings(["--agent-controller_hosts", "10.0.0.1:9001, 10.0.0.2,[::1]:9003"])
    assert three.controllers == [("10.0.0.1", 9001), ("10.0.0.2", 9697), ("::1", 9003)]
    with pytest.raises(SystemExit, match="controller_hosts"):
        load_settings(["--agent-controller_hosts", "10.0.0.1:99999"])
